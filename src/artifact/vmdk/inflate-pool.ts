// Worker threads that inflate copied clusters and take their Adler-32, off the main thread.
//
// Why workers: the first pass of an OVA export inflates every copied cluster (~6,300 for the
// fixture, ~400 MB) only to learn its exact deflate length and Adler-32. One-shot async zlib calls
// build a stream object per cluster and leave the Adler-32 (JavaScript) on the main thread, which
// also reads, hashes and deflates: measured on the fixture, 3.8 s of CPU for the pass. In a worker a
// synchronous inflate plus the checksum cost ~40% less, and the main thread only dispatches.
//
// The worker's source is inlined (eval) so it runs the same from dist/ and from the TypeScript
// sources under the test runner; it is plain JavaScript with no imports but node:zlib and
// node:worker_threads.
import { setFlagsFromString } from "node:v8";
import { Worker } from "node:worker_threads";
import { BuildError } from "../../errors.js";

// Messages carry several clusters (a worker's share of what the flattener asked for in one tick, at
// most MAX_PER_MESSAGE): a round trip costs ~60 us of the main thread's CPU (measured alone: 6,500
// round trips with 25 KB moved each, 0.4 s), and the fixture has ~6,500 copied clusters.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const zlib = require("node:zlib");
// Every cluster leaves ~90 KB of buffers (its bytes, what they inflate to) outside the V8 heap, which
// V8 collects only after ~64 MB of them: a scavenge every 16 clusters keeps the worker near 2 MB
// (measured on the fixture: the OVA export's peak RSS 190 MB with none, 144 MB with one every 64
// clusters; on a real build's overlay 131-135 MB every 64, 119-123 MB every 16, CPU time the same).
// The pool exposes gc while its workers start (see exposeGcWhileStarting); without it, collection
// is left to V8.
const collect = typeof globalThis.gc === "function" ? globalThis.gc : () => {};
parentPort.postMessage({ ready: true });
let sinceGc = 0;
function adler32(buf) {
  let a = 1, b = 0, i = 0;
  const len = buf.length;
  while (i < len) {
    const stop = Math.min(len, i + 5552);
    for (; i < stop; i++) { a += buf[i]; b += a; }
    a %= 65521; b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}
// One output buffer a little larger than a cluster: zlib's default 16 KiB chunks were joined with
// Buffer.concat for every cluster (~0.2 s of a worker's CPU on the fixture).
function inflate(buf, flush, clusterSize) {
  return zlib.inflateRawSync(buf, { info: true, finishFlush: flush, chunkSize: clusterSize + 1024 });
}
// One cluster: [complete (0/1), consumed, inflated, adler] into out at 4*i, or an error message.
function summarize(buf, clusterSize, out, i) {
  let r, complete = 1;
  try {
    r = inflate(buf, zlib.constants.Z_FINISH, clusterSize);
  } catch {
    complete = 0;
    try { r = inflate(buf, zlib.constants.Z_SYNC_FLUSH, clusterSize); }
    catch (err) { return String(err && err.message || err); }
  }
  const inflated = r.buffer;
  if (inflated.length > clusterSize) complete = 0;
  out[4 * i] = complete;
  out[4 * i + 1] = r.engine.bytesWritten;
  out[4 * i + 2] = inflated.length;
  out[4 * i + 3] = adler32(inflated.subarray(0, Math.min(inflated.length, clusterSize)));
  return undefined;
}
parentPort.on("message", (m) => {
  const n = m.offsets.length - 1;
  const out = new Float64Array(4 * n);
  const errors = [];
  for (let i = 0; i < n; i++) {
    const buf = Buffer.from(m.buf, m.offsets[i], m.offsets[i + 1] - m.offsets[i]);
    const error = summarize(buf, m.clusterSize, out, i);
    if (error !== undefined) errors.push([i, error]);
  }
  parentPort.postMessage({ id: m.id, out, errors }, [out.buffer]);
  sinceGc += n;
  if (sinceGc >= 16) {
    sinceGc = 0;
    collect({ type: "minor" });
  }
});
`;

/** Clusters sent to a worker in one message at most. */
const MAX_PER_MESSAGE = 16;

interface Reply {
  id: number;
  /** Per cluster: complete (0/1), consumed, inflated, adler. */
  out: Float64Array;
  errors: Array<[number, string]>;
}

interface Job {
  bytes: Buffer;
  clusterSize: number;
  resolve: (r: Summary) => void;
  reject: (e: Error) => void;
}

type Summary = { error: string } | { complete: boolean; consumed: number; inflated: number; adler: number };

export interface ClusterSummary {
  complete: boolean;
  consumed: number;
  adler: number;
}

export class InflatePool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  /** Clusters not yet sent to a worker; a failure rejects them too, or their callers would wait forever. */
  private readonly queue: Job[] = [];
  private dispatchQueued = false;
  private readonly pending = new Map<number, Job[]>();
  private nextId = 0;
  private failed: Error | undefined;
  /** Resolves once every worker has started (or died): from then on the process's V8 flags are as before. */
  readonly started: Promise<void>;

  constructor(size: number) {
    const gcStarted = exposeGcWhileStarting(size);
    let left = size;
    let allStarted!: () => void;
    this.started = new Promise<void>((resolve) => (allStarted = resolve));
    if (size === 0) allStarted();
    const started = () => {
      gcStarted();
      if (--left === 0) allStarted();
    };
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      let ready = false;
      w.on("message", (r: Reply | { ready: true }) => {
        if ("ready" in r) {
          ready = true;
          started();
          return;
        }
        const jobs = this.pending.get(r.id) ?? [];
        this.pending.delete(r.id);
        const errors = new Map(r.errors);
        jobs.forEach((job, k) => {
          const error = errors.get(k);
          const o = r.out;
          job.resolve(error !== undefined ? { error } : { complete: o[4 * k] === 1, consumed: o[4 * k + 1]!, inflated: o[4 * k + 2]!, adler: o[4 * k + 3]! });
        });
        this.idle.push(w);
        this.dispatch();
      });
      w.on("error", (err) => this.fail(err));
      w.on("exit", (code) => {
        if (!ready) started();
        // Any exit before close() is a failure (terminate() exits 0): its callers must not wait on.
        this.fail(new Error(`inflate worker exited with ${code}`));
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  /**
   * Inflates one cluster's compressed bytes (a copy goes to a worker); never more than a cluster.
   * Calls made in the same tick (a flattener batch's copied clusters) share messages.
   */
  async summarize(compressed: Buffer, clusterSize: number, layerPath: string): Promise<ClusterSummary> {
    if (this.failed) throw this.failed;
    const r = await new Promise<Summary>((resolve, reject) => {
      this.queue.push({ bytes: compressed, clusterSize, resolve, reject });
      if (!this.dispatchQueued) {
        this.dispatchQueued = true;
        queueMicrotask(() => {
          this.dispatchQueued = false;
          this.dispatch();
        });
      }
    });
    if ("error" in r) throw new BuildError("QCOW2_CORRUPT", `${layerPath}: a compressed cluster does not inflate (${r.error})`);
    if (r.inflated < clusterSize) throw new BuildError("QCOW2_CORRUPT", `${layerPath}: a compressed cluster inflates to ${r.inflated} bytes, not ${clusterSize}`);
    return { complete: r.complete, consumed: r.consumed, adler: r.adler };
  }

  async close(): Promise<void> {
    this.fail(new Error("inflate pool closed"));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /**
   * Sends queued clusters to idle workers, a share of the queue each (not all of it to the first
   * idle one: the other worker is usually about to be free, and the in-order consumer waits for the
   * slowest message).
   */
  private dispatch(): void {
    if (this.failed) return;
    const share = Math.min(MAX_PER_MESSAGE, Math.ceil(this.queue.length / this.workers.length));
    while (this.idle.length > 0 && this.queue.length > 0) {
      const clusterSize = this.queue[0]!.clusterSize;
      let n = Math.min(share, this.queue.length);
      // One cluster size per message.
      for (let k = 1; k < n; k++) if (this.queue[k]!.clusterSize !== clusterSize) n = k;
      const jobs = this.queue.splice(0, n);
      const w = this.idle.pop()!;
      const id = this.nextId++;
      this.pending.set(id, jobs);
      // Exactly these bytes, packed into one buffer that is moved (not cloned) to the worker: each
      // job's bytes are a view into a 512 KiB read buffer, and cloning a view clones its whole
      // ArrayBuffer.
      const offsets = new Uint32Array(jobs.length + 1);
      for (const [k, j] of jobs.entries()) offsets[k + 1] = offsets[k]! + j.bytes.length;
      const buf = new Uint8Array(offsets[jobs.length]!);
      for (const [k, j] of jobs.entries()) buf.set(j.bytes, offsets[k]!);
      w.postMessage({ id, buf: buf.buffer, offsets, clusterSize }, [buf.buffer]);
    }
  }

  private fail(err: Error): void {
    this.failed ??= err;
    for (const jobs of this.pending.values()) for (const j of jobs) j.reject(err);
    this.pending.clear();
    for (const j of this.queue.splice(0)) j.reject(err);
  }
}

/**
 * Worker execArgv takes no V8 flags, so the workers' gc() comes from --expose-gc set process-wide
 * while they start (a worker isolate reads the flags as it is created) and cleared again once every
 * one of them has started (or died), so the process is left as it was - the same borrowing
 * jest-leak-detector does for one context (packages/jest-leak-detector/src/index.ts,
 * _runGarbageCollector). Workers start one flag state for all: set once here, not per worker, since
 * one worker clearing the flag while another is still starting would leave that one without gc.
 * Returns the callback each worker calls once when it has started.
 */
function exposeGcWhileStarting(workers: number): () => void {
  if (typeof (globalThis as { gc?: unknown }).gc === "function" || workers === 0) return () => {};
  setFlagsFromString("--expose-gc");
  let left = workers;
  return () => {
    if (--left === 0) setFlagsFromString("--no-expose-gc");
  };
}
