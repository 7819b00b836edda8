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
import { Worker } from "node:worker_threads";
import { BuildError } from "../../errors.js";

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const zlib = require("node:zlib");
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
  private readonly waiting: Array<(w: Worker) => void> = [];
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failed: Error | undefined;

  constructor(size: number) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.on("message", (r: Reply) => {
        const p = this.pending.get(r.id);
        this.pending.delete(r.id);
        this.release(w);
        p?.resolve(r);
      });
      w.on("error", (err) => this.fail(err));
      w.on("exit", (code) => {
        if (code !== 0) this.fail(new Error(`inflate worker exited with ${code}`));
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  /** Inflates one cluster's compressed bytes (a copy goes to the worker); never more than a cluster. */
  async summarize(compressed: Buffer, clusterSize: number, layerPath: string): Promise<ClusterSummary> {
    if (this.failed) throw this.failed;
    const w = this.idle.pop() ?? (await new Promise<Worker>((r) => this.waiting.push(r)));
    const id = this.nextId++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, buf: compressed, clusterSize });
    });
    if (reply.error !== undefined) throw new BuildError("QCOW2_CORRUPT", `${layerPath}: a compressed cluster does not inflate (${reply.error})`);
    if (reply.inflated < clusterSize) throw new BuildError("QCOW2_CORRUPT", `${layerPath}: a compressed cluster inflates to ${reply.inflated} bytes, not ${clusterSize}`);
    return { complete: reply.complete, consumed: reply.consumed, adler: reply.adler };
  }

  async close(): Promise<void> {
    this.failed ??= new Error("inflate pool closed");
    for (const p of this.pending.values()) p.reject(this.failed);
    this.pending.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private release(w: Worker): void {
    const next = this.waiting.shift();
    if (next) next(w);
    else this.idle.push(w);
  }

  private fail(err: Error): void {
    this.failed ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
