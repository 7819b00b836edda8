// Layered templates on VirtualBox (issue 17): a stage hands the next its disk as a file, and the next
// stage's VM gets a full copy of it (VirtualBox has no qcow2 export, so src/layers/build.ts asks for
// a VMDK; the next stage converts that like any cloud image). Checked at the VBoxManage argv level
// against the double, without booting: the commands a stage's export and the next stage's create run,
// and that the next VM's disk is its own (no differencing disk on the cached one, which stays as it was).
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { VirtualBoxDriver } from "../../../../drivers/virtualbox/index.js";
import { parseVmInfo } from "../../../../drivers/virtualbox/machinereadable.js";
import { EventBus } from "../../../../src/log/events.js";
import { Journal } from "../../../../src/pipeline/journal.js";
import type { VmSpec } from "../../../../src/pipeline/driver.js";
import { testVboxSpec } from "./spec.js";

const DOUBLE = fileURLToPath(new URL("../../../doubles/VBoxManage", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "vmkiln-vbox-stage-"));
process.env.VMKILN_STATE_DIR = join(work, "state");
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** VBoxManage as the driver calls it: each argv appended to a log (fields split by \x1f), then the double runs it. */
function recordingBinary(): { bin: string; calls: () => string[][] } {
  const log = join(work, "argv.log");
  const bin = join(work, "VBoxManage");
  writeFileSync(bin, `#!/bin/sh\nprintf '%s\\037' "$@" >> '${log}'\necho >> '${log}'\nexec '${DOUBLE}' "$@"\n`);
  chmodSync(bin, 0o755);
  writeFileSync(log, "");
  return { bin, calls: () => readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => l.split("\x1f").slice(0, -1)) };
}

const spec = (binary: string) => testVboxSpec(binary);

const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");
const signal = new AbortController().signal;

describe("VirtualBox: a stage's disk handed to the next stage", { timeout: 120_000 }, () => {
  it("cannot export qcow2 (so the layered build asks for a VMDK), exports VMDK", () => {
    const d = new VirtualBoxDriver(spec(DOUBLE), 22, new EventBus(), new Journal("stage-0"));
    expect(d.capabilities.exports).not.toContain("qcow2");
    expect(d.capabilities.exports).toContain("vmdk");
  });

  it("base exports a streamOptimized VMDK (clonemedium, then closemedium); the next stage's VM gets its own full copy", async () => {
    const dir = mkdtempSync(join(work, "case-"));
    process.env.VBOXMANAGE_DOUBLE_STATE = join(dir, "double", "state.json");
    const rec = recordingBinary();
    const src = join(dir, "cloud.qcow2");
    execFileSync("qemu-img", ["create", "-f", "qcow2", src, "64M"]);
    const cidata = join(dir, "cidata.iso");
    writeFileSync(cidata, Buffer.alloc(2048));
    const vm = (name: string, sourceDisk: VmSpec["sourceDisk"]): VmSpec => ({ name, buildId: name, buildDir: join(dir, name), sourceDisk, installerIso: undefined, cidataIso: cidata, diskSize: undefined, firmware: "bios" });

    // Stage base: its VM, then the export the layered build asks of it (src/steps/export-formats.ts).
    const base = new VirtualBoxDriver(spec(rec.bin), 22, new EventBus(), new Journal("stage-base"));
    const a = await base.createVm(vm("vmkiln-stage-base", { path: src, format: "qcow2" }), signal);
    const stageDisk = join(dir, "cache", "disk-disk1.vmdk");
    execFileSync("mkdir", ["-p", join(dir, "cache")]);
    await base.exportDisk(a, { format: "vmdk", subformat: "streamOptimized", path: stageDisk, compression: "none" }, signal);
    await base.destroyVm(a);
    const baseDisk = join(dir, "vmkiln-stage-base", "virtualbox", "vmkiln-stage-base-disk1.vdi");
    const exportCalls = rec.calls().filter((c) => c[0] === "clonemedium" || c[0] === "closemedium");
    expect(exportCalls).toEqual([
      ["clonemedium", "disk", baseDisk, stageDisk, "--format", "VMDK", "--variant", "Stream"],
      ["closemedium", "disk", stageDisk],
    ]);
    const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", stageDisk], { encoding: "utf8" }));
    expect(info.format).toBe("vmdk");
    expect(info["format-specific"].data["create-type"]).toBe("streamOptimized");
    const before = sha(stageDisk);

    // Stage node: built from that file. Its disk is a converted copy in its own build dir, attached
    // as the boot disk; nothing VirtualBox is asked refers to the cached VMDK.
    writeFileSync(join(work, "argv.log"), "");
    const node = new VirtualBoxDriver(spec(rec.bin), 22, new EventBus(), new Journal("stage-node"));
    const b = await node.createVm(vm("vmkiln-stage-node", { path: stageDisk, format: "vmdk" }), signal);
    const nodeDisk = join(dir, "vmkiln-stage-node", "virtualbox", "vmkiln-stage-node-disk1.vdi");
    const shown = parseVmInfo(execFileSync(DOUBLE, ["showvminfo", "vmkiln-stage-node", "--machinereadable"], { encoding: "utf8" }));
    expect(shown.attachments["SATA-0-0"]).toBe(nodeDisk);
    expect(rec.calls().filter((c) => c.includes(stageDisk))).toEqual([]);
    expect(rec.calls().some((c) => c[0] === "storageattach" && c.includes(nodeDisk))).toBe(true);
    const copy = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", nodeDisk], { encoding: "utf8" }));
    expect(copy.format).toBe("vdi");
    expect(copy["backing-filename"]).toBeUndefined(); // a full copy, not a differencing disk
    expect(copy["virtual-size"]).toBe(64 * 2 ** 20);
    await node.destroyVm(b);
    expect(sha(stageDisk)).toBe(before);
    rmSync(dir, { recursive: true, force: true });
  });
});
