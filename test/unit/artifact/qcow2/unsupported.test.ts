// Every image the flattener cannot reproduce exactly is refused up front with a reason (the caller
// then falls back to qemu-img convert) and leaves no output behind; corrupt input is an error.
import { closeSync, existsSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { flattenToCompressedQcow2, type FlattenResult } from "../../../../src/artifact/qcow2/flatten.js";
import { EXT_BACKING_FORMAT } from "../../../../src/artifact/qcow2/format.js";
import { BuildError } from "../../../../src/errors.js";
import { tmp } from "../helpers.js";
import { MiB, checkFlattened, convertCompressed, overlay, qemuIo, run } from "./chains.js";

const t = tmp("vmkiln-qcow2-unsup-");
afterAll(() => t.cleanup());
const signal = new AbortController().signal;
let n = 0;

async function flatten(src: string): Promise<{ r: FlattenResult; out: string }> {
  const out = join(t.dir, `out-${++n}.qcow2`);
  const r = await flattenToCompressedQcow2({ src, dst: out, signal });
  if (r.kind === "unsupported") {
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
  }
  return { r, out };
}

async function expectUnsupported(src: string, reason: RegExp): Promise<void> {
  const { r } = await flatten(src);
  expect(r.kind).toBe("unsupported");
  if (r.kind === "unsupported") expect(r.reason).toMatch(reason);
}

function create(name: string, opts: string[] = [], size = 16 * MiB): string {
  const p = join(t.dir, name);
  run("qemu-img", ["create", "-q", "-f", "qcow2", ...opts, p, String(size)]);
  return p;
}

/** ORs `bits` into incompatible_features (header bytes 72-79, big endian: byte 79 holds bits 0-7). */
function setIncompatible(path: string, bits: number): void {
  const fd = openSync(path, "r+");
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, 79);
  b[0]! |= bits;
  writeSync(fd, b, 0, 1, 79);
  closeSync(fd);
}

function compressedBase(name: string, extra: string[] = []): string {
  const raw = join(t.dir, `${name}.raw`);
  run("qemu-img", ["create", "-q", "-f", "raw", raw, String(2 * MiB)]);
  qemuIo(raw, ["write -P 0x3c 0 1M"], "raw");
  return convertCompressed(raw, join(t.dir, name), extra);
}

describe("refused with a reason, nothing written", () => {
  it("external data file", async () => {
    await expectUnsupported(create("df.qcow2", ["-o", `data_file=${join(t.dir, "df.raw")}`]), /external data file/);
  });

  it("extended L2 entries (subclusters)", async () => {
    await expectUnsupported(create("el2.qcow2", ["-o", "extended_l2=on"]), /extended L2/);
  });

  it("encryption", async () => {
    // The legacy AES method: creating it is instant, where LUKS benchmarks its key derivation for
    // seconds (and fails with "Unable to get accurate CPU usage" when told to hurry).
    const p = create("enc.qcow2", ["--object", "secret,id=sec0,data=abc", "-o", "encrypt.format=aes,encrypt.key-secret=sec0"]);
    await expectUnsupported(p, /encrypted \(crypt_method 1\)/);
  });

  it("zstd-compressed base whose clusters are visible (Node 20 has no zstd)", async () => {
    const base = compressedBase("zstd.qcow2", ["-o", "compression_type=zstd"]);
    const ov = overlay(base, "qcow2", join(t.dir, "zstd-ov.qcow2"));
    qemuIo(ov, ["write -P 1 0 64k"]);
    await expectUnsupported(ov, /zstd-compressed .*visible \(guest offset 65536\)/);
  });

  it("a zstd base is fine when the overlay hides all of its compressed clusters", async () => {
    const base = compressedBase("zstd2.qcow2", ["-o", "compression_type=zstd"]);
    const ov = overlay(base, "qcow2", join(t.dir, "zstd2-ov.qcow2"));
    qemuIo(ov, ["write -P 2 0 1M"]);
    const { r, out } = await flatten(ov);
    expect(r.kind).toBe("flattened");
    checkFlattened(ov, out, t.dir);
  });

  it("the dirty bit", async () => {
    const p = create("dirty.qcow2");
    setIncompatible(p, 1);
    await expectUnsupported(p, /dirty bit/);
  });

  it("an unknown incompatible feature bit, named from the image's feature table when it can be", async () => {
    const p = create("unknown.qcow2");
    setIncompatible(p, 1 << 5);
    await expectUnsupported(p, /unknown incompatible feature bit 5$/);
  });

  it("a dirty backing file deep in the chain", async () => {
    const base = compressedBase("dirty-base.qcow2");
    setIncompatible(base, 1);
    await expectUnsupported(overlay(base, "qcow2", join(t.dir, "dirty-ov.qcow2")), /dirty-base\.qcow2 has the dirty bit set/);
  });

  // Regression (qcow2-flatten fuzz target, seed 1182227816): a backing file name holding a NUL byte
  // reached fs.realpath, whose TypeError escaped as a crash instead of a fallback to qemu-img.
  it("a backing file name holding a NUL byte", async () => {
    const base = compressedBase("nul-base.qcow2");
    const ov = overlay(base, "qcow2", join(t.dir, "nul-ov.qcow2"));
    const fd = openSync(ov, "r+");
    const h = Buffer.alloc(8);
    readSync(fd, h, 0, 8, 8); // backing_file_offset (bytes 8-15)
    writeSync(fd, Buffer.from([0]), 0, 1, Number(h.readBigUInt64BE(0)) + 3);
    closeSync(fd);
    await expectUnsupported(ov, /backing file name holds a NUL byte/);
  });

  it("not a qcow2 image", async () => {
    const raw = join(t.dir, "plain.raw");
    run("qemu-img", ["create", "-q", "-f", "raw", raw, "1M"]);
    await expectUnsupported(raw, /is not a qcow2 image/);
  });

  it("a backing file in another format, or reached through a protocol", async () => {
    const vmdk = join(t.dir, "b.vmdk");
    run("qemu-img", ["create", "-q", "-f", "vmdk", vmdk, "16M"]);
    await expectUnsupported(overlay(vmdk, "vmdk", join(t.dir, "vmdk-ov.qcow2")), /backing file format vmdk/);
    const p = create("nbd.qcow2", ["-u", "-b", "nbd://localhost:10809", "-F", "raw"]);
    await expectUnsupported(p, /is a protocol URL/);
  });

  it("a raw backing file whose format is not recorded (we do not probe raw)", async () => {
    const raw = join(t.dir, "unrec.raw");
    run("qemu-img", ["create", "-q", "-f", "raw", raw, "1M"]);
    const ov = overlay(raw, "raw", join(t.dir, "unrec-ov.qcow2"));
    // Turn the backing format extension into an unknown one, which readers skip.
    const fd = openSync(ov, "r+");
    const head = Buffer.alloc(4096);
    readSync(fd, head, 0, head.length, 0);
    const at = head.indexOf(Buffer.from(EXT_BACKING_FORMAT.toString(16).padStart(8, "0"), "hex"));
    expect(at).toBeGreaterThan(0);
    writeSync(fd, Buffer.from("12345678", "hex"), 0, 4, at);
    closeSync(fd);
    await expectUnsupported(ov, /backing file format not recorded/);
  });
});

describe("errors", () => {
  it("the corrupt bit is an error, not a fallback", async () => {
    const p = create("corrupt.qcow2");
    setIncompatible(p, 2);
    const err = await flattenToCompressedQcow2({ src: p, dst: join(t.dir, "never.qcow2"), signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect(err).toMatchObject({ code: "QCOW2_CORRUPT" });
    expect(existsSync(join(t.dir, "never.qcow2.partial"))).toBe(false);
  });

  it("a missing backing file", async () => {
    const base = compressedBase("gone.qcow2");
    const ov = overlay(base, "qcow2", join(t.dir, "gone-ov.qcow2"));
    run("rm", [base]);
    await expect(flattenToCompressedQcow2({ src: ov, dst: join(t.dir, "never.qcow2"), signal })).rejects.toMatchObject({ code: "QCOW2_BACKING_MISSING" });
  });
});
