// GNU tar headers for OVA members, written by hand.
//
// Why not tar-stream's pack: v3.2.2 does switch the size field to base-256 above 8 GiB - 1, but it
// keeps the POSIX magic "ustar\0" + "00" on that header, so it announces POSIX ustar while using a
// GNU-only encoding (a strict ustar reader parses the field as octal and fails). Names it cannot fit
// (non-ASCII, > 100 bytes) silently become PAX headers, which vSphere reports as unsupported
// (open-vmdk PR 65, ova.md "Tar"). An OVA needs one shape only - a regular file with a bare ASCII
// basename, owner 0/0, mode 0644 - so we emit the GNU ("oldgnu": magic "ustar  \0") header whose
// base-256 size field GNU tar, bsdtar, ovftool and tar-stream's extract all read, and we refuse
// anything else instead of falling back to PAX.

export const BLOCK = 512;
/** Largest size the 11-digit octal field holds (8 GiB - 1); above it the field is base-256. */
export const MAX_OCTAL_SIZE = 0o77777777777;
/** Two zero blocks end a tar archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK);

export interface MemberHeader {
  name: string;
  size: number;
  /** Seconds since the epoch; defaults to 0 is avoided: callers pass the build time. */
  mtime: number;
  /** Defaults to 0o644 (ova.md "Tar": owner 0/0, mode 0644). */
  mode?: number;
}

/** A member name an OVA may carry: a bare ASCII basename that fits the 100-byte name field. */
export function checkMemberName(name: string): string | undefined {
  if (name.length === 0) return "empty name";
  if (!/^[\x21-\x7e][\x20-\x7e]*$/.test(name)) return "name must be printable ASCII";
  if (name.includes("/") || name.includes("\\")) return "name must be a bare basename";
  if (name === "." || name === "..") return "name must be a file name";
  if (Buffer.byteLength(name) > 100) return "name longer than 100 bytes";
  return undefined;
}

export function encodeGnuHeader(h: MemberHeader): Buffer {
  const problem = checkMemberName(h.name);
  if (problem) throw new Error(`tar member ${JSON.stringify(h.name)}: ${problem}`);
  if (!Number.isSafeInteger(h.size) || h.size < 0) throw new Error(`tar member ${h.name}: bad size ${h.size}`);
  const buf = Buffer.alloc(BLOCK);
  buf.write(h.name, 0, "ascii");
  writeOctal(buf, 100, 8, h.mode ?? 0o644);
  writeOctal(buf, 108, 8, 0); // uid
  writeOctal(buf, 116, 8, 0); // gid
  writeSize(buf, 124, h.size);
  writeOctal(buf, 136, 12, Math.max(0, Math.floor(h.mtime)));
  buf[156] = 0x30; // typeflag '0': regular file
  buf.write("ustar  \0", 257, "ascii"); // GNU magic + version
  buf.write("root", 265, "ascii"); // uname
  buf.write("root", 297, "ascii"); // gname
  // Checksum: sum of all bytes with the checksum field taken as spaces; 6 octal digits, NUL, space.
  buf.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of buf) sum += b;
  buf.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
  return buf;
}

/** Reads the size field, octal or GNU base-256 (used by tests and as a cross-check). */
export function decodeSize(header: Buffer): number {
  const field = header.subarray(124, 136);
  if ((field[0]! & 0x80) !== 0) {
    if (field[0] !== 0x80) throw new Error("negative or oversized base-256 size");
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString("ascii").replace(/[\0 ]+$/, "").trim();
  return text === "" ? 0 : parseInt(text, 8);
}

/** Zero bytes after a member so the next header starts on a block boundary. */
export function paddingFor(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

function writeOctal(buf: Buffer, off: number, len: number, value: number): void {
  const digits = value.toString(8).padStart(len - 1, "0");
  if (digits.length > len - 1) throw new Error(`value ${value} does not fit a ${len}-byte octal field`);
  buf.write(digits + "\0", off, "ascii");
}

function writeSize(buf: Buffer, off: number, size: number): void {
  if (size <= MAX_OCTAL_SIZE) {
    writeOctal(buf, off, 12, size);
    return;
  }
  // GNU base-256: first byte 0x80 flags it, the other 11 bytes hold the size big-endian.
  buf[off] = 0x80;
  let n = size;
  for (let i = 11; i >= 1; i--) {
    buf[off + i] = n % 256;
    n = Math.floor(n / 256);
  }
}
