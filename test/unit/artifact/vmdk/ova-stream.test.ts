// The OVA path of the VMDK writer: pass 1 measures, pass 2 streams the VMDK into writeOva's tar with
// no VMDK file anywhere; the member must be byte for byte what the .mf describes, and a second pass
// that disagrees with the first (size or digest) must leave no OVA behind.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildOvf } from "../../../../src/artifact/ovf.js";
import { DigestMismatchError, writeOva } from "../../../../src/artifact/ova.js";
import { verifyOva } from "../../../../src/artifact/verify-ova.js";
import { measureStreamOptimizedVmdk, type MeasuredVmdk } from "../../../../src/artifact/vmdk/export.js";
import { BuildError } from "../../../../src/errors.js";
import { EventBus } from "../../../../src/log/events.js";
import { sha256Hex } from "../../../../src/artifact/digest.js";
import { tmp } from "../helpers.js";
import { MiB, convertCompressed, makeRawBase, overlay, qemuIo } from "../qcow2/chains.js";

const t = tmp("vmkiln-vmdk-ova-");
afterAll(() => t.cleanup());
const signal = new AbortController().signal;
const events = new EventBus();

async function measured(src: string): Promise<MeasuredVmdk> {
  const m = await measureStreamOptimizedVmdk({ src, fileName: "tiny-disk1.vmdk", signal, events });
  if (m.kind !== "measured") throw new Error(m.reason);
  return m;
}

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
    const m = await measured(src);
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
