// The driver against the VBoxManage test double, without booting anything: registration, storage,
// NAT, the exit-0 error rule, the session-lock retry, the version refusal and cleanup of a
// half-created machine. (Booting is in test/integration/virtualbox.test.ts.)
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { VirtualBoxDriver, createVirtualBoxDriver, natGuestAddress, needsHostLoopback } from "../../../../drivers/virtualbox/index.js";
import { parseVmInfo, parseVmList } from "../../../../drivers/virtualbox/machinereadable.js";
import { EventBus } from "../../../../src/log/events.js";
import { Journal } from "../../../../src/pipeline/journal.js";
import type { VmSpec } from "../../../../src/pipeline/driver.js";
import type { BuildSpec, HttpSpec, VirtualBoxSpec } from "../../../../src/template/spec.js";
import { testVboxSpec } from "./spec.js";

const DOUBLE = fileURLToPath(new URL("../../../doubles/VBoxManage", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "vmkiln-vbox-unit-"));
process.env.VMKILN_STATE_DIR = join(work, "state");

const spec = (over: Partial<VirtualBoxSpec> = {}) => testVboxSpec(DOUBLE, over);

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
    expect(d.guestHostAddress("127.0.0.1")).toBe("10.0.2.2");
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

  // Issue 13: VirtualBox 7.0 NAT drops the guest's packets to 10.0.2.2 unless localhost-reachable is on
  // (hashicorp/packer#12118, packer-plugin-virtualbox#104); 6.1 has no such option and rejects it.
  const doubleState = () => JSON.parse(readFileSync(process.env.VBOXMANAGE_DOUBLE_STATE!, "utf8")) as { machines: Array<{ name: string; nics: Array<{ localhostReachable: boolean }> }> };
  const http = (over: Partial<HttpSpec> = {}): HttpSpec => ({ directory: undefined, content: {}, bindAddress: "127.0.0.1", port: 0, guestAddress: undefined, pathPrefix: true, expect: [], expectTimeoutMs: 60_000, ...over });

  /** The driver as a build makes it: from the template's spec, HTTP server included. */
  const fromBuild = (journal: string, h: HttpSpec | undefined) =>
    createVirtualBoxDriver({ spec: { drivers: { virtualbox: spec() }, ssh: { port: 22 }, http: h } as unknown as BuildSpec, events, journal: new Journal(journal) });

  it("VirtualBox 7: lets the guest reach the host's loopback when it must fetch from the HTTP server at 10.0.2.2", async () => {
    const d = fromBuild("unit-6", http());
    const vm = await d.createVm(vmSpec, signal);
    expect(doubleState().machines[0]!.nics[0]!.localhostReachable).toBe(true);
    expect(logs).toContain("info: NAT: the guest may reach the host's loopback at 10.0.2.2 (--nat-localhostreachable1 on, VirtualBox 7)");
    await d.destroyVm(vm);
  });

  it("VirtualBox 7 without an HTTP server on loopback: leaves the new machine's default (no host loopback)", async () => {
    const d = fromBuild("unit-7", undefined);
    const vm = await d.createVm(vmSpec, signal);
    expect(doubleState().machines[0]!.nics[0]!.localhostReachable).toBe(false);
    await d.destroyVm(vm);
    // Which HTTP setups need it: the guest reaches loopback and wildcard listeners through 10.0.2.2.
    expect(needsHostLoopback(http())).toBe(true);
    expect(needsHostLoopback(http({ bindAddress: "0.0.0.0" }))).toBe(true);
    expect(needsHostLoopback(http({ guestAddress: "10.0.2.2", bindAddress: "192.0.2.10" }))).toBe(true);
    expect(needsHostLoopback(http({ bindAddress: "192.0.2.10" }))).toBe(false);
    expect(needsHostLoopback(http({ guestAddress: "192.0.2.10" }))).toBe(false);
    expect(natGuestAddress("0.0.0.0")).toBe("10.0.2.2");
    expect(natGuestAddress("192.0.2.10")).toBe("192.0.2.10");
  });

  it("VirtualBox 6.1: never passes --nat-localhostreachable (its modifyvm has no such option)", async () => {
    process.env.VBOXMANAGE_DOUBLE_VERSION = "6.1.50r161033";
    const d = fromBuild("unit-8", http());
    const vm = await d.createVm(vmSpec, signal);
    expect(logs).toContain("info: VirtualBox 6.1.50");
    expect(logs.some((l) => l.includes("localhostreachable"))).toBe(false);
    await d.destroyVm(vm);
    // The option really is refused there, as VBoxManage 6.1 refuses it.
    const r = spawnSync(DOUBLE, ["createvm", "--name", "x61", "--register"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    const m = spawnSync(DOUBLE, ["modifyvm", "x61", "--nat-localhostreachable1", "on"], { encoding: "utf8" });
    expect(m.status).toBe(1);
    expect(m.stderr).toBe("VBoxManage: error: Unknown option: --nat-localhostreachable1\n");
  });

  // Issue 13: a VM that dies (aborted) or hits a Guru Meditation is not a VM that powered off.
  function setMachine(update: (m: Record<string, unknown>) => void): void {
    const file = process.env.VBOXMANAGE_DOUBLE_STATE!;
    const state = JSON.parse(readFileSync(file, "utf8"));
    update(state.machines[0]);
    writeFileSync(file, JSON.stringify(state));
  }

  it("fails the install wait when the VM ended aborted, naming the state and VBox.log", async () => {
    const d = new VirtualBoxDriver(spec(), 22, events, new Journal("unit-9"));
    const vm = await d.createVm(vmSpec, signal);
    setMachine((m) => {
      m.state = "running";
      m.pid = 2 ** 22 + 1; // above pid_max: the VM process is gone without recording how the VM ended
    });
    const logDir = join(vmSpec.buildDir, "virtualbox", "vmkiln-unit-1", "Logs");
    await expect(d.waitForGuestStop(vm, { timeoutMs: 10_000 }, signal)).rejects.toMatchObject({
      code: "VBOX_VM_CRASHED",
      message: "VM vmkiln-unit-1 ended in state aborted (its VM process died)",
      hint: `see ${join(logDir, "VBox.log")}`,
    });
    await d.destroyVm(vm);
    expect(vbox("list", "vms")).toBe("");
  });

  it("fails when the VM is stuck in a Guru Meditation, and still powers it off on cleanup", async () => {
    const d = new VirtualBoxDriver(spec(), 22, events, new Journal("unit-10"), { lockRetryDelayMs: 500 });
    const vm = await d.createVm(vmSpec, signal);
    const uuid = parseVmInfo(vbox("showvminfo", "vmkiln-unit-1", "--machinereadable")).uuid!;
    // A stand-in VM process (its command line names the machine's UUID, as the double checks).
    const proc = spawn(process.execPath, ["-e", "setTimeout(() => {}, 600000)", uuid], { stdio: "ignore" });
    try {
      setMachine((m) => {
        m.state = "gurumeditation";
        m.pid = proc.pid;
        m.qemuPid = proc.pid;
      });
      await expect(d.waitForGuestStop(vm, { timeoutMs: 10_000 }, signal)).rejects.toMatchObject({
        code: "VBOX_VM_CRASHED",
        message: "VM vmkiln-unit-1 ended in state gurumeditation (the VM hit a Guru Meditation)",
      });
      await d.destroyVm(vm);
      expect(vbox("list", "vms")).toBe("");
    } finally {
      proc.kill("SIGKILL");
    }
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
