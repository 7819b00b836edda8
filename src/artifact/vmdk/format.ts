// The on-disk structures of a streamOptimized VMDK, as VMware's "Virtual Disk Format 5.0" technical
// note lays them out (section names below are the note's):
//
//   sector 0            SparseExtentHeader ("Hosted Sparse Extent Header"), gdOffset = GD_AT_END
//   sectors 1..20       the embedded descriptor ("The Descriptor File"), zero-padded
//   sector 128 on       one grain after another, each a grain marker (lba, size) followed by a zlib
//                       stream of the grain, padded to a sector ("Stream-Optimized Compressed Sparse
//                       Extents", compressed grain format)
//                       after the grains of each grain table's range: a grain table marker and the
//                       grain table (512 entries = 4 sectors: sector offsets of the grain markers,
//                       0 for a grain never written, which reads as zeros)
//   at the end          grain directory marker + grain directory (sector offsets of the tables),
//                       footer marker + footer (the header again, with the real gdOffset), and the
//                       end-of-stream marker: "The footer should be the last block of the disk and
//                       immediately followed by the end-of-stream marker" (ESXi refuses an OVF whose
//                       VMDK lacks the EOS marker: qemu-project/qemu issue 1357).
//
// Every table is written after the grains it points to, so the whole file is produced front to back
// in one pass (what makes it streamable into a tar). Empty grain tables are written too (all zero
// entries) rather than left out with a 0 directory entry: every reader takes a table of zeros, and it
// costs 2.5 KiB per 32 MiB of disk.
//
// Header fields as QEMU's block/vmdk.c VMDK4Header declares them (packed, little-endian), flags and
// marker types as its VMDK4_FLAG_* and MARKER_* constants; the descriptor follows QEMU's
// vmdk_co_do_create template and VMware's open-vmdk (vmdk/sparse.c makeDiskDescriptorFile).
import { createHash } from "node:crypto";

export const SECTOR = 512;
/** Grain size in sectors: 64 KiB, the size of the flattener's clusters. */
export const GRAIN_SECTORS = 128;
export const GRAIN_BYTES = GRAIN_SECTORS * SECTOR;
export const GTES_PER_GT = 512;
/** Sectors of one grain table (512 four-byte entries). */
export const GT_SECTORS = (GTES_PER_GT * 4) / SECTOR;
export const DESCRIPTOR_OFFSET = 1;
/** QEMU reads the embedded descriptor as 20 sectors (DESC_SIZE); ours must fit them. */
export const DESCRIPTOR_SECTORS = 20;
/** First grain at sector 128 (64 KiB), as VMware's and QEMU's writers align it (overHead). */
export const OVERHEAD_SECTORS = 128;
/** Grain table entries and directory entries are 32-bit sector numbers: the file must stay below 2 TiB. */
export const MAX_FILE_SECTORS = 2 ** 32 - 1;

export const FLAG_NL_DETECT = 1 << 0;
export const FLAG_COMPRESSED = 1 << 16;
export const FLAG_MARKERS = 1 << 17;
export const COMPRESS_DEFLATE = 1;
export const GD_AT_END = 0xffff_ffff_ffff_ffffn;

export const MARKER_EOS = 0;
export const MARKER_GT = 1;
export const MARKER_GD = 2;
export const MARKER_FOOTER = 3;
/** A grain marker: lba (uint64) and size (uint32), then the compressed data. */
export const GRAIN_MARKER_BYTES = 12;

/**
 * RFC 1950 header: CM 8 (deflate), CINFO 7 (32 KiB window: valid for any deflate stream, including
 * QEMU's 4 KiB-window clusters), FLEVEL 2 (default), FCHECK making 0x789c a multiple of 31.
 */
export const ZLIB_HEADER = Buffer.from([0x78, 0x9c]);

export interface HeaderFields {
  capacitySectors: number;
  /** Sector of the grain directory (footer), or undefined for GD_AT_END (header). */
  gdSector?: number;
}

export function encodeHeader(h: HeaderFields): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.write("KDMV", 0, "latin1"); // magicNumber 0x564d444b, little-endian
  b.writeUInt32LE(3, 4); // version 3: compressed grains
  b.writeUInt32LE(FLAG_NL_DETECT | FLAG_COMPRESSED | FLAG_MARKERS, 8);
  b.writeBigUInt64LE(BigInt(h.capacitySectors), 12);
  b.writeBigUInt64LE(BigInt(GRAIN_SECTORS), 20);
  b.writeBigUInt64LE(BigInt(DESCRIPTOR_OFFSET), 28);
  b.writeBigUInt64LE(BigInt(DESCRIPTOR_SECTORS), 36);
  b.writeUInt32LE(GTES_PER_GT, 44);
  b.writeBigUInt64LE(0n, 48); // rgdOffset: no redundant directory in a stream
  b.writeBigUInt64LE(h.gdSector === undefined ? GD_AT_END : BigInt(h.gdSector), 56);
  b.writeBigUInt64LE(BigInt(OVERHEAD_SECTORS), 64);
  b[72] = 0; // uncleanShutdown
  b[73] = 0x0a; // singleEndLineChar, nonEndLineChar, doubleEndLineChar1/2: the newline detector
  b[74] = 0x20;
  b[75] = 0x0d;
  b[76] = 0x0a;
  b.writeUInt16LE(COMPRESS_DEFLATE, 77);
  return b;
}

/** A marker sector: value (sectors that follow, or 0), size 0, type. */
export function encodeMarker(type: number, value: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.writeBigUInt64LE(BigInt(value), 0);
  b.writeUInt32LE(0, 8);
  b.writeUInt32LE(type, 12);
  return b;
}

export interface DescriptorParams {
  /** The extent's file name as the OVA/OVF names it (the descriptor's extent line). */
  fileName: string;
  capacitySectors: number;
  /** ddb.virtualHWVersion (default "4", as qemu-img and open-vmdk write it; ESX 3 era, ignored since). */
  hwVersion?: number;
  /** ddb.adapterType: the OVF's controller is LSI Logic. */
  adapterType?: "lsilogic" | "ide" | "buslogic" | "legacyESX";
}

/** Why a file name cannot go into the extent line (it is quoted, one line, ASCII), or undefined. */
export function extentNameProblem(name: string): string | undefined {
  if (!/^[\x21-\x7e ]+$/.test(name) || name.includes('"')) return `${JSON.stringify(name)} is not a plain ASCII name without quotes`;
  return undefined;
}

/**
 * The descriptor. CID ("content ID") is derived from the name and capacity rather than random, so
 * the same disk exported twice gives the same bytes (the two passes of an OVA export depend on it,
 * and builds stay reproducible); it never is ffffffff or fffffffe, which mean "no parent".
 * Geometry as VMware's writer computes it for a non-IDE adapter: 255 heads, 63 sectors, cylinders
 * rounded up and capped at 65535 (open-vmdk makeDiskDescriptorFile).
 */
export function encodeDescriptor(p: DescriptorParams): Buffer {
  const problem = extentNameProblem(p.fileName);
  if (problem) throw new Error(`VMDK extent name ${problem}`);
  let cid = createHash("sha256").update(`${p.fileName}\0${p.capacitySectors}`).digest().readUInt32BE(0);
  if (cid >= 0xffff_fffe) cid = 0x1234_5678;
  const cylinders = Math.min(65535, Math.ceil(p.capacitySectors / (255 * 63)));
  const text =
    "# Disk DescriptorFile\n" +
    "version=1\n" +
    'encoding="UTF-8"\n' +
    `CID=${cid.toString(16).padStart(8, "0")}\n` +
    "parentCID=ffffffff\n" +
    'createType="streamOptimized"\n' +
    "\n" +
    "# Extent description\n" +
    `RW ${p.capacitySectors} SPARSE "${p.fileName}"\n` +
    "\n" +
    "# The Disk Data Base\n" +
    "#DDB\n" +
    "\n" +
    `ddb.virtualHWVersion = "${p.hwVersion ?? 4}"\n` +
    `ddb.geometry.cylinders = "${cylinders}"\n` +
    'ddb.geometry.heads = "255"\n' +
    'ddb.geometry.sectors = "63"\n' +
    `ddb.adapterType = "${p.adapterType ?? "lsilogic"}"\n` +
    'ddb.toolsVersion = "2147483647"\n';
  const b = Buffer.alloc(DESCRIPTOR_SECTORS * SECTOR);
  const n = b.write(text, 0, "latin1");
  if (n !== text.length || n >= b.length) throw new Error("VMDK descriptor does not fit 20 sectors");
  return b;
}

/** Bytes a grain takes in the file: marker, zlib header, deflate data, Adler-32, padded to a sector. */
export function grainBytes(deflateLength: number): number {
  return Math.ceil((GRAIN_MARKER_BYTES + ZLIB_HEADER.length + deflateLength + 4) / SECTOR) * SECTOR;
}
