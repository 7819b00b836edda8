// Overlay + backing chain → one standalone compressed qcow2, without recompressing what is already
// compressed.
//
// Why: a cloud-image build runs the VM on an overlay whose backing file is the (zlib-compressed)
// cloud image. `qemu-img convert -c` inflates and deflates every base cluster again, which is most of
// the export time, although the clusters the guest never overwrote are already compressed exactly
// as the output needs them. Here those are copied byte for byte (only the descriptor's host offset
// changes) and only the clusters the build changed are compressed, on libuv's thread pool, several
// at a time, while the output is written strictly in guest order.
//
// Fallback contract: anything this writer cannot reproduce exactly is found before the output file
// is created and returned as { kind: "unsupported", reason } - the caller logs the reason and runs
// `qemu-img convert -c -O qcow2` instead. Corrupt input throws BuildError; an abort throws
// AbortError. On every failure the partial output is removed.
import { availableParallelism } from "node:os";
import { rename, rm } from "node:fs/promises";
import { BuildError, asAbortError, throwIfAborted } from "../../errors.js";
import { COMPRESSION_ZLIB } from "./format.js";
import { isUnsupported, openChain, unsupported, type Chain, type CompressedIndex, type Layer, type Piece, type Unsupported } from "./read.js";
import { RUN_BYTES, ReadBatch, type ReadRequest } from "./reads.js";
import { L2_ENTRIES, OUT_CLUSTER_BITS, OUT_CLUSTER_SIZE, Qcow2Writer, fitsCompressedDescriptor, type WriterPlan } from "./writer.js";
import { BufferPool, Deflaters, adler32, inflateRaw } from "./zlib.js";

export type { Unsupported } from "./read.js";

export interface FlattenOptions {
  /** The top image (qcow2); its backing chain is followed. */
  src: string;
  /** Output path; written as `${dst}.partial` and renamed when complete. */
  dst: string;
  signal: AbortSignal;
  /** Called after each batch with guest bytes done and the virtual size (feeds progressReporter's set()). */
  onProgress?: (doneGuestBytes: number, totalGuestBytes: number) => void;
  /** Clusters compressing at once on the thread pool. Default: available cores, 1..4. */
  concurrency?: number;
}

export interface FlattenStats {
  kind: "flattened";
  path: string;
  virtualSize: number;
  /** Size of the output file (= bytesWritten). */
  fileSize: number;
  /** Paths of the chain, top first. */
  chain: string[];
  clusters: {
    /** Compressed clusters copied verbatim from a layer. */
    copied: number;
    /** Clusters deflated here (changed data, or a layer we could not copy from). */
    compressed: number;
    /** Unallocated, zero, or all-zero data: left unallocated (reads as zeros). */
    zero: number;
    /** Did not deflate below cluster_size - 1 bytes: stored as normal clusters, as QEMU does. */
    raw: number;
  };
  /** Guest data bytes read from the chain's files (metadata excluded). */
  bytesRead: number;
  bytesWritten: number;
  durationMs: number;
}

export type FlattenResult = FlattenStats | Unsupported;

const CS = OUT_CLUSTER_SIZE;
/**
 * Guest clusters per batch: the reads of one batch are sorted and merged into few large preads.
 * With two batches ahead of the writer, ~16 clusters are in flight: enough to keep the deflate
 * slots busy, with a few MiB of pooled buffers. Measured on the 2 GiB fixture: batches of 32 and
 * 3 ahead were no faster and cost ~20 MB more peak RSS.
 */
const BATCH_CLUSTERS = 8;
const BATCHES_AHEAD = 2;
const ZERO_CLUSTER = Buffer.alloc(CS);

export async function flattenToCompressedQcow2(opts: FlattenOptions): Promise<FlattenResult> {
  const { src, dst, signal } = opts;
  const started = performance.now();
  throwIfAborted(signal);
  const chain = await openChain(src);
  if (isUnsupported(chain)) return chain;
  let writer: Qcow2Writer | undefined;
  let deflaters: Deflaters | undefined;
  const partial = `${dst}.partial`;
  try {
    // Compressed clusters are copyable only when the output stores them the same way: same cluster
    // size (the stream inflates to exactly one cluster) and zlib ("compression_type": all compressed
    // clusters in an image use the same type).
    const copyable = chain.layers.map((l) => l.kind === "qcow2" && l.clusterBits === OUT_CLUSTER_BITS && l.compressionType === COMPRESSION_ZLIB);
    const indexes = await Promise.all(chain.layers.map((l, i) => (copyable[i] && l.kind === "qcow2" ? l.compressedIndex() : undefined)));
    const plan = await survey(chain, signal);
    if (isUnsupported(plan)) return plan;

    throwIfAborted(signal);
    writer = await Qcow2Writer.create(partial, plan);
    deflaters = new Deflaters(clampConcurrency(opts.concurrency));
    const w = writer;
    const sink: ClusterSink = {
      write: (g, o) => (o.kind === "raw" ? w.addNormal(g, o.data!) : w.addCompressed(g, o.data!)),
    };
    const job = new FlattenJob(chain, sink, QCOW2_ENCODING, deflaters, copyable, indexes, signal, opts.onProgress);
    const stats = await job.run();
    const fileSize = await writer.finish();
    await writer.close();
    await rename(partial, dst);
    return {
      kind: "flattened",
      path: dst,
      virtualSize: chain.virtualSize,
      fileSize,
      chain: chain.layers.map((l) => l.path),
      clusters: stats.clusters,
      bytesRead: stats.bytesRead,
      bytesWritten: fileSize,
      durationMs: Math.round(performance.now() - started),
    };
  } catch (err) {
    if (writer) {
      await writer.close().catch(() => undefined);
      await rm(partial, { force: true });
    }
    if (signal.aborted) throw asAbortError(signal.reason);
    throw err;
  } finally {
    deflaters?.close();
    await chain.close();
  }
}

export function clampConcurrency(n: number | undefined): number {
  const want = n ?? availableParallelism();
  return Math.max(1, Math.min(4, Math.floor(want)));
}

/**
 * A metadata-only walk over the chain, before any output exists: which 512 MiB ranges can hold data
 * (each gets an L2 slot) and how many clusters at most, so the writer can reserve the metadata area
 * at the front of the file. It also finds what we cannot read: Node 20's zlib has no zstd, so a zstd
 * layer is fine only while none of its compressed clusters is visible through the layers above it.
 */
export async function survey(chain: Chain, signal: AbortSignal): Promise<WriterPlan | Unsupported> {
  const zstd = new Set<number>();
  for (const [i, l] of chain.layers.entries()) {
    if (l.kind === "qcow2" && l.compressionType !== COMPRESSION_ZLIB && (await l.compressedIndex()).count > 0) zstd.add(i);
  }
  const total = chain.virtualSize;
  const step = 64 * 1024 * 1024; // bounds the pieces held at once
  const l2Ranges: number[] = [];
  let maxDataClusters = 0;
  let last = -1; // last output cluster counted (pieces come in guest order)
  for (let off = 0; off < total; off += step) {
    throwIfAborted(signal);
    for (const p of await chain.resolve(off, Math.min(step, total - off))) {
      if (p.kind === "zero") continue;
      if (p.kind === "compressed" && zstd.has(p.layer)) {
        return unsupported(`${chain.layers[p.layer]!.path} is zstd-compressed and its clusters are visible (guest offset ${p.offset}); Node 20 cannot inflate zstd`);
      }
      const first = Math.max(Math.floor(p.offset / CS), last + 1);
      const end = Math.floor((p.offset + p.length - 1) / CS);
      if (end < first) continue;
      maxDataClusters += end - first + 1;
      for (let r = Math.floor(first / L2_ENTRIES); r <= Math.floor(end / L2_ENTRIES); r++) if (l2Ranges.at(-1) !== r) l2Ranges.push(r);
      last = end;
    }
  }
  return { virtualSize: total, l2Ranges, maxDataClusters };
}

/** Bounds the one-shot inflate jobs in flight. */
class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly max: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

type CompressedPiece = Extract<Piece, { kind: "compressed" }>;

/** What one guest cluster becomes, decided from metadata before any data is read. */
type Planned =
  | { kind: "zero" }
  | { kind: "copy"; read: ReadRequest }
  /** Taken from an earlier pass (ClusterEncoding.reuse): nothing to read. */
  | { kind: "reuse" }
  /** Rebuild the guest bytes in `buf` (data pieces are read into it), then deflate. */
  | { kind: "assemble"; buf: Buffer; parts: Array<{ piece: CompressedPiece; cluster: Inflated }>; visible: number };

/** An inflated cluster of a layer we cannot copy from; shared by every output cluster it feeds. */
interface Inflated {
  read?: ReadRequest;
  promise?: Promise<Buffer>;
}

/** What one guest cluster became; handed to the sink in guest order. */
export interface ClusterOutput {
  kind: "zero" | "copy" | "compressed" | "raw";
  /**
   * copy: the layer's compressed bytes (qcow2: up to the descriptor's length bound; vmdk: exactly
   * the raw deflate stream). compressed: a raw deflate stream. raw: the guest bytes.
   */
  data?: Buffer;
  /** vmdk: Adler-32 of the inflated bytes (the zlib trailer RFC 1950 puts after the deflate data). */
  adler?: number;
  /** Gives the buffers back once the sink has taken the bytes (the sink must copy what it keeps). */
  release?: () => void;
}
/** `rebuilt`: made here from the guest bytes (assemble(), or a copy finishCopy deflated): what ClusterReuse.keep is offered. */
type Output = ClusterOutput & { rebuilt?: boolean };

export interface ClusterSink {
  /** Called once per allocated guest cluster (never for zero ones), strictly in guest order. */
  write(guestCluster: number, o: ClusterOutput): Promise<void>;
}

/**
 * How clusters are encoded for a target format.
 *
 * qcow2: a changed cluster that does not deflate below cluster_size - 1 bytes is stored raw (as
 * QEMU does), and a copied cluster keeps its descriptor's length bound.
 *
 * vmdk (streamOptimized): every grain is a zlib stream (RFC 1950) of the grain's bytes, so a raw
 * deflate stream needs its exact end and the Adler-32 of what it inflates to: `finishCopy` finds
 * both (inflating once) or takes them from an earlier pass. A partial last grain holds only the
 * bytes inside the disk (VMware's writer, open-vmdk sparse.c fillGrain; QEMU's vmdk_write_extent
 * accepts a short last cluster), so it is never copied and deflated to its visible length.
 */
export interface ClusterEncoding {
  /** Deflated data longer than this is stored raw (qcow2) ; Infinity: always compressed. */
  deflateLimit: number;
  /** Deflate only the bytes inside the disk, with their Adler-32 (vmdk). */
  trimToVisible: boolean;
  /** `deflated`: the bytes were made here (the stream could not be wrapped as it is), as a rebuilt cluster's are. */
  finishCopy?: (guestCluster: number, compressed: Buffer, layerPath: string) => Promise<{ data: Buffer; adler: number; deflated?: boolean }>;
  /** What an earlier pass over the same chain produced for the clusters it rebuilt (see ClusterReuse). */
  reuse?: ClusterReuse;
}

/**
 * Outputs of rebuilt clusters (the ones deflated here, or found all-zero) kept by one pass and taken
 * back by a later pass over the same, unchanged chain, so that pass neither reads their guest bytes
 * nor deflates them again (vmdk/export.ts: the two passes of an OVA export). The job knows nothing
 * of where the outputs are kept; the keeper knows nothing of the format.
 */
export interface ClusterReuse {
  /** Offered every rebuilt cluster's output, in guest order, before the sink gets it (the bytes must be copied). */
  keep?(guestCluster: number, o: ClusterOutput): Promise<void>;
  /** Whether take() has this cluster: asked while planning, from metadata alone, before anything is read. */
  has?(guestCluster: number): boolean;
  /** The kept output (its kind, bytes and Adler-32 as they were kept), with a release() for its buffer. */
  take?(guestCluster: number): Promise<ClusterOutput>;
}

export const QCOW2_ENCODING: ClusterEncoding = { deflateLimit: CS - 1, trimToVisible: false };

export class FlattenJob {
  private readonly inflateLimit: Limiter;
  /** Inflated clusters of layers whose clusters are larger than ours (one 2 MiB cluster feeds 32 of ours). */
  private readonly inflated = new Map<string, Promise<Buffer>>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly runPool = new BufferPool(RUN_BYTES, BATCHES_AHEAD * 4 + 4);
  private readonly clusterPool = new BufferPool(CS, BATCHES_AHEAD * BATCH_CLUSTERS + 8);
  private bytesRead = 0;
  private readonly clusters = { copied: 0, compressed: 0, zero: 0, raw: 0 };

  constructor(
    private readonly chain: Chain,
    private readonly sink: ClusterSink,
    private readonly encoding: ClusterEncoding,
    private readonly deflaters: Deflaters,
    private readonly copyable: boolean[],
    private readonly indexes: Array<CompressedIndex | undefined>,
    private readonly signal: AbortSignal,
    private readonly onProgress: FlattenOptions["onProgress"],
  ) {
    this.inflateLimit = new Limiter(2);
  }

  async run(): Promise<{ clusters: FlattenStats["clusters"]; bytesRead: number }> {
    const total = this.chain.virtualSize;
    const n = Math.ceil(total / CS);
    const queue: Array<{ first: number; outputs: Promise<Array<Output | Promise<Output>>> }> = [];
    let next = 0;
    const startBatch = () => {
      const first = next;
      const count = Math.min(BATCH_CLUSTERS, n - first);
      next += count;
      queue.push({ first, outputs: this.track(this.prepare(first, count)) });
    };
    try {
      while (queue.length < BATCHES_AHEAD && next < n) startBatch();
      while (queue.length > 0) {
        // Between batches; on abort, every started job is awaited below before the files close.
        throwIfAborted(this.signal);
        const batch = queue.shift()!;
        const outputs = await batch.outputs;
        if (next < n) startBatch();
        for (const [i, p] of outputs.entries()) {
          const o = p instanceof Promise ? await p : p;
          await this.write(batch.first + i, o);
          o.release?.();
        }
        this.onProgress?.(Math.min(total, (batch.first + outputs.length) * CS), total);
      }
    } catch (err) {
      while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
      throw err;
    }
    return { clusters: this.clusters, bytesRead: this.bytesRead };
  }

  /** Remembers a started job (so a failure can wait for it) and marks its rejection handled. */
  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    p.then(
      () => this.inflight.delete(p),
      () => this.inflight.delete(p),
    );
    return p;
  }

  private async write(guestCluster: number, o: Output): Promise<void> {
    this.clusters[o.kind === "copy" ? "copied" : o.kind]++;
    if (o.rebuilt && this.encoding.reuse?.keep) await this.encoding.reuse.keep(guestCluster, o);
    if (o.kind === "zero") return;
    return this.sink.write(guestCluster, o);
  }

  /** Resolves and reads one batch; returns one output promise per guest cluster, in guest order. */
  private async prepare(first: number, count: number): Promise<Array<Output | Promise<Output>>> {
    const total = this.chain.virtualSize;
    const reads = new ReadBatch(this.chain.layers, this.runPool);
    const planned: Planned[] = [];
    const batchInflated = new Map<string, Inflated>();
    const start = first * CS;
    const perCluster = splitByCluster(await this.chain.resolve(start, Math.min(count * CS, total - start)), start, count);
    for (let i = 0; i < count; i++) {
      const g = start + i * CS;
      planned.push(this.plan(g, Math.min(CS, total - g), perCluster[i]!, reads, batchInflated));
    }
    await reads.execute();
    this.bytesRead += reads.bytesRead;
    for (const [key, e] of batchInflated) {
      if (e.promise) continue;
      const layer = this.chain.layers[Number(key.split(":")[0])]!;
      const read = e.read!;
      e.promise = this.track(
        this.inflateLimit.run(() => inflateCluster(layer, read.data!)).finally(() => reads.release(read)),
      );
      this.remember(key, e.promise);
    }
    return planned.map((p, i) => {
      if (p.kind === "zero") return { kind: "zero" };
      if (p.kind === "reuse") return this.track(this.encoding.reuse!.take!(first + i));
      if (p.kind === "copy") {
        const release = () => reads.release(p.read);
        const finish = this.encoding.finishCopy;
        if (!finish) return { kind: "copy", data: p.read.data!, release };
        const layer = this.chain.layers[p.read.layer]!;
        return this.track(
          finish(first + i, p.read.data!, layer.path).then(
            (r): Output => ({ kind: "copy", data: r.data, adler: r.adler, release, rebuilt: r.deflated === true }),
            (err: unknown) => {
              release();
              throw err;
            },
          ),
        );
      }
      return this.track(this.assemble(p));
    });
  }

  private plan(g: number, visible: number, pieces: Piece[], reads: ReadBatch, batchInflated: Map<string, Inflated>): Planned {
    if (pieces.every((p) => p.kind === "zero")) return { kind: "zero" };
    // Rebuilt (or recompressed) by an earlier pass over this chain, which kept what it made of it.
    if (this.encoding.reuse?.has?.(g / CS)) return { kind: "reuse" };
    const only = pieces.length === 1 ? pieces[0]! : undefined;
    // The whole visible cluster is one compressed cluster of a copyable layer, aligned with ours:
    // every layer above left it unallocated and is at least as large, so its bytes are ours.
    if (only?.kind === "compressed" && this.copyable[only.layer] && only.clusterStart === g && only.length === visible && (visible === CS || !this.encoding.trimToVisible)) {
      const length = this.indexes[only.layer]!.lengthBound(only.hostOffset, only.sectorSpanBytes);
      if (fitsCompressedDescriptor(length)) return { kind: "copy", read: reads.add(only.layer, only.hostOffset, length) };
    }
    // Otherwise rebuild the guest bytes; what lies past the virtual size stays zero, as QEMU pads it.
    const buf = this.clusterPool.takeZeroed();
    const parts: Array<{ piece: CompressedPiece; cluster: Inflated }> = [];
    for (const p of pieces) {
      if (p.kind === "data") reads.add(p.layer, p.hostOffset, p.length, { buf, at: p.offset - g });
      else if (p.kind === "compressed") {
        const layer = this.chain.layers[p.layer]!;
        if (layer.kind !== "qcow2" || layer.compressionType !== COMPRESSION_ZLIB) {
          // survey() refuses visible zstd clusters, so this cannot happen.
          throw new BuildError("QCOW2_INTERNAL", `${layer.path}: compressed cluster at guest offset ${p.offset} cannot be inflated`);
        }
        const key = `${p.layer}:${p.hostOffset}`;
        let entry = batchInflated.get(key);
        if (!entry) {
          const cached = this.inflated.get(key);
          entry = cached ? { promise: cached } : { read: reads.add(p.layer, p.hostOffset, p.sectorSpanBytes) };
          batchInflated.set(key, entry);
        }
        parts.push({ piece: p, cluster: entry });
      }
    }
    return { kind: "assemble", buf, parts, visible };
  }

  private remember(key: string, p: Promise<Buffer>): void {
    this.inflated.set(key, p);
    // Only the last few: guest order means the users of a large cluster are adjacent.
    while (this.inflated.size > 4) this.inflated.delete(this.inflated.keys().next().value!);
  }

  private async assemble(p: Extract<Planned, { kind: "assemble" }>): Promise<Output> {
    const { buf } = p;
    const giveBack = () => this.clusterPool.give(buf);
    for (const { piece, cluster } of p.parts) {
      const full = await cluster.promise!;
      const from = piece.offset - piece.clusterStart;
      full.copy(buf, piece.offset % CS, from, from + piece.length);
    }
    // "Compressed clusters need to be written as a whole, so ... we can only save the write if the
    // buffer is completely zeroed" (qemu-img convert): an all-zero cluster is left unallocated.
    if (buf.equals(ZERO_CLUSTER)) {
      giveBack();
      return { kind: "zero", rebuilt: true };
    }
    const input = this.encoding.trimToVisible ? buf.subarray(0, p.visible) : buf;
    const adler = this.encoding.trimToVisible ? adler32(input) : undefined;
    // QEMU deflates into a cluster_size - 1 buffer; when the stream does not end there it writes
    // the cluster uncompressed (qcow2_co_pwritev_compressed_task, -ENOMEM).
    const data = await this.deflaters.deflate(input, this.encoding.deflateLimit);
    if (!data) return { kind: "raw", data: buf, release: giveBack, rebuilt: true };
    if (data.length > CS) return { kind: "compressed", data, adler, release: giveBack, rebuilt: true };
    // The guest bytes are done with: keep the compressed bytes in the pooled buffer, so zlib's output
    // chunk dies young (a scavenge frees it) instead of waiting in the queue for a full GC.
    data.copy(buf);
    return { kind: "compressed", data: buf.subarray(0, data.length), adler, release: giveBack, rebuilt: true };
  }
}

/** Cuts resolved pieces at our cluster boundaries (zero and contiguous data pieces come merged). */
export function splitByCluster(pieces: Piece[], start: number, count: number): Piece[][] {
  const out: Piece[][] = Array.from({ length: count }, () => []);
  for (const p of pieces) {
    let off = p.offset;
    const end = p.offset + p.length;
    while (off < end) {
      const n = Math.min(end, (Math.floor(off / CS) + 1) * CS) - off;
      const list = out[Math.floor((off - start) / CS)]!;
      if (off === p.offset && n === p.length) list.push(p);
      else if (p.kind === "data") list.push({ ...p, offset: off, length: n, hostOffset: p.hostOffset + (off - p.offset) });
      else list.push({ ...p, offset: off, length: n });
      off += n;
    }
  }
  return out;
}

async function inflateCluster(layer: Layer, compressed: Buffer): Promise<Buffer> {
  if (layer.kind !== "qcow2") throw new Error("internal: inflate on a raw layer");
  let out: Buffer;
  try {
    out = await inflateRaw(compressed);
  } catch (err) {
    throw new BuildError("QCOW2_CORRUPT", `${layer.path}: a compressed cluster does not inflate (${(err as Error).message})`, { cause: err });
  }
  // "decompression stops when it has produced a cluster of data"
  if (out.length < layer.clusterSize) throw new BuildError("QCOW2_CORRUPT", `${layer.path}: a compressed cluster inflates to ${out.length} bytes, not ${layer.clusterSize}`);
  return out.subarray(0, layer.clusterSize);
}
