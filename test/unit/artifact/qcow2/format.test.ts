// The pure parts, with tables: L1/L2 entry decoding and encoding, compressed descriptor sector
// math, headers (ours and qemu-img's), refcount counting and layout.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  COMPRESSION_ZSTD,
  EXT_BACKING_FORMAT,
  EXT_FEATURE_TABLE,
  additionalSectorsFor,
  compressedHostClusters,
  compressedSpanBytes,
  decodeL1,
  decodeL2,
  encodeCompressedEntry,
  encodeHeader,
  encodeL1Entry,
  encodeNormalEntry,
  parseHeader,
  unknownIncompatibleBits,
  type L2Entry,
} from "../../../../src/artifact/qcow2/format.js";
import { CompressedIndex } from "../../../../src/artifact/qcow2/read.js";
import { RefcountCounter, encodeRefcountTable, planRefcounts } from "../../../../src/artifact/qcow2/refcount.js";
import { planLayout } from "../../../../src/artifact/qcow2/writer.js";
import { tmp } from "../helpers.js";
import { run } from "./chains.js";

const t = tmp("vmkiln-qcow2-fmt-");
afterAll(() => t.cleanup());

describe("L2 entries", () => {
  const cases: Array<[string, bigint, number, L2Entry]> = [
    ["0 is unallocated", 0n, 16, { kind: "unallocated" }],
    ["zero flag, no preallocation", 1n, 16, { kind: "zero", hostOffset: 0 }],
    ["zero flag over a preallocated cluster", 0x50000n | 1n, 16, { kind: "zero", hostOffset: 0x50000 }],
    ["normal with COPIED", (1n << 63n) | 0x50000n, 16, { kind: "normal", hostOffset: 0x50000, copied: true }],
    ["normal without COPIED (shared by a snapshot)", 0x50000n, 16, { kind: "normal", hostOffset: 0x50000, copied: false }],
    ["normal, high offset bits 32-52", 0x001f_cdef_0000_0000n, 16, { kind: "normal", hostOffset: 0x1fcdef * 2 ** 32, copied: false }],
    ["offsets past 2^53 (8 PiB) are refused, not rounded", 0x00ab_cdef_0000_0000n, 16, { kind: "invalid", reason: "host offset beyond 2^53" }],
    ["reserved bits 1-8 are ignored", 0x50000n | 0x1fen, 16, { kind: "normal", hostOffset: 0x50000, copied: false }],
    ["unaligned standard offset", 0x50200n, 16, { kind: "invalid", reason: "cluster offset 0x50200 is not cluster aligned" }],
    ["512-byte clusters: any sector is aligned", 0x50200n, 9, { kind: "normal", hostOffset: 0x50200, copied: false }],
    // x = 62 - (16 - 8) = 54: offset in bits 0-53, additional sectors in 54-61.
    ["compressed, 64 KiB clusters", (1n << 62n) | (3n << 54n) | 0x123456n, 16, { kind: "compressed", hostOffset: 0x123456, additionalSectors: 3 }],
    ["compressed, max sectors field (255)", (1n << 62n) | (255n << 54n) | 0x10000n, 16, { kind: "compressed", hostOffset: 0x10000, additionalSectors: 255 }],
    ["compressed ignores COPIED", (3n << 62n) | 0x200n, 16, { kind: "compressed", hostOffset: 0x200, additionalSectors: 0 }],
    // x = 62 - (12 - 8) = 58: 4 bits of sectors.
    ["compressed, 4 KiB clusters", (1n << 62n) | (15n << 58n) | 0x2_0000_0001n, 12, { kind: "compressed", hostOffset: 0x2_0000_0001, additionalSectors: 15 }],
    // x = 62 - (21 - 8) = 49: 13 bits of sectors.
    ["compressed, 2 MiB clusters", (1n << 62n) | (0x1fffn << 49n) | 0x1_ffff_ffff_ffffn, 21, { kind: "compressed", hostOffset: 0x1_ffff_ffff_ffff, additionalSectors: 0x1fff }],
  ];
  it.each(cases)("%s", (_name, entry, bits, want) => {
    expect(decodeL2(entry, bits)).toEqual(want);
  });

  it("encodes what it decodes", () => {
    expect(encodeNormalEntry(0x30000, 16)).toBe((1n << 63n) | 0x30000n);
    expect(() => encodeNormalEntry(0x30200, 16)).toThrow(RangeError);
    expect(encodeL1Entry(0x70000, 16)).toBe((1n << 63n) | 0x70000n);
    for (const [off, len] of [
      [0x10000, 1],
      [0x10000, 512],
      [0x10000, 513],
      [0x101ff, 2],
      [0x123456, 65535],
      [2 ** 40 + 77, 30000],
    ] as const) {
      const e = encodeCompressedEntry(off, len, 16);
      expect(e & (1n << 63n)).toBe(0n); // never COPIED on compressed clusters
      const d = decodeL2(e, 16);
      expect(d).toEqual({ kind: "compressed", hostOffset: off, additionalSectors: additionalSectorsFor(off, len) });
      // The span covers the data and ends on a sector boundary.
      const span = compressedSpanBytes(off, additionalSectorsFor(off, len));
      expect(span).toBeGreaterThanOrEqual(len);
      expect((off + span) % 512).toBe(0);
      expect(span - len).toBeLessThan(512);
    }
    expect(() => encodeCompressedEntry(0x10000, 256 * 512 + 1, 16)).toThrow(RangeError);
  });
});

describe("L1 entries", () => {
  it.each([
    [0n, { kind: "unallocated" }],
    [(1n << 63n) | 0x30000n, { kind: "l2", offset: 0x30000, copied: true }],
    [0x30000n, { kind: "l2", offset: 0x30000, copied: false }],
    [0x30200n, { kind: "invalid", reason: "L2 table offset 0x30200 is not cluster aligned" }],
  ] as const)("%s", (entry, want) => {
    expect(decodeL1(entry, 16)).toEqual(want);
  });
});

describe("compressed descriptor sector math (what qemu-img check counts)", () => {
  it.each([
    // offset, additional sectors → span bytes, host clusters touched
    [0x10000, 0, 512, 1, 1],
    [0x10000 + 412, 0, 100, 1, 1], // ends exactly at the end of its sector
    [0x20000 - 100, 0, 100, 1, 1], // ends exactly at the cluster boundary: does not touch the next cluster
    [0x20000 - 100, 1, 612, 1, 2], // one more sector: reaches into cluster 2
    [0x1ffdc, 1, 548, 1, 2],
    [0x10000, 127, 65536, 1, 1], // exactly one cluster
    [0x10000 + 1, 128, 66047, 1, 2],
  ])("offset %i + %i sectors", (off, nb, span, first, last) => {
    expect(compressedSpanBytes(off, nb)).toBe(span);
    expect(compressedHostClusters(off, nb, 16)).toEqual({ first, last });
  });

  it("the next compressed cluster bounds the length; the span end bounds the last one", () => {
    const idx = new CompressedIndex(Float64Array.from([1000, 5000, 9000]));
    expect(idx.lengthBound(1000, 4500)).toBe(4000); // next starts at 5000
    expect(idx.lengthBound(1000, 3000)).toBe(3000); // span ends before the next one
    expect(idx.lengthBound(9000, 600)).toBe(600); // last one: the span
  });
});

describe("headers", () => {
  it("round-trips our header and reads qemu-img's v3 and v2 headers with their extensions", () => {
    const ours = encodeHeader({ clusterBits: 16, size: 2 ** 31, l1Size: 4, l1TableOffset: 0x30000, refcountTableOffset: 0x10000, refcountTableClusters: 1 });
    const h = parseHeader(Buffer.concat([ours, Buffer.alloc(65536 - ours.length)]));
    expect(h).toMatchObject({ version: 3, clusterBits: 16, size: 2 ** 31, l1Size: 4, l1TableOffset: 0x30000, refcountTableOffset: 0x10000, refcountOrder: 4, headerLength: 112, compressionType: 0, backingFile: undefined });
    expect(h.extensions).toEqual([EXT_FEATURE_TABLE]);
    expect(h.featureNames).toContainEqual({ type: 0, bit: 4, name: "extended L2 entries" });

    const base = join(t.dir, "b.qcow2");
    run("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "compat=0.10", base, "1M"]);
    const v2 = parseHeader(readFileSync(base).subarray(0, 65536));
    expect(v2).toMatchObject({ version: 2, headerLength: 72, refcountOrder: 4, incompatibleFeatures: 0n, compressionType: 0 });

    const ov = join(t.dir, "o.qcow2");
    run("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "compression_type=zstd", "-b", "b.qcow2", "-F", "qcow2", ov, "3M"]);
    const v3 = parseHeader(readFileSync(ov).subarray(0, 65536));
    expect(v3).toMatchObject({ version: 3, size: 3 * 1024 * 1024, backingFile: "b.qcow2", backingFormat: "qcow2", compressionType: COMPRESSION_ZSTD, incompatibleFeatures: 1n << 3n });
    expect(v3.extensions).toEqual([EXT_BACKING_FORMAT, EXT_FEATURE_TABLE]);
    expect(unknownIncompatibleBits({ ...v3, incompatibleFeatures: (1n << 3n) | (1n << 7n) | (1n << 40n) })).toEqual(["bit 7", "bit 40"]);
  });

  it("refuses what is not a qcow2 header", () => {
    expect(() => parseHeader(Buffer.alloc(512))).toThrow(/no qcow2 header/);
    const bad = encodeHeader({ clusterBits: 16, size: 0, l1Size: 0, l1TableOffset: 0, refcountTableOffset: 0x10000, refcountTableClusters: 1 });
    bad.writeUInt32BE(30, 20);
    expect(() => parseHeader(bad)).toThrow(/cluster_bits 30/);
  });
});

describe("refcounts", () => {
  it.each([
    // used clusters → blocks, table clusters, total (one 64 KiB block of 16-bit entries covers 32768 clusters)
    [1, 1, 1, 3],
    [32766, 1, 1, 32768],
    [32767, 2, 1, 32770],
    [8192 * 32768, 8193, 2, 8192 * 32768 + 8195], // the table itself overflows one cluster
  ])("planRefcounts(%i)", (used, blocks, tableClusters, totalClusters) => {
    const p = planRefcounts(used, 16);
    expect(p).toEqual({ blocks, tableClusters, totalClusters });
    expect(p.blocks * 32768).toBeGreaterThanOrEqual(p.totalClusters);
  });

  it("counts compressed clusters per touched host cluster, like qemu-img check", () => {
    const rc = new RefcountCounter(16);
    rc.add(0);
    rc.addCompressed(0x10000, additionalSectorsFor(0x10000, 700)); // cluster 1
    rc.addCompressed(0x10000 + 700, additionalSectorsFor(0x10000 + 700, 65000)); // clusters 1 and 2
    rc.addCompressed(0x20000 + 100, additionalSectorsFor(0x20000 + 100, 50)); // cluster 2, sharing a sector
    rc.add(3);
    expect([0, 1, 2, 3, 4].map((c) => rc.get(c))).toEqual([1, 2, 2, 1, 0]);
    const block = rc.encodeBlock(0);
    expect([0, 1, 2, 3, 4].map((c) => block.readUInt16BE(c * 2))).toEqual([1, 2, 2, 1, 0]);
    const table = encodeRefcountTable({ blocks: 2, tableClusters: 1, totalClusters: 40000 }, 0x50000, 16);
    expect([table.readBigUInt64BE(0), table.readBigUInt64BE(8), table.readBigUInt64BE(16)]).toEqual([0x50000n, 0x60000n, 0n]);
  });

  it("reserves refcount blocks for the largest file the data can make", () => {
    // 2 GiB guest, 4 L2 ranges with data, 32768 data clusters: up to 4 GiB of file → 2 blocks.
    const L = planLayout({ virtualSize: 2 ** 31, l2Ranges: [0, 1, 2, 3], maxDataClusters: 32768 });
    expect(L).toMatchObject({ l1Size: 4, l1Clusters: 1, refcountTableOffset: 0x10000, refcountTableClusters: 1, refcountBlocksReserved: 3 });
    expect(L.dataOffset).toBe(L.l2Offset + 4 * 0x10000);
    expect(planLayout({ virtualSize: 0, l2Ranges: [], maxDataClusters: 0 })).toMatchObject({ l1Size: 0, l1Clusters: 0, refcountBlocksReserved: 1 });
  });
});
