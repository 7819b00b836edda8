// Refcounts for the image we write ("Host cluster management"). `qemu-img check` recomputes every
// host cluster's refcount from the metadata and reports any difference as a leak (ours too high) or
// an error (too low), so these must be exact: header 1, each L1/L2/refcount cluster 1, a normal data
// cluster 1, and for compressed data +1 on every host cluster its sector span touches, once per
// compressed cluster.
import { BuildError } from "../../errors.js";
import { compressedHostClusters } from "./format.js";

/** Growable per-host-cluster counter. */
export class RefcountCounter {
  private counts = new Uint32Array(1024);
  private used = 0;

  constructor(readonly clusterBits: number) {}

  /** Number of host clusters covered so far (highest referenced cluster + 1). */
  get length(): number {
    return this.used;
  }

  get(cluster: number): number {
    return cluster < this.used ? this.counts[cluster]! : 0;
  }

  add(cluster: number, n = 1): void {
    if (cluster >= this.counts.length) {
      let cap = this.counts.length;
      while (cap <= cluster) cap *= 2;
      const next = new Uint32Array(cap);
      next.set(this.counts);
      this.counts = next;
    }
    this.counts[cluster]! += n;
    if (cluster >= this.used) this.used = cluster + 1;
  }

  /** `count` consecutive clusters starting at byte offset `offset` (cluster aligned). */
  addClusters(offset: number, count: number): void {
    const first = offset / 2 ** this.clusterBits;
    for (let c = first; c < first + count; c++) this.add(c);
  }

  /** A compressed cluster written at `hostOffset` with this "additional sectors" value. */
  addCompressed(hostOffset: number, additionalSectors: number): void {
    const { first, last } = compressedHostClusters(hostOffset, additionalSectors, this.clusterBits);
    for (let c = first; c <= last; c++) this.add(c);
  }

  max(): number {
    let m = 0;
    for (let i = 0; i < this.used; i++) if (this.counts[i]! > m) m = this.counts[i]!;
    return m;
  }

  /** The refcount block `index` (entries for clusters index*E .. index*E+E-1), 16-bit big endian. */
  encodeBlock(index: number, refcountOrder = 4): Buffer {
    if (refcountOrder !== 4) throw new RangeError("only 16-bit refcounts are written");
    const cs = 2 ** this.clusterBits;
    const entries = cs / 2;
    const block = Buffer.alloc(cs);
    const start = index * entries;
    const end = Math.min(this.used, start + entries);
    for (let c = start; c < end; c++) {
      const v = this.counts[c]!;
      if (v > 0xffff) throw new BuildError("QCOW2_REFCOUNT_OVERFLOW", `host cluster ${c} would need refcount ${v} (16-bit refcounts hold at most 65535)`);
      block.writeUInt16BE(v, (c - start) * 2);
    }
    return block;
  }
}

export interface RefcountLayout {
  /** Refcount blocks needed to cover every cluster of the file, including themselves and the table. */
  blocks: number;
  /** Clusters the refcount table occupies. */
  tableClusters: number;
  /** Total host clusters of the file once blocks and table are appended. */
  totalClusters: number;
}

/**
 * Sizes the refcount structures appended after `usedClusters` clusters: the blocks must cover every
 * cluster including the blocks and the table themselves, and the table must hold one 8-byte entry
 * per block ("Host cluster management": refcount_block_entries = cluster_size * 8 / refcount_bits).
 * Adding blocks can need more table and vice versa, so iterate until nothing changes.
 */
export function planRefcounts(usedClusters: number, clusterBits: number, refcountOrder = 4): RefcountLayout {
  const cs = 2 ** clusterBits;
  const perBlock = (cs * 8) / 2 ** refcountOrder;
  let blocks = 0;
  let tableClusters = 0;
  for (;;) {
    const total = usedClusters + blocks + tableClusters;
    const needBlocks = Math.ceil(total / perBlock);
    const needTable = Math.max(1, Math.ceil((needBlocks * 8) / cs));
    if (needBlocks === blocks && needTable === tableClusters) return { blocks, tableClusters, totalClusters: total };
    blocks = needBlocks;
    tableClusters = needTable;
  }
}

/** Refcount table: entry i = byte offset of block i (blocks stored contiguously from `firstBlockOffset`). */
export function encodeRefcountTable(layout: RefcountLayout, firstBlockOffset: number, clusterBits: number): Buffer {
  const cs = 2 ** clusterBits;
  const table = Buffer.alloc(layout.tableClusters * cs);
  for (let i = 0; i < layout.blocks; i++) table.writeBigUInt64BE(BigInt(firstBlockOffset + i * cs), i * 8);
  return table;
}
