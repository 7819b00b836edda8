// Issue 5 acceptance: the vSphere driver end to end against vcsim (+ the shim in test/doubles/vcsim).
// vcsim's VMs do not boot, so the test supplies the guest: one fixture guest under QEMU, shared by
// every build; when a build creates its VM, the test uploads a real disk over the VM's disk file
// (so the export carries real bytes) and sets the VM's guest IP to 127.0.0.1 with
// SET.guest.ipAddress; drivers.vsphere.ssh_port points at the guest's forwarded SSH port, so the
// provisioning over SSH is real.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { Datastore } from "../../drivers/vsphere/datastore.js";
import { VimSession } from "../../drivers/vsphere/session.js";
import { MoRef, child, children, refOf, textOf } from "../../drivers/vsphere/soap.js";
import { usbKeyEventsToEvents } from "../../drivers/vsphere/usb-hid.js";
import { extraConfigSpec } from "../../drivers/vsphere/vm-config.js";
import { parseBootCommand } from "../../src/bootcommand/parse.js";
import { EventBus } from "../../src/log/events.js";
import { bootImage, type BootedVm } from "../helpers/boot.js";
import { runCli, startCli, type CliResult, type CliRun } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuProcesses } from "../helpers/processes.js";
import { startVcsim, type Vcsim } from "../helpers/vcsim.js";

// Upper case and punctuation travel as Shift flags, Ctrl as a held modifier (USB HID has no key-up).
const BOOT_COMMAND = ["<esc><wait>linux inst.ks=hd:fd0:/ks.cfg ", "ip=dhcp X_Y:{} <leftCtrlOn>c<leftCtrlOff><enter>"];
const signal = new AbortController().signal;

function parentPid(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ")[1]);
  } catch {
    return -1;
  }
}

describe("vsphere driver against vcsim", () => {
  let vc: Vcsim;
  let guest: BootedVm;
  let s: VimSession;
  let work: string;
  let realDisk: string;
  let virtualSize: number;
  let stateDir: string;
  const env = () => ({ VSPHERE_USERNAME: vc.username, VSPHERE_PASSWORD: vc.password, VMKILN_STATE_DIR: stateDir });

  beforeAll(async () => {
    const image = await ensureFixtureGuest();
    work = await mkdtemp(join(tmpdir(), "vmkiln-vs-it-"));
    stateDir = join(work, "state");
    vc = await startVcsim();
    s = await VimSession.login({ url: vc.url, username: vc.username, password: vc.password, caFile: vc.caFile, insecure: false }, signal);
    // The real disk vcsim will serve: the fixture guest as a hosted sparse VMDK.
    realDisk = join(work, "real-disk.vmdk");
    execFileSync("qemu-img", ["convert", "-O", "vmdk", image, realDisk]);
    virtualSize = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", image], { encoding: "utf8" }))["virtual-size"];
    mkdirSync(join(work, "media"));
    writeFileSync(join(work, "media", "README.txt"), "installer stand-in\n");
    execFileSync("genisoimage", ["-quiet", "-o", join(work, "installer.iso"), "-V", "INSTALLER", join(work, "media", "README.txt")]);
    guest = await bootImage(image, { username: "tester", timeoutMs: 900_000 });
  });

  afterAll(async () => {
    await guest?.stop();
    await s?.logout();
    await vc?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    // Only this file's guests (other test files may run VMs on this host at the same time).
    expect(qemuProcesses().filter((p) => parentPid(p.pid) === process.pid)).toEqual([]);
  });

  function template(name: string, o: { source: Record<string, unknown>; vsphere?: Record<string, unknown>; extra?: Record<string, unknown> }): string {
    const file = join(work, `${name}.yaml`);
    writeFileSync(
      file,
      stringify({
        name,
        source: o.source,
        drivers: {
          vsphere: {
            url: vc.url,
            cluster: "DC0_C0",
            datastore: "LocalDS_0",
            network: "VM Network",
            ca_file: vc.caFile,
            cpus: 2,
            memory: "1G",
            ssh_port: guest.port,
            ip_wait_timeout: "2m",
            ...o.vsphere,
          },
        },
        ssh: { username: "tester", private_key_file: guest.privateKeyPath, timeout: "2m" },
        provision: [{ shell: { inline: [`echo ${name} > /tmp/vmkiln-${name}`], sudo: true } }],
        generalize: false,
        shutdown: { command: "true", timeout: "3s" },
        output: { directory: join(work, "out", name) },
        ...o.extra,
      }),
    );
    return file;
  }

  async function vmRefs(): Promise<Array<{ ref: MoRef; name: string }>> {
    const folder = (await s.findByInventoryPath("/DC0/vm", signal))!;
    const out = [];
    for (const e of (await s.prop(folder, "childEntity", signal))?.children ?? []) {
      const ref = refOf(e)!;
      out.push({ ref, name: (await s.prop(ref, "name", signal))?.text ?? "" });
    }
    return out;
  }

  /** Waits for the build's VM, gives it the real disk and (unless told not to) the guest's IP. */
  async function supplyGuest(run: CliRun, o: { setIp: boolean }): Promise<{ ref: MoRef; path: string; numCPU: number; memoryMB: number }> {
    const e = await run.waitForEvent((ev) => ev.type === "log" && /^created VM /.test(String(ev.message)), 300_000);
    const m = /^created VM (\S+) \((vm-\d+)\)$/.exec(String(e.message))!;
    const ref = new MoRef("VirtualMachine", m[2]!);
    const p = await s.props(ref, ["config.hardware.device", "config.hardware.numCPU", "config.hardware.memoryMB"], signal);
    const disk = p.get("config.hardware.device")!.children.find((d) => d.xsiType === "VirtualDisk")!;
    const fileName = textOf(child(disk, "backing"), "fileName")!;
    const dc = (await s.findByInventoryPath("/DC0", signal))!;
    const ds = new Datastore(s, { datacenter: dc, datacenterPath: "/DC0", datastoreName: "LocalDS_0" });
    await ds.upload(realDisk, fileName.replace(/^\[[^\]]+\]\s*/, ""), new EventBus(), signal);
    if (o.setIp) {
      const extra = extraConfigSpec({ "SET.guest.ipAddress": "127.0.0.1", "SET.guest.toolsRunningStatus": "guestToolsRunning" });
      await s.task("ReconfigVM_Task", ref, [["spec", extra]], signal);
    }
    return { ref, path: m[1]!, numCPU: Number(p.get("config.hardware.numCPU")?.text), memoryMB: Number(p.get("config.hardware.memoryMB")?.text) };
  }

  const tmpFiles = () => {
    const dir = join(vc.datastoreDir, "vmkiln-tmp");
    return existsSync(dir) ? execFileSync("find", [dir, "-type", "f"], { encoding: "utf8" }).trim() : "";
  };

  describe("vsphere-iso → OVA", () => {
    let res: CliResult;
    let vm: { ref: MoRef; path: string };
    const out = () => join(work, "out", "vs-iso");

    beforeAll(async () => {
      const file = template("vs-iso", {
        source: { iso: { path: join(work, "installer.iso"), checksum: "none" } },
        vsphere: { disk_size: "4G", guest_os_type: "debian12_64Guest" },
        extra: {
          install_media: { type: "floppy", label: "OEMDRV", content: { "ks.cfg": "text\nreboot\n" } },
          boot: { command: BOOT_COMMAND, wait: "1s", key_interval: "10ms" },
          output: { directory: join(work, "out", "vs-iso"), formats: ["ova"] },
        },
      });
      const run = startCli(["build", file, "--json"], env());
      vm = await supplyGuest(run, { setIp: true });
      res = await run.done;
      if (res.code !== 0) console.error(res.stderr.slice(-4000));
    });

    it("exits 0 through the vSphere plan", () => {
      expect(res.code, res.stderr.slice(-2000)).toBe(0);
      expect(res.events.filter((e) => e.type === "step-end").map((e) => e.step)).toEqual([
        "prepare", "fetch source", "ssh key", "installer media", "create vm", "power on", "boot command", "wait for ssh", "provision", "generalize", "shutdown", "export",
      ]);
    });

    it("the keystrokes vcsim recorded decode back to exactly the boot command", async () => {
      const calls = await vc.scancodes(vm.ref.value);
      expect(calls.length).toBeGreaterThan(20);
      const typed = usbKeyEventsToEvents(calls);
      const expected = parseBootCommand(BOOT_COMMAND).filter((ev) => ev.kind !== "wait");
      expect(typed).toEqual(expected);
    });

    it("provisioned the real guest over SSH", async () => {
      expect((await guest.sh("cat /tmp/vmkiln-vs-iso")).trim()).toBe("vs-iso");
    });

    it("kept the ISO in the digest-named cache; removed the VM and the uploaded media", async () => {
      const sha = execFileSync("sha256sum", [join(work, "installer.iso")], { encoding: "utf8" }).split(" ")[0];
      expect(existsSync(join(vc.datastoreDir, "vmkiln-cache", `${sha}.iso`))).toBe(true);
      expect((await vmRefs()).map((v) => v.name).filter((n) => n.startsWith("vmkiln-"))).toEqual([]);
      expect(tmpFiles()).toBe("");
      expect(existsSync(join(vc.datastoreDir, vm.path.split("/").pop()!))).toBe(false);
      // The journal was closed: nothing left for gc.
      expect(readdirSync(join(stateDir, "journal"))).toEqual([]);
    });

    it("kept the export lease alive and completed it", async () => {
      const leases = Object.values(await vc.leases()).filter((l) => l.vm === vm.ref.value);
      expect(leases).toHaveLength(1);
      expect(leases[0]!.state).toBe("done");
      expect(leases[0]!.progress.length).toBeGreaterThan(0);
    });

    it("never logs the vSphere password", () => {
      expect(res.stdout + res.stderr).not.toContain(vc.password);
    });

    it("the OVA passes vmkiln verify, and vcsim's CreateImportSpec accepts its OVF", async () => {
      const ova = join(out(), "vs-iso.ova");
      const v = await runCli(["verify", ova, "--json"]);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      const x = join(work, "ova-x");
      mkdirSync(x);
      execFileSync("tar", ["-xf", ova, "-C", x]);
      const ovf = readFileSync(join(x, "vs-iso.ovf"), "utf8");
      const pool = refOf(await s.prop((await s.findByInventoryPath("/DC0/host/DC0_C0", signal))!, "resourcePool", signal))!;
      const dsRef = (await s.findByInventoryPath("/DC0/datastore/LocalDS_0", signal))!;
      const [rv] = await s.call("CreateImportSpec", s.sc.ovfManager, [["ovfDescriptor", ovf], ["resourcePool", pool], ["datastore", dsRef], ["cisp", { locale: "", deploymentOption: "", entityName: "imported-vs-iso" }]], signal);
      expect(children(rv, "error")).toEqual([]);
      expect(child(rv, "importSpec")).toBeDefined();
      // The disk in it is the real one vcsim served (streamOptimized).
      const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", join(x, "vs-iso-disk1.vmdk")], { encoding: "utf8" }));
      expect(info["format-specific"].data["create-type"]).toBe("streamOptimized");
      expect(info["virtual-size"]).toBe(virtualSize);
    });
  });

  describe("vsphere-clone", () => {
    const base = "vmkiln-base-template";

    beforeAll(async () => {
      // The template to clone: a copy of one of vcsim's VMs, with a snapshot (for the linked clone).
      const src = (await s.findByInventoryPath("/DC0/vm/DC0_H0_VM0", signal))!;
      const folder = (await s.findByInventoryPath("/DC0/vm", signal))!;
      const pool = refOf(await s.prop((await s.findByInventoryPath("/DC0/host/DC0_C0", signal))!, "resourcePool", signal))!;
      const r = await s.task("CloneVM_Task", src, [["folder", folder], ["name", base], ["spec", { location: { pool }, template: false, config: { numCPUs: 1, memoryMB: 512 }, powerOn: false }]], signal);
      const tpl = refOf(r)!;
      await s.task("CreateSnapshot_Task", tpl, [["name", "base"], ["memory", false], ["quiesce", false]], signal);
      await s.call("MarkAsTemplate", tpl, [], signal);
    });

    it("full clone: adjusts CPU/memory, provisions over SSH, exports an OVA", async () => {
      const file = template("vs-clone", { source: { clone: { template: base } }, vsphere: { cpus: 2, memory: "2G" } });
      const run = startCli(["build", file, "--json"], env());
      const vm = await supplyGuest(run, { setIp: true });
      const res = await run.done;
      expect(res.code, res.stderr.slice(-3000)).toBe(0);
      expect(vm.numCPU).toBe(2);
      expect(vm.memoryMB).toBe(2048);
      expect(res.events.filter((e) => e.type === "step-end").map((e) => e.step)).toEqual([
        "prepare", "ssh key", "create vm", "power on", "wait for ssh", "provision", "generalize", "shutdown", "export",
      ]);
      expect((await guest.sh("cat /tmp/vmkiln-vs-clone")).trim()).toBe("vs-clone");
      expect(readdirSync(join(work, "out", "vs-clone")).sort()).toEqual(["SHA256SUMS", "manifest.json", "vs-clone.ova", "vs-clone.ova.sha256"]);
      const v = await runCli(["verify", join(work, "out", "vs-clone", "vs-clone.ova"), "--json"]);
      expect(v.code, v.stdout).toBe(0);
      expect((await vmRefs()).map((x) => x.name).filter((n) => n.startsWith("vmkiln-2"))).toEqual([]);
    });

    it("linked clone kept as a template (after: template)", async () => {
      const file = template("vs-tpl", { source: { clone: { template: base, linked: true } }, vsphere: { after: "template" } });
      const run = startCli(["build", file, "--json"], env());
      const vm = await supplyGuest(run, { setIp: true });
      const res = await run.done;
      expect(res.code, res.stderr.slice(-3000)).toBe(0);
      expect((await s.prop(vm.ref, "config.template", signal))?.text).toBe("true");
      expect(res.events.some((e) => e.type === "log" && String(e.message).includes(`converted ${vm.path} to a template`))).toBe(true);
      // The kept VM is not a leftover: its journal entry is closed.
      expect(readdirSync(join(stateDir, "journal"))).toEqual([]);
      await s.task("Destroy_Task", vm.ref, [], signal);
    });
  });

  it("an abort mid-build leaves no VM in vcsim's inventory and no uploaded temp files", async () => {
    const file = template("vs-abort", {
      source: { iso: { path: join(work, "installer.iso"), checksum: "none" } },
      vsphere: { disk_size: "1G" },
      extra: { install_media: { type: "floppy", label: "OEMDRV", content: { "ks.cfg": "text\n" } }, boot: { command: ["<enter>"], wait: "1s" } },
    });
    const run = startCli(["build", file, "--json"], env());
    const vm = await supplyGuest(run, { setIp: false });
    expect(tmpFiles()).toContain("install.flp"); // uploaded while the build runs
    await run.waitForEvent((e) => e.type === "log" && /waiting for the guest IP/.test(String(e.message)), 120_000);
    run.child.kill("SIGINT");
    const res = await run.done;
    expect(res.code).toBe(130);
    expect((await vmRefs()).some((v) => v.ref.value === vm.ref.value)).toBe(false);
    expect(tmpFiles()).toBe("");
    expect(existsSync(join(vc.datastoreDir, vm.path.split("/").pop()!))).toBe(false);
  });

  it("vmkiln gc removes a VM a killed build journaled", async () => {
    const src = (await s.findByInventoryPath("/DC0/vm/DC0_H0_VM1", signal))!;
    const folder = (await s.findByInventoryPath("/DC0/vm", signal))!;
    const pool = refOf(await s.prop((await s.findByInventoryPath("/DC0/host/DC0_C0", signal))!, "resourcePool", signal))!;
    await s.task("CloneVM_Task", src, [["folder", folder], ["name", "vmkiln-gc-leftover"], ["spec", { location: { pool }, template: false, powerOn: true }]], signal);
    // A journal whose process is gone (pid 2^22 + 1 does not exist on Linux's default pid_max).
    const entry = { kind: "remote", driver: "vsphere", id: "/DC0/vm/vmkiln-gc-leftover", detail: { kind: "vm", url: vc.url, datacenter: "/DC0", insecure: "false", ca_file: vc.caFile } };
    mkdirSync(join(stateDir, "journal"), { recursive: true });
    writeFileSync(join(stateDir, "journal", "gc-test.4194305.jsonl"), JSON.stringify({ op: "add", entry, time: new Date().toISOString() }) + "\n");
    const r = await runCli(["gc"], env());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("removed vsphere object /DC0/vm/vmkiln-gc-leftover");
    expect(await s.findByInventoryPath("/DC0/vm/vmkiln-gc-leftover", signal)).toBeUndefined();
  });

  it("the exported OVA's disk boots in QEMU", async () => {
    await guest.stop(); // one TCG guest at a time
    const vmdk = join(work, "ova-x", "vs-iso-disk1.vmdk");
    expect(existsSync(vmdk)).toBe(true);
    const vm = await bootImage(vmdk, { username: "ovauser", format: "vmdk", timeoutMs: 900_000 });
    try {
      expect((await vm.sh("id -un")).trim()).toBe("ovauser");
    } finally {
      await vm.stop();
    }
  });
});
