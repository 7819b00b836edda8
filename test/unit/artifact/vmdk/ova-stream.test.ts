// The OVA path of the VMDK writer: pass 1 measures, pass 2 streams the VMDK into writeOva's tar with
// no VMDK file anywhere; the member must be byte for byte what the .mf describes, and a second pass
// that disagrees with the first (size or digest) must leave no OVA behind.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, readSync, writeSync, ftruncateSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { buildOvf } from "../../../../src/artifact/ovf.js";
import { DigestMismatchError, writeOva } from "../../../../src/artifact/ova.js";
import { verifyOva } from "../../../../src/artifact/verify-ova.js";
import { measureStreamOptimizedVmdk, type MeasuredVmdk } from "../../../../src/artifact/vmdk/export.js";
import { ClusterSpill } from "../../../../src/artifact/qcow2/cluster-spill.js";
import { AbortError, BuildError } from "../../../../src/errors.js";
import { EventBus } from "../../../../src/log/events.js";
import { sha256Hex } from "../../../../src/artifact/digest.js";
import { tmp } from "../helpers.js";
import { MiB, convertCompressed, makeRawBase, overlay, qemuIo } from "../qcow2/chains.js";

const t = tmp("vmkiln-vmdk-ova-");
afterAll(() => t.cleanup());
const signal = new AbortController().signal;
const events = new EventBus();

async function measured(src: string, spillDir?: string, s = signal): Promise<MeasuredVmdk> {
  const m = await measureStreamOptimizedVmdk({ src, fileName: "tiny-disk1.vmdk", signal: s, events, ...(spillDir ? { spillDir } : {}) });
  if (m.kind !== "measured") throw new Error(m.reason);
  return m;
}

let dirs = 0;
/** A new empty directory: the build dir stand-in for the spill file, or an OVA's output dir. */
function newDir(name: string): string {
  const d = join(t.dir, `${name}-${++dirs}`);
  mkdirSync(d);
  return d;
}

afterEach(() => {
  vi.restoreAllMocks();
});

function source(): string {
  const dir = join(t.dir, "src");
  mkdirSync(dir, { recursive: true });
  if (existsSync(join(dir, "ov.qcow2"))) return join(dir, "ov.qcow2");
  const base = convertCompressed(makeRawBase(dir, "base.raw", 16 * MiB), join(dir, "base.qcow2"));
  const ov = overlay(base, "qcow2", join(dir, "ov.qcow2"), 20 * MiB);
  qemuIo(ov, ["write -P 0x11 1M 256k", `write -P 0x44 ${17 * MiB} 1M`]);
  return ov;
}

function ovf(m: MeasuredVmdk): string {
  return buildOvf({ name: "tiny", cpus: 1, memoryMiB: 512, firmware: "bios", osType: "debian12", disks: [{ fileName: "tiny-disk1.vmdk", fileSize: m.size, capacityBytes: m.virtualSize }] });
}

describe("VMDK streamed into the OVA", () => {
  it("the tar member is the measured VMDK: .mf digest, qemu-img compare, vmkiln verify", async () => {
    const src = source();
    const spillDir = newDir("spill");
    const m = await measured(src, spillDir);
    expect(m.spilled.clusters).toBeGreaterThan(0);
    expect(readdirSync(spillDir)).toHaveLength(1);
    const out = join(t.dir, "ok");
    mkdirSync(out);
    try {
      const r = await writeOva({ out: join(out, "tiny.ova"), ovfName: "tiny.ovf", ovfXml: ovf(m), disks: [{ name: "tiny-disk1.vmdk", stream: m.stream, sha256: m.sha256, size: m.size }], events, signal });
      expect(r.members).toEqual(["tiny.ovf", "tiny.mf", "tiny-disk1.vmdk"]);
      expect(readdirSync(out).sort()).toEqual(["tiny.ova", "tiny.ova.sha256"]); // no VMDK file beside it
      expect(r.sha256).toBe(sha256Hex(readFileSync(r.path)));
    } finally {
      await m.close();
    }
    expect(readdirSync(spillDir), "spill file left after success").toEqual([]);
    const x = join(out, "x");
    mkdirSync(x);
    execFileSync("tar", ["-xf", join(out, "tiny.ova"), "-C", x]);
    const vmdk = readFileSync(join(x, "tiny-disk1.vmdk"));
    expect(vmdk.length).toBe(m.size);
    expect(readFileSync(join(x, "tiny.mf"), "utf8")).toContain(`SHA256(tiny-disk1.vmdk)= ${sha256Hex(vmdk)}`);
    const cmp = execFileSync("qemu-img", ["compare", "-f", "qcow2", "-F", "vmdk", src, join(x, "tiny-disk1.vmdk")], { encoding: "utf8" });
    expect(cmp).toContain("Images are identical");
    const v = await verifyOva(join(out, "tiny.ova"), { signal });
    expect(v.findings).toEqual([]);
    expect(v.ok).toBe(true);
  });

  it("a second pass that disagrees with the first leaves no OVA: digest, too many bytes, too few", async () => {
    const src = source();
    const cases: Array<[string, (m: MeasuredVmdk) => { sha256: string; size: number }, new (...a: never[]) => Error, RegExp]> = [
      ["digest", (m) => ({ sha256: "0".repeat(64), size: m.size }), DigestMismatchError, /SHA-256 is/],
      ["longer", (m) => ({ sha256: m.sha256, size: m.size - 512 }), BuildError, /produced more than/],
      ["shorter", (m) => ({ sha256: m.sha256, size: m.size + 512 }), BuildError, /expected \d+ bytes, produced/],
    ];
    for (const [name, lie, type, message] of cases) {
      const m = await measured(src);
      const out = join(t.dir, name);
      mkdirSync(out);
      try {
        const p = writeOva({ out: join(out, "tiny.ova"), ovfName: "tiny.ovf", ovfXml: ovf(m), disks: [{ name: "tiny-disk1.vmdk", stream: m.stream, ...lie(m) }], events, signal });
        await expect(p, name).rejects.toBeInstanceOf(type);
        await expect(p, name).rejects.toThrow(message);
      } finally {
        await m.close();
      }
      expect(readdirSync(out), name).toEqual([]);
    }
  });
});

describe("the spill file between the passes", () => {
  /** Runs `fn` on the spill file ClusterSpill.create makes during pass 1. */
  function spillPath(): { path: () => string } {
    let path: string | undefined;
    const create = ClusterSpill.create.bind(ClusterSpill);
    vi.spyOn(ClusterSpill, "create").mockImplementation(async (dir, label) => {
      const f = await create(dir, label);
      path = f.path;
      return f;
    });
    return { path: () => path ?? "" };
  }

  function ova(m: MeasuredVmdk, out: string, s = signal) {
    return writeOva({ out: join(out, "tiny.ova"), ovfName: "tiny.ovf", ovfXml: ovf(m), disks: [{ name: "tiny-disk1.vmdk", stream: m.stream, sha256: m.sha256, size: m.size }], events, signal: s });
  }

  it("is created exclusively, 0600, in the given directory, under a name of its own", async () => {
    const spillDir = newDir("spill");
    const spy = spillPath();
    const m = await measured(source(), spillDir);
    try {
      expect(dirname(spy.path())).toBe(spillDir);
      expect(spy.path()).toMatch(/\/\.tiny-disk1\.vmdk\.[0-9a-f]{16}\.spill$/);
      expect(statSync(spy.path()).mode & 0o777).toBe(0o600);
      expect(statSync(spy.path()).size).toBe(m.spilled.bytes);
    } finally {
      await m.close();
    }
    expect(existsSync(spy.path())).toBe(false);
    await m.close(); // twice is harmless
  });

  it("without a spill directory: a private temp directory, removed with the file", async () => {
    const spy = spillPath();
    const m = await measured(source());
    const dir = dirname(spy.path());
    expect(readdirSync(dir)).toHaveLength(1);
    await m.close();
    expect(existsSync(dir)).toBe(false);
  });

  it("an abort in pass 1 removes it and rejects with AbortError", async () => {
    const spillDir = newDir("spill");
    const ac = new AbortController();
    const keep = ClusterSpill.prototype.keep;
    // Aborted once the spill file holds data: the abort lands mid-pass, with the file open.
    vi.spyOn(ClusterSpill.prototype, "keep").mockImplementation(async function (this: ClusterSpill, g, o) {
      await keep.call(this, g, o);
      if (this.count >= 3) ac.abort(new Error("Ctrl-C"));
    });
    await expect(measured(source(), spillDir, ac.signal)).rejects.toBeInstanceOf(AbortError);
    expect(readdirSync(spillDir)).toEqual([]);
  });

  it("a failure in pass 1 removes it", async () => {
    const spillDir = newDir("spill");
    vi.spyOn(ClusterSpill.prototype, "keep").mockRejectedValueOnce(new BuildError("ENOSPC_TEST", "disk full"));
    await expect(measured(source(), spillDir)).rejects.toThrow(/disk full/);
    expect(readdirSync(spillDir)).toEqual([]);
  });

  it("an abort in pass 2 leaves neither the spill file nor an OVA", async () => {
    const spillDir = newDir("spill");
    const out = newDir("out");
    const m = await measured(source(), spillDir);
    const ac = new AbortController();
    const take = ClusterSpill.prototype.take;
    vi.spyOn(ClusterSpill.prototype, "take").mockImplementation(function (this: ClusterSpill, g) {
      ac.abort(new Error("Ctrl-C"));
      return take.call(this, g);
    });
    try {
      await expect(ova(m, out, ac.signal)).rejects.toBeInstanceOf(AbortError);
    } finally {
      await m.close();
    }
    expect(readdirSync(spillDir)).toEqual([]);
    expect(readdirSync(out)).toEqual([]);
  });

  it("a consumer that throws mid-stream: the spill file goes with close()", async () => {
    const spillDir = newDir("spill");
    const m = await measured(source(), spillDir);
    try {
      await expect(
        (async () => {
          let n = 0;
          for await (const _ of m.stream(signal)) if (++n === 2) throw new Error("consumer failed");
        })(),
      ).rejects.toThrow("consumer failed");
    } finally {
      await m.close();
    }
    expect(readdirSync(spillDir)).toEqual([]);
  });

  it("spill bytes changed between the passes: the digest cross-check refuses, no OVA, no spill file", async () => {
    const spillDir = newDir("spill");
    const out = newDir("out");
    const spy = spillPath();
    const m = await measured(source(), spillDir);
    try {
      const fd = openSync(spy.path(), "r+");
      try {
        const b = Buffer.alloc(1);
        readSync(fd, b, 0, 1, 100);
        b[0] = b[0]! ^ 0x5a;
        writeSync(fd, b, 0, 1, 100);
      } finally {
        closeSync(fd);
      }
      const p = ova(m, out);
      await expect(p).rejects.toBeInstanceOf(DigestMismatchError);
    } finally {
      await m.close();
    }
    expect(readdirSync(out)).toEqual([]);
    expect(readdirSync(spillDir)).toEqual([]);
  });

  it("a spill file cut short between the passes: a clear error, no OVA", async () => {
    const spillDir = newDir("spill");
    const out = newDir("out");
    const spy = spillPath();
    const m = await measured(source(), spillDir);
    try {
      const fd = openSync(spy.path(), "r+");
      try {
        ftruncateSync(fd, Math.floor(m.spilled.bytes / 2));
      } finally {
        closeSync(fd);
      }
      await expect(ova(m, out)).rejects.toThrow(/spill file is shorter than what was written/);
    } finally {
      await m.close();
    }
    expect(readdirSync(out)).toEqual([]);
    expect(readdirSync(spillDir)).toEqual([]);
  });
});
