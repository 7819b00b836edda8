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

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const zlib = require("node:zlib");
// Every cluster leaves ~74 KB of buffers (its bytes, what they inflate to) outside the V8 heap, which
// V8 collects only after ~64 MB of them: a scavenge every 64 clusters keeps the worker near 5 MB
// (measured on the fixture: the OVA export's peak RSS 190 MB without, 144 MB with). The pool exposes
// gc while its workers start (see exposeGcWhileStarting); without it, collection is left to V8.
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
function inflate(buf, flush) {
  return zlib.inflateRawSync(buf, { info: true, finishFlush: flush });
}
parentPort.on("message", (m) => {
  const buf = Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength);
  let r, complete = true;
  try {
    r = inflate(buf, zlib.constants.Z_FINISH);
  } catch {
    complete = false;
    try { r = inflate(buf, zlib.constants.Z_SYNC_FLUSH); }
    catch (err) { parentPort.postMessage({ id: m.id, error: String(err && err.message || err) }); return; }
  }
  const out = r.buffer;
  if (out.length > m.clusterSize) complete = false;
  const data = out.subarray(0, Math.min(out.length, m.clusterSize));
  parentPort.postMessage({ id: m.id, complete, consumed: r.engine.bytesWritten, inflated: out.length, adler: adler32(data) });
  if (++sinceGc >= 64) {
    sinceGc = 0;
    collect({ type: "minor" });
  }
});
`;

interface Reply {
  id: number;
  error?: string;
  complete: boolean;
  consumed: number;
  inflated: number;
  adler: number;
}

export interface ClusterSummary {
  complete: boolean;
  consumed: number;
  adler: number;
}

export class InflatePool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  /** Callers waiting for a free worker; a failure rejects them too, or they would wait forever. */
  private readonly waiting: Array<{ resolve: (w: Worker) => void; reject: (e: Error) => void }> = [];
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
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
        const p = this.pending.get(r.id);
        this.pending.delete(r.id);
        this.release(w);
        p?.resolve(r);
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

  /** Inflates one cluster's compressed bytes (a copy goes to the worker); never more than a cluster. */
  async summarize(compressed: Buffer, clusterSize: number, layerPath: string): Promise<ClusterSummary> {
    if (this.failed) throw this.failed;
    const w = this.idle.pop() ?? (await new Promise<Worker>((resolve, reject) => this.waiting.push({ resolve, reject })));
    if (this.failed) throw this.failed;
    const id = this.nextId++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // A copy of exactly these bytes, moved (not cloned) to the worker: `compressed` is a view into
      // a 512 KiB read buffer, and cloning a view clones its whole ArrayBuffer.
      const copy = new Uint8Array(compressed);
      w.postMessage({ id, buf: copy, clusterSize }, [copy.buffer]);
    });
    if (reply.error !== undefined) throw new BuildError("QCOW2_CORRUPT", `${layerPath}: a compressed cluster does not inflate (${reply.error})`);
    if (reply.inflated < clusterSize) throw new BuildError("QCOW2_CORRUPT", `${layerPath}: a compressed cluster inflates to ${reply.inflated} bytes, not ${clusterSize}`);
    return { complete: reply.complete, consumed: reply.consumed, adler: reply.adler };
  }

  async close(): Promise<void> {
    this.fail(new Error("inflate pool closed"));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private release(w: Worker): void {
    const next = this.waiting.shift();
    if (next) next.resolve(w);
    else this.idle.push(w);
  }

  private fail(err: Error): void {
    this.failed ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const w of this.waiting.splice(0)) w.reject(err);
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
