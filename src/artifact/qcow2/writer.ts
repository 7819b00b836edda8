// Writes a standalone qcow2 v3 image, one guest cluster at a time in guest order.
//
// Layout, like QEMU's own: header (cluster 0), refcount table, refcount blocks, L1 table, the L2
// tables, then the data up to the end of the file, which is padded to a 512-byte sector only (QEMU's
// compressed writer does the same: "align end of file to a sector boundary"). Metadata at the end
// would need the data padded to a whole cluster first.
//
// Data placement follows QEMU's allocator (qcow2_alloc_bytes), so sizes match `qemu-img convert -c`:
// normal clusters take the next free cluster; compressed bytes are packed back to back into their
// own partly filled cluster, whose free tail stays usable after normal clusters were allocated
// behind it; compressed data spills into the following cluster only when that one is contiguous,
// otherwise the tail is abandoned and a fresh cluster started.
//
// So the metadata area is reserved before the data is known: the caller surveys the chain first
// (metadata only) and says which L2 ranges can hold data and how many clusters at most. Refcount
// blocks are reserved for the largest file that could result; the ones not needed stay unreferenced
// (free clusters, which `qemu-img check` accepts). Each L2 table is written into its slot as soon
// as guest order has passed its range, so one L2 table is held in memory, whatever the disk size.
// The header is written last: a file cut short never looks like a valid image.
import { open, type FileHandle } from "node:fs/promises";
import { SECTOR, additionalSectorsFor, encodeCompressedEntry, encodeHeader, encodeL1Entry, encodeNormalEntry, maxAdditionalSectors } from "./format.js";
import { RefcountCounter, encodeRefcountTable, planRefcounts } from "./refcount.js";
import { BufferPool } from "./zlib.js";
import { writeAllAt } from "../../util/write-all.js";

export const OUT_CLUSTER_BITS = 16;
export const OUT_CLUSTER_SIZE = 2 ** OUT_CLUSTER_BITS;
export const L2_ENTRIES = OUT_CLUSTER_SIZE / 8;
const FLUSH_BYTES = 1024 * 1024;

/** True when compressed data of `length` bytes fits a descriptor wherever it lands in a sector. */
export function fitsCompressedDescriptor(length: number): boolean {
  return length > 0 && length + (SECTOR - 1) <= (maxAdditionalSectors(OUT_CLUSTER_BITS) + 1) * SECTOR;
}

export interface WriterPlan {
  virtualSize: number;
  /** L1 indices (ascending) whose 512 MiB guest range may hold data: each gets an L2 slot. */
  l2Ranges: number[];
  /** Upper bound on guest clusters that will be written (compressed or normal). */
  maxDataClusters: number;
}

export interface Layout {
  l1Size: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  refcountBlocksOffset: number;
  /** Refcount blocks reserved (enough for the largest possible file). */
  refcountBlocksReserved: number;
  l1Offset: number;
  l1Clusters: number;
  l2Offset: number;
  dataOffset: number;
}

/**
 * Places the metadata. The data can take at most two clusters per data cluster (a normal cluster
 * after packed compressed bytes needs up to a cluster of alignment), which bounds the file and so
 * the refcount blocks and table ("Host cluster management": one block covers cluster_size * 8 /
 * refcount_bits clusters).
 */
export function planLayout(plan: WriterPlan): Layout {
  const cs = OUT_CLUSTER_SIZE;
  const l1Size = Math.ceil(plan.virtualSize / cs / L2_ENTRIES);
  const l1Clusters = Math.ceil((l1Size * 8) / cs);
  const fixed = 1 + l1Clusters + plan.l2Ranges.length; // header, L1, L2 slots
  const rc = planRefcounts(fixed + 2 * plan.maxDataClusters + 1, OUT_CLUSTER_BITS);
  const refcountTableOffset = cs;
  const refcountBlocksOffset = refcountTableOffset + rc.tableClusters * cs;
  const l1Offset = refcountBlocksOffset + rc.blocks * cs;
  const l2Offset = l1Offset + l1Clusters * cs;
  return {
    l1Size,
    refcountTableOffset,
    refcountTableClusters: rc.tableClusters,
    refcountBlocksOffset,
    refcountBlocksReserved: rc.blocks,
    l1Offset,
    l1Clusters,
    l2Offset,
    dataOffset: l2Offset + plan.l2Ranges.length * cs,
  };
}

export class Qcow2Writer {
  readonly layout: Layout;
  /** Next free cluster-aligned offset: the end of the allocated area. */
  private end: number;
  /** The cluster compressed bytes are being packed into (QEMU's free_byte_offset = cAt + cFill). */
  private cBuf: Buffer | undefined;
  private cAt = 0;
  private cFill = 0;
  private pending: Array<{ at: number; buf: Buffer }> = [];
  /** Packing clusters and copies of normal clusters, reused once written (see zlib.ts for why). */
  private readonly pool = new BufferPool(OUT_CLUSTER_SIZE, FLUSH_BYTES / OUT_CLUSTER_SIZE + 4);
  private pendingBytes = 0;
  private readonly refcounts = new RefcountCounter(OUT_CLUSTER_BITS);
  private readonly l1: Buffer;
  private readonly slots = new Map<number, number>(); // L1 index → L2 slot offset
  private l2 = Buffer.alloc(OUT_CLUSTER_SIZE);
  private l2Index = -1;
  private l2Used = false;
  private lastGuestCluster = -1;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly plan: WriterPlan,
  ) {
    this.layout = planLayout(plan);
    const L = this.layout;
    plan.l2Ranges.forEach((r, i) => this.slots.set(r, L.l2Offset + i * OUT_CLUSTER_SIZE));
    this.l1 = Buffer.alloc(L.l1Clusters * OUT_CLUSTER_SIZE);
    this.end = L.dataOffset;
    this.refcounts.add(0); // header
    this.refcounts.addClusters(L.refcountTableOffset, L.refcountTableClusters);
    this.refcounts.addClusters(L.l1Offset, L.l1Clusters);
  }

  static async create(path: string, plan: WriterPlan): Promise<Qcow2Writer> {
    return new Qcow2Writer(path, await open(path, "w", 0o644), plan);
  }

  get virtualSize(): number {
    return this.plan.virtualSize;
  }

  /** A compressed cluster (raw deflate, at most cluster_size - 1 bytes as QEMU writes them). */
  async addCompressed(guestCluster: number, data: Buffer): Promise<void> {
    if (!fitsCompressedDescriptor(data.length)) throw new RangeError(`compressed length ${data.length} does not fit a descriptor`);
    await this.enter(guestCluster);
    const at = await this.placeCompressed(data);
    this.l2.writeBigUInt64BE(encodeCompressedEntry(at, data.length, OUT_CLUSTER_BITS), (guestCluster % L2_ENTRIES) * 8);
    this.l2Used = true;
    this.refcounts.addCompressed(at, additionalSectorsFor(at, data.length));
  }

  /** A normal (uncompressed) cluster of exactly cluster_size bytes; copied, so the caller may reuse `data`. */
  async addNormal(guestCluster: number, data: Buffer): Promise<void> {
    if (data.length !== OUT_CLUSTER_SIZE) throw new RangeError(`normal cluster must be ${OUT_CLUSTER_SIZE} bytes, got ${data.length}`);
    await this.enter(guestCluster);
    const at = this.end;
    this.end += OUT_CLUSTER_SIZE;
    this.l2.writeBigUInt64BE(encodeNormalEntry(at, OUT_CLUSTER_BITS), (guestCluster % L2_ENTRIES) * 8);
    this.l2Used = true;
    this.refcounts.add(at / OUT_CLUSTER_SIZE);
    const copy = this.pool.take();
    data.copy(copy);
    await this.queue(at, copy);
  }

  /** Writes the remaining metadata and the header; returns the file size. */
  async finish(): Promise<number> {
    await this.writeL2();
    let fileSize = this.end;
    if (this.cBuf) {
      // The last cluster holds packed compressed bytes: end the file at their last sector.
      const used = Math.ceil(this.cFill / SECTOR) * SECTOR;
      if (this.cAt + OUT_CLUSTER_SIZE === this.end) fileSize = this.cAt + used;
      await this.queue(this.cAt, this.cBuf.subarray(0, used));
      this.cBuf = undefined;
    }
    await this.flush();
    // Unused L2 slots and padding are never written: give the file its full length.
    await this.fh.truncate(fileSize);
    const L = this.layout;
    const clusters = Math.ceil(fileSize / OUT_CLUSTER_SIZE);
    const perBlock = (OUT_CLUSTER_SIZE * 8) / 16;
    const blocks = Math.ceil(clusters / perBlock);
    if (blocks > L.refcountBlocksReserved) throw new Error(`internal: ${blocks} refcount blocks needed, ${L.refcountBlocksReserved} reserved`);
    this.refcounts.addClusters(L.refcountBlocksOffset, blocks);
    if (this.refcounts.length > clusters) throw new Error(`internal: refcounts reach cluster ${this.refcounts.length}, the file has ${clusters}`);
    for (let b = 0; b < blocks; b++) await writeAllAt(this.fh, this.refcounts.encodeBlock(b), L.refcountBlocksOffset + b * OUT_CLUSTER_SIZE);
    const table = encodeRefcountTable({ blocks, tableClusters: L.refcountTableClusters, totalClusters: clusters }, L.refcountBlocksOffset, OUT_CLUSTER_BITS);
    await writeAllAt(this.fh, table, L.refcountTableOffset);
    if (L.l1Clusters > 0) await writeAllAt(this.fh, this.l1, L.l1Offset);
    const header = Buffer.alloc(OUT_CLUSTER_SIZE);
    encodeHeader({
      clusterBits: OUT_CLUSTER_BITS,
      size: this.plan.virtualSize,
      l1Size: L.l1Size,
      // An empty image has l1_size 0 and l1_table_offset 0, as qemu-img create writes it.
      l1TableOffset: L.l1Size > 0 ? L.l1Offset : 0,
      refcountTableOffset: L.refcountTableOffset,
      refcountTableClusters: L.refcountTableClusters,
    }).copy(header);
    await writeAllAt(this.fh, header, 0);
    return fileSize;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  /** Where compressed bytes go (QEMU's qcow2_alloc_bytes), copying them into the packing cluster(s). */
  private async placeCompressed(data: Buffer): Promise<number> {
    const cs = OUT_CLUSTER_SIZE;
    // A cluster whose refcount is at the 16-bit maximum takes no more compressed clusters (QEMU: refcount_max).
    const open = this.cBuf !== undefined && this.refcounts.get(this.cAt / cs) < 0xffff;
    let at: number;
    if (open && cs - this.cFill >= data.length) at = this.cAt + this.cFill;
    else if (open && this.cAt + cs === this.end) at = this.cAt + this.cFill; // spill into the next, contiguous cluster
    else {
      await this.retirePacking();
      this.openPacking();
      at = this.cAt;
    }
    let src = 0;
    while (src < data.length) {
      if (!this.cBuf) this.openPacking();
      const n = Math.min(data.length - src, cs - this.cFill);
      data.copy(this.cBuf!, this.cFill, src, src + n);
      this.cFill += n;
      src += n;
      if (this.cFill === cs) await this.retirePacking();
    }
    return at;
  }

  private openPacking(): void {
    this.cBuf = this.pool.takeZeroed(); // zeroed: an abandoned tail is written as zeros
    this.cAt = this.end;
    this.cFill = 0;
    this.end += OUT_CLUSTER_SIZE;
  }

  private async retirePacking(): Promise<void> {
    if (!this.cBuf) return;
    const buf = this.cBuf;
    this.cBuf = undefined;
    await this.queue(this.cAt, buf);
  }

  /** Guest clusters come in increasing order; leaving an L2 range writes its finished table. */
  private async enter(guestCluster: number): Promise<void> {
    if (guestCluster <= this.lastGuestCluster) throw new Error(`internal: guest cluster ${guestCluster} after ${this.lastGuestCluster}`);
    if (guestCluster * OUT_CLUSTER_SIZE >= this.plan.virtualSize) throw new RangeError(`guest cluster ${guestCluster} is past the virtual size`);
    this.lastGuestCluster = guestCluster;
    const index = Math.floor(guestCluster / L2_ENTRIES);
    if (index !== this.l2Index) {
      await this.writeL2();
      if (!this.slots.has(index)) throw new Error(`internal: data in L2 range ${index}, which the survey found empty`);
      this.l2Index = index;
    }
  }

  /** An L2 table that ended up empty keeps L1 entry 0 and its slot stays a free cluster. */
  private async writeL2(): Promise<void> {
    if (!this.l2Used) return;
    const at = this.slots.get(this.l2Index)!;
    this.l1.writeBigUInt64BE(encodeL1Entry(at, OUT_CLUSTER_BITS), this.l2Index * 8);
    this.refcounts.add(at / OUT_CLUSTER_SIZE);
    await writeAllAt(this.fh, this.l2, at);
    this.l2 = Buffer.alloc(OUT_CLUSTER_SIZE);
    this.l2Used = false;
  }

  private async queue(at: number, buf: Buffer): Promise<void> {
    this.pending.push({ at, buf });
    this.pendingBytes += buf.length;
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush();
  }

  /** Writes queued clusters, one writev per contiguous run (packing clusters complete out of order). */
  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const items = this.pending.sort((a, b) => a.at - b.at);
    this.pending = [];
    this.pendingBytes = 0;
    let i = 0;
    while (i < items.length) {
      const at = items[i]!.at;
      const run: Buffer[] = [];
      let len = 0;
      // IOV_MAX is 1024 on Linux.
      while (i < items.length && items[i]!.at === at + len && run.length < 1024) {
        run.push(items[i]!.buf);
        len += items[i]!.buf.length;
        i++;
      }
      const { bytesWritten } = await this.fh.writev(run, at);
      // writev may write less than asked: finish the rest.
      if (bytesWritten !== len) await writeAllAt(this.fh, Buffer.concat(run).subarray(bytesWritten), at + bytesWritten);
      for (const b of run) this.pool.give(b);
    }
  }
}
