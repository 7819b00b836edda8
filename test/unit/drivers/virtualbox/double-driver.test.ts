// The driver against the VBoxManage test double, without booting anything: registration, storage,
// NAT, the exit-0 error rule, the session-lock retry, the version refusal and cleanup of a
// half-created machine. (Booting is in test/integration/virtualbox.test.ts.)
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { VirtualBoxDriver } from "../../../../drivers/virtualbox/index.js";
import { parseVmInfo, parseVmList } from "../../../../drivers/virtualbox/machinereadable.js";
import { EventBus } from "../../../../src/log/events.js";
import { Journal } from "../../../../src/pipeline/journal.js";
import type { VmSpec } from "../../../../src/pipeline/driver.js";
import type { VirtualBoxSpec } from "../../../../src/template/spec.js";

const DOUBLE = fileURLToPath(new URL("../../../doubles/VBoxManage", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "vmkiln-vbox-unit-"));
process.env.VMKILN_STATE_DIR = join(work, "state");

const spec = (over: Partial<VirtualBoxSpec> = {}): VirtualBoxSpec => ({
  cpus: 1,
  memory: 256,
  diskSize: undefined,
  firmware: "bios",
  diskFormat: "vdi",
  headless: true,
  guestOsType: "Debian_64",
  graphicsController: "vmsvga",
  diskController: "sata",
  nicType: "82540EM",
  ovfVersion: "1.0",
  vboxmanage: [],
  binary: DOUBLE,
  sshHostPort: undefined,
  ...over,
});

function vbox(...args: string[]): string {
  return execFileSync(DOUBLE, args, { encoding: "utf8" });
}

describe("VirtualBox driver against the VBoxManage double", { timeout: 120_000 }, () => {
  let dir: string;
  let events: EventBus;
  let logs: string[];
  let vmSpec: VmSpec;
  const signal = new AbortController().signal;

  beforeEach(() => {
    dir = mkdtempSync(join(work, "case-"));
    process.env.VBOXMANAGE_DOUBLE_STATE = join(dir, "double", "state.json");
    delete process.env.VBOXMANAGE_DOUBLE_VERSION;
    delete process.env.VBOXMANAGE_DOUBLE_FAULT;
    events = new EventBus();
    logs = [];
    events.subscribe((e) => {
      if (e.type === "log") logs.push(`${e.level}: ${e.message}`);
    });
    const src = join(dir, "src.qcow2");
    execFileSync("qemu-img", ["create", "-f", "qcow2", src, "64M"]);
    const cidata = join(dir, "cidata.iso");
    writeFileSync(cidata, Buffer.alloc(2048));
    vmSpec = { name: "vmkiln-unit-1", buildId: "unit-1", buildDir: join(dir, "build"), sourceDisk: { path: src, format: "qcow2" }, installerIso: undefined, cidataIso: cidata, diskSize: 128 * 1024 * 1024, firmware: "bios" };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("registers the machine under --basefolder in the build dir, with the disk, cidata and SSH rule", async () => {
    const d = new VirtualBoxDriver(spec({ vboxmanage: [["modifyvm", "{{.Name}}", "--audio", "none"]] }), 22, events, new Journal("unit-1"));
    const vm = await d.createVm(vmSpec, signal);
    expect(parseVmList(vbox("list", "vms")).map((v) => v.name)).toEqual(["vmkiln-unit-1"]);
    const info = parseVmInfo(vbox("showvminfo", "vmkiln-unit-1", "--machinereadable"));
    expect(info.state).toBe("poweroff");
    expect(info.memoryMiB).toBe(256);
    expect(info.raw.get("CfgFile")).toBe(join(vmSpec.buildDir, "virtualbox", "vmkiln-unit-1", "vmkiln-unit-1.vbox"));
    const disk = join(vmSpec.buildDir, "virtualbox", "vmkiln-unit-1-disk1.vdi");
    expect(info.attachments).toMatchObject({ "SATA-0-0": disk, "IDE-0-0": vmSpec.cidataIso });
    const ep = await d.sshEndpoint(vm);
    expect(info.forwarding).toEqual([{ name: "ssh", proto: "tcp", hostIp: "127.0.0.1", hostPort: ep.port, guestIp: "", guestPort: 22 }]);
    // Converted and grown to disk_size.
    const img = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", disk], { encoding: "utf8" }));
    expect(img.format).toBe("vdi");
    expect(img["virtual-size"]).toBe(128 * 1024 * 1024);

    await d.destroyVm(vm);
    expect(vbox("list", "vms")).toBe("");
    expect(existsSync(join(vmSpec.buildDir, "virtualbox"))).toBe(false);
    await d.destroyVm(vm); // idempotent
  });

  it("ISO installs: an empty disk from createmedium, installer ISO and answer-file CD on IDE before the cidata", async () => {
    const d = new VirtualBoxDriver(spec({ diskController: "virtio", diskFormat: "vmdk" }), 22, events, new Journal("unit-5"));
    const iso = join(dir, "installer.iso");
    const oemdrv = join(dir, "oemdrv.iso");
    writeFileSync(iso, Buffer.alloc(2048));
    writeFileSync(oemdrv, Buffer.alloc(2048));
    const vm = await d.createVm({ ...vmSpec, sourceDisk: undefined, installerIso: iso, installerMedia: { path: oemdrv, kind: "cd" }, diskSize: 256 * 1024 * 1024 }, signal);
    const info = parseVmInfo(vbox("showvminfo", "vmkiln-unit-1", "--machinereadable"));
    const disk = join(vmSpec.buildDir, "virtualbox", "vmkiln-unit-1-disk1.vmdk");
    // VirtualBox prints its own controller type names (VBoxManageInfo.cpp storageControllerTypeToName), not the spelling given.
    expect(info.controllers).toEqual([{ name: "VirtIO", type: "VirtioSCSI" }, { name: "IDE", type: "PIIX4" }]);
    expect(info.attachments).toEqual({ "VirtIO-0-0": disk, "IDE-0-0": iso, "IDE-0-1": oemdrv, "IDE-1-0": vmSpec.cidataIso, "IDE-1-1": "none" });
    const img = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", disk], { encoding: "utf8" }));
    expect(img["virtual-size"]).toBe(256 * 1024 * 1024);
    expect(d.guestHostAddress()).toBe("10.0.2.2");
    await d.destroyVm(vm);
    expect(vbox("list", "vms")).toBe("");
  });

  it("treats `VBoxManage: error:` with exit 0 as a failure and unregisters the half-created machine", async () => {
    process.env.VBOXMANAGE_DOUBLE_FAULT = "storagectl:exit0-error";
    const d = new VirtualBoxDriver(spec(), 22, events, new Journal("unit-2"));
    await expect(d.createVm(vmSpec, signal)).rejects.toThrow("VBoxManage storagectl vmkiln-unit-1 failed: Injected failure (VBOXMANAGE_DOUBLE_FAULT) (NS_ERROR_FAILURE)");
    delete process.env.VBOXMANAGE_DOUBLE_FAULT;
    expect(vbox("list", "vms")).toBe("");
    expect(existsSync(join(vmSpec.buildDir, "virtualbox"))).toBe(false);
  });

  it("retries the session-lock race after a shutdown, then succeeds", async () => {
    const d = new VirtualBoxDriver(spec(), 22, events, new Journal("unit-3"), { lockRetryDelayMs: 1500 });
    const vm = await d.createVm(vmSpec, signal);
    // The VM "was running" under a process that has just ended: the double keeps the machine
    // session-locked for VBOXMANAGE_DOUBLE_LOCK_MS, as VirtualBox does while its VM process exits.
    process.env.VBOXMANAGE_DOUBLE_LOCK_MS = "6000";
    const file = process.env.VBOXMANAGE_DOUBLE_STATE!;
    const state = JSON.parse(readFileSync(file, "utf8"));
    state.machines[0].state = "running";
    state.machines[0].pid = 2 ** 22 + 1; // above pid_max: never alive
    writeFileSync(file, JSON.stringify(state));
    await d.destroyVm(vm);
    delete process.env.VBOXMANAGE_DOUBLE_LOCK_MS;
    expect(logs.some((l) => /^warn: VBoxManage unregistervm: the machine is still locked by a session .*VBOX_E_INVALID_OBJECT_STATE.*retrying/.test(l))).toBe(true);
    expect(vbox("list", "vms")).toBe("");
  });

  it("refuses a VirtualBox older than the minimum, before creating anything", async () => {
    process.env.VBOXMANAGE_DOUBLE_VERSION = "6.0.24r139119";
    const d = new VirtualBoxDriver(spec(), 22, events, new Journal("unit-4"));
    await expect(d.createVm(vmSpec, signal)).rejects.toMatchObject({ code: "VBOX_TOO_OLD", exitCode: 2, message: "VirtualBox 6.0.24 is too old: vmkiln needs VirtualBox 6.1 or newer" });
    expect(existsSync(process.env.VBOXMANAGE_DOUBLE_STATE!) ? vbox("list", "vms") : "").toBe("");
  });

  it("reports a missing machine with VirtualBox's error text and exit code 1", () => {
    let err: { status?: number; stderr?: string } = {};
    try {
      vbox("showvminfo", "nope", "--machinereadable");
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.status).toBe(1);
    expect(err.stderr).toMatch(/^VBoxManage: error: Could not find a registered machine named 'nope'\nVBoxManage: error: Details: code VBOX_E_OBJECT_NOT_FOUND \(0x80bb0001\)/);
  });
});
