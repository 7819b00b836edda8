// vmkiln's own streamOptimized VMDK export (stream.ts), as a file or as an OVA member, with
// `qemu-img convert` (../vmdk.ts) left to the caller as the fallback for what it does not take.
//
// The OVA ordering problem: the .mf (holding the VMDK's SHA-256) comes before the VMDK in the tar
// (ova.md "Tar": OVF first, then the manifest, then the disks - what vSphere, ovftool and VirtualBox
// are known to take; a manifest at the end is allowed by the OVF spec but not something we may rely
// on importers to read), and the tar header needs the VMDK's exact size before its first byte. So
// the OVA export runs the VMDK writer twice over the same open chain:
//   pass 1 (measure): produces every byte and hashes it; copied clusters are inflated once for
//     their exact length and Adler-32, which the CopyLedger keeps (12 bytes each); the clusters the
//     build changed are deflated once, and their deflated bytes and Adler-32 go to a spill file
//     (qcow2/cluster-spill.ts: a temp file in the build dir, created with O_EXCL; 21 bytes of index
//     per cluster in memory, the bytes on disk, so memory does not grow with the disk's changes);
//   pass 2 (stream): produces the same bytes again straight into the tar; copied clusters are
//     wrapped from the ledger without inflating, changed clusters are read back from the spill
//     file (1 MiB positional reads) without reading the guest bytes or deflating. writeOva hashes
//     the member again and checks size and digest against pass 1, so a difference (a changed
//     chain, a damaged spill file) can never produce an OVA whose manifest lies: the partial OVA is
//     removed and the build fails.
// Cost against one pass into a file: the source is read twice (hot in the page cache the second
// time) and the changed clusters' compressed bytes are written to the spill file and read back
// (page cache too); nothing is deflated twice and no VMDK file is written or read back. The spill
// file is removed by MeasuredVmdk.close() on every way out (success, failure, abort); the build
// dir's removal is the net behind it.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { asAbortError } from "../../errors.js";
import { progressReporter, type EventBus } from "../../log/events.js";
import { fileIdentity, type FileIdentity } from "../digest.js";
import { ClusterSpill } from "../qcow2/cluster-spill.js";
import { isUnsupported, type Unsupported } from "../qcow2/read.js";
import { ChunkPool, CopyLedger, VmdkSource, pullFrom, type VmdkStats } from "./stream.js";

export interface VmdkExportOptions {
  /** The build disk (qcow2, usually an overlay on the cached cloud image). */
  src: string;
  /** The name the VMDK is known by (OVF File ovf:href, and the descriptor's extent line). */
  fileName: string;
  signal: AbortSignal;
  events: EventBus;
  hwVersion?: number;
}

export interface VmdkWritten {
  kind: "written";
  path: string;
  size: number;
  sha256: string;
  identity: FileIdentity | undefined;
  virtualSize: number;
  stats: VmdkStats;
  durationMs: number;
}

/** Writes the VMDK to `dst` (via dst.partial), hashing the bytes as they are written: one pass. */
export async function writeStreamOptimizedVmdk(dst: string, o: VmdkExportOptions): Promise<VmdkWritten | Unsupported> {
  const started = performance.now();
  const source = await VmdkSource.open(o.src, o.fileName, o.signal);
  if (isUnsupported(source)) return source;
  const partial = `${dst}.partial`;
  const hash = createHash("sha256");
  const progress = progressReporter(o.events, `convert ${o.fileName} (vmdk)`, source.chain.virtualSize);
  let stats: VmdkStats | undefined;
  try {
    const chunks = pullFrom(async (emit, signal) => {
      stats = await source.produce(
        async (chunk) => {
          hash.update(chunk);
          await emit(chunk);
        },
        { descriptor: descriptorOf(o), ledger: new CopyLedger(), signal, onProgress: (done) => progress.set(done) },
      );
    }, o.signal);
    await pipeline(chunks, createWriteStream(partial, { mode: 0o644 }), { signal: o.signal });
    await rename(partial, dst);
    // After the rename: it changes the inode's ctime, which the identity includes (taken before, the
    // OVA writer refused the file as changed since hashing: formats [ova, vmdk]).
    const identity = await fileIdentity(dst);
    return {
      kind: "written",
      path: dst,
      size: stats!.size,
      sha256: hash.digest("hex"),
      identity,
      virtualSize: source.chain.virtualSize,
      stats: stats!,
      durationMs: Math.round(performance.now() - started),
    };
  } catch (err) {
    await rm(partial, { force: true });
    if (o.signal.aborted) throw asAbortError(o.signal.reason);
    throw err;
  } finally {
    progress.end();
    await source.close();
  }
}

export interface VmdkMeasureOptions extends VmdkExportOptions {
  /**
   * A directory vmkiln created for the build's work files (the build dir): the spill file with the
   * changed clusters' deflated bytes goes there, under a new name. Without it a private directory
   * is made under the OS temp dir (and removed with the spill).
   */
  spillDir?: string;
}

export interface MeasuredVmdk {
  kind: "measured";
  size: number;
  sha256: string;
  virtualSize: number;
  stats: VmdkStats;
  measureMs: number;
  /** What pass 1 kept for pass 2: rebuilt clusters and the spill file's bytes. */
  spilled: { clusters: number; bytes: number };
  /** The same bytes again (pass 2), for the OVA's tar. Callable once. */
  stream(signal: AbortSignal): AsyncIterable<Buffer>;
  /** Closes the chain and removes the spill file; call after streaming (or instead of it). */
  close(): Promise<void>;
}

/** Pass 1 of an OVA export: the VMDK's exact size and SHA-256; nothing written but the spill file. */
export async function measureStreamOptimizedVmdk(o: VmdkMeasureOptions): Promise<MeasuredVmdk | Unsupported> {
  const started = performance.now();
  const source = await VmdkSource.open(o.src, o.fileName, o.signal);
  if (isUnsupported(source)) return source;
  const ledger = new CopyLedger();
  const hash = createHash("sha256");
  const progress = progressReporter(o.events, `convert ${o.fileName} (vmdk, measure)`, source.chain.virtualSize);
  let spill: Spill | undefined;
  let released: Promise<void> | undefined;
  const release = () =>
    (released ??= (async () => {
      try {
        await source.close();
      } finally {
        await spill?.remove();
      }
    })());
  try {
    spill = await Spill.open(o.spillDir, o.fileName);
    const file = spill.file;
    const stats = await source.produce(
      async (chunk) => {
        hash.update(chunk);
      },
      { descriptor: descriptorOf(o), ledger, signal: o.signal, onProgress: (done) => progress.set(done), reuseChunks: true, reuse: file },
    );
    await file.seal();
    if (file.gaveUp) o.events.warn(`the spill file could not be written (${file.gaveUp}): the second pass deflates the changed clusters again`, "export");
    ledger.rewind();
    let streamed = false;
    return {
      kind: "measured",
      size: stats.size,
      sha256: hash.digest("hex"),
      virtualSize: source.chain.virtualSize,
      stats,
      measureMs: Math.round(performance.now() - started),
      spilled: { clusters: file.count, bytes: file.bytes },
      stream: (signal) => {
        if (streamed) throw new Error("internal: the VMDK stream was already taken");
        streamed = true;
        // The consumer (writeOva) has written a chunk when it asks for the next: back to the pool.
        const chunks = new ChunkPool();
        return pullFrom((emit, s) => source.produce(emit, { descriptor: descriptorOf(o), ledger, signal: s, reuse: file, chunks }), signal, 4, (c) => chunks.give(c));
      },
      close: release,
    };
  } catch (err) {
    await release();
    if (o.signal.aborted) throw asAbortError(o.signal.reason);
    throw err;
  } finally {
    progress.end();
  }
}

/** The spill file, and the directory made for it when the caller named none. Removal is idempotent. */
class Spill {
  private constructor(
    readonly file: ClusterSpill,
    private readonly ownDir: string | undefined,
  ) {}

  static async open(dir: string | undefined, label: string): Promise<Spill> {
    const ownDir = dir === undefined ? await mkdtemp(join(tmpdir(), "vmkiln-vmdk-spill-")) : undefined;
    try {
      return new Spill(await ClusterSpill.create(dir ?? ownDir!, label), ownDir);
    } catch (err) {
      if (ownDir) await rm(ownDir, { recursive: true, force: true });
      throw err;
    }
  }

  async remove(): Promise<void> {
    try {
      await this.file.close();
    } finally {
      if (this.ownDir) await rm(this.ownDir, { recursive: true, force: true });
    }
  }
}

function descriptorOf(o: VmdkExportOptions): { fileName: string; hwVersion?: number } {
  return o.hwVersion === undefined ? { fileName: o.fileName } : { fileName: o.fileName, hwVersion: o.hwVersion };
}
