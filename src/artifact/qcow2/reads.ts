// One batch's reads from the chain's files, sorted and merged into few large preads.
//
// A base QEMU compressed lays its clusters back to back in guest order, so a batch of 8 copied
// clusters is usually one pread of ~200 KiB instead of 8 small ones. Run buffers come from a pool and
// go back once every request cut from them has been consumed (see zlib.ts for why memory is pooled).
import type { Layer } from "./read.js";
import { BufferPool } from "./zlib.js";

/** Reads closer than this are merged (the gap is read and dropped). */
const MERGE_GAP = 64 * 1024;
/** Largest merged read; one request larger than this (2 MiB compressed clusters) gets its own buffer. */
export const RUN_BYTES = 512 * 1024;

export interface ReadRequest {
  readonly layer: number;
  readonly offset: number;
  readonly length: number;
  /** Set by ReadBatch.execute (a view into a run buffer), unless `into` is given. */
  data?: Buffer;
  /** Copy the bytes here instead; the request is then consumed at once. */
  readonly into?: { buf: Buffer; at: number };
  run?: Run;
}

interface Run {
  layer: number;
  start: number;
  end: number;
  reqs: ReadRequest[];
  buf?: Buffer;
  /** Requests whose data is still in use. */
  live: number;
}

export class ReadBatch {
  private readonly requests: ReadRequest[] = [];
  bytesRead = 0;

  constructor(
    private readonly layers: Layer[],
    private readonly pool: BufferPool,
  ) {}

  add(layer: number, offset: number, length: number, into?: { buf: Buffer; at: number }): ReadRequest {
    const r: ReadRequest = into ? { layer, offset, length, into } : { layer, offset, length };
    this.requests.push(r);
    return r;
  }

  async execute(): Promise<void> {
    const byLayer = new Map<number, ReadRequest[]>();
    for (const r of this.requests) {
      const list = byLayer.get(r.layer);
      if (list) list.push(r);
      else byLayer.set(r.layer, [r]);
    }
    const runs: Run[] = [];
    for (const [layer, list] of byLayer) {
      list.sort((a, b) => a.offset - b.offset);
      let run: Run | undefined;
      for (const r of list) {
        const end = r.offset + r.length;
        if (run && r.offset <= run.end + MERGE_GAP && Math.max(run.end, end) - run.start <= RUN_BYTES) {
          run.end = Math.max(run.end, end);
          run.reqs.push(r);
        } else {
          run = { layer, start: r.offset, end, reqs: [r], live: 0 };
          runs.push(run);
        }
      }
    }
    await Promise.all(
      runs.map(async (run) => {
        const len = run.end - run.start;
        const buf = len <= RUN_BYTES ? this.pool.take() : Buffer.allocUnsafe(len);
        run.buf = buf;
        await this.layers[run.layer]!.readInto(buf, len, run.start);
        this.bytesRead += len;
        for (const r of run.reqs) {
          const slice = buf.subarray(r.offset - run.start, r.offset - run.start + r.length);
          if (r.into) slice.copy(r.into.buf, r.into.at);
          else {
            r.data = slice;
            r.run = run;
            run.live++;
          }
        }
        if (run.live === 0) this.recycle(run);
      }),
    );
  }

  /** The request's bytes are no longer needed; its run buffer is reused when all are done. */
  release(r: ReadRequest): void {
    const run = r.run;
    if (!run) return;
    r.run = undefined;
    r.data = undefined;
    if (--run.live === 0) this.recycle(run);
  }

  private recycle(run: Run): void {
    if (run.buf) this.pool.give(run.buf);
    run.buf = undefined;
  }
}
