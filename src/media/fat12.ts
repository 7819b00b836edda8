// A 1.44 MB FAT12 floppy image writer for installer media (kickstart's OEMDRV, a preseed floppy,
// a cloud-init `cidata` seed), flat files only. Layout is the standard 3.5" HD format (Microsoft
// FAT specification, "FAT: General Overview of On-Disk Format"): 2880 sectors of 512 bytes, boot
// sector + BPB, two 9-sector FATs, a 224-entry root directory, then 1-sector clusters.
//
// Names keep their case and length through VFAT long-file-name entries (`ks.cfg`, `user-data`);
// each file also gets an upper-case 8.3 alias generated the way Windows does (`USER-D~1`).
// Output is deterministic: fixed timestamps unless `mtime` is given, and a serial derived from
// the content unless `serial` is given, so the same inputs give a byte-identical image.
import { createHash } from "node:crypto";
import { UserError } from "../errors.js";

export interface FloppyFile {
  name: string;
  content: Buffer | string;
}

export interface FloppyOptions {
  /** Volume label, at most 11 characters; stored upper-case as DOS tools do (e.g. OEMDRV). */
  label: string;
  /** Timestamp for every entry; default 1980-01-01 00:00 (the FAT epoch) for reproducibility. */
  mtime?: Date;
  /** Volume serial number; default derived from the label and files. */
  serial?: number;
}

const SECTOR = 512;
const TOTAL_SECTORS = 2880;
const RESERVED_SECTORS = 1;
const FAT_COUNT = 2;
const FAT_SECTORS = 9;
const ROOT_ENTRIES = 224;
const ROOT_SECTORS = (ROOT_ENTRIES * 32) / SECTOR; // 14
const FIRST_DATA_SECTOR = RESERVED_SECTORS + FAT_COUNT * FAT_SECTORS + ROOT_SECTORS; // 33
const CLUSTER_COUNT = TOTAL_SECTORS - FIRST_DATA_SECTOR; // 2847, 1 sector per cluster
const MEDIA = 0xf0; // 3.5" removable

const ATTR_ARCHIVE = 0x20;
const ATTR_VOLUME_ID = 0x08;
const ATTR_LFN = 0x0f;

/** Characters allowed in an 8.3 short name besides A–Z and 0–9 (FAT spec, "Short name"). */
const SHORT_EXTRA = new Set("$%'-_@~`!(){}^#&");
/** Characters never allowed in a long name. */
const LONG_FORBIDDEN = /["*/:<>?\\|\u0000-\u001f]/;

export const FLOPPY_SIZE = TOTAL_SECTORS * SECTOR;
/** Bytes available for file data. */
export const FLOPPY_CAPACITY = CLUSTER_COUNT * SECTOR;

export function buildFloppy(files: readonly FloppyFile[], opts: FloppyOptions): Buffer {
  const label = checkLabel(opts.label);
  const contents = files.map((f) => (typeof f.content === "string" ? Buffer.from(f.content, "utf8") : f.content));
  const names = files.map((f) => f.name);
  checkNames(names);

  const img = Buffer.alloc(FLOPPY_SIZE);
  const stamp = fatTimestamp(opts.mtime ?? new Date(Date.UTC(1980, 0, 1)));
  const serial = (opts.serial ?? defaultSerial(label, names, contents)) >>> 0;
  writeBootSector(img, label, serial);

  // Root directory: the volume label entry first (blkid and mlabel read it there), then each file
  // as LFN entries + its short entry.
  const dir: Buffer[] = [];
  if (label !== "") dir.push(shortEntry(Buffer.from(label.padEnd(11, " "), "ascii"), ATTR_VOLUME_ID, stamp, 0, 0));
  const taken = new Set<string>();
  const fat = new Uint16Array(CLUSTER_COUNT + 2);
  fat[0] = 0xf00 | MEDIA;
  fat[1] = 0xfff;
  let next = 2;
  files.forEach((file, idx) => {
    const content = contents[idx]!;
    const clusters = Math.ceil(content.length / SECTOR);
    if (next - 2 + clusters > CLUSTER_COUNT) {
      throw new UserError("FLOPPY_FULL", `floppy image: files do not fit in ${FLOPPY_CAPACITY} bytes (at "${file.name}")`);
    }
    const first = clusters > 0 ? next : 0;
    for (let c = 0; c < clusters; c++) {
      const cl = next + c;
      fat[cl] = c === clusters - 1 ? 0xfff : cl + 1;
    }
    content.copy(img, (FIRST_DATA_SECTOR + first - 2) * SECTOR);
    next += clusters;

    const short = shortName(file.name, taken);
    taken.add(short.toString("latin1"));
    if (needsLongName(file.name, short)) dir.push(...longEntries(file.name, checksum(short)));
    dir.push(shortEntry(short, ATTR_ARCHIVE, stamp, first, content.length));
  });
  if (dir.length > ROOT_ENTRIES) {
    throw new UserError(
      "FLOPPY_FULL",
      `floppy image: the root directory holds ${ROOT_ENTRIES} entries, these files need ${dir.length} (long names take one entry per 13 characters)`,
    );
  }
  Buffer.concat(dir).copy(img, (RESERVED_SECTORS + FAT_COUNT * FAT_SECTORS) * SECTOR);

  const fatBytes = packFat12(fat);
  for (let n = 0; n < FAT_COUNT; n++) fatBytes.copy(img, (RESERVED_SECTORS + n * FAT_SECTORS) * SECTOR);
  return img;
}

function writeBootSector(img: Buffer, label: string, serial: number): void {
  img.set([0xeb, 0x3c, 0x90], 0); // jmp short to the code at 0x3e; nop
  img.write("MSWIN4.1", 3, "ascii"); // the OEM name the FAT spec recommends
  img.writeUInt16LE(SECTOR, 11);
  img.writeUInt8(1, 13); // sectors per cluster
  img.writeUInt16LE(RESERVED_SECTORS, 14);
  img.writeUInt8(FAT_COUNT, 16);
  img.writeUInt16LE(ROOT_ENTRIES, 17);
  img.writeUInt16LE(TOTAL_SECTORS, 19);
  img.writeUInt8(MEDIA, 21);
  img.writeUInt16LE(FAT_SECTORS, 22);
  img.writeUInt16LE(18, 24); // sectors per track
  img.writeUInt16LE(2, 26); // heads
  img.writeUInt32LE(0, 28); // hidden sectors
  img.writeUInt32LE(0, 32); // large total sectors (unused: the 16-bit count suffices)
  img.writeUInt8(0x00, 36); // BIOS drive number: floppy
  img.writeUInt8(0x29, 38); // extended boot signature: serial, label, type follow
  img.writeUInt32LE(serial, 39);
  img.write((label === "" ? "NO NAME" : label).padEnd(11, " "), 43, "ascii");
  img.write("FAT12   ", 54, "ascii");
  // Not bootable: int 18h asks the BIOS to try the next boot device; halt if it returns.
  img.set([0xcd, 0x18, 0xfa, 0xf4, 0xeb, 0xfd], 0x3e);
  img.set([0x55, 0xaa], 510);
}

function packFat12(fat: Uint16Array): Buffer {
  const out = Buffer.alloc(FAT_SECTORS * SECTOR);
  for (let n = 0; n < fat.length; n++) {
    const v = fat[n]! & 0xfff;
    const off = Math.floor((n * 3) / 2);
    if (n % 2 === 0) {
      out[off] = v & 0xff;
      out[off + 1] = (out[off + 1]! & 0xf0) | (v >> 8);
    } else {
      out[off] = (out[off]! & 0x0f) | ((v & 0x0f) << 4);
      out[off + 1] = v >> 4;
    }
  }
  return out;
}

interface Stamp {
  time: number;
  date: number;
}

function fatTimestamp(d: Date): Stamp {
  const year = d.getUTCFullYear();
  if (year < 1980 || year > 2107) throw new UserError("FLOPPY_MTIME", `floppy image: FAT timestamps cover 1980–2107, got ${d.toISOString()}`);
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

function shortEntry(name11: Buffer, attr: number, stamp: Stamp, cluster: number, size: number): Buffer {
  const e = Buffer.alloc(32);
  name11.copy(e, 0, 0, 11);
  e.writeUInt8(attr, 11);
  e.writeUInt16LE(stamp.time, 14); // creation time
  e.writeUInt16LE(stamp.date, 16); // creation date
  e.writeUInt16LE(stamp.date, 18); // last access date
  e.writeUInt16LE(stamp.time, 22); // write time
  e.writeUInt16LE(stamp.date, 24); // write date
  e.writeUInt16LE(cluster, 26);
  e.writeUInt32LE(size, 28);
  return e;
}

function checkLabel(raw: string): string {
  const label = raw.toUpperCase();
  if (label.length > 11 || ![...label].every((c) => c === " " || isShortChar(c)) || label.startsWith(" ")) {
    throw new UserError("FLOPPY_LABEL", `floppy image: invalid volume label "${raw}"`, {
      hint: "at most 11 characters: letters, digits, space (not first) and $%'-_@~`!(){}^#&",
    });
  }
  return label.trimEnd();
}

function checkNames(names: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (name === "" || name === "." || name === ".." || name.length > 255 || LONG_FORBIDDEN.test(name) || /[. ]$/.test(name)) {
      throw new UserError("FLOPPY_NAME", `floppy image: invalid file name "${name}"`, {
        hint: 'files are flat (no "/"); 1–255 characters, none of "*:<>?\\| or control characters, not ending in "." or space',
      });
    }
    const key = name.toUpperCase();
    if (seen.has(key)) throw new UserError("FLOPPY_NAME", `floppy image: duplicate file name "${name}" (FAT names ignore case)`);
    seen.add(key);
  }
}

function isShortChar(c: string): boolean {
  return (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || SHORT_EXTRA.has(c);
}

/**
 * The 8.3 alias, as Windows generates it: upper-case, drop spaces and extra dots, replace other
 * invalid characters with "_", truncate to 8+3; if anything was lost (or the alias is taken) use
 * the first up-to-6 characters plus "~N". Returned as the 11-byte space-padded directory form.
 */
function shortName(name: string, taken: ReadonlySet<string>): Buffer {
  const upper = name.toUpperCase();
  const dot = upper.lastIndexOf(".");
  const hasExt = dot > 0;
  let lossy = false;
  const clean = (s: string): string => {
    let out = "";
    for (const c of s) {
      if (c === " " || c === ".") lossy = true;
      else if (isShortChar(c)) out += c;
      else {
        out += "_";
        lossy = true;
      }
    }
    return out;
  };
  let base = clean(hasExt ? upper.slice(0, dot) : upper);
  let ext = hasExt ? clean(upper.slice(dot + 1)) : "";
  if (base.length > 8) lossy = true;
  if (ext.length > 3) lossy = true;
  if (base === "") {
    base = "_";
    lossy = true;
  }
  ext = ext.slice(0, 3);
  const form = (b: string): string => b.padEnd(8, " ") + ext.padEnd(3, " ");
  if (!lossy && !taken.has(form(base))) return Buffer.from(form(base), "latin1");
  for (let n = 1; n < 1_000_000; n++) {
    const tail = `~${n}`;
    const candidate = form(base.slice(0, Math.min(6, 8 - tail.length)) + tail);
    if (!taken.has(candidate)) return Buffer.from(candidate, "latin1");
  }
  throw new Error("unreachable: no free 8.3 alias");
}

/** A long name is needed unless the name is exactly its 8.3 alias (upper-case, fits 8.3). */
function needsLongName(name: string, short11: Buffer): boolean {
  const s = short11.toString("latin1");
  const base = s.slice(0, 8).trimEnd();
  const ext = s.slice(8).trimEnd();
  return name !== (ext ? `${base}.${ext}` : base);
}

/** The short-name checksum each LFN entry carries (FAT spec, "ChkSum"). */
function checksum(short11: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + short11[i]!) & 0xff;
  return sum;
}

/** LFN entries in on-disk order (last part first), 13 UTF-16 units each. */
function longEntries(name: string, sum: number): Buffer[] {
  const units: number[] = [];
  for (let i = 0; i < name.length; i++) units.push(name.charCodeAt(i));
  const count = Math.ceil(units.length / 13);
  // Terminate with 0x0000 when there is room, then pad with 0xFFFF.
  if (units.length % 13 !== 0) units.push(0x0000);
  while (units.length < count * 13) units.push(0xffff);
  const entries: Buffer[] = [];
  for (let seq = count; seq >= 1; seq--) {
    const e = Buffer.alloc(32);
    e.writeUInt8(seq | (seq === count ? 0x40 : 0), 0);
    e.writeUInt8(ATTR_LFN, 11);
    e.writeUInt8(sum, 13);
    const part = units.slice((seq - 1) * 13, seq * 13);
    const offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
    part.forEach((u, k) => e.writeUInt16LE(u, offsets[k]!));
    entries.push(e);
  }
  return entries;
}

function defaultSerial(label: string, names: readonly string[], contents: readonly Buffer[]): number {
  const h = createHash("sha256").update(label);
  names.forEach((n, i) => h.update(`\0${n}\0`).update(contents[i]!));
  return h.digest().readUInt32LE(0);
}
