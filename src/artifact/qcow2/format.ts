// The qcow2 on-disk format: header (v2/v3 with extensions), L1/L2 entries, compressed cluster
// descriptors. Pure functions only (no I/O), so the bit layouts are table-tested.
//
// Every rule cites its section of QEMU's docs/interop/qcow2.txt ("the spec"). All numbers are big
// endian ("General"). 64-bit entries are handled as two 32-bit halves (hi, lo): JS numbers cannot
// hold bits 62/63, and host offsets stay below 2^53 in any file this process could read.
import { BuildError } from "../../errors.js";

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb" ("Header", bytes 0-3)

/** Header extension types ("Header extensions"). */
export const EXT_END = 0x00000000;
export const EXT_BACKING_FORMAT = 0xe2792aca;
export const EXT_FEATURE_TABLE = 0x6803f857;
export const EXT_BITMAPS = 0x23852875;
export const EXT_CRYPTO = 0x0537be77;
export const EXT_DATA_FILE = 0x44415441;

/** incompatible_features bits ("Header", bytes 72-79). */
export const INCOMPAT_DIRTY = 1n << 0n;
export const INCOMPAT_CORRUPT = 1n << 1n;
export const INCOMPAT_DATA_FILE = 1n << 2n;
export const INCOMPAT_COMPRESSION = 1n << 3n;
export const INCOMPAT_EXTL2 = 1n << 4n;
export const INCOMPAT_KNOWN = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_DATA_FILE | INCOMPAT_COMPRESSION | INCOMPAT_EXTL2;

/** compression_type values ("Additional fields", byte 104). */
export const COMPRESSION_ZLIB = 0;
export const COMPRESSION_ZSTD = 1;

/** Compressed data is addressed in 512-byte sectors ("Compressed Clusters Descriptor"). */
export const SECTOR = 512;
/** The spec allows 9..; QEMU refuses clusters above 2 MiB ("Header", cluster_bits). */
export const MIN_CLUSTER_BITS = 9;
export const MAX_CLUSTER_BITS = 21;

const V2_HEADER_LENGTH = 72;
const V3_MIN_HEADER_LENGTH = 104;
/** What QEMU 5.1+ writes: fields through compression_type (byte 104), padded to a multiple of 8. */
export const V3_HEADER_LENGTH = 112;
const TWO32 = 0x1_0000_0000;

export interface FeatureName {
  /** 0 incompatible, 1 compatible, 2 autoclear ("Feature name table"). */
  type: number;
  bit: number;
  name: string;
}

export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  /** Virtual disk size in bytes. */
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
  backingFile: string | undefined;
  /** From the backing file format extension; undefined when the image does not record it. */
  backingFormat: string | undefined;
  dataFile: string | undefined;
  featureNames: FeatureName[];
  /** Extension types seen, in order (the end marker excluded). */
  extensions: number[];
}

function corrupt(what: string, message: string): BuildError {
  return new BuildError("QCOW2_CORRUPT", `${what}: ${message}`, { hint: "qemu-img check reports what is wrong with it" });
}

function u64(buf: Buffer, at: number, what: string, field: string): number {
  const v = buf.readBigUInt64BE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(what, `${field} ${v} is out of range`);
  return Number(v);
}

/** True when the first bytes are the qcow2 magic (any version). */
export function hasQcow2Magic(buf: Buffer): boolean {
  return buf.length >= 4 && buf.readUInt32BE(0) === QCOW2_MAGIC;
}

/**
 * Parses the header and its extensions from the start of the file (`buf` must hold the whole first
 * cluster, or the whole file if it is shorter: extensions and the backing file name live there).
 * Throws BuildError QCOW2_CORRUPT when the bytes cannot be a qcow2 header; callers check the magic
 * and the version first if they want to treat "not qcow2" differently.
 */
export function parseHeader(buf: Buffer, what = "qcow2 image"): Qcow2Header {
  if (buf.length < V2_HEADER_LENGTH || !hasQcow2Magic(buf)) throw corrupt(what, "no qcow2 header");
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw corrupt(what, `qcow2 version ${version} (only 2 and 3 exist)`);
  const clusterBits = buf.readUInt32BE(20);
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) throw corrupt(what, `cluster_bits ${clusterBits} (QEMU accepts 9..21)`);
  const clusterSize = 2 ** clusterBits;
  const h: Qcow2Header = {
    version,
    backingFileOffset: u64(buf, 8, what, "backing_file_offset"),
    backingFileSize: buf.readUInt32BE(16),
    clusterBits,
    size: u64(buf, 24, what, "size"),
    cryptMethod: buf.readUInt32BE(32),
    l1Size: buf.readUInt32BE(36),
    l1TableOffset: u64(buf, 40, what, "l1_table_offset"),
    refcountTableOffset: u64(buf, 48, what, "refcount_table_offset"),
    refcountTableClusters: buf.readUInt32BE(56),
    nbSnapshots: buf.readUInt32BE(60),
    snapshotsOffset: u64(buf, 64, what, "snapshots_offset"),
    // Version 2 headers end at byte 72; the v3 fields read as their defaults ("Header").
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    compressionType: COMPRESSION_ZLIB,
    backingFile: undefined,
    backingFormat: undefined,
    dataFile: undefined,
    featureNames: [],
    extensions: [],
  };
  if (version === 3) {
    if (buf.length < V3_MIN_HEADER_LENGTH) throw corrupt(what, "truncated v3 header");
    h.incompatibleFeatures = buf.readBigUInt64BE(72);
    h.compatibleFeatures = buf.readBigUInt64BE(80);
    h.autoclearFeatures = buf.readBigUInt64BE(88);
    h.refcountOrder = buf.readUInt32BE(96);
    h.headerLength = buf.readUInt32BE(100);
    if (h.headerLength < V3_MIN_HEADER_LENGTH || h.headerLength % 8 !== 0 || h.headerLength > Math.min(clusterSize, buf.length)) {
      throw corrupt(what, `header_length ${h.headerLength} (v3 needs >= 104, a multiple of 8, inside the first cluster)`);
    }
    // "A field is considered not present when header_length is less than or equal to the field's offset."
    if (h.headerLength > 104) h.compressionType = buf.readUInt8(104);
  }
  if (h.refcountOrder > 6) throw corrupt(what, `refcount_order ${h.refcountOrder} (at most 6)`);
  if (h.l1TableOffset % clusterSize !== 0) throw corrupt(what, `L1 table offset ${h.l1TableOffset} is not cluster aligned`);

  // Extensions follow the header and end before the backing file name ("Header extensions").
  const extEnd = Math.min(buf.length, clusterSize, h.backingFileOffset > 0 ? h.backingFileOffset : Infinity);
  let at = h.headerLength;
  while (at + 8 <= extEnd) {
    const type = buf.readUInt32BE(at);
    const len = buf.readUInt32BE(at + 4);
    if (type === EXT_END) break;
    const data = at + 8;
    if (data + len > extEnd) throw corrupt(what, `header extension 0x${type.toString(16)} runs past the header area`);
    h.extensions.push(type);
    const bytes = buf.subarray(data, data + len);
    if (type === EXT_BACKING_FORMAT) h.backingFormat = bytes.toString("utf8");
    else if (type === EXT_DATA_FILE) h.dataFile = bytes.toString("utf8");
    else if (type === EXT_FEATURE_TABLE) h.featureNames = parseFeatureTable(bytes);
    at = data + Math.ceil(len / 8) * 8;
  }

  if (h.backingFileOffset > 0) {
    // "Must not be longer than 1023 bytes"; QEMU also wants it inside the first cluster.
    const end = h.backingFileOffset + h.backingFileSize;
    if (h.backingFileSize > 1023 || end > Math.min(clusterSize, buf.length)) throw corrupt(what, "backing file name is out of bounds");
    h.backingFile = buf.subarray(h.backingFileOffset, end).toString("utf8");
  }
  return h;
}

/** "Feature name table": 48-byte entries (type, bit, 46-byte zero-padded name). */
export function parseFeatureTable(data: Buffer): FeatureName[] {
  const out: FeatureName[] = [];
  for (let at = 0; at + 48 <= data.length; at += 48) {
    const raw = data.subarray(at + 2, at + 48);
    const nul = raw.indexOf(0);
    out.push({ type: data[at]!, bit: data[at + 1]!, name: raw.subarray(0, nul < 0 ? raw.length : nul).toString("utf8") });
  }
  return out;
}

/** The feature names QEMU writes into every image it creates (readers show them for unknown bits). */
export const QEMU_FEATURE_NAMES: readonly FeatureName[] = [
  { type: 0, bit: 0, name: "dirty bit" },
  { type: 0, bit: 1, name: "corrupt bit" },
  { type: 0, bit: 2, name: "external data file" },
  { type: 0, bit: 3, name: "compression type" },
  { type: 0, bit: 4, name: "extended L2 entries" },
  { type: 1, bit: 0, name: "lazy refcounts" },
  { type: 2, bit: 0, name: "bitmaps" },
  { type: 2, bit: 1, name: "raw external data" },
];

export interface OutputHeader {
  clusterBits: number;
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
}

/**
 * A standalone v3 header (no backing file, no snapshots, no encryption, refcount_order 4,
 * compression_type zlib) followed by the feature name table and the end marker. Returns the
 * header bytes only; the caller pads them to the first cluster.
 */
export function encodeHeader(o: OutputHeader): Buffer {
  const table = Buffer.alloc(QEMU_FEATURE_NAMES.length * 48);
  QEMU_FEATURE_NAMES.forEach((f, i) => {
    table[i * 48] = f.type;
    table[i * 48 + 1] = f.bit;
    table.write(f.name, i * 48 + 2, 46, "utf8");
  });
  const buf = Buffer.alloc(V3_HEADER_LENGTH + 8 + table.length + 8);
  buf.writeUInt32BE(QCOW2_MAGIC, 0);
  buf.writeUInt32BE(3, 4);
  // 8-19: no backing file; 32-35 crypt_method 0; 60-71 no snapshots.
  buf.writeUInt32BE(o.clusterBits, 20);
  buf.writeBigUInt64BE(BigInt(o.size), 24);
  buf.writeUInt32BE(o.l1Size, 36);
  buf.writeBigUInt64BE(BigInt(o.l1TableOffset), 40);
  buf.writeBigUInt64BE(BigInt(o.refcountTableOffset), 48);
  buf.writeUInt32BE(o.refcountTableClusters, 56);
  // 72-95: no incompatible/compatible/autoclear features. compression_type 0 (zlib) needs no bit.
  buf.writeUInt32BE(4, 96); // refcount_order 4: 16-bit refcounts, what QEMU defaults to
  buf.writeUInt32BE(V3_HEADER_LENGTH, 100);
  buf.writeUInt8(COMPRESSION_ZLIB, 104);
  let at = V3_HEADER_LENGTH;
  buf.writeUInt32BE(EXT_FEATURE_TABLE, at);
  buf.writeUInt32BE(table.length, at + 4);
  table.copy(buf, at + 8);
  at += 8 + table.length; // 384 bytes: already a multiple of 8
  buf.writeUInt32BE(EXT_END, at); // end of extensions (type 0, length 0)
  return buf;
}

// ---- L1 / L2 entries ("Cluster mapping") ----

export type L2Entry =
  | { kind: "unallocated" }
  /** Reads as zeros, never from the backing file; hostOffset > 0 is a preallocation ("Standard Cluster Descriptor" bit 0). */
  | { kind: "zero"; hostOffset: number }
  | { kind: "normal"; hostOffset: number; copied: boolean }
  | { kind: "compressed"; hostOffset: number; additionalSectors: number }
  | { kind: "invalid"; reason: string };

export type L1Entry = { kind: "unallocated" } | { kind: "l2"; offset: number; copied: boolean } | { kind: "invalid"; reason: string };

// Field extraction on the two 32-bit halves, shared by decodeL2Entry and the allocation-free walk in
// read.ts (so there is one implementation of the bit layout).

/** Bit 62: compressed cluster. */
export function isCompressed(hi: number): boolean {
  return (hi & 0x4000_0000) !== 0;
}

/** Compressed descriptor bits 0..x-1 (x = 62 - (cluster_bits - 8)); -1 past 2^53. */
export function compressedOffsetOf(hi: number, lo: number, clusterBits: number): number {
  const offHiBits = 62 - (clusterBits - 8) - 32; // 17..29 bits of the offset live in the high word
  const offHi = hi & ((1 << offHiBits) - 1);
  // "If cluster_bits is small enough that this field includes bits beyond 55, those upper bits must be 0."
  return offHi >= 1 << 21 ? -1 : offHi * TWO32 + lo;
}

/** Compressed descriptor bits x..61: "additional 512-byte sectors". */
export function additionalSectorsOf(hi: number, clusterBits: number): number {
  const offHiBits = 62 - (clusterBits - 8) - 32;
  return (hi >>> offHiBits) & ((1 << (clusterBits - 8)) - 1);
}

/** Standard descriptor bits 9-55 (also the L1 entry layout); -1 past 2^53. */
export function standardOffsetOf(hi: number, lo: number): number {
  if (hi & 0x00e0_0000) return -1;
  return (hi & 0x00ff_ffff) * TWO32 + ((lo & 0xffff_fe00) >>> 0);
}

/**
 * L2 entry bit 62 = compressed, bit 63 = "refcount is exactly one"; standard descriptor: bit 0 zero
 * flag, bits 9-55 the host cluster offset. Compressed descriptor (x = 62 - (cluster_bits - 8)):
 * bits 0..x-1 host byte offset, bits x..61 "additional 512-byte sectors".
 *
 * The zero flag is honoured in v2 images too: the spec says it is always 0 there, but QEMU reads it
 * as zero whatever the version, and we must read what QEMU reads.
 */
export function decodeL2Entry(hi: number, lo: number, clusterBits: number): L2Entry {
  if (isCompressed(hi)) {
    const hostOffset = compressedOffsetOf(hi, lo, clusterBits);
    if (hostOffset < 0) return { kind: "invalid", reason: "compressed cluster offset beyond 2^53" };
    return { kind: "compressed", hostOffset, additionalSectors: additionalSectorsOf(hi, clusterBits) };
  }
  const hostOffset = standardOffsetOf(hi, lo);
  if (hostOffset < 0) return { kind: "invalid", reason: "host offset beyond 2^53" };
  if (lo & 1) return { kind: "zero", hostOffset };
  if (hostOffset === 0) return { kind: "unallocated" };
  if (hostOffset % 2 ** clusterBits !== 0) return { kind: "invalid", reason: `cluster offset 0x${hostOffset.toString(16)} is not cluster aligned` };
  return { kind: "normal", hostOffset, copied: (hi & 0x8000_0000) !== 0 };
}

/** Decodes entry `index` of an L2 table held in `table` (8 bytes per entry; no extended L2). */
export function readL2Entry(table: Buffer, index: number, clusterBits: number): L2Entry {
  return decodeL2Entry(table.readUInt32BE(index * 8), table.readUInt32BE(index * 8 + 4), clusterBits);
}

/** L1 entry: bits 9-55 the L2 table offset (cluster aligned), bit 63 copied. */
export function decodeL1Entry(hi: number, lo: number, clusterBits: number): L1Entry {
  const offset = standardOffsetOf(hi, lo);
  if (offset < 0) return { kind: "invalid", reason: "L2 table offset beyond 2^53" };
  if (offset === 0) return { kind: "unallocated" };
  if (offset % 2 ** clusterBits !== 0) return { kind: "invalid", reason: `L2 table offset 0x${offset.toString(16)} is not cluster aligned` };
  return { kind: "l2", offset, copied: (hi & 0x8000_0000) !== 0 };
}

/** Bigint front-ends (tests, one-off lookups). */
export function decodeL2(entry: bigint, clusterBits: number): L2Entry {
  return decodeL2Entry(Number(entry >> 32n), Number(entry & 0xffff_ffffn), clusterBits);
}
export function decodeL1(entry: bigint, clusterBits: number): L1Entry {
  return decodeL1Entry(Number(entry >> 32n), Number(entry & 0xffff_ffffn), clusterBits);
}

const COPIED = 1n << 63n;
const COMPRESSED = 1n << 62n;

/** Standard descriptor for a data cluster we own alone: set bit 63, as `qemu-img check` expects for refcount 1. */
export function encodeNormalEntry(hostOffset: number, clusterBits: number): bigint {
  if (hostOffset % 2 ** clusterBits !== 0 || hostOffset <= 0 || hostOffset >= 2 ** 56) throw new RangeError(`bad data cluster offset ${hostOffset}`);
  return BigInt(hostOffset) | COPIED;
}

/** L1 entry for an L2 table with refcount 1 (bit 63 set, "only accurate in the active L1 table"). */
export function encodeL1Entry(l2Offset: number, clusterBits: number): bigint {
  return encodeNormalEntry(l2Offset, clusterBits);
}

/**
 * "Additional sectors" for compressed data of `length` bytes at byte `hostOffset`: the sectors after
 * the one holding the first byte, up to the one holding the last byte (what QEMU computes when it
 * allocates compressed space).
 */
export function additionalSectorsFor(hostOffset: number, length: number): number {
  return Math.floor((hostOffset + length - 1) / SECTOR) - Math.floor(hostOffset / SECTOR);
}

/** Largest "additional sectors" value the descriptor can hold for this cluster size. */
export function maxAdditionalSectors(clusterBits: number): number {
  return 2 ** (clusterBits - 8) - 1;
}

/** Compressed descriptor; no bit 63 ("0 for clusters that are ... compressed"). */
export function encodeCompressedEntry(hostOffset: number, length: number, clusterBits: number): bigint {
  const x = 62 - (clusterBits - 8);
  const nb = additionalSectorsFor(hostOffset, length);
  if (length <= 0 || nb > maxAdditionalSectors(clusterBits)) throw new RangeError(`compressed length ${length} does not fit the descriptor`);
  if (hostOffset < 0 || hostOffset >= 2 ** Math.min(x, 56)) throw new RangeError(`compressed offset ${hostOffset} does not fit the descriptor`);
  return COMPRESSED | (BigInt(nb) << BigInt(x)) | BigInt(hostOffset);
}

/**
 * Bytes from `hostOffset` to the end of the descriptor's sector span: how much QEMU reads for a
 * compressed cluster, `csize` in its qcow2_parse_compressed_l2_entry. The compressed stream may
 * end earlier ("the compressed data does not necessarily occupy all of the bytes in the final sector").
 */
export function compressedSpanBytes(hostOffset: number, additionalSectors: number): number {
  return (additionalSectors + 1) * SECTOR - (hostOffset % SECTOR);
}

/**
 * The host clusters a compressed cluster holds a reference on: every cluster its sector span
 * [hostOffset, hostOffset + span) touches. This is what `qemu-img check` counts (each such cluster
 * +1 per compressed cluster), and "Some of these sectors may reside in the next contiguous host cluster".
 */
export function compressedHostClusters(hostOffset: number, additionalSectors: number, clusterBits: number): { first: number; last: number } {
  const cs = 2 ** clusterBits;
  const end = hostOffset + compressedSpanBytes(hostOffset, additionalSectors);
  return { first: Math.floor(hostOffset / cs), last: Math.floor((end - 1) / cs) };
}

/** Human names of set incompatible bits that this reader does not know, using the image's own feature table. */
export function unknownIncompatibleBits(h: Qcow2Header): string[] {
  const out: string[] = [];
  for (let bit = 0n; bit < 64n; bit++) {
    const mask = 1n << bit;
    if ((h.incompatibleFeatures & mask) === 0n || (INCOMPAT_KNOWN & mask) !== 0n) continue;
    const named = h.featureNames.find((f) => f.type === 0 && BigInt(f.bit) === bit);
    out.push(named ? `bit ${bit} (${named.name})` : `bit ${bit}`);
  }
  return out;
}
