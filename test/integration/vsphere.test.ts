// Issue 5 acceptance: the vSphere driver end to end against vcsim (+ the shim in test/doubles/vcsim).
// vcsim's VMs do not boot, so the test supplies the guest: one fixture guest under QEMU, shared by
// every build; when a build creates its VM, the test uploads a real disk over the VM's disk file
// (so the export carries real bytes) and sets the VM's guest IP to 127.0.0.1 with
// SET.guest.ipAddress; drivers.vsphere.ssh_port points at the guest's forwarded SSH port, so the
// provisioning over SSH is real. For the ISO install the test also plays the installer: it decodes
// the keys vcsim recorded, and fetches the kickstart URL they typed from the build's HTTP server.
// vcsim is as strict as vCenter here (test/doubles/README.md "vcsim"): its export leases time out
// after LEASE_TIMEOUT_S without a keep-alive, and disk downloads are paced to last longer than
// that, so every export below proves the driver keeps its lease alive.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { Datastore } from "../../drivers/vsphere/datastore.js";
import { VimSession } from "../../drivers/vsphere/session.js";
import { MoRef, SoapFault, child, children, refOf, textOf, type XNode } from "../../drivers/vsphere/soap.js";
import { usbKeyEventsToEvents } from "../../drivers/vsphere/usb-hid.js";
import { cloneReconfigSpec, extraConfigSpec, growFirstDisk } from "../../drivers/vsphere/vm-config.js";
import { parseBootCommand } from "../../src/bootcommand/parse.js";
import { eventsToText } from "../../src/bootcommand/text.js";
import { EventBus } from "../../src/log/events.js";
import { sleep } from "../../src/util/abort.js";
import { bootImage, type BootedVm } from "../helpers/boot.js";
import { runCli, startCli, type CliResult, type CliRun } from "../helpers/cli.js";
import { libraryAdmin, type LibraryAdmin } from "../helpers/content-library.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuProcesses } from "../helpers/processes.js";
import { startVcsim, type Vcsim } from "../helpers/vcsim.js";
import { itFull } from "../helpers/tier.js";

// Upper case and punctuation travel as Shift flags, Ctrl as a held modifier (USB HID has no key-up);
// ${http.url} is the build's HTTP server as the guest reaches it.
const BOOT_COMMAND = ["<esc><wait>linux inst.ks=${http.url}/ks.cfg ", "ip=dhcp X_Y:{} <leftCtrlOn>c<leftCtrlOff><enter>"];
const KICKSTART = 'text\nuser --name=tester\nsshkey --username=tester "${ssh.public_key}"\nreboot\n';
const signal = new AbortController().signal;
const GiB = 2 ** 30;
const MiB = 2 ** 20;
const LEASE_TIMEOUT_S = 3;
/** The fixture's streamOptimized disk (~160 MB) takes ~5 s at this pace: more than a lease timeout. */
const NFC_PACE = 30 * MiB;
/** Every text in a device tree (file names hide in backings, and in a floppy's or CD's summary). */
const texts = (n: XNode): string[] => [n.text, ...Object.values(n.attrs), ...n.children.flatMap(texts)];

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
    vc = await startVcsim({ leaseTimeoutSeconds: LEASE_TIMEOUT_S, nfcBytesPerSecond: NFC_PACE });
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

  /**
   * Waits for the build's VM, gives it the real disk and (unless told not to) the guest's IP. What
   * it reads is the VM as createVm left it ("created VM" is logged after the clone's reconfigure).
   */
  async function supplyGuest(
    run: CliRun,
    o: { setIp: boolean },
  ): Promise<{ ref: MoRef; path: string; numCPU: number; memoryMB: number; cdroms: string[]; disk: { capacityInKB: number; capacityInBytes: number } }> {
    const e = await run.waitForEvent((ev) => ev.type === "log" && /^created VM /.test(String(ev.message)), 300_000);
    const m = /^created VM (\S+) \((vm-\d+)\)$/.exec(String(e.message))!;
    const ref = new MoRef("VirtualMachine", m[2]!);
    const p = await s.props(ref, ["config.hardware.device", "config.hardware.numCPU", "config.hardware.memoryMB"], signal);
    const devices = p.get("config.hardware.device")!.children;
    const disk = devices.find((d) => d.xsiType === "VirtualDisk")!;
    const cdroms = devices.filter((d) => d.xsiType === "VirtualCdrom").map((d) => textOf(child(d, "backing"), "fileName") ?? "");
    const fileName = textOf(child(disk, "backing"), "fileName")!;
    const dc = (await s.findByInventoryPath("/DC0", signal))!;
    const ds = new Datastore(s, { datacenter: dc, datacenterPath: "/DC0", datastoreName: "LocalDS_0" });
    await ds.upload(realDisk, fileName.replace(/^\[[^\]]+\]\s*/, ""), new EventBus(), signal);
    if (o.setIp) {
      const extra = extraConfigSpec({ "SET.guest.ipAddress": "127.0.0.1", "SET.guest.toolsRunningStatus": "guestToolsRunning" });
      await s.task("ReconfigVM_Task", ref, [["spec", extra]], signal);
    }
    return {
      ref,
      path: m[1]!,
      numCPU: Number(p.get("config.hardware.numCPU")?.text),
      memoryMB: Number(p.get("config.hardware.memoryMB")?.text),
      cdroms,
      disk: { capacityInKB: Number(textOf(disk, "capacityInKB")), capacityInBytes: Number(textOf(disk, "capacityInBytes") ?? 0) },
    };
  }

  /**
   * Every value a VM's config.hardware.device takes until the VM leaves the inventory, from vcsim's
   * property collector (WaitForUpdatesEx, in a session of its own so the test's calls on `s` never
   * queue behind it). The last value before "leave" is the hardware the VM was exported with.
   */
  async function watchDevices(ref: MoRef): Promise<{ history: XNode[][]; left: () => boolean; error: () => unknown; done: Promise<void>; stop: () => void }> {
    const w = await VimSession.login({ url: vc.url, username: vc.username, password: vc.password, caFile: vc.caFile, insecure: false }, signal);
    const pc = refOf((await w.call("CreatePropertyCollector", w.sc.propertyCollector, [], signal))[0])!;
    await w.call("CreateFilter", pc, [["spec", { propSet: { type: "VirtualMachine", pathSet: "config.hardware.device" }, objectSet: { obj: ref } }], ["partialUpdates", false]], signal);
    const history: XNode[][] = [];
    let left = false;
    let stopped = false;
    let error: unknown;
    const done = (async () => {
      try {
        for (let version = ""; !left && !stopped; ) {
          let set: XNode | undefined;
          try {
            [set] = await w.call("WaitForUpdatesEx", pc, [["version", version], ["options", { maxWaitSeconds: 5 }]], signal);
          } catch (err) {
            // vcsim 0.24.2 re-reads every filter when any object changes: once the VM is gone that
            // read fails (ManagedObjectNotFound) instead of reporting "leave", as vCenter would.
            if (err instanceof SoapFault && err.faultType === "ManagedObjectNotFound" && !(await vmRefs()).some((v) => v.ref.value === ref.value)) left = true;
            else throw err;
          }
          if (!set) continue; // nothing changed within maxWaitSeconds, or the VM is gone
          version = textOf(set, "version") ?? version;
          for (const os of children(set, "filterSet").flatMap((f) => children(f, "objectSet"))) {
            if (textOf(os, "kind") === "leave") left = true;
            for (const c of children(os, "changeSet")) if (textOf(c, "name") === "config.hardware.device") history.push(child(c, "val")?.children ?? []);
          }
        }
      } catch (err) {
        error = err; // for the test to report, not an unhandled rejection
      } finally {
        await w.logout();
      }
    })();
    return { history, left: () => left, error: () => error, done, stop: () => (stopped = true) };
  }

  const tmpFiles = () => {
    const dir = join(vc.datastoreDir, "vmkiln-tmp");
    return existsSync(dir) ? execFileSync("find", [dir, "-type", "f"], { encoding: "utf8" }).trim() : "";
  };
  const cacheFiles = () => {
    const dir = join(vc.datastoreDir, "vmkiln-cache");
    return existsSync(dir) ? readdirSync(dir).sort() : [];
  };
  const logged = (r: CliResult, re: RegExp) => r.events.filter((e) => e.type === "log" && re.test(String(e.message))).map((e) => String(e.message));

  describe("vsphere-iso → OVA", () => {
    let res: CliResult;
    let vm: { ref: MoRef; path: string };
    let typed: string;
    let kickstart: { status: number; body: string };
    let withoutPrefix: number;
    let floppyNote: string;
    let devices: { first: XNode[]; exported: XNode[]; left: boolean; error: unknown };
    const out = () => join(work, "out", "vs-iso");

    beforeAll(async () => {
      const file = template("vs-iso", {
        source: { iso: { path: join(work, "installer.iso"), checksum: "none" } },
        vsphere: { disk_size: "4G", guest_os_type: "debian12_64Guest" },
        extra: {
          variables: { floppy_note: "rendered-from-a-variable" },
          http: { content: { "/ks.cfg": KICKSTART } },
          install_media: { type: "floppy", label: "OEMDRV", content: { "ks.cfg": "text\nreboot\n", "note.txt": "${var.floppy_note}\n${ssh.public_key}\n" } },
          boot: { command: BOOT_COMMAND, wait: "1s", key_interval: "10ms" },
          output: { directory: join(work, "out", "vs-iso"), formats: ["ova"] },
        },
      });
      const run = startCli(["build", file, "--json"], env());
      vm = await supplyGuest(run, { setIp: true });
      const watch = await watchDevices(vm.ref);
      // vcsim's VM runs no installer: play it. Read back what was typed, take the kickstart URL from
      // it and fetch it as Anaconda would; the build waits for that fetch (http.expect) before SSH.
      await run.waitForEvent((e) => e.type === "step-end" && e.step === "boot command", 120_000);
      const flp = tmpFiles().split("\n").find((f) => f.endsWith("/install.flp"))!;
      floppyNote = execFileSync("mtype", ["-i", flp, "::note.txt"], { encoding: "utf8", env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } });
      typed = eventsToText(usbKeyEventsToEvents(await vc.scancodes(vm.ref.value)));
      const url = /inst\.ks=(\S+)/.exec(typed)?.[1] ?? "";
      // The guest's address is not known in advance on vSphere: the path prefix alone guards the file.
      const bare = await fetch(url.replace(/\/[a-z2-7]{20}\//, "/"));
      withoutPrefix = bare.status;
      await bare.text();
      const r = await fetch(url);
      kickstart = { status: r.status, body: await r.text() };
      res = await run.done;
      if (res.code !== 0) console.error(res.stderr.slice(-4000));
      // The VM is destroyed before the CLI exits; its "leave" reaches the watcher within a tick.
      await Promise.race([watch.done, sleep(15_000, signal)]);
      watch.stop();
      await watch.done;
      devices = { first: watch.history[0] ?? [], exported: watch.history.at(-1) ?? [], left: watch.left(), error: watch.error() };
    });

    it("exits 0 through the vSphere plan: the shared install steps, then the fetch, then SSH", () => {
      expect(res.code, res.stderr.slice(-2000)).toBe(0);
      expect(res.events.filter((e) => e.type === "step-end").map((e) => e.step)).toEqual([
        "prepare", "fetch source", "ssh key", "serve http", "installer media", "create vm", "power on", "boot command", "wait for http fetch", "wait for ssh", "provision", "sbom", "generalize", "shutdown", "export",
      ]);
      expect(logged(res, /^the installer fetched \/ks\.cfg$/)).toHaveLength(1);
    });

    it("the keystrokes vcsim recorded decode back to exactly the boot command, with the guest's view of the HTTP server", async () => {
      // Against vcsim on 127.0.0.1 the route to vCenter starts at 127.0.0.1: that is http.ip. The
      // log hides the path prefix (***); the typed URL has it.
      const port = /the guest uses http:\/\/127\.0\.0\.1:(\d+)\/\*\*\*; any address may connect, under a random path prefix\)$/.exec(logged(res, /^serving /)[0] ?? "")?.[1];
      expect(port).toBeDefined();
      const url = new RegExp(`inst\\.ks=(http://127\\.0\\.0\\.1:${port}/[a-z2-7]{20})/ks\\.cfg `).exec(typed)?.[1];
      expect(url).toBeDefined();
      const calls = await vc.scancodes(vm.ref.value);
      expect(calls.length).toBeGreaterThan(20);
      const expected = parseBootCommand(BOOT_COMMAND, { values: { "http.url": url! } }).filter((ev) => ev.kind !== "wait");
      expect(usbKeyEventsToEvents(calls)).toEqual(expected);
      expect(typed).toContain(`inst.ks=${url}/ks.cfg ip=dhcp X_Y:{} `);
      // One PutUsbScanCodes per key, boot.key_interval (10 ms) between them.
      const manifest = JSON.parse(readFileSync(join(out(), "manifest.json"), "utf8"));
      expect(manifest.durations_ms.boot_command_ms).toBeGreaterThanOrEqual((calls.length - 1) * 10);
    });

    it("served the kickstart rendered with the build's SSH public key (under the path prefix only); the floppy's content was rendered too", () => {
      const pub = readFileSync(`${guest.privateKeyPath}.pub`, "utf8").trim();
      expect(withoutPrefix).toBe(404);
      expect(kickstart.status).toBe(200);
      expect(kickstart.body).toBe(`text\nuser --name=tester\nsshkey --username=tester "${pub}"\nreboot\n`);
      expect(floppyNote).toBe(`rendered-from-a-variable\n${pub}\n`);
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

    it("exported the VM with the installer media detached: the ISO's CD-ROM drive empty, the floppy removed", () => {
      const sha = execFileSync("sha256sum", [join(work, "installer.iso")], { encoding: "utf8" }).split(" ")[0];
      const iso = `[LocalDS_0] vmkiln-cache/${sha}.iso`;
      const names = (list: XNode[]) => list.flatMap(texts).filter((t) => /\.(iso|flp)\b/.test(t));
      // As created: the ISO on a CD-ROM, the kickstart floppy.
      expect(names(devices.first)).toEqual(expect.arrayContaining([iso, expect.stringMatching(/^\[LocalDS_0\] vmkiln-tmp\/.+\/install\.flp$/)]));
      // As exported (the last hardware before the VM left the inventory): one empty, disconnected
      // CD-ROM drive, no floppy, and no device naming either file.
      expect(devices.error).toBeUndefined();
      expect(devices.left).toBe(true);
      const cds = devices.exported.filter((d) => d.xsiType === "VirtualCdrom");
      expect(cds.map((d) => child(d, "backing")?.xsiType)).toEqual(["VirtualCdromRemotePassthroughBackingInfo"]);
      expect(textOf(child(cds[0], "connectable"), "connected")).toBe("false");
      expect(devices.exported.filter((d) => d.xsiType === "VirtualFloppy")).toEqual([]);
      expect(names(devices.exported)).toEqual([]);
      expect(devices.exported.some((d) => d.xsiType === "VirtualDisk")).toBe(true);
      expect(logged(res, /^ejected /)).toEqual([`ejected ${iso} (the CD-ROM drive stays, empty)`]);
      expect(logged(res, /^removed the device holding \[LocalDS_0\] vmkiln-tmp\/.+\/install\.flp$/)).toHaveLength(1);
    });

    it("kept the export lease alive through a download longer than its timeout, and completed it", async () => {
      const leases = Object.values(await vc.leases()).filter((l) => l.vm === vm.ref.value);
      expect(leases).toHaveLength(1);
      const lease = leases[0]!;
      expect(lease.state).toBe("done");
      expect(lease.timeoutSeconds).toBe(LEASE_TIMEOUT_S);
      expect(lease.downloads.map((d) => [d.status, d.cut])).toEqual([[200, false]]);
      // The download outlasted the lease timeout, so only the keep-alives kept the lease: never a
      // gap of a whole timeout between ready and the last HttpNfcLeaseProgress.
      expect(lease.downloads[0]!.seconds).toBeGreaterThan(LEASE_TIMEOUT_S);
      const gaps = lease.keepAlives.map((t, i) => t - (i === 0 ? 0 : lease.keepAlives[i - 1]!));
      expect(lease.keepAlives.length).toBeGreaterThanOrEqual(Math.floor(lease.downloads[0]!.seconds / LEASE_TIMEOUT_S));
      expect(Math.max(...gaps)).toBeLessThan(LEASE_TIMEOUT_S);
    });

    it("never logs the vSphere password", () => {
      expect(res.stdout + res.stderr).not.toContain(vc.password);
    });

    it("the OVA's descriptor is vSphere's (OvfManager.CreateDescriptor), passes vmkiln verify, and vcsim's CreateImportSpec accepts it", async () => {
      const ova = join(out(), "vs-iso.ova");
      const v = await runCli(["verify", ova, "--json"]);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      const x = join(work, "ova-x");
      mkdirSync(x);
      execFileSync("tar", ["-xf", ova, "-C", x]);
      const ovf = readFileSync(join(x, "vs-iso.ovf"), "utf8");
      // vSphere made it: it is the descriptor CreateDescriptor answered for this VM, naming the
      // downloaded disk; the driver wrote no descriptor of its own.
      const made = (await vc.descriptors()).filter((d) => d.vm === vm.ref.value);
      expect(made.map((d) => [d.name, d.ovfFiles.map((f) => f.path), d.sha256])).toEqual([["vs-iso", ["vs-iso-disk1.vmdk"], createHash("sha256").update(ovf).digest("hex")]]);
      expect(logged(res, /CreateDescriptor/)).toEqual([]);
      const pool = refOf(await s.prop((await s.findByInventoryPath("/DC0/host/DC0_C0", signal))!, "resourcePool", signal))!;
      const dsRef = (await s.findByInventoryPath("/DC0/datastore/LocalDS_0", signal))!;
      const [rv] = await s.call("CreateImportSpec", s.sc.ovfManager, [["ovfDescriptor", ovf], ["resourcePool", pool], ["datastore", dsRef], ["cisp", { locale: "", deploymentOption: "", entityName: "imported-vs-iso" }]], signal);
      expect(children(rv, "error")).toEqual([]);
      expect(child(rv, "importSpec")).toBeDefined();
      // Made from the hardware the test above shows detached: one CD-ROM drive, empty (remote
      // passthrough, which imports anywhere), no floppy, nothing naming the build's ISO or floppy image.
      expect(ovf).not.toMatch(/\.iso\b|\.flp\b|vmware\.cdrom\.iso|vmware\.floppy|ResourceType>14</);
      expect(ovf.match(/<rasd:ResourceType>15<\/rasd:ResourceType>/g)).toHaveLength(1);
      expect(ovf).toContain("<rasd:ResourceSubType>vmware.cdrom.remotepassthrough</rasd:ResourceSubType>");
      // The disk in it is the real one vcsim served (streamOptimized), at the VM's 4 GiB capacity,
      // which the descriptor declares too.
      const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", join(x, "vs-iso-disk1.vmdk")], { encoding: "utf8" }));
      expect(info["format-specific"].data["create-type"]).toBe("streamOptimized");
      expect(info["virtual-size"]).toBe(4 * GiB);
      expect(ovf).toContain(`ovf:capacity="${4 * GiB}"`);
      expect(virtualSize).toBeLessThan(4 * GiB);
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
      // vcsim's VMs have a 1 MiB disk, the smallest disk_size a template may give: grow the base to
      // 8 MiB so that a valid disk_size can still be smaller than it (the shrink test).
      const devices = (await s.prop(tpl, "config.hardware.device", signal))?.children ?? [];
      const grown = growFirstDisk(devices, 8 * 2 ** 20, base);
      await s.task("ReconfigVM_Task", tpl, [["spec", cloneReconfigSpec({ cpus: 1, memoryMiB: 512, grownDisk: grown.device })]], signal);
      await s.task("CreateSnapshot_Task", tpl, [["name", "base"], ["memory", false], ["quiesce", false]], signal);
      await s.call("MarkAsTemplate", tpl, [], signal);
    });

    it("full clone: adjusts CPU/memory, grows the disk (disk_size), provisions over SSH, exports an OVA", async () => {
      const file = template("vs-clone", { source: { clone: { template: base } }, vsphere: { cpus: 2, memory: "2G", disk_size: "2G" } });
      const run = startCli(["build", file, "--json"], env());
      const vm = await supplyGuest(run, { setIp: true });
      const res = await run.done;
      expect(res.code, res.stderr.slice(-3000)).toBe(0);
      expect(vm.numCPU).toBe(2);
      expect(vm.memoryMB).toBe(2048);
      // the base has an 8 MiB disk (vcsim fills capacityInKB only); the clone's first disk now has 2 GiB in both fields.
      expect(vm.disk).toEqual({ capacityInKB: 2 * 1024 * 1024, capacityInBytes: 2 * GiB });
      expect(logged(res, /grew the first disk/)).toEqual([`${vm.path.split("/").pop()}: grew the first disk from 8 MiB to 2 GiB`]);
      expect(res.events.filter((e) => e.type === "step-end").map((e) => e.step)).toEqual([
        "prepare", "ssh key", "create vm", "power on", "wait for ssh", "provision", "sbom", "generalize", "shutdown", "export",
      ]);
      expect((await guest.sh("cat /tmp/vmkiln-vs-clone")).trim()).toBe("vs-clone");
      expect(readdirSync(join(work, "out", "vs-clone")).sort()).toEqual(["SHA256SUMS", "manifest.json", "vs-clone.ova", "vs-clone.ova.sha256", "vs-clone.spdx.json"]);
      // The descriptor is vSphere's, so it describes the template's hardware as it is: vcsim's VMs
      // have their disk on a pvscsi controller, the one thing vmkiln verify flags (not portable).
      const v = await runCli(["verify", join(work, "out", "vs-clone", "vs-clone.ova"), "--json"]);
      expect(v.code, v.stdout).toBe(1);
      expect((JSON.parse(v.stdout) as { findings: Array<{ code: string }> }).findings.map((f) => f.code)).toEqual(["OVF_SCSI_SUBTYPE"]);
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

    it("a disk_size below the source's disk is refused before anything is cloned (exit 2)", async () => {
      const file = template("vs-shrink", { source: { clone: { template: base } }, vsphere: { disk_size: "4M" } });
      const res = await runCli(["build", file, "--json"], env());
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(`drivers.vsphere.disk_size: 4 MiB is smaller than the first disk of /DC0/vm/${base} (8 MiB); vSphere grows disks, it never shrinks them`);
      expect(logged(res, /^created VM /)).toEqual([]);
      expect((await vmRefs()).map((v) => v.name).filter((n) => n.startsWith("vmkiln-2"))).toEqual([]);
      expect(readdirSync(join(stateDir, "journal"))).toEqual([]);
    });
  });

  describe("content libraries", () => {
    let admin: LibraryAdmin;
    let isoLib: string;
    let isoItem: string;
    let tplLib: string;
    let ovfItem: string;

    beforeAll(async () => {
      // What an admin sets up beforehand: an ISO item (uploaded through an update session) and an
      // OVF template item (the descriptor of the vs-iso build's OVA: vcsim deploys from the .ovf).
      admin = await libraryAdmin(vc);
      const dsId = (await s.findByInventoryPath("/DC0/datastore/LocalDS_0", signal))!.value;
      writeFileSync(join(work, "media", "README.txt"), "installer from a content library\n");
      execFileSync("genisoimage", ["-quiet", "-o", join(work, "library.iso"), "-V", "LIBRARY", join(work, "media", "README.txt")]);
      isoLib = await admin.createLibrary("vmkiln-isos", dsId);
      isoItem = await admin.createItem(isoLib, "installer", "iso");
      await admin.upload(isoItem, join(work, "library.iso"));
      tplLib = await admin.createLibrary("vmkiln-templates", dsId);
      const ovfDir = join(work, "ovf-item");
      mkdirSync(ovfDir);
      execFileSync("tar", ["-xf", join(work, "out", "vs-iso", "vs-iso.ova"), "-C", ovfDir, "vs-iso.ovf"]);
      ovfItem = await admin.createItem(tplLib, "vs-iso-ovf", "ovf");
      await admin.upload(ovfItem, join(ovfDir, "vs-iso.ovf"));
    });

    afterAll(async () => {
      await admin?.close();
    });

    it("ISO from a library (attached in place, nothing uploaded), captured back into one (after: library)", async () => {
      const cacheBefore = cacheFiles();
      const file = template("vs-lib", {
        source: { iso: { content_library: "vmkiln-isos/installer" } },
        vsphere: { disk_size: "4G", after: "library", library_destination: { library: "vmkiln-templates", name: "vs-lib-template", description: "built by vmkiln's vSphere test" } },
      });
      const run = startCli(["build", file, "--json"], env());
      const vm = await supplyGuest(run, { setIp: true });
      const res = await run.done;
      expect(res.code, res.stderr.slice(-3000)).toBe(0);
      expect(vm.cdroms).toContain(`[LocalDS_0] contentlib-${isoLib}/${isoItem}/library.iso`);
      expect(cacheFiles()).toEqual(cacheBefore);
      expect(tmpFiles()).toBe("");
      expect(res.events.filter((e) => e.type === "step-end").map((e) => e.step)).toEqual([
        "prepare", "ssh key", "create vm", "power on", "wait for ssh", "provision", "generalize", "shutdown", "capture to library",
      ]);
      expect((await guest.sh("cat /tmp/vmkiln-vs-lib")).trim()).toBe("vs-lib");
      const items = await admin.findItems(tplLib, "vs-lib-template");
      expect(items).toHaveLength(1);
      expect(await admin.item(items[0]!)).toMatchObject({ name: "vs-lib-template", type: "ovf", library_id: tplLib, description: "built by vmkiln's vSphere test" });
      expect(logged(res, /^captured the VM as OVF template vs-lib-template in content library vmkiln-templates \(item /)).toHaveLength(1);
      // The VM is gone (the library item is the artifact), the journal closed, the password not logged.
      expect((await vmRefs()).map((v) => v.name).filter((n) => n.startsWith("vmkiln-2"))).toEqual([]);
      expect(readdirSync(join(stateDir, "journal"))).toEqual([]);
      expect(res.stdout + res.stderr).not.toContain(vc.password);
    });

    /**
     * A build while vcsim answers /api alone, as a vCenter 7.0U2+ without the legacy /rest would (the
     * driver cannot fall back to /rest unnoticed: it answers 404); the REST requests the build made.
     */
    async function throughApiAlone(file: string): Promise<{ res: CliResult; vm: Awaited<ReturnType<typeof supplyGuest>>; requests: string[] }> {
      const before = (await vc.rest(["api"])).requests.length;
      try {
        const run = startCli(["build", file, "--json"], env());
        const vm = await supplyGuest(run, { setIp: true });
        const res = await run.done;
        return { res, vm, requests: (await vc.rest()).requests.slice(before) };
      } finally {
        await vc.rest(["rest"]);
      }
    }

    it("through /api alone (vCenter 7.0U2+): ISO from a library, captured back into one", async () => {
      const file = template("vs-api-iso", {
        source: { iso: { content_library: "vmkiln-isos/installer" } },
        vsphere: { disk_size: "4G", after: "library", library_destination: { library: "vmkiln-templates", name: "vs-api-template" } },
      });
      const { res, vm, requests } = await throughApiAlone(file);
      expect(res.code, res.stderr.slice(-3000)).toBe(0);
      expect(vm.cdroms).toContain(`[LocalDS_0] contentlib-${isoLib}/${isoItem}/library.iso`);
      expect(requests.filter((r) => !r.split(" ")[1]!.startsWith("/api/"))).toEqual([]);
      expect(new Set(requests)).toEqual(
        new Set([
          "POST /api/session",
          "POST /api/content/library",
          "POST /api/content/library/item",
          `GET /api/content/library/item/${isoItem}`,
          `GET /api/content/library/item/${isoItem}/storage`,
          "POST /api/vcenter/ovf/library-item",
          "DELETE /api/session",
        ]),
      );
      expect(logged(res, /^captured the VM as OVF template vs-api-template in content library vmkiln-templates \(item /)).toHaveLength(1);
      expect(await admin.findItems(tplLib, "vs-api-template")).toHaveLength(1);
      expect((await vmRefs()).map((v) => v.name).filter((n) => n.startsWith("vmkiln-2"))).toEqual([]);
      expect(readdirSync(join(stateDir, "journal"))).toEqual([]);
    });

    it("through /api alone: clone from a library OVF template (filter, deploy), captured into a library", async () => {
      const file = template("vs-api-clone", {
        source: { clone: { content_library: "vmkiln-templates/vs-iso-ovf" } },
        vsphere: { after: "library", library_destination: { library: "vmkiln-templates", name: "vs-api-clone-template" } },
      });
      const { res, requests } = await throughApiAlone(file);
      expect(res.code, res.stderr.slice(-3000)).toBe(0);
      expect(logged(res, /^deploying OVF template vmkiln-templates\/vs-iso-ovf as vmkiln-/)).toHaveLength(1);
      expect(requests.filter((r) => !r.split(" ")[1]!.startsWith("/api/"))).toEqual([]);
      // filter (the OVF's networks), then deploy: both on the item's /api path.
      expect(requests.filter((r) => r === `POST /api/vcenter/ovf/library-item/${ovfItem}`)).toHaveLength(2);
      expect(await admin.findItems(tplLib, "vs-api-clone-template")).toHaveLength(1);
      expect((await guest.sh("cat /tmp/vmkiln-vs-api-clone")).trim()).toBe("vs-api-clone");
      expect((await vmRefs()).map((v) => v.name).filter((n) => n.startsWith("vmkiln-2"))).toEqual([]);
    });

    it("a capture into a name that exists is refused before any VM is created (exit 2); the item stays", async () => {
      const file = template("vs-lib-again", {
        source: { clone: { template: "vmkiln-base-template" } },
        vsphere: { after: "library", library_destination: { library: "vmkiln-templates", name: "vs-lib-template" } },
      });
      const res = await runCli(["build", file, "--json"], env());
      expect(res.code).toBe(2);
      expect(logged(res, /^created VM /)).toEqual([]);
      expect(res.stderr).toContain("drivers.vsphere.library_destination.name: content library vmkiln-templates already has an item named vs-lib-template");
      expect(await admin.findItems(tplLib, "vs-lib-template")).toHaveLength(1);
      expect((await vmRefs()).map((v) => v.name).filter((n) => n.startsWith("vmkiln-2"))).toEqual([]);
    });

    // Full tier (test/helpers/tier.ts): the /api flavour of the same deploy runs in the fast tier.
    itFull("clone from a library OVF template: deployed, reconfigured, provisioned, exported", async () => {
      const file = template("vs-lib-clone", { source: { clone: { content_library: "vmkiln-templates/vs-iso-ovf" } }, vsphere: { cpus: 2, memory: "2G" } });
      const run = startCli(["build", file, "--json"], env());
      const vm = await supplyGuest(run, { setIp: true });
      const res = await run.done;
      expect(res.code, res.stderr.slice(-3000)).toBe(0);
      expect(logged(res, /^deploying OVF template vmkiln-templates\/vs-iso-ovf as vmkiln-/)).toHaveLength(1);
      expect(vm.numCPU).toBe(2);
      expect(vm.memoryMB).toBe(2048);
      expect(res.events.filter((e) => e.type === "step-end").map((e) => e.step)).toEqual([
        "prepare", "ssh key", "create vm", "power on", "wait for ssh", "provision", "sbom", "generalize", "shutdown", "export",
      ]);
      expect((await guest.sh("cat /tmp/vmkiln-vs-lib-clone")).trim()).toBe("vs-lib-clone");
      const v = await runCli(["verify", join(work, "out", "vs-lib-clone", "vs-lib-clone.ova"), "--json"]);
      expect(v.code, v.stdout).toBe(0);
      expect((await vmRefs()).map((x) => x.name).filter((n) => n.startsWith("vmkiln-2"))).toEqual([]);
    });

    it("vmkiln gc removes a library item a killed capture journaled", async () => {
      await admin.createItem(tplLib, "vmkiln-gc-item", "ovf");
      expect(await admin.findItems(tplLib, "vmkiln-gc-item")).toHaveLength(1);
      const entry = {
        kind: "remote",
        driver: "vsphere",
        id: "vmkiln-templates/vmkiln-gc-item",
        detail: { kind: "library-item", url: vc.url, datacenter: "/DC0", insecure: "false", library_id: tplLib, name: "vmkiln-gc-item", ca_file: vc.caFile },
      };
      mkdirSync(join(stateDir, "journal"), { recursive: true });
      writeFileSync(join(stateDir, "journal", "gc-lib.4194305.jsonl"), JSON.stringify({ op: "add", entry, time: new Date().toISOString() }) + "\n");
      const r = await runCli(["gc"], env());
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("removed vsphere object vmkiln-templates/vmkiln-gc-item");
      expect(await admin.findItems(tplLib, "vmkiln-gc-item")).toEqual([]);
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

  // Full tier (test/helpers/tier.ts): a second boot of the fixture's disk, after its trip through
  // vcsim; the VMDK reader checks (qemu-img, govmomi) run in the fast tier.
  itFull("the exported OVA's disk boots in QEMU", async () => {
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
