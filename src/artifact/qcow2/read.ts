// Read-only access to a qcow2 image and its backing chain: which guest cluster lives where, layer by
// layer, without reading guest data. The flattener decides from these mappings what to copy.
//
// Features we cannot read correctly make open return an Unsupported result (the caller falls back to
// `qemu-img convert`); the corrupt bit and malformed metadata throw BuildError QCOW2_CORRUPT,
// because qemu-img would refuse those images too.
import { open, realpath, type FileHandle } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import { BuildError } from "../../errors.js";
import {
  additionalSectorsOf,
  compressedOffsetOf,
  isCompressed,
  standardOffsetOf,
  COMPRESSION_ZLIB,
  COMPRESSION_ZSTD,
  INCOMPAT_COMPRESSION,
  INCOMPAT_CORRUPT,
  INCOMPAT_DATA_FILE,
  INCOMPAT_DIRTY,
  INCOMPAT_EXTL2,
  compressedSpanBytes,
  decodeL1Entry,
  hasQcow2Magic,
  parseHeader,
  readL2Entry,
  unknownIncompatibleBits,
  type Qcow2Header,
} from "./format.js";

export interface Unsupported {
  kind: "unsupported";
  reason: string;
}

export function unsupported(reason: string): Unsupported {
  return { kind: "unsupported", reason };
}

export function isUnsupported(x: unknown): x is Unsupported {
  return typeof x === "object" && x !== null && (x as { kind?: unknown }).kind === "unsupported";
}

/** Where one guest cluster of one image lives ("Cluster mapping"). */
export type ClusterMapping =
  /** Not in this image: read the backing file (or zeros without one). */
  | { kind: "unallocated" }
  /** Reads as zeros; the backing file is not consulted. */
  | { kind: "zero" }
  | { kind: "normal"; hostOffset: number }
  /** `sectorSpanBytes`: bytes from hostOffset to the end of the descriptor's last sector (an upper bound on the compressed length). */
  | { kind: "compressed"; hostOffset: number; sectorSpanBytes: number };

const UNALLOCATED: ClusterMapping = Object.freeze({ kind: "unallocated" });
const ZERO: ClusterMapping = Object.freeze({ kind: "zero" });

/** QEMU's limit on the L1 table ("Header", size: "an implementation limit of 32 MB"). */
const MAX_L1_BYTES = 32 * 1024 * 1024;
/** L2 tables kept per image. We walk guest order, so a few suffice; bytes bound it for 2 MiB clusters. */
const L2_CACHE_BYTES = 4 * 1024 * 1024;
/** Backing chains deeper than this are refused (a loop guard; real build chains have 2-3 layers). */
export const MAX_CHAIN_DEPTH = 32;

function corrupt(path: string, message: string): BuildError {
  return new BuildError("QCOW2_CORRUPT", `${path}: ${message}`, { hint: `qemu-img check ${path} reports what is wrong with it` });
}

/** pread of `length` bytes into `buf`, zeros past end of file (what QEMU reads there). */
async function readInto(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<void> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  if (got < length) buf.fill(0, got, length);
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  await readInto(fh, buf, length, position);
  return buf;
}

/** Sorted start offsets of every compressed cluster in one file (active L1 only). */
export class CompressedIndex {
  constructor(readonly starts: Float64Array) {}

  get count(): number {
    return this.starts.length;
  }

  /**
   * The exact compressed length is not stored; the descriptor gives only a sector span. QEMU packs
   * compressed clusters back to back, so the next compressed cluster's start (by host offset) ends
   * this one. min(span end, next start) is exact for images QEMU wrote and never too short (two
   * clusters' compressed bytes cannot overlap).
   */
  lengthBound(hostOffset: number, sectorSpanBytes: number): number {
    const s = this.starts;
    let lo = 0;
    let hi = s.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (s[mid]! <= hostOffset) lo = mid + 1;
      else hi = mid;
    }
    const end = hostOffset + sectorSpanBytes;
    return (lo < s.length ? Math.min(end, s[lo]!) : end) - hostOffset;
  }
}

export class Qcow2File {
  readonly kind = "qcow2" as const;
  /** L2 table offsets from the L1 table, decoded once (0 = unallocated). */
  private readonly l2Offsets: Float64Array;
  private readonly l2Cache = new Map<number, Buffer>();
  private readonly l2Loading = new Map<number, Promise<Buffer>>();
  private readonly l2CacheMax: number;
  private compressed: Promise<CompressedIndex> | undefined;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly header: Qcow2Header,
    readonly fileSize: number,
    l1: Buffer,
  ) {
    this.l2CacheMax = Math.max(2, Math.floor(L2_CACHE_BYTES / this.clusterSize));
    this.l2Offsets = new Float64Array(header.l1Size);
    for (let i = 0; i < header.l1Size; i++) {
      const e = decodeL1Entry(l1.readUInt32BE(i * 8), l1.readUInt32BE(i * 8 + 4), header.clusterBits);
      if (e.kind === "invalid") throw corrupt(path, `L1 entry ${i}: ${e.reason}`);
      this.l2Offsets[i] = e.kind === "unallocated" ? 0 : e.offset;
    }
  }

  get clusterBits(): number {
    return this.header.clusterBits;
  }
  get clusterSize(): number {
    return 2 ** this.header.clusterBits;
  }
  get virtualSize(): number {
    return this.header.size;
  }
  /** 8-byte entries per L2 table (no extended L2: those images are refused). */
  get l2Entries(): number {
    return this.clusterSize / 8;
  }
  get compressionType(): number {
    return this.header.compressionType;
  }

  /**
   * Opens `path` read-only. Unsupported when the image is not qcow2 or uses a feature whose data we
   * cannot read; BuildError for the corrupt bit and malformed metadata.
   */
  static async open(path: string): Promise<Qcow2File | Unsupported> {
    const fh = await open(path, "r");
    try {
      const fileSize = (await fh.stat()).size;
      const head = await readAt(fh, 0, Math.min(fileSize, 4096));
      if (!hasQcow2Magic(head)) {
        await fh.close();
        return unsupported(`${path} is not a qcow2 image`);
      }
      const version = head.length >= 8 ? head.readUInt32BE(4) : 0;
      if (version !== 2 && version !== 3) {
        await fh.close();
        return unsupported(`${path}: qcow2 version ${version}`);
      }
      const bits = head.length >= 24 ? head.readUInt32BE(20) : 0;
      const first = bits >= 9 && bits <= 21 ? await readAt(fh, 0, Math.min(fileSize, 2 ** bits)) : head;
      const header = parseHeader(first, path);
      const refusal = refuse(path, header);
      if (refusal) {
        await fh.close();
        return refusal;
      }
      const cs = 2 ** header.clusterBits;
      // The L1 table must cover the virtual size ("Cluster mapping": l1_index = cluster / l2_entries).
      const needL1 = Math.ceil(header.size / cs / (cs / 8));
      if (header.l1Size < needL1) throw corrupt(path, `L1 table has ${header.l1Size} entries, the virtual size needs ${needL1}`);
      if (header.l1Size * 8 > MAX_L1_BYTES) throw corrupt(path, `L1 table of ${header.l1Size} entries exceeds QEMU's 32 MB limit`);
      if (header.l1Size > 0 && header.l1TableOffset + header.l1Size * 8 > fileSize) throw corrupt(path, "L1 table lies past the end of the file");
      const l1 = header.l1Size > 0 ? await readAt(fh, header.l1TableOffset, header.l1Size * 8) : Buffer.alloc(0);
      return new Qcow2File(path, fh, header, fileSize, l1);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  async read(position: number, length: number): Promise<Buffer> {
    return readAt(this.fh, position, length);
  }

  async readInto(buf: Buffer, length: number, position: number): Promise<void> {
    return readInto(this.fh, buf, length, position);
  }

  /**
   * The L2 table for L1 entry `l1Index` if it is in memory: a Buffer, null when that whole range is
   * unallocated, undefined when it must be loaded first (loadL2). Synchronous on purpose: resolving
   * a few thousand clusters through several layers with an await each made enough garbage to show
   * in the RSS.
   */
  cachedL2(l1Index: number): Buffer | null | undefined {
    const offset = this.l2Offset(l1Index);
    if (offset === 0) return null;
    const t = this.l2Cache.get(l1Index);
    if (t) {
      // Map order is insertion order: re-inserting makes this the most recently used table.
      this.l2Cache.delete(l1Index);
      this.l2Cache.set(l1Index, t);
    }
    return t;
  }

  async loadL2(l1Index: number): Promise<Buffer | null> {
    const cached = this.cachedL2(l1Index);
    if (cached !== undefined) return cached;
    const offset = this.l2Offset(l1Index);
    if (offset + this.clusterSize > this.fileSize) throw corrupt(this.path, `L2 table ${l1Index} lies past the end of the file`);
    let p = this.l2Loading.get(l1Index);
    if (!p) {
      p = this.read(offset, this.clusterSize).finally(() => this.l2Loading.delete(l1Index));
      this.l2Loading.set(l1Index, p);
    }
    const t = await p;
    this.l2Cache.set(l1Index, t);
    while (this.l2Cache.size > this.l2CacheMax) this.l2Cache.delete(this.l2Cache.keys().next().value!);
    return t;
  }

  /** L2 table offset from the L1 table; 0 when unallocated ("L1 table entry"). */
  private l2Offset(l1Index: number): number {
    return l1Index < this.l2Offsets.length ? this.l2Offsets[l1Index]! : 0;
  }

  /** Maps guest cluster `index` (in this image's cluster size) with its L2 table at hand. */
  mapWith(table: Buffer | null, index: number): ClusterMapping {
    if (!table) return UNALLOCATED;
    const e = readL2Entry(table, index % this.l2Entries, this.clusterBits);
    switch (e.kind) {
      case "invalid":
        throw corrupt(this.path, `L2 entry for guest offset ${index * this.clusterSize}: ${e.reason}`);
      case "unallocated":
        return UNALLOCATED;
      case "zero":
        return ZERO;
      case "normal":
        return { kind: "normal", hostOffset: e.hostOffset };
      case "compressed":
        return { kind: "compressed", hostOffset: e.hostOffset, sectorSpanBytes: compressedSpanBytes(e.hostOffset, e.additionalSectors) };
    }
  }

  /**
   * The same decision as mapWith without allocating (the resolve walk does this for every cluster
   * of every layer): returns the kind and leaves offset and span in `out`.
   */
  classify(table: Buffer | null, index: number, out: { hostOffset: number; span: number }): ClusterMapping["kind"] {
    if (!table) return "unallocated";
    const at = (index % this.l2Entries) * 8;
    const hi = table.readUInt32BE(at);
    const lo = table.readUInt32BE(at + 4);
    if (isCompressed(hi)) {
      const off = compressedOffsetOf(hi, lo, this.clusterBits);
      if (off < 0) return this.mapWith(table, index).kind; // throws with the reason
      out.hostOffset = off;
      out.span = compressedSpanBytes(off, additionalSectorsOf(hi, this.clusterBits));
      return "compressed";
    }
    if (lo & 1) return "zero";
    const off = standardOffsetOf(hi, lo);
    if (off === 0) return "unallocated";
    if (off < 0 || off % this.clusterSize !== 0) return this.mapWith(table, index).kind; // throws with the reason
    out.hostOffset = off;
    return "normal";
  }

  /** Maps guest cluster `index`, loading its L2 table if needed. */
  async mapCluster(index: number): Promise<ClusterMapping> {
    return this.mapWith(await this.loadL2(Math.floor(index / this.l2Entries)), index);
  }

  /**
   * Every compressed cluster's host offset, sorted (one pass over all L2 tables, which for a 2 GiB
   * image with 64 KiB clusters is 4 reads). Memory: 8 bytes per compressed cluster.
   */
  compressedIndex(): Promise<CompressedIndex> {
    this.compressed ??= this.scanCompressed();
    return this.compressed;
  }

  private async scanCompressed(): Promise<CompressedIndex> {
    let starts = new Float64Array(1024);
    let n = 0;
    for (let i = 0; i < this.header.l1Size; i++) {
      const table = await this.loadL2(i);
      if (!table) continue;
      for (let j = 0; j < this.l2Entries; j++) {
        if ((table.readUInt32BE(j * 8) & 0x4000_0000) === 0) continue; // bit 62: compressed
        const e = readL2Entry(table, j, this.clusterBits);
        if (e.kind !== "compressed") continue;
        if (n === starts.length) {
          const next = new Float64Array(n * 2);
          next.set(starts);
          starts = next;
        }
        starts[n++] = e.hostOffset;
      }
    }
    const sorted = starts.subarray(0, n).sort();
    let u = 0;
    for (let i = 0; i < n; i++) if (u === 0 || sorted[i] !== sorted[u - 1]) sorted[u++] = sorted[i]!;
    return new CompressedIndex(sorted.slice(0, u));
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Why we cannot read this image, or undefined. Throws for the corrupt bit. */
function refuse(path: string, h: Qcow2Header): Unsupported | undefined {
  const inc = h.incompatibleFeatures;
  // "Corrupt bit. ... any data structure may be corrupt": an error, not something to work around.
  if (inc & INCOMPAT_CORRUPT) {
    throw new BuildError("QCOW2_CORRUPT", `${path} is marked corrupt (incompatible feature bit 1)`, { hint: `qemu-img check -r all ${path} may repair it` });
  }
  const unknown = unknownIncompatibleBits(h);
  if (unknown.length) return unsupported(`${path}: unknown incompatible feature ${unknown.join(", ")}`);
  if (h.cryptMethod !== 0) return unsupported(`${path} is encrypted (crypt_method ${h.cryptMethod})`);
  // Dirty bit: refcounts may be stale; the mapping is probably fine, but QEMU repairs before use and so do we not.
  if (inc & INCOMPAT_DIRTY) return unsupported(`${path} has the dirty bit set (not closed cleanly; qemu-img check -r all clears it)`);
  if (inc & INCOMPAT_DATA_FILE) return unsupported(`${path} keeps its data in an external data file${h.dataFile ? ` (${h.dataFile})` : ""}`);
  if (inc & INCOMPAT_EXTL2) return unsupported(`${path} uses extended L2 entries (subclusters)`);
  if ((inc & INCOMPAT_COMPRESSION) === 0n && h.compressionType !== COMPRESSION_ZLIB) {
    throw corrupt(path, `compression_type ${h.compressionType} without the compression type feature bit`);
  }
  if (h.compressionType !== COMPRESSION_ZLIB && h.compressionType !== COMPRESSION_ZSTD) {
    return unsupported(`${path}: unknown compression type ${h.compressionType}`);
  }
  return undefined;
}

/** A raw backing file: guest offset = file offset; past its end the guest reads zeros. */
export class RawFile {
  readonly kind = "raw" as const;
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly virtualSize: number,
  ) {}

  static async open(path: string): Promise<RawFile> {
    const fh = await open(path, "r");
    try {
      return new RawFile(path, fh, (await fh.stat()).size);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async read(position: number, length: number): Promise<Buffer> {
    return readAt(this.fh, position, length);
  }

  async readInto(buf: Buffer, length: number, position: number): Promise<void> {
    return readInto(this.fh, buf, length, position);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

export type Layer = Qcow2File | RawFile;

/** A resolved piece of guest address space. Offsets are guest bytes; `layer` indexes Chain.layers. */
export type Piece =
  | { kind: "zero"; offset: number; length: number }
  /** Plain bytes in `layer` at hostOffset (a normal qcow2 cluster or a raw file). */
  | { kind: "data"; offset: number; length: number; layer: number; hostOffset: number }
  /** Part of a compressed cluster of `layer` whose guest range starts at clusterStart. */
  | { kind: "compressed"; offset: number; length: number; layer: number; clusterStart: number; hostOffset: number; sectorSpanBytes: number };

/** An image and its backing files, top first. */
export class Chain {
  private readonly scratch = { hostOffset: 0, span: 0 };
  constructor(readonly layers: Layer[]) {}

  get top(): Qcow2File {
    return this.layers[0] as Qcow2File;
  }

  get virtualSize(): number {
    return this.top.virtualSize;
  }

  /**
   * What the guest reads in [offset, offset + length), as pieces in guest order: top layer first,
   * unallocated clusters fall through to the backing file, zero clusters stop there, and past a
   * layer's virtual size the guest reads zeros ("Cluster mapping", last paragraph).
   */
  async resolve(offset: number, length: number): Promise<Piece[]> {
    // Synchronous walk over the L2 tables in memory; a missing table is loaded and the walk redone.
    // Tables are pinned for this call, so an LRU eviction cannot make it loop.
    const pinned = new Map<number, Buffer | null>();
    for (;;) {
      const out: Piece[] = [];
      const missing = this.resolveIn(0, offset, length, out, pinned);
      if (!missing) return out;
      const layer = this.layers[missing.layer] as Qcow2File;
      pinned.set(pinKey(missing.layer, missing.l1Index), await layer.loadL2(missing.l1Index));
    }
  }

  /** Appends the pieces for [offset, offset + length) as seen from layer `li`; or says which L2 table is missing. */
  private resolveIn(li: number, offset: number, length: number, out: Piece[], pinned: Map<number, Buffer | null>): { layer: number; l1Index: number } | undefined {
    const layer = this.layers[li];
    if (!layer) {
      pushZero(out, offset, length);
      return undefined;
    }
    const visible = Math.max(0, Math.min(length, layer.virtualSize - offset));
    if (layer.kind === "raw") {
      if (visible > 0) push(out, { kind: "data", offset, length: visible, layer: li, hostOffset: offset });
    } else {
      const cs = layer.clusterSize;
      const end = offset + visible;
      let pos = offset;
      let fallStart = -1; // start of a run of unallocated clusters, resolved in the backing file at once
      let tableIndex = -1;
      let table: Buffer | null | undefined;
      while (pos < end) {
        const idx = Math.floor(pos / cs);
        const cEnd = Math.min(end, (idx + 1) * cs);
        const l1Index = Math.floor(idx / layer.l2Entries);
        if (l1Index !== tableIndex) {
          table = pinned.get(pinKey(li, l1Index));
          if (table === undefined) table = layer.cachedL2(l1Index);
          if (table === undefined) return { layer: li, l1Index };
          tableIndex = l1Index;
        }
        const kind = layer.classify(table!, idx, this.scratch);
        // Read the scratch before recursing: resolving the backing file reuses it.
        const { hostOffset, span } = this.scratch;
        if (kind === "unallocated") {
          if (fallStart < 0) fallStart = pos;
        } else {
          if (fallStart >= 0) {
            const miss = this.resolveIn(li + 1, fallStart, pos - fallStart, out, pinned);
            if (miss) return miss;
            fallStart = -1;
          }
          if (kind === "zero") pushZero(out, pos, cEnd - pos);
          else if (kind === "normal") push(out, { kind: "data", offset: pos, length: cEnd - pos, layer: li, hostOffset: hostOffset + (pos - idx * cs) });
          else push(out, { kind: "compressed", offset: pos, length: cEnd - pos, layer: li, clusterStart: idx * cs, hostOffset, sectorSpanBytes: span });
        }
        pos = cEnd;
      }
      if (fallStart >= 0) {
        const miss = this.resolveIn(li + 1, fallStart, end - fallStart, out, pinned);
        if (miss) return miss;
      }
    }
    if (visible < length) pushZero(out, offset + visible, length - visible);
    return undefined;
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.layers.map((l) => l.close()));
  }
}

function pinKey(layer: number, l1Index: number): number {
  return layer * 2 ** 32 + l1Index;
}

/** push() for zeros without allocating when the previous piece is a zero it continues. */
function pushZero(out: Piece[], offset: number, length: number): void {
  const last = out[out.length - 1];
  if (last?.kind === "zero" && last.offset + last.length === offset) last.length += length;
  else if (length > 0) out.push({ kind: "zero", offset, length });
}

/** Appends a piece, merging it into the previous one when they continue each other. */
function push(out: Piece[], p: Piece): void {
  if (p.length <= 0) return;
  const last = out[out.length - 1];
  if (last && last.offset + last.length === p.offset) {
    if (last.kind === "zero" && p.kind === "zero") {
      last.length += p.length;
      return;
    }
    if (last.kind === "data" && p.kind === "data" && last.layer === p.layer && last.hostOffset + last.length === p.hostOffset) {
      last.length += p.length;
      return;
    }
  }
  out.push(p);
}

/**
 * QEMU's path_has_protocol: a colon before the first slash ("nbd:...", "json:{...}") names a
 * protocol, not a file.
 */
function hasProtocol(name: string): boolean {
  const colon = name.indexOf(":");
  const slash = name.indexOf("/");
  return colon > 0 && (slash < 0 || colon < slash);
}

/**
 * Opens `path` (qcow2) and every backing file below it. A relative backing file name is relative to
 * the directory of the image that names it (QEMU's path_combine); the format comes from the backing
 * file format extension (0xe2792aca), and an unrecorded format is accepted only when the file has
 * the qcow2 magic (we do not guess raw, which is what makes format probing unsafe).
 */
export async function openChain(path: string, maxDepth = MAX_CHAIN_DEPTH): Promise<Chain | Unsupported> {
  const layers: Layer[] = [];
  const seen = new Set<string>();
  const fail = async <T>(r: T): Promise<T> => {
    await Promise.allSettled(layers.map((l) => l.close()));
    return r;
  };
  try {
    let current = path;
    let format: string | undefined = "qcow2";
    for (;;) {
      const real = await realpath(current);
      if (seen.has(real)) throw corrupt(path, `backing chain loops through ${current}`);
      seen.add(real);
      if (layers.length >= maxDepth) return await fail(unsupported(`${path}: backing chain deeper than ${maxDepth}`));
      if (format === "raw") {
        layers.push(await RawFile.open(current));
        break;
      }
      const img = await Qcow2File.open(current);
      if (isUnsupported(img)) {
        // A backing file that says it is qcow2 but is not: qemu-img would fail as well.
        if (layers.length > 0 && format === "qcow2" && /is not a qcow2 image$/.test(img.reason)) throw new BuildError("QCOW2_BACKING_FORMAT", `${current} is recorded as qcow2 but is not a qcow2 image`);
        return await fail(img);
      }
      layers.push(img);
      const h = img.header;
      if (h.backingFile === undefined) break;
      if (h.backingFile === "") return await fail(unsupported(`${current}: empty backing file name`));
      // QEMU reads the name as a C string (it ends at the first NUL); Node refuses such a path with a
      // TypeError. Found by test/unit/fuzz/qcow2-flatten.fuzz.test.ts; qemu-img decides what it means.
      if (h.backingFile.includes("\0")) return await fail(unsupported(`${current}: backing file name holds a NUL byte`));
      if (hasProtocol(h.backingFile)) return await fail(unsupported(`${current}: backing file ${h.backingFile} is a protocol URL`));
      const next = isAbsolute(h.backingFile) ? h.backingFile : join(dirname(current), h.backingFile);
      if (h.backingFormat === "qcow2" || h.backingFormat === "raw") format = h.backingFormat;
      else if (h.backingFormat !== undefined) return await fail(unsupported(`${current}: backing file format ${h.backingFormat}`));
      else {
        const probe = await open(next, "r").catch((err: unknown) => {
          throw new BuildError("QCOW2_BACKING_MISSING", `${current}: cannot open backing file ${next}`, { cause: err });
        });
        const magic = await readAt(probe, 0, 4).finally(() => probe.close());
        if (!hasQcow2Magic(magic)) return await fail(unsupported(`${current}: backing file format not recorded and ${next} is not qcow2`));
        format = "qcow2";
      }
      current = next;
    }
    return new Chain(layers);
  } catch (err) {
    await Promise.allSettled(layers.map((l) => l.close()));
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && !(err instanceof BuildError)) {
      throw new BuildError("QCOW2_BACKING_MISSING", `${path}: cannot open the image or a file of its backing chain (${(err as Error).message})`, { cause: err });
    }
    throw err;
  }
}
