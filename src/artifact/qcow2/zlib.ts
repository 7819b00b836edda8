// QEMU-compatible cluster compression on libuv's thread pool, and reusable buffers.
//
// Why not zlib.deflateRaw(buf) per cluster: each call builds a new zlib stream (~270 KiB of state
// with memLevel 9) and its output chunks; the memory is returned only when V8 collects the stream,
// and V8 waits for ~64 MB of external growth before it does. Over a few thousand clusters that
// alone put the process above vmkiln's 150 MB RSS goal. A few long-lived streams, reset between
// clusters, and pooled buffers keep the memory flat.
import zlib from "node:zlib";
import { promisify } from "node:util";

/**
 * QEMU's compressor (block/qcow2-threads.c): deflateInit2(Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12,
 * 9, Z_DEFAULT_STRATEGY) - raw deflate (negative windowBits), a 4 KiB window, memLevel 9.
 */
export const QEMU_DEFLATE: zlib.ZlibOptions = {
  level: zlib.constants.Z_DEFAULT_COMPRESSION,
  windowBits: 12,
  memLevel: 9,
  strategy: zlib.constants.Z_DEFAULT_STRATEGY,
};

/** Fixed-size buffers handed out and taken back; allocates when empty, keeps at most `max`. */
export class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(
    readonly size: number,
    private readonly max: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  /** A buffer of the pool's size with every byte zero. */
  takeZeroed(): Buffer {
    return this.take().fill(0);
  }

  give(buf: Buffer): void {
    if (buf.length === this.size && this.free.length < this.max) this.free.push(buf);
  }
}

class DeflateSlot {
  private readonly z: zlib.DeflateRaw;
  private chunks: Buffer[] = [];
  private fail: ((err: Error) => void) | undefined;
  broken = false;

  constructor() {
    // One output chunk per cluster (compressed data is < 64 KiB when it counts).
    this.z = zlib.createDeflateRaw({ ...QEMU_DEFLATE, chunkSize: 128 * 1024 });
    this.z.on("data", (c: Buffer) => this.chunks.push(c));
    this.z.on("error", (err: Error) => {
      this.broken = true;
      this.fail?.(err);
    });
  }

  /**
   * Compresses one cluster as a complete raw deflate stream (Z_FINISH), then resets for the next.
   * Resolves null when the stream is longer than `limit`: the caller stores the cluster raw and the
   * bytes are not even joined.
   */
  run(buf: Buffer, limit: number): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
      this.fail = reject;
      this.z.write(buf);
      this.z.flush(zlib.constants.Z_FINISH, () => {
        this.fail = undefined;
        if (this.broken) return;
        const chunks = this.chunks;
        this.chunks = [];
        this.z.reset();
        const length = chunks.reduce((n, c) => n + c.length, 0);
        resolve(length > limit ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length));
      });
    });
  }

  close(): void {
    this.z.close();
  }
}

/** At most `n` clusters compressing at once, each on its own long-lived stream. */
export class Deflaters {
  private readonly idle: DeflateSlot[] = [];
  private readonly all: DeflateSlot[] = [];
  private readonly waiting: Array<(s: DeflateSlot) => void> = [];

  constructor(n: number) {
    for (let i = 0; i < n; i++) this.idle.push(this.track(new DeflateSlot()));
  }

  /** Raw deflate of `buf`, or null when it does not fit in `limit` bytes. */
  async deflate(buf: Buffer, limit: number): Promise<Buffer | null> {
    const slot = this.idle.pop() ?? (await new Promise<DeflateSlot>((resolve) => this.waiting.push(resolve)));
    try {
      return await slot.run(buf, limit);
    } finally {
      const next = slot.broken ? this.track(new DeflateSlot()) : slot;
      if (slot.broken) slot.close();
      const waiter = this.waiting.shift();
      if (waiter) waiter(next);
      else this.idle.push(next);
    }
  }

  close(): void {
    for (const s of this.all) s.close();
  }

  private track(s: DeflateSlot): DeflateSlot {
    this.all.push(s);
    return s;
  }
}

// Inflating is the rare path (layers whose clusters cannot be copied), so one-shot calls are fine.
// QEMU accepts a stream that fills the cluster even if it does not end within the bytes read (the
// length is only known to a sector): sync flush instead of failing on a missing end marker.
const inflateRawAsync = promisify(zlib.inflateRaw) as (buf: Buffer, opts: zlib.ZlibOptions) => Promise<Buffer>;

export function inflateRaw(buf: Buffer): Promise<Buffer> {
  return inflateRawAsync(buf, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}

/**
 * Adler-32 (RFC 1950 section 8.2) of `buf`, continuing from `adler` (1 for a new stream). Node 20's
 * zlib does not expose zlib's adler32(), and a streamOptimized VMDK grain needs it for bytes we
 * never deflate ourselves (copied clusters). Sums are reduced every 5552 bytes (zlib's NMAX: the
 * longest run after which b still fits 32 bits), so they stay plain integers.
 */
export function adler32(buf: Uint8Array, adler = 1): number {
  const MOD = 65521;
  const NMAX = 5552;
  let a = adler & 0xffff;
  let b = adler >>> 16;
  const len = buf.length;
  let i = 0;
  while (i < len) {
    const stop = Math.min(len, i + NMAX);
    for (; i + 8 <= stop; i += 8) {
      a += buf[i]!;
      b += a;
      a += buf[i + 1]!;
      b += a;
      a += buf[i + 2]!;
      b += a;
      a += buf[i + 3]!;
      b += a;
      a += buf[i + 4]!;
      b += a;
      a += buf[i + 5]!;
      b += a;
      a += buf[i + 6]!;
      b += a;
      a += buf[i + 7]!;
      b += a;
    }
    for (; i < stop; i++) {
      a += buf[i]!;
      b += a;
    }
    a %= MOD;
    b %= MOD;
  }
  return ((b << 16) | a) >>> 0;
}
