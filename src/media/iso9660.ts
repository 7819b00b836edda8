// A small ISO 9660 writer for cloud-init seeds and installer media, so a build needs no
// xorriso/genisoimage at run time. One flat root directory, three views of the same file data:
//   - the primary tree (ECMA-119), whose 8.3 upper-case names every reader understands,
//   - Rock Ridge (SUSP IEEE P1281 + RRIP IEEE P1282) entries in that tree, carrying the real names,
//   - a Joliet tree (supplementary volume descriptor, UCS-2 names), which blkid and Windows read.
// Linux's isofs prefers Rock Ridge when it finds it and falls back to Joliet otherwise, so both must
// agree on names and content; they share each file's extent.
import { writeFileAtomic } from "../util/atomic.js";
import { BuildError, UserError } from "../errors.js";

export interface IsoFile {
  /** The real name (flat: no `/`). Rock Ridge and Joliet carry it as-is; the primary tree gets an 8.3 form. */
  name: string;
  content: Buffer | string;
}

export interface IsoOptions {
  /** Volume label; `cidata` for a NoCloud seed. Written into both the primary and the Joliet descriptor. */
  volumeId: string;
  /** Recorded in every descriptor and directory record; the same date gives a byte-identical image. */
  date?: Date;
}

const SECTOR = 2048;
/** ECMA-119 6.2.1: sectors 0-15 are the system area; descriptors start at 16. */
const FIRST_DESCRIPTOR = 16;
/** Joliet allows at most 64 UCS-2 characters in a file identifier (Joliet spec, section 3.3). */
const JOLIET_MAX_NAME = 64;
/** ECMA-119 9.1.1: LEN_DR is one byte; 254 keeps it even once padded. */
const MAX_RECORD = 254;
const CE_ENTRY_LEN = 28;
const APPLICATION_ID = "VMKILN";

// ---------------------------------------------------------------- public API

export function buildIso(files: IsoFile[], opts: IsoOptions): Buffer {
  const volumeId = checkVolumeId(opts.volumeId);
  const date = checkDate(opts.date ?? new Date());
  const entries = prepareEntries(files);

  const primary = planPrimaryDirectory(entries, date);
  const joliet = planJolietDirectory(entries);

  // Fixed layout: descriptors, four one-sector path tables, the two directories (with the Rock Ridge
  // continuation blocks between them), then file data.
  const primaryDesc = FIRST_DESCRIPTOR;
  const jolietDesc = primaryDesc + 1;
  const terminator = jolietDesc + 1;
  const pathTables = { pL: terminator + 1, pM: terminator + 2, jL: terminator + 3, jM: terminator + 4 };
  const primaryDir = terminator + 5;
  const continuation = primaryDir + primary.sectors;
  const jolietDir = continuation + primary.continuationSectors;
  let next = jolietDir + joliet.sectors;
  for (const e of entries) {
    // A zero-length file owns no sector; it points where the next data would go (as genisoimage does).
    e.extent = next;
    next += Math.ceil(e.data.length / SECTOR);
  }
  const totalSectors = next;

  const img = Buffer.alloc(totalSectors * SECTOR);
  const primaryRoot = { extent: primaryDir, size: primary.sectors * SECTOR };
  const jolietRoot = { extent: jolietDir, size: joliet.sectors * SECTOR };

  writeDirectory(img, primary, primaryRoot, continuation, date);
  writeDirectory(img, joliet, jolietRoot, continuation, date);
  writePathTables(img, pathTables.pL, pathTables.pM, primaryRoot.extent);
  writePathTables(img, pathTables.jL, pathTables.jM, jolietRoot.extent);

  const common = { volumeId, totalSectors, date, pathTableSize: PATH_TABLE_ROOT_LEN };
  writeVolumeDescriptor(img, primaryDesc, {
    ...common,
    kind: "primary",
    lPath: pathTables.pL,
    mPath: pathTables.pM,
    root: primaryRoot,
  });
  writeVolumeDescriptor(img, jolietDesc, {
    ...common,
    kind: "joliet",
    lPath: pathTables.jL,
    mPath: pathTables.jM,
    root: jolietRoot,
  });
  writeTerminator(img, terminator);

  for (const e of entries) e.data.copy(img, e.extent * SECTOR);
  return img;
}

/** Builds the image in memory, then writes it to a temp file next to `path` and renames it into place. */
export async function writeIsoFile(path: string, files: IsoFile[], opts: IsoOptions): Promise<void> {
  const image = buildIso(files, opts);
  try {
    await writeFileAtomic(path, image);
  } catch (err) {
    throw new BuildError("ISO_WRITE_FAILED", `cannot write ISO image ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

// ---------------------------------------------------------------- validation and names

interface Entry {
  name: string;
  data: Buffer;
  /** Primary-tree identifier, e.g. `META_DAT.;1`. */
  primaryId: string;
  extent: number;
}

/** Joliet spec 3.2 forbids these in identifiers, along with U+0000..U+001F. */
const JOLIET_FORBIDDEN = /[\u0000-\u001f*/:;?\\]/;

function prepareEntries(files: IsoFile[]): Entry[] {
  const seen = new Set<string>();
  for (const f of files) {
    checkName(f.name);
    if (seen.has(f.name)) {
      throw new UserError("ISO_NAME_DUPLICATE", `duplicate file name in ISO image: ${JSON.stringify(f.name)}`);
    }
    seen.add(f.name);
  }
  // Sorting by real name makes the image independent of the caller's order, including which file
  // keeps the plain 8.3 name when two collide.
  const sorted = [...files].sort((a, b) => compareCodeUnits(a.name, b.name));
  const used = new Set<string>();
  return sorted.map((f) => {
    const data = typeof f.content === "string" ? Buffer.from(f.content, "utf8") : f.content;
    if (data.length > 0xffffffff) {
      throw new UserError("ISO_FILE_TOO_LARGE", `${f.name}: larger than the 4 GiB an ISO 9660 extent can hold`);
    }
    const primaryId = uniquePrimaryId(f.name, used);
    used.add(primaryId);
    return { name: f.name, data, primaryId, extent: 0 };
  });
}

function checkName(name: string): void {
  const bad = (why: string, hint?: string): UserError =>
    new UserError("ISO_NAME_INVALID", `invalid file name for ISO image ${JSON.stringify(name)}: ${why}`, { hint });
  if (typeof name !== "string" || name.length === 0) throw bad("empty");
  if (name === "." || name === "..") throw bad("reserved name");
  if (name.includes("/")) throw bad("contains '/'", "the ISO writer only makes a flat root directory");
  if (JOLIET_FORBIDDEN.test(name)) throw bad("contains a control character or one of * / : ; ? \\");
  if (/[\ud800-\udfff]/.test(name)) throw bad("characters outside the Basic Multilingual Plane do not fit UCS-2");
  if (name.length > JOLIET_MAX_NAME) {
    throw new UserError(
      "ISO_NAME_TOO_LONG",
      `file name for ISO image is ${name.length} characters; Joliet allows at most ${JOLIET_MAX_NAME}: ${name}`,
    );
  }
}

function checkVolumeId(id: string): string {
  // 16 characters is what the Joliet descriptor's 32-byte UCS-2 field holds; the primary one holds 32.
  // Leading/trailing spaces would be indistinguishable from the padding (ECMA-119 7.4.3).
  if (typeof id !== "string" || !/^[!-~](?:[ -~]{0,14}[!-~])?$/.test(id) || JOLIET_FORBIDDEN.test(id)) {
    throw new UserError(
      "ISO_VOLUME_ID_INVALID",
      `invalid ISO volume id ${JSON.stringify(id)}: use 1-16 printable ASCII characters`,
    );
  }
  return id;
}

function checkDate(d: Date): Date {
  // Directory records store years since 1900 in one byte (ECMA-119 9.1.5).
  const y = d.getUTCFullYear();
  if (Number.isNaN(d.getTime()) || y < 1900 || y > 2155) {
    throw new UserError("ISO_DATE_INVALID", `ISO image date must lie between 1900 and 2155: ${String(d)}`);
  }
  return d;
}

/**
 * ECMA-119 7.5.1 / 10.1 (interchange level 1): up to 8 d-characters, a dot that is always present,
 * up to 3 d-characters, then `;1`. d-characters are A-Z, 0-9 and `_` (7.4.1).
 */
function uniquePrimaryId(name: string, used: Set<string>): string {
  const lastDot = name.lastIndexOf(".");
  // A leading dot (".profile") marks a hidden file, not an extension.
  const [rawBase, rawExt] = lastDot > 0 ? [name.slice(0, lastDot), name.slice(lastDot + 1)] : [name, ""];
  const dchars = (s: string): string => s.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
  const base = dchars(rawBase).slice(0, 8);
  const ext = dchars(rawExt).slice(0, 3);
  let id = `${base}.${ext};1`;
  for (let n = 1; used.has(id); n++) {
    const suffix = String(n);
    id = `${base.slice(0, 8 - suffix.length)}${suffix}.${ext};1`;
  }
  return id;
}

// ---------------------------------------------------------------- directory planning

interface PlannedRecord {
  id: Buffer;
  kind: "self" | "parent" | "file";
  entry?: Entry;
  length: number;
  /** System-use entries written in the record itself. */
  su: Buffer[];
  /** Entries that did not fit and go to a SUSP continuation area (SUSP 5.1, `CE`). */
  continued?: { block: number; offset: number; entries: Buffer[]; length: number };
  sector: number;
  offset: number;
}

interface PlannedDirectory {
  records: PlannedRecord[];
  sectors: number;
  continuationSectors: number;
}

function planPrimaryDirectory(entries: Entry[], date: Date): PlannedDirectory {
  const sorted = [...entries].sort((a, b) => comparePrimaryIds(a.primaryId, b.primaryId));
  const ce = { block: 0, offset: 0, used: false };
  const records: PlannedRecord[] = [
    // SUSP 5.3: SP must open the system-use area of the root's first (".") record; RRIP 4.3 wants
    // the ER entry there too, announcing which extension the SUSP entries belong to.
    planRecord(Buffer.from([0]), "self", undefined, [suspSP(), rrPX(true), rrTF(date), suspER()], ce),
    planRecord(Buffer.from([1]), "parent", undefined, [rrPX(true), rrTF(date)], ce),
    ...sorted.map((e) =>
      planRecord(Buffer.from(e.primaryId, "ascii"), "file", e, [rrPX(false), rrTF(date), rrNM(e.name)], ce),
    ),
  ];
  return { records, sectors: packRecords(records), continuationSectors: ce.used ? ce.block + 1 : 0 };
}

function planJolietDirectory(entries: Entry[]): PlannedDirectory {
  const ids = new Map(entries.map((e) => [e, ucs2(e.name)]));
  // Joliet spec 3.3: ordering as in ECMA-119 9.3, applied to the UCS-2 code values.
  const sorted = [...entries].sort((a, b) => compareCodeUnits(a.name, b.name));
  const none = { block: 0, offset: 0, used: false };
  const records: PlannedRecord[] = [
    planRecord(Buffer.from([0]), "self", undefined, [], none),
    planRecord(Buffer.from([1]), "parent", undefined, [], none),
    ...sorted.map((e) => planRecord(ids.get(e)!, "file", e, [], none)),
  ];
  return { records, sectors: packRecords(records), continuationSectors: 0 };
}

function planRecord(
  id: Buffer,
  kind: PlannedRecord["kind"],
  entry: Entry | undefined,
  su: Buffer[],
  ce: { block: number; offset: number; used: boolean },
): PlannedRecord {
  // ECMA-119 9.1.12: a padding byte follows an even-length identifier so the system-use area starts
  // on an even offset.
  const base = 33 + id.length + (id.length % 2 === 0 ? 1 : 0);
  const total = su.reduce((n, b) => n + b.length, 0);
  const rec: PlannedRecord = { id, kind, su, length: base + total, sector: 0, offset: 0 };
  if (entry) rec.entry = entry;
  if (base + total > MAX_RECORD) {
    let used = 0;
    let i = 0;
    while (i < su.length && base + used + su[i]!.length + CE_ENTRY_LEN <= MAX_RECORD) used += su[i++]!.length;
    const rest = su.slice(i);
    const restLen = rest.reduce((n, b) => n + b.length, 0);
    // Linux reads a continuation area only if it lies inside one logical block.
    if (ce.offset + restLen > SECTOR) {
      ce.block++;
      ce.offset = 0;
    }
    rec.su = su.slice(0, i);
    rec.continued = { block: ce.block, offset: ce.offset, entries: rest, length: restLen };
    rec.length = base + used + CE_ENTRY_LEN;
    ce.offset += restLen;
    ce.used = true;
  }
  // SUSP 4: entries and the record length stay even.
  rec.length += rec.length % 2;
  return rec;
}

/** ECMA-119 6.8.1.1: a directory record never spans a sector boundary; the rest of the sector is zero. */
function packRecords(records: PlannedRecord[]): number {
  let sector = 0;
  let offset = 0;
  for (const r of records) {
    if (offset + r.length > SECTOR) {
      sector++;
      offset = 0;
    }
    r.sector = sector;
    r.offset = offset;
    offset += r.length;
  }
  return sector + 1;
}

// ---------------------------------------------------------------- serialisation

interface Extent {
  extent: number;
  size: number;
}

function writeDirectory(img: Buffer, dir: PlannedDirectory, root: Extent, ceStart: number, date: Date): void {
  for (const r of dir.records) {
    const at = (root.extent + r.sector) * SECTOR + r.offset;
    const target = r.entry ? { extent: r.entry.extent, size: r.entry.data.length } : root;
    const su = [...r.su];
    if (r.continued) {
      const c = r.continued;
      su.push(suspCE(ceStart + c.block, c.offset, c.length));
      Buffer.concat(c.entries).copy(img, (ceStart + c.block) * SECTOR + c.offset);
    }
    writeRecord(img, at, r.length, r.id, target, r.kind !== "file", date, su);
  }
}

/** ECMA-119 9.1: the directory record. */
function writeRecord(
  img: Buffer,
  at: number,
  length: number,
  id: Buffer,
  target: Extent,
  isDir: boolean,
  date: Date,
  su: Buffer[],
): void {
  img[at] = length;
  img[at + 1] = 0; // no extended attribute record
  both32(img, at + 2, target.extent);
  both32(img, at + 10, target.size);
  recordDate(date).copy(img, at + 18);
  img[at + 25] = isDir ? 0x02 : 0x00; // 9.1.6 file flags: bit 1 = directory
  img[at + 26] = 0; // not interleaved
  img[at + 27] = 0;
  both16(img, at + 28, 1); // volume sequence number
  img[at + 32] = id.length;
  id.copy(img, at + 33);
  let p = at + 33 + id.length + (id.length % 2 === 0 ? 1 : 0);
  for (const e of su) {
    e.copy(img, p);
    p += e.length;
  }
}

/** ECMA-119 9.4: a path table with its one entry, the root (identifier 0x00, parent 1). */
const PATH_TABLE_ROOT_LEN = 10;

function writePathTables(img: Buffer, lSector: number, mSector: number, rootExtent: number): void {
  for (const [sector, le] of [
    [lSector, true],
    [mSector, false],
  ] as const) {
    const at = sector * SECTOR;
    img[at] = 1; // LEN_DI
    img[at + 1] = 0;
    // 9.4.3-9.4.4: type L tables are little-endian, type M big-endian, never both-endian.
    if (le) {
      img.writeUInt32LE(rootExtent, at + 2);
      img.writeUInt16LE(1, at + 6);
    } else {
      img.writeUInt32BE(rootExtent, at + 2);
      img.writeUInt16BE(1, at + 6);
    }
    img[at + 8] = 0; // root identifier; byte 9 pads LEN_DI to even
  }
}

interface DescriptorFields {
  kind: "primary" | "joliet";
  volumeId: string;
  totalSectors: number;
  pathTableSize: number;
  lPath: number;
  mPath: number;
  root: Extent;
  date: Date;
}

/** ECMA-119 8.4 (primary) and 8.5 (supplementary); Joliet differs only in the escape sequences and UCS-2 text. */
function writeVolumeDescriptor(img: Buffer, sector: number, f: DescriptorFields): void {
  const at = sector * SECTOR;
  const joliet = f.kind === "joliet";
  // Identifier fields are space-padded (7.4.3); NUL padding shows up in guests as a label with NULs.
  const text = (off: number, len: number, s: string): void => {
    (joliet ? ucs2Field(len, s) : asciiField(len, s)).copy(img, at + off);
  };
  img[at] = joliet ? 2 : 1;
  img.write("CD001", at + 1, "ascii");
  img[at + 6] = 1;
  text(8, 32, ""); // system identifier
  text(40, 32, f.volumeId);
  both32(img, at + 80, f.totalSectors);
  // Joliet spec 2.2: escape sequence %/E declares UCS-2 level 3.
  if (joliet) img.write("%/E", at + 88, "ascii");
  both16(img, at + 120, 1); // volume set size
  both16(img, at + 124, 1); // volume sequence number
  both16(img, at + 128, SECTOR);
  both32(img, at + 132, f.pathTableSize);
  img.writeUInt32LE(f.lPath, at + 140);
  img.writeUInt32BE(f.mPath, at + 148);
  writeRecord(img, at + 156, 34, Buffer.from([0]), f.root, true, f.date, []);
  text(190, 128, ""); // volume set
  text(318, 128, ""); // publisher
  text(446, 128, ""); // data preparer
  text(574, 128, APPLICATION_ID);
  text(702, 37, ""); // copyright file
  text(739, 37, ""); // abstract file
  text(776, 37, ""); // bibliographic file
  descriptorDate(f.date).copy(img, at + 813); // creation
  descriptorDate(f.date).copy(img, at + 830); // modification
  descriptorDate(undefined).copy(img, at + 847); // expiration: none
  descriptorDate(undefined).copy(img, at + 864); // effective: none
  img[at + 881] = 1; // file structure version
}

/** ECMA-119 8.3: the volume descriptor set terminator. */
function writeTerminator(img: Buffer, sector: number): void {
  const at = sector * SECTOR;
  img[at] = 255;
  img.write("CD001", at + 1, "ascii");
  img[at + 6] = 1;
}

// ---------------------------------------------------------------- SUSP / Rock Ridge entries

function suEntry(sig: string, body: Buffer): Buffer {
  // SUSP 4.1: signature (2), length (1), version (1), data.
  return Buffer.concat([Buffer.from(sig, "ascii"), Buffer.from([4 + body.length, 1]), body]);
}

/** SUSP 5.3: check bytes BE EF, no bytes skipped in later records. */
function suspSP(): Buffer {
  return suEntry("SP", Buffer.from([0xbe, 0xef, 0]));
}

/** SUSP 5.1: where the remaining entries of this record continue. */
function suspCE(block: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(24);
  both32(b, 0, block);
  both32(b, 8, offset);
  both32(b, 16, length);
  return suEntry("CE", b);
}

/** SUSP 5.5 with the identifier, description and source text RRIP 1.10 prescribes for RRIP_1991A. */
function suspER(): Buffer {
  const id = "RRIP_1991A";
  const des = "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
  const src =
    "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";
  const head = Buffer.from([id.length, des.length, src.length, 1]);
  return suEntry("ER", Buffer.concat([head, Buffer.from(id + des + src, "ascii")]));
}

/** RRIP 4.1.1 (1.10 form, without the serial number): mode, links, uid, gid. Read-only, owned by root. */
function rrPX(dir: boolean): Buffer {
  const b = Buffer.alloc(32);
  both32(b, 0, dir ? 0o040555 : 0o100444);
  both32(b, 8, dir ? 2 : 1);
  both32(b, 16, 0);
  both32(b, 24, 0);
  return suEntry("PX", b);
}

/** RRIP 4.1.4: the real name, UTF-8 as Linux and libisofs read it; flags 0 = complete name. */
function rrNM(name: string): Buffer {
  return suEntry("NM", Buffer.concat([Buffer.from([0]), Buffer.from(name, "utf8")]));
}

/** RRIP 4.1.6: modify, access and attribute-change times in the 7-byte form of ECMA-119 9.1.5. */
function rrTF(date: Date): Buffer {
  const t = recordDate(date);
  return suEntry("TF", Buffer.concat([Buffer.from([0x0e]), t, t, t]));
}

// ---------------------------------------------------------------- encodings

function both16(b: Buffer, at: number, v: number): void {
  b.writeUInt16LE(v, at);
  b.writeUInt16BE(v, at + 2);
}

/** ECMA-119 7.3.3: both-byte orders, little-endian first. */
function both32(b: Buffer, at: number, v: number): void {
  b.writeUInt32LE(v, at);
  b.writeUInt32BE(v, at + 4);
}

/** ECMA-119 9.1.5: years since 1900, month, day, hour, minute, second, GMT offset in 15-minute units. */
function recordDate(d: Date): Buffer {
  return Buffer.from([
    d.getUTCFullYear() - 1900,
    d.getUTCMonth() + 1,
    d.getUTCDate(),
    d.getUTCHours(),
    d.getUTCMinutes(),
    d.getUTCSeconds(),
    0,
  ]);
}

/** ECMA-119 8.4.26.1: 16 ASCII digits YYYYMMDDHHMMSScc plus the GMT offset; all zeros means "not specified". */
function descriptorDate(d: Date | undefined): Buffer {
  if (!d) return Buffer.concat([Buffer.from("0".repeat(16), "ascii"), Buffer.from([0])]);
  const p = (n: number, w: number): string => String(n).padStart(w, "0");
  const s =
    p(d.getUTCFullYear(), 4) +
    p(d.getUTCMonth() + 1, 2) +
    p(d.getUTCDate(), 2) +
    p(d.getUTCHours(), 2) +
    p(d.getUTCMinutes(), 2) +
    p(d.getUTCSeconds(), 2) +
    p(Math.floor(d.getUTCMilliseconds() / 10), 2);
  return Buffer.concat([Buffer.from(s, "ascii"), Buffer.from([0])]);
}

function asciiField(len: number, s: string): Buffer {
  const b = Buffer.alloc(len, 0x20);
  b.write(s, 0, "ascii");
  return b;
}

/** Joliet text fields are UCS-2 big-endian, padded with U+0020; an odd final byte stays 0. */
function ucs2Field(len: number, s: string): Buffer {
  const b = Buffer.alloc(len, 0);
  for (let i = 0; i + 1 < len; i += 2) b.writeUInt16BE(0x20, i);
  ucs2(s).copy(b, 0);
  return b;
}

function ucs2(s: string): Buffer {
  const b = Buffer.alloc(s.length * 2);
  for (let i = 0; i < s.length; i++) b.writeUInt16BE(s.charCodeAt(i), i * 2);
  return b;
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** ECMA-119 9.3: order by name, then extension, each compared as if padded with spaces. */
function comparePrimaryIds(a: string, b: string): number {
  const split = (id: string): [string, string] => {
    const [name = "", rest = ""] = id.split(".");
    return [name, rest.split(";")[0] ?? ""];
  };
  const padCmp = (x: string, y: string): number => {
    const n = Math.max(x.length, y.length);
    return compareCodeUnits(x.padEnd(n, " "), y.padEnd(n, " "));
  };
  const [an, ae] = split(a);
  const [bn, be] = split(b);
  return padCmp(an, bn) || padCmp(ae, be);
}
