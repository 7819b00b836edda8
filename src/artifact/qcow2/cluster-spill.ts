// A temp file that keeps what one pass of the flattener made of the clusters it rebuilt (deflated
// bytes and Adler-32, or "all zero"), so a second pass over the same chain takes them back instead
// of reading the guest bytes and deflating them again (FlattenJob's ClusterEncoding.reuse).
//
// Why a file: the OVA export runs the VMDK writer twice (vmdk/export.ts) and the changed clusters'
// deflate was the larger part of pass 2's CPU; but the compressed bytes of a disk's changes can be
// gigabytes, and the export stays within a fixed memory budget whatever the disk size. So the bytes
// go to the file (written 1 MiB at a time, two buffers) and only a compact index stays in memory,
// like the CopyLedger's: 21 bytes per rebuilt cluster (~3.4 MB for 10 GiB of changed data).
//
// A spill that cannot be written (the build dir's file system full, a quota, an I/O error) gives up
// instead of failing the export: it drops its index and truncates the file, and the second pass
// deflates the changed clusters again, as before the spill existed (`gaveUp` says why, for the log).
// The spill is a saving, never a new way for a build to fail.
//
// The spill knows nothing of formats: it stores a cluster output's kind, bytes and checksum. It
// does not check what it reads back; the caller's digest cross-check does (writeOva compares the
// second pass's SHA-256 with the first's, so damaged spill bytes fail the export, never ship).
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { BuildError } from "../../errors.js";
import type { ClusterOutput, ClusterReuse } from "./flatten.js";
import { OUT_CLUSTER_SIZE } from "./writer.js";
import { findKey, grownColumn, sortedByKey } from "./cluster-index.js";
import { BufferPool } from "./zlib.js";
import { writeAllAt } from "../../util/write-all.js";

/** Bytes written (and read back) per I/O. */
const IO_BYTES = 1024 * 1024;
/** Largest kept output served from the pool: a cluster, or its deflate stream of stored blocks. */
const POOLED_BYTES = OUT_CLUSTER_SIZE + 2048;

const KIND_ZERO = 0;
const KIND_COMPRESSED = 1;
const KIND_RAW = 2;
const KIND_COPY = 3;
const KINDS: Array<ClusterOutput["kind"]> = ["zero", "compressed", "raw", "copy"];
const HAS_ADLER = 4;

export class ClusterSpill implements ClusterReuse {
  private guest = new Uint32Array(1024);
  private offset = new Float64Array(1024);
  private length = new Int32Array(1024);
  private adler = new Uint32Array(1024);
  private flags = new Uint8Array(1024);
  private n = 0;
  private recording = true;
  private closed = false;
  /** Set by the first failed write: nothing more is kept, and seal() forgets what was. */
  private failure: BuildError | undefined;

  /** Bytes of the file, those handed to the write buffer included. */
  private size = 0;
  private flushedTo = 0;
  private wbuf: Buffer = Buffer.allocUnsafe(IO_BYTES);
  private wspare: Buffer = Buffer.allocUnsafe(IO_BYTES);
  private fill = 0;
  /** The write in progress (its buffer is wspare until it ends). */
  private writing: Promise<void> = Promise.resolve();

  /** Reads are served one after the other from a window of the file (kept clusters come in guest order). */
  private reading: Promise<unknown> = Promise.resolve();
  private window: Buffer = Buffer.alloc(0);
  private winAt = 0;
  private winFill = 0;
  private readonly pool = new BufferPool(POOLED_BYTES, 32);

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  /**
   * A new spill file in `dir` (a directory vmkiln created), opened exclusively under an
   * unpredictable name: O_EXCL never opens an existing file, O_NOFOLLOW never follows a planted
   * symlink. Mode 0600: it holds the guest's data.
   */
  static async create(dir: string, label: string): Promise<ClusterSpill> {
    const path = join(dir, `.${label.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 100)}.${randomBytes(8).toString("hex")}.spill`);
    const fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    return new ClusterSpill(path, fh);
  }

  /** Clusters kept. */
  get count(): number {
    return this.n;
  }

  /** Bytes of the spill file. */
  get bytes(): number {
    return this.size;
  }

  /** Why the spill gave up (a write failed), or undefined when it kept everything it was offered. */
  get gaveUp(): string | undefined {
    return this.failure?.message;
  }

  async keep(g: number, o: ClusterOutput): Promise<void> {
    if (!this.recording) throw new BuildError("SPILL_INTERNAL", `cluster ${g} kept after the spill was sealed`);
    if (this.failure) return;
    if (this.n === this.guest.length) this.grow();
    const data = o.kind === "zero" ? undefined : o.data;
    if (o.kind !== "zero" && !data) throw new BuildError("SPILL_INTERNAL", `cluster ${g}: a ${o.kind} output without data`);
    this.guest[this.n] = g;
    this.offset[this.n] = this.size;
    this.length[this.n] = data ? data.length : -1;
    this.adler[this.n] = o.adler ?? 0;
    this.flags[this.n] = (o.kind === "zero" ? KIND_ZERO : o.kind === "compressed" ? KIND_COMPRESSED : o.kind === "raw" ? KIND_RAW : KIND_COPY) | (o.adler === undefined ? 0 : HAS_ADLER);
    this.n++;
    if (data) await this.append(data);
  }

  /** Ends recording: the last bytes are written and the index is sorted for lookups. */
  async seal(): Promise<void> {
    if (!this.recording) return;
    await this.flush();
    await this.writing;
    this.recording = false;
    this.wbuf = this.wspare = Buffer.alloc(0);
    if (this.failure) {
      // Nothing is taken back: pass 2 finds no cluster here and deflates them all. The bytes that
      // did reach the disk go at once (a full file system gets its space back).
      this.n = 0;
      this.size = 0;
      await this.fh.truncate(0).catch(() => undefined);
      return;
    }
    this.sort();
    if (this.n > 0) this.window = Buffer.allocUnsafe(IO_BYTES);
  }

  has(g: number): boolean {
    return !this.recording && this.find(g) >= 0;
  }

  take(g: number): Promise<ClusterOutput> {
    const p = this.reading.then(() => this.read(g));
    this.reading = p.catch(() => undefined);
    return p;
  }

  /** Closes and removes the file (after any write or read in progress); safe to call again. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writing.catch(() => undefined);
    await this.reading;
    try {
      await this.fh.close();
    } finally {
      await rm(this.path, { force: true });
    }
  }

  private async append(data: Buffer): Promise<void> {
    if (this.fill + data.length > this.wbuf.length) await this.flush();
    if (this.failure) return;
    if (data.length > this.wbuf.length) {
      // Never with 64 KiB clusters; written on its own, after what precedes it.
      await this.writing;
      const at = this.flushedTo;
      this.flushedTo += data.length;
      this.size += data.length;
      await this.writeAll(data, at).catch((err: unknown) => this.giveUp(err));
      return;
    }
    data.copy(this.wbuf, this.fill);
    this.fill += data.length;
    this.size += data.length;
  }

  /** Starts writing the buffer (after the write before it ended) and fills the other one meanwhile. */
  private async flush(): Promise<void> {
    await this.writing;
    if (this.fill === 0) return;
    const full = this.wbuf.subarray(0, this.fill);
    const at = this.flushedTo;
    this.flushedTo += this.fill;
    [this.wbuf, this.wspare] = [this.wspare, this.wbuf];
    this.fill = 0;
    this.writing = this.writeAll(full, at).catch((err: unknown) => this.giveUp(err));
  }

  private giveUp(err: unknown): void {
    this.failure ??= err instanceof BuildError ? err : new BuildError("SPILL_WRITE", String(err));
    this.fill = 0;
  }

  private async writeAll(buf: Buffer, at: number): Promise<void> {
    try {
      await writeAllAt(this.fh, buf, at);
    } catch (err) {
      // A full disk says which file (the build dir's file system), not just "ENOSPC ... write".
      throw new BuildError("SPILL_WRITE", `${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  private async read(g: number): Promise<ClusterOutput> {
    if (this.closed) throw new BuildError("SPILL_INTERNAL", `${this.path}: read after close`);
    const i = this.find(g);
    if (i < 0) throw new BuildError("SPILL_INTERNAL", `cluster ${g} is not in the spill file`);
    const flags = this.flags[i]!;
    const kind = KINDS[flags & 3]!;
    if (kind === "zero") return { kind };
    const len = this.length[i]!;
    const at = this.offset[i]!;
    const pooled = len <= POOLED_BYTES;
    const out = pooled ? this.pool.take() : Buffer.allocUnsafe(len);
    if (at >= this.winAt && at + len <= this.winAt + this.winFill) this.window.copy(out, 0, at - this.winAt, at - this.winAt + len);
    else if (len > this.window.length) {
      if ((await this.readFully(out, len, at)) < len) throw this.truncated();
    } else {
      this.winFill = await this.readFully(this.window, Math.min(this.window.length, this.size - at), at);
      this.winAt = at;
      if (this.winFill < len) throw this.truncated();
      this.window.copy(out, 0, 0, len);
    }
    return {
      kind,
      data: out.subarray(0, len),
      adler: flags & HAS_ADLER ? this.adler[i]! : undefined,
      release: pooled ? () => this.pool.give(out) : undefined,
    };
  }

  /** Reads up to `want` bytes at `at` into `buf`; returns how many there were. */
  private async readFully(buf: Buffer, want: number, at: number): Promise<number> {
    let done = 0;
    while (done < want) {
      const { bytesRead } = await this.fh.read(buf, done, want - done, at + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  private truncated(): BuildError {
    return new BuildError("SPILL_TRUNCATED", `${this.path}: the spill file is shorter than what was written to it`);
  }

  private find(g: number): number {
    return findKey(this.guest, this.n, g);
  }

  private grow(): void {
    const m = this.n * 2;
    this.guest = grownColumn(this.guest, m);
    this.offset = grownColumn(this.offset, m);
    this.length = grownColumn(this.length, m);
    this.adler = grownColumn(this.adler, m);
    this.flags = grownColumn(this.flags, m);
  }

  /** Entries arrive in guest order from FlattenJob; sorted anyway when they do not. */
  private sort(): void {
    const [g, o, l, a, f] = sortedByKey(this.guest, this.n, [this.offset, this.length, this.adler, this.flags]);
    [this.guest, this.offset, this.length, this.adler, this.flags] = [g, o as Float64Array<ArrayBuffer>, l as Int32Array<ArrayBuffer>, a as Uint32Array<ArrayBuffer>, f as Uint8Array<ArrayBuffer>];
  }
}
