// A qcow2 chain → a streamOptimized VMDK, produced front to back as a byte stream, fed by the qcow2
// flattener (qcow2/flatten.ts FlattenJob).
//
// Why not `qemu-img convert -O vmdk`: it inflates and deflates every cluster again (~12 s for the
// 2 GiB fixture) and can only write a seekable file, which then has to be read again to be hashed
// and packed. A streamOptimized grain is a zlib stream (RFC 1950) of a 64 KiB grain - a raw deflate
// stream between a 2-byte header and the Adler-32 of the inflated bytes - and the flattener already
// holds the cloud image's clusters as raw deflate streams of 64 KiB. So a cluster the build did not
// change is wrapped, not recompressed: inflated once to find the exact end of its deflate data
// (qcow2 records only a sector-rounded bound) and its Adler-32. Only changed clusters are deflated.
//
// The layout (format.ts) puts every table after the grains it indexes, so the bytes come out in
// one pass and can go straight into the OVA's tar. The OVA needs the VMDK's size (tar header) and
// SHA-256 (the .mf, which precedes the disk) before the first byte: see vmdk/export.ts for the
// two-pass answer, what the CopyLedger below keeps between the passes (copied clusters) and what
// the spill file keeps (changed clusters, deflated once: the `reuse` option of produce()).
import { BuildError, asAbortError, throwIfAborted } from "../../errors.js";
import { FlattenJob, clampConcurrency, survey, type ClusterSink, type ClusterEncoding, type ClusterOutput, type ClusterReuse, type FlattenStats } from "../qcow2/flatten.js";
import { COMPRESSION_ZLIB } from "../qcow2/format.js";
import { isUnsupported, openChain, unsupported, type Chain, type CompressedIndex, type Unsupported } from "../qcow2/read.js";
import { OUT_CLUSTER_BITS, OUT_CLUSTER_SIZE } from "../qcow2/writer.js";
import { Deflaters, adler32 } from "../qcow2/zlib.js";
import {
  GRAIN_MARKER_BYTES,
  GRAIN_SECTORS,
  GTES_PER_GT,
  GT_SECTORS,
  MARKER_EOS,
  MARKER_FOOTER,
  MARKER_GD,
  MARKER_GT,
  MAX_FILE_SECTORS,
  OVERHEAD_SECTORS,
  SECTOR,
  ZLIB_HEADER,
  encodeDescriptor,
  encodeHeader,
  encodeMarker,
  extentNameProblem,
  grainBytes,
  type DescriptorParams,
} from "./format.js";
import { inflateExact } from "./inflate.js";
import { findKey, grownColumn, sortedByKey } from "../qcow2/cluster-index.js";
import { InflatePool } from "./inflate-pool.js";

/** Largest disk we write: with every grain incompressible the file stays below 2^32 sectors. */
const MAX_CAPACITY_SECTORS = 2 ** 31;
/** Bytes handed to the consumer at a time (grains are packed into chunks of this size). */
const CHUNK = 1024 * 1024;

export interface VmdkStats {
  clusters: FlattenStats["clusters"];
  bytesRead: number;
  size: number;
}

/**
 * What the first pass learned about copied clusters, looked up by the second: the exact length of
 * each raw deflate stream (or -1: it does not end where QEMU's reader would stop, so it is
 * recompressed) and its Adler-32. Batches finish out of order, so entries are sorted by guest
 * cluster on rewind() and found by binary search. 12 bytes per copied cluster (~2 MB for a disk
 * with 10 GiB of compressed data).
 */
export class CopyLedger {
  private guest = new Uint32Array(1024);
  private length = new Int32Array(1024);
  private adler = new Uint32Array(1024);
  private n = 0;
  recording = true;

  record(g: number, length: number, adler: number): void {
    if (this.n === this.guest.length) {
      this.guest = grownColumn(this.guest, this.n * 2);
      this.length = grownColumn(this.length, this.n * 2);
      this.adler = grownColumn(this.adler, this.n * 2);
    }
    this.guest[this.n] = g;
    this.length[this.n] = length;
    this.adler[this.n] = adler;
    this.n++;
  }

  /** Ends recording: sorts the entries by guest cluster for lookups. */
  rewind(): void {
    this.recording = false;
    const [g, l, a] = sortedByKey(this.guest, this.n, [this.length, this.adler]);
    [this.guest, this.length, this.adler] = [g, l as Int32Array<ArrayBuffer>, a as Uint32Array<ArrayBuffer>];
  }

  lookup(g: number): { length: number; adler: number } {
    const i = findKey(this.guest, this.n, g);
    if (i < 0) throw new BuildError("VMDK_INTERNAL", `VMDK second pass: cluster ${g} was not copied in the first pass`);
    return { length: this.length[i]!, adler: this.adler[i]! };
  }
}

/** An opened source: the chain (kept open across both passes of an OVA export) and what we know of it. */
export class VmdkSource {
  private constructor(
    readonly chain: Chain,
    readonly capacitySectors: number,
    private readonly copyable: boolean[],
    private readonly indexes: Array<CompressedIndex | undefined>,
  ) {}

  /**
   * Opens `src` (qcow2, with its backing chain), or says why our writer cannot take it - the caller
   * logs the reason and uses qemu-img instead. Nothing is held open on Unsupported.
   */
  static async open(src: string, fileName: string, signal: AbortSignal): Promise<VmdkSource | Unsupported> {
    throwIfAborted(signal);
    const nameProblem = extentNameProblem(fileName);
    if (nameProblem) return unsupported(`VMDK file name ${nameProblem}`);
    const chain = await openChain(src);
    if (isUnsupported(chain)) return chain;
    try {
      const size = chain.virtualSize;
      if (size === 0 || size % SECTOR !== 0) return await closed(chain, unsupported(`${src}: virtual size ${size} is not a positive multiple of 512 bytes`));
      if (size / SECTOR > MAX_CAPACITY_SECTORS) return await closed(chain, unsupported(`${src}: virtual size ${size} is above the 1 TiB this writer handles`));
      const plan = await survey(chain, signal);
      if (isUnsupported(plan)) return await closed(chain, plan);
      const copyable = chain.layers.map((l) => l.kind === "qcow2" && l.clusterBits === OUT_CLUSTER_BITS && l.compressionType === COMPRESSION_ZLIB);
      const indexes = await Promise.all(chain.layers.map((l, i) => (copyable[i] && l.kind === "qcow2" ? l.compressedIndex() : undefined)));
      return new VmdkSource(chain, size / SECTOR, copyable, indexes);
    } catch (err) {
      await chain.close();
      throw err;
    }
  }

  /**
   * Produces the VMDK, handing each chunk to `emit` in file order (it may hold on to the chunk: every
   * chunk is a new buffer). With a recording ledger, copied clusters are inflated and noted; with a
   * rewound one they are replayed without inflating.
   */
  async produce(
    emit: (chunk: Buffer) => Promise<void>,
    o: {
      descriptor: Omit<DescriptorParams, "capacitySectors">;
      ledger: CopyLedger;
      signal: AbortSignal;
      concurrency?: number;
      onProgress?: (done: number, total: number) => void;
      /**
       * `emit` is done with each chunk when it resolves (it only hashes): the chunk goes back to
       * `chunks` at once. A new buffer per MiB instead leaves garbage outside the V8 heap that V8
       * collects late (~100 MB on the measuring pass's RSS, ~45 MB on the streaming pass's).
       */
      reuseChunks?: boolean;
      /**
       * Where chunk buffers come from: with reuseChunks the stream gives them back itself; otherwise
       * whoever consumes them may (pullFrom's `recycle`). Default: a pool of its own.
       */
      chunks?: ChunkPool;
      /**
       * Where the first pass keeps what it deflated and the second takes it back (ClusterSpill):
       * recording while `ledger` records, replaying once both are rewound.
       */
      reuse?: ClusterReuse;
    },
  ): Promise<VmdkStats> {
    const deflaters = new Deflaters(clampConcurrency(o.concurrency));
    const out = new GrainStream(emit, this.capacitySectors, { ...o.descriptor, capacitySectors: this.capacitySectors }, o.reuseChunks ?? false, o.chunks ?? new ChunkPool());
    // One core less than the flattener uses: the main thread reads, hashes and dispatches on one of
    // them. On 2 cores, 1 worker against 2 (export alone on a real build's overlay, under the VM
    // lock, 3 runs each): peak RSS 111-116 MiB against 121 MiB, the first pass's CPU 2.6-4.1 s
    // against 3.2-4.5 s, wall time within the runs' noise (3.4-5.2 s against 2.6-5.1 s).
    const pool = o.ledger.recording ? new InflatePool(Math.max(1, clampConcurrency(o.concurrency) - 1)) : undefined;
    const encoding = vmdkEncoding(o.ledger, deflaters, pool, o.reuse);
    try {
      await out.start();
      const job = new FlattenJob(this.chain, out, encoding, deflaters, this.copyable, this.indexes, o.signal, o.onProgress);
      const stats = await job.run();
      const size = await out.finish();
      return { clusters: stats.clusters, bytesRead: stats.bytesRead, size };
    } finally {
      deflaters.close();
      await pool?.close();
    }
  }

  close(): Promise<void> {
    return this.chain.close();
  }
}

async function closed<T>(chain: Chain, r: T): Promise<T> {
  await chain.close();
  return r;
}

/** The flattener's encoding for VMDK grains: copied clusters get their exact end and Adler-32. */
function vmdkEncoding(ledger: CopyLedger, deflaters: Deflaters, pool: InflatePool | undefined, reuse: ClusterReuse | undefined): ClusterEncoding {
  return {
    deflateLimit: Infinity,
    trimToVisible: true,
    ...(reuse ? { reuse } : {}),
    finishCopy: async (g, compressed, layerPath) => {
      if (!pool) {
        const { length, adler } = ledger.lookup(g);
        if (length >= 0) return { data: compressed.subarray(0, length), adler };
        return recompress(compressed, layerPath, deflaters);
      }
      const r = await pool.summarize(compressed, OUT_CLUSTER_SIZE, layerPath);
      if (r.complete) {
        ledger.record(g, r.consumed, r.adler);
        return { data: compressed.subarray(0, r.consumed), adler: r.adler };
      }
      ledger.record(g, -1, r.adler);
      return recompress(compressed, layerPath, deflaters);
    },
  };
}

/**
 * A stream QEMU reads (it stops once the cluster is full) but that has no final block within the
 * bytes: not a valid zlib stream once wrapped, so it is inflated as QEMU reads it and deflated again.
 */
async function recompress(compressed: Buffer, layerPath: string, deflaters: Deflaters): Promise<{ data: Buffer; adler: number; deflated: true }> {
  const r = await inflateExact(compressed, OUT_CLUSTER_SIZE, layerPath, { keepData: true });
  const data = await deflaters.deflate(r.data!, Infinity);
  return { data: data!, adler: r.adler, deflated: true };
}

/**
 * The CHUNK-sized buffers the VMDK is packed into, taken back once their bytes have been consumed, so
 * producing the VMDK allocates a handful of them, not one per MiB (see produce()'s reuseChunks).
 */
export class ChunkPool {
  private readonly free: Buffer[] = [];
  constructor(private readonly max = 8) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(CHUNK);
  }

  /** Takes back a chunk handed out by take(), or any view of one; other buffers are left to the GC. */
  give(chunk: Buffer): void {
    const ab = chunk.buffer;
    if (ab.byteLength !== CHUNK || !(ab instanceof ArrayBuffer) || this.free.length >= this.max) return;
    this.free.push(Buffer.from(ab, 0, CHUNK));
  }
}

/** Frames grains and tables and packs them into chunks for `emit`; tracks the file's sectors. */
class GrainStream implements ClusterSink {
  private chunk: Buffer;
  private fill = 0;
  private sector = 0;
  private readonly gt = Buffer.alloc(GT_SECTORS * SECTOR);
  /** Index of the grain table being filled. */
  private gtIndex = 0;
  private readonly gd: Buffer;
  private readonly gtCount: number;
  private readonly grains: number;

  constructor(
    private readonly emit: (chunk: Buffer) => Promise<void>,
    private readonly capacitySectors: number,
    private readonly descriptor: DescriptorParams,
    private readonly reuse: boolean,
    private readonly pool: ChunkPool,
  ) {
    this.chunk = pool.take();
    this.grains = Math.ceil(capacitySectors / GRAIN_SECTORS);
    this.gtCount = Math.ceil(this.grains / GTES_PER_GT);
    this.gd = Buffer.alloc(Math.ceil((this.gtCount * 4) / SECTOR) * SECTOR);
  }

  async start(): Promise<void> {
    await this.put(encodeHeader({ capacitySectors: this.capacitySectors }));
    await this.put(encodeDescriptor(this.descriptor));
    await this.zeros((OVERHEAD_SECTORS - this.sector) * SECTOR);
  }

  async write(g: number, o: ClusterOutput): Promise<void> {
    if (o.adler === undefined || o.kind === "raw") throw new BuildError("VMDK_INTERNAL", `grain ${g}: no zlib data`);
    while (Math.floor(g / GTES_PER_GT) > this.gtIndex) await this.flushGt();
    const data = o.data!;
    const total = grainBytes(data.length);
    const at = this.sector;
    if (at + total / SECTOR > MAX_FILE_SECTORS) throw new BuildError("VMDK_TOO_LARGE", "the VMDK would pass 2 TiB, beyond 32-bit grain table entries");
    const frame = this.reserve(total);
    frame.writeBigUInt64LE(BigInt(g * GRAIN_SECTORS), 0); // lba: the grain's first guest sector
    frame.writeUInt32LE(ZLIB_HEADER.length + data.length + 4, 8); // size: the zlib stream's bytes
    ZLIB_HEADER.copy(frame, GRAIN_MARKER_BYTES);
    data.copy(frame, GRAIN_MARKER_BYTES + ZLIB_HEADER.length);
    const end = GRAIN_MARKER_BYTES + ZLIB_HEADER.length + data.length;
    frame.writeUInt32BE(o.adler, end); // RFC 1950: ADLER32, most significant byte first
    frame.fill(0, end + 4, total);
    this.gt.writeUInt32LE(at, (g % GTES_PER_GT) * 4);
    this.sector += total / SECTOR;
    await this.maybeEmit();
  }

  /** Writes the remaining tables, the directory, footer and end-of-stream marker; returns the size. */
  async finish(): Promise<number> {
    while (this.gtIndex < this.gtCount) await this.flushGt();
    const gdSectors = this.gd.length / SECTOR;
    await this.put(encodeMarker(MARKER_GD, gdSectors));
    const gdSector = this.sector;
    await this.put(this.gd);
    await this.put(encodeMarker(MARKER_FOOTER, 1));
    await this.put(encodeHeader({ capacitySectors: this.capacitySectors, gdSector }));
    await this.put(encodeMarker(MARKER_EOS, 0));
    if (this.fill > 0) await this.emitChunk(this.chunk.subarray(0, this.fill));
    this.fill = 0;
    return this.sector * SECTOR;
  }

  private async flushGt(): Promise<void> {
    await this.put(encodeMarker(MARKER_GT, GT_SECTORS));
    this.gd.writeUInt32LE(this.sector, this.gtIndex * 4);
    await this.put(this.gt);
    this.gt.fill(0);
    this.gtIndex++;
  }

  /** A view of `n` bytes in the current chunk (a new chunk when they do not fit). */
  private reserve(n: number): Buffer {
    if (this.fill + n > this.chunk.length) {
      this.pending.push(this.chunk.subarray(0, this.fill));
      this.chunk = n <= CHUNK ? this.pool.take() : Buffer.allocUnsafe(n);
      this.fill = 0;
    }
    const view = this.chunk.subarray(this.fill, this.fill + n);
    this.fill += n;
    return view;
  }

  private pending: Buffer[] = [];

  private async maybeEmit(): Promise<void> {
    while (this.pending.length > 0) {
      const b = this.pending.shift()!;
      if (b.length > 0) await this.emitChunk(b);
      else this.pool.give(b);
    }
  }

  private async emitChunk(b: Buffer): Promise<void> {
    await this.emit(b);
    if (this.reuse) this.pool.give(b);
  }

  private async put(buf: Buffer): Promise<void> {
    buf.copy(this.reserve(buf.length));
    this.sector += buf.length / SECTOR;
    await this.maybeEmit();
  }

  private async zeros(n: number): Promise<void> {
    if (n > 0) await this.put(Buffer.alloc(n));
  }
}

/**
 * Turns a producer that pushes chunks into an async iterable with backpressure (a few chunks
 * queued). When the consumer stops early (error, abort) the producer's signal is aborted and the
 * iterable's return() waits for the producer to finish, so no file stays open behind it.
 *
 * With `recycle`, each chunk is handed to it when the consumer asks for the next one (or stops):
 * the consumer must be done with a chunk's bytes by then (writeOva writes it before it asks).
 */
export async function* pullFrom(
  produce: (emit: (chunk: Buffer) => Promise<void>, signal: AbortSignal) => Promise<unknown>,
  outer: AbortSignal,
  highWater = 4,
  recycle?: (chunk: Buffer) => void,
): AsyncGenerator<Buffer> {
  const ac = new AbortController();
  const onAbort = () => ac.abort(outer.reason);
  if (outer.aborted) onAbort();
  else outer.addEventListener("abort", onAbort, { once: true });
  const queue: Buffer[] = [];
  let wakeConsumer: (() => void) | undefined;
  let wakeProducer: (() => void) | undefined;
  ac.signal.addEventListener("abort", () => wakeProducer?.(), { once: true });
  let done = false;
  let failure: { error: unknown } | undefined;
  const emit = async (chunk: Buffer) => {
    if (ac.signal.aborted) throw asAbortError(ac.signal.reason);
    queue.push(chunk);
    wakeConsumer?.();
    while (queue.length >= highWater && !ac.signal.aborted) await new Promise<void>((r) => (wakeProducer = r));
    if (ac.signal.aborted) throw asAbortError(ac.signal.reason);
  };
  const task = Promise.resolve()
    .then(() => produce(emit, ac.signal))
    .then(
      () => undefined,
      (error: unknown) => {
        failure = { error };
      },
    )
    .finally(() => {
      done = true;
      wakeConsumer?.();
    });
  try {
    for (;;) {
      if (queue.length > 0) {
        const chunk = queue.shift()!;
        wakeProducer?.();
        yield chunk;
        recycle?.(chunk);
        continue;
      }
      if (done) {
        if (failure) throw failure.error;
        return;
      }
      await new Promise<void>((r) => (wakeConsumer = r));
    }
  } finally {
    if (!done) ac.abort(new Error("the VMDK stream's consumer stopped"));
    await task;
    outer.removeEventListener("abort", onAbort);
  }
}

