// vmkiln's streamOptimized VMDK writer against real qcow2 chains built with qemu-img/qemu-io: the
// VMDK must read exactly like the source (qemu-img compare), pass qemu-img check, be what it says
// (createType streamOptimized, compressed grains, footer and end-of-stream marker), and the OVA
// path's two passes must produce the same bytes.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import zlib from "node:zlib";
import { afterAll, describe, expect, it, vi } from "vitest";
import { measureStreamOptimizedVmdk, writeStreamOptimizedVmdk, type VmdkWritten } from "../../../../src/artifact/vmdk/export.js";
import { Deflaters, adler32 } from "../../../../src/artifact/qcow2/zlib.js";
import { AbortError } from "../../../../src/errors.js";
import { EventBus } from "../../../../src/log/events.js";
import { tmp } from "../helpers.js";
import { MiB, convertCompressed, makeRawBase, overlay, qemuIo, randomFile, run } from "../qcow2/chains.js";

const t = tmp("vmkiln-vmdk-");
afterAll(() => (process.env["VMDK_TEST_KEEP"] ? console.log(`kept ${t.dir}`) : t.cleanup()));
const signal = new AbortController().signal;
const events = new EventBus();

let n = 0;
function dirFor(name: string): string {
  const d = join(t.dir, `${++n}-${name}`);
  run("mkdir", ["-p", d]);
  return d;
}

/** What every VMDK we write must satisfy against its source. */
export function checkVmdk(src: string, vmdk: string): void {
  const cmp = spawnSync("qemu-img", ["compare", "-f", "qcow2", "-F", "vmdk", src, vmdk], { encoding: "utf8" });
  expect(cmp.stdout + cmp.stderr, "qemu-img compare").toContain("Images are identical");
  expect(cmp.status).toBe(0);
  const check = spawnSync("qemu-img", ["check", "-f", "vmdk", vmdk], { encoding: "utf8" });
  expect(check.status, `qemu-img check: ${check.stdout}${check.stderr}`).toBe(0);
  expect(check.stdout).toContain("No errors were found");
  const info = JSON.parse(run("qemu-img", ["info", "--output=json", "-f", "vmdk", vmdk])) as { "virtual-size": number; "format-specific": { data: { "create-type": string; extents: Array<{ compressed?: boolean; "cluster-size": number }> } } };
  expect(info["format-specific"].data["create-type"]).toBe("streamOptimized");
  expect(info["format-specific"].data.extents[0]!.compressed).toBe(true);
  expect(info["format-specific"].data.extents[0]!["cluster-size"]).toBe(65536);
  const srcInfo = JSON.parse(run("qemu-img", ["info", "--output=json", src])) as { "virtual-size": number };
  expect(info["virtual-size"]).toBe(srcInfo["virtual-size"]);
  checkStructure(readFileSync(vmdk));
}

/**
 * Walks the file as a streaming reader would (Virtual Disk Format 5.0, "Stream-Optimized Compressed
 * Sparse Extents"): header with GD_AT_END, then markers and grains to the end-of-stream marker; each
 * grain is a valid zlib stream (checked by zlib itself, Adler-32 included) of its grain's bytes;
 * footer + EOS are the last two sectors; the footer's grain directory points at the tables.
 */
function checkStructure(f: Buffer): void {
  expect(f.subarray(0, 4).toString("latin1")).toBe("KDMV");
  expect(f.readUInt32LE(8)).toBe(0x30001);
  expect(f.readBigUInt64LE(56)).toBe(0xffff_ffff_ffff_ffffn);
  expect(f.readUInt16LE(77)).toBe(1);
  expect(f.length % 512).toBe(0);
  const capacity = Number(f.readBigUInt64LE(12));
  const eos = f.subarray(f.length - 512);
  expect(eos.equals(Buffer.alloc(512))).toBe(true);
  const footerMarker = f.subarray(f.length - 1536, f.length - 1024);
  expect(footerMarker.readUInt32LE(12)).toBe(3);
  const footer = f.subarray(f.length - 1024, f.length - 512);
  expect(footer.subarray(0, 56).equals(f.subarray(0, 56))).toBe(true);
  const gd = Number(footer.readBigUInt64LE(56));
  const gdMarker = f.subarray((gd - 1) * 512, gd * 512);
  expect(gdMarker.readUInt32LE(12)).toBe(2);
  let pos = 128 * 512;
  let grains = 0;
  while (pos < f.length) {
    const size = f.readUInt32LE(pos + 8);
    if (size > 0) {
      const lba = Number(f.readBigUInt64LE(pos));
      expect(lba % 128).toBe(0);
      const data = zlib.inflateSync(f.subarray(pos + 12, pos + 12 + size));
      expect(data.length).toBe(Math.min(65536, (capacity - lba) * 512));
      grains++;
      pos += Math.ceil((12 + size) / 512) * 512;
    } else {
      const type = f.readUInt32LE(pos + 12);
      if (type === 0) break;
      pos += 512 + Number(f.readBigUInt64LE(pos)) * 512;
    }
  }
  expect(pos).toBe(f.length - 512);
  expect(grains).toBeGreaterThanOrEqual(0);
}

function written(r: Awaited<ReturnType<typeof writeStreamOptimizedVmdk>>): VmdkWritten {
  if (r.kind !== "written") throw new Error(`unexpected: ${r.reason}`);
  return r;
}

async function writeAndCheck(src: string, dir: string): Promise<VmdkWritten> {
  const out = join(dir, "disk1.vmdk");
  const r = written(await writeStreamOptimizedVmdk(out, { src, fileName: "disk1.vmdk", signal, events }));
  checkVmdk(src, out);
  const bytes = readFileSync(out);
  expect(r.size).toBe(bytes.length);
  expect(r.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
  expect(existsSync(`${out}.partial`)).toBe(false);
  // The OVA path's two passes give the same bytes as the file, and pass 2 deflates nothing: what
  // pass 1 deflated (changed clusters) comes back from the spill file, which is gone afterwards.
  const spillDir = join(dir, "spill");
  mkdirSync(spillDir);
  const deflate = vi.spyOn(Deflaters.prototype, "deflate");
  try {
    const m = await measureStreamOptimizedVmdk({ src, fileName: "disk1.vmdk", signal, events, spillDir });
    if (m.kind !== "measured") throw new Error(m.reason);
    try {
      expect(m.size).toBe(r.size);
      expect(m.sha256).toBe(r.sha256);
      expect(deflate).toHaveBeenCalledTimes(m.stats.clusters.compressed);
      expect(m.spilled.clusters).toBeGreaterThanOrEqual(m.stats.clusters.compressed);
      expect(readdirSync(spillDir)).toHaveLength(1);
      deflate.mockClear();
      const chunks: Buffer[] = [];
      const buffers = new Set<ArrayBufferLike>();
      // A chunk's buffer is reused once the next chunk is asked for: keep a copy.
      for await (const c of m.stream(signal)) {
        chunks.push(Buffer.from(c));
        buffers.add(c.buffer);
      }
      expect(deflate, "pass 2 deflates").not.toHaveBeenCalled();
      // Pass 2 reuses its chunk buffers (a new 1 MiB buffer per chunk put ~45 MB of late-collected
      // garbage on the OVA export's peak RSS): at most the pool's 8 plus one.
      expect(buffers.size).toBeLessThanOrEqual(Math.min(chunks.length, 9));
      expect(chunks.length).toBeGreaterThanOrEqual(Math.floor(r.size / MiB));
      expect(Buffer.concat(chunks).equals(bytes), "pass 2's bytes are the one-pass file's").toBe(true);
    } finally {
      await m.close();
    }
  } finally {
    deflate.mockRestore();
  }
  expect(readdirSync(spillDir)).toEqual([]);
  return r;
}

describe("streamOptimized VMDK writer", () => {
  it("adler32 matches zlib's", () => {
    for (const len of [0, 1, 7, 8, 5551, 5552, 5553, 65536, 200_000]) {
      const b = Buffer.alloc(len, 0xff);
      const z = zlib.deflateSync(b);
      expect(adler32(b), `len ${len}`).toBe(z.readUInt32BE(z.length - 4));
    }
    const r = randomBytesLike(70_001);
    const z = zlib.deflateSync(r);
    expect(adler32(r)).toBe(z.readUInt32BE(z.length - 4));
  });

  it("compressed base + overlay: base clusters wrapped, changed ones compressed, zero grains left out", async () => {
    const dir = dirFor("compressed");
    const baseSize = 32 * MiB;
    const base = convertCompressed(makeRawBase(dir, "base.raw", baseSize), join(dir, "base.qcow2"));
    const ov = overlay(base, "qcow2", join(dir, "ov.qcow2"), 40 * MiB);
    const rnd = randomFile(dir, "ov.rnd", 256 * 1024);
    qemuIo(ov, ["write -P 0x11 1M 256k", "write -P 0x22 3000 5000", `write -s ${rnd} ${5 * MiB + 100} 200k`, "write -z 4M 512k", "discard 8M 256k", "write -P 0 12M 64k", `write -P 0x44 ${33 * MiB} 1M`]);
    const r = await writeAndCheck(ov, dir);
    expect(r.stats.clusters.copied).toBeGreaterThan(50);
    expect(r.stats.clusters.compressed).toBeGreaterThan(0);
    expect(r.stats.clusters.zero).toBeGreaterThan(0);
    expect(r.stats.clusters.raw).toBe(0); // every grain is compressed in a streamOptimized VMDK
  });

  it("a disk that is not a multiple of 64 KiB: the partial last grain holds only the bytes inside the disk", async () => {
    const dir = dirFor("partial");
    const base = convertCompressed(makeRawBase(dir, "base.raw", 16 * MiB), join(dir, "base.qcow2"));
    const ov = overlay(base, "qcow2", join(dir, "ov.qcow2"), 17 * MiB + 3 * 512);
    qemuIo(ov, [`write -P 0x66 ${17 * MiB} 1536`]);
    await writeAndCheck(ov, dir);
    // A compressed source whose own last cluster is partial (copied clusters are full ones only).
    const flat = join(dir, "flat.qcow2");
    run("qemu-img", ["convert", "-c", "-O", "qcow2", ov, flat]);
    const d2 = dirFor("partial-copied");
    await writeAndCheck(flat, d2);
  });

  it("an empty disk and an uncompressed standalone disk", async () => {
    const dir = dirFor("empty");
    const empty = join(dir, "empty.qcow2");
    run("qemu-img", ["create", "-q", "-f", "qcow2", empty, "3M"]);
    const r = await writeAndCheck(empty, dir);
    expect(r.stats.clusters.zero).toBe(48);
    const d2 = dirFor("plain");
    const plain = join(d2, "plain.qcow2");
    run("qemu-img", ["convert", "-O", "qcow2", makeRawBase(d2, "base.raw", 16 * MiB), plain]);
    const p = await writeAndCheck(plain, d2);
    expect(p.stats.clusters.copied).toBe(0);
  });

  it("a 3-deep chain with a raw base and a disk larger than one grain table (32 MiB)", async () => {
    const dir = dirFor("3deep");
    const raw = makeRawBase(dir, "base.raw", 16 * MiB);
    const mid = overlay(raw, "raw", join(dir, "mid.qcow2"), 70 * MiB);
    qemuIo(mid, ["write -c -P 0x81 8M 1M", `write -P 0x82 ${40 * MiB} 64k`]);
    const top = overlay(mid, "qcow2", join(dir, "top.qcow2"));
    qemuIo(top, [`write -P 0x83 ${69 * MiB} 1M`, "write -z 8M 64k"]);
    const r = await writeAndCheck(top, dir);
    expect(r.stats.clusters.copied).toBe(15); // the 1M written compressed into mid, less the zeroed grain
  });

  // Regression (issue 19, peak RSS): pass 2 allocated a new 1 MiB buffer per chunk; the garbage
  // lives outside the V8 heap and is collected late, ~45 MB of the OVA export's peak RSS.
  it("pass 2 of a 20 MiB VMDK reuses a handful of chunk buffers", async () => {
    const dir = dirFor("chunks");
    const top = overlay(makeRawBase(dir, "base.raw", 16 * MiB), "raw", join(dir, "top.qcow2"), 32 * MiB);
    qemuIo(top, [`write -s ${randomFile(dir, "rnd", 20 * MiB)} 4M 20M`]);
    const r = await writeAndCheck(top, dir);
    expect(r.size).toBeGreaterThan(20 * MiB);
  });

  it("what it cannot write is reported, not guessed: a file name the descriptor cannot quote", async () => {
    const dir = dirFor("unsupported");
    const img = join(dir, "a.qcow2");
    run("qemu-img", ["create", "-q", "-f", "qcow2", img, "1M"]);
    const r = await writeStreamOptimizedVmdk(join(dir, "x.vmdk"), { src: img, fileName: 'a"b.vmdk', signal, events });
    expect(r.kind).toBe("unsupported");
    expect(existsSync(join(dir, "x.vmdk.partial"))).toBe(false);
  });

  it("an abort removes the partial file and rejects with AbortError", async () => {
    const dir = dirFor("abort");
    const base = convertCompressed(makeRawBase(dir, "base.raw", 24 * MiB), join(dir, "base.qcow2"));
    const ac = new AbortController();
    const out = join(dir, "out.vmdk");
    const p = writeStreamOptimizedVmdk(out, { src: base, fileName: "out.vmdk", signal: ac.signal, events });
    setTimeout(() => ac.abort(new Error("stop")), 5);
    await expect(p).rejects.toBeInstanceOf(AbortError);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
    expect(statSync(dir).isDirectory()).toBe(true);
  });
});

function randomBytesLike(n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
