// The vSphere driver: vim25 SOAP for the VM's life (create/clone, power, guest IP, keystrokes,
// export lease), REST where it serves (session probe, content library), datastore /folder for
// uploads. Every object it creates outside the process is journaled first so `vmkiln gc` can remove
// it after a crash, and undone on failure or abort.
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { formatManifest } from "../../src/artifact/manifest-mf.js";
import { buildOvf } from "../../src/artifact/ovf.js";
import { sha256File } from "../../src/artifact/sums.js";
import { BuildError, UserError } from "../../src/errors.js";
import type { EventBus } from "../../src/log/events.js";
import type { ApplianceFiles, DiskFile, Driver, DriverFactoryContext, ExportRequest, KeyEvent, VmHandle, VmSpec } from "../../src/pipeline/driver.js";
import type { Journal, JournalEntry } from "../../src/pipeline/journal.js";
import type { BuildSpec, VsphereSpec } from "../../src/template/spec.js";
import { sleep } from "../../src/util/abort.js";
import { Datastore, cachedIsoPath } from "./datastore.js";
import { govcKeystrokeCalls, govcUsable, typeWithGovc } from "./govc.js";
import { inventoryPath, resolvePlacement, type Placement } from "./inventory.js";
import { pickGuestIp, type GuestIpInfo } from "./ip.js";
import { exportVm } from "./nfc-export.js";
import { destroyVmAt } from "./gc.js";
import { vspherePlan } from "./plan.js";
import { RestSession } from "./rest.js";
import { VimSession, type Connection } from "./session.js";
import { MoRef, SoapFault, child, children, refOf, textOf, type SoapObject, type XNode } from "./soap.js";
import { toUsbBatches } from "./usb-hid.js";
import { cloneSpec, isoVmConfigSpec, removeDevicesSpec, usbScanCodeSpec } from "./vm-config.js";

/** Default pause between keys when the template sets none: hosts drop keys sent in a burst. */
const DEFAULT_KEY_INTERVAL_MS = 50;

interface VmState {
  handle: VmHandle;
  ref: MoRef;
  /** Inventory path (the journal's id: names are unique per build). */
  path: string;
  /** Handed over (template, snapshot, kept): destroyVm leaves it alone. */
  kept: boolean;
}

export function createVsphereDriver(ctx: DriverFactoryContext): VsphereDriver {
  const v = ctx.spec.drivers.vsphere;
  if (!v) throw new UserError("DRIVER_NOT_CONFIGURED", "drivers.vsphere: not configured in the template");
  if (!v.username || !v.password) {
    throw new UserError("VSPHERE_CREDENTIALS", "drivers.vsphere: username and password are required", {
      hint: "set drivers.vsphere.username/password (e.g. ${env.X}) or VSPHERE_USERNAME / VSPHERE_PASSWORD",
    });
  }
  ctx.events.addSecret(v.password);
  return new VsphereDriver(ctx.spec, v, { url: v.url, username: v.username, password: v.password, caFile: v.caFile, insecure: v.insecure }, ctx.events, ctx.journal);
}

export class VsphereDriver implements Driver {
  readonly name = "vsphere" as const;
  readonly capabilities = {
    sources: ["iso", "clone"] as Array<"iso" | "clone">,
    keystrokes: true,
    exports: ["ovf", "ova"] as Array<"ovf" | "ova">,
  };
  private session: VimSession | undefined;
  private placement: Placement | undefined;
  private readonly vms = new Map<string, VmState>();
  /** Per-build datastore folder for uploaded media (removed at the end). */
  private tempFolder: string | undefined;

  constructor(
    private readonly build: BuildSpec,
    private readonly v: VsphereSpec,
    private readonly conn: Connection,
    private readonly events: EventBus,
    private readonly journal: Journal,
  ) {}

  plan(spec: BuildSpec) {
    return vspherePlan(spec, this);
  }

  // ---------- connection ----------

  async connect(signal: AbortSignal): Promise<{ s: VimSession; p: Placement }> {
    if (!this.session) {
      if (this.v.insecure) this.events.warn("drivers.vsphere.insecure: TLS verification is off", "vsphere");
      this.session = await VimSession.login(this.conn, signal);
      this.events.info(`logged in to ${this.session.origin.host} (${this.session.sc.apiType})`, "vsphere");
      // REST is optional (standalone ESXi has none): only its flavor is logged here.
      const rest = await RestSession.login(this.session.origin, this.session.dispatcher, this.conn.username, this.conn.password, signal).catch(() => undefined);
      this.events.debug(`REST API: ${rest ? (rest.flavor === "api" ? "/api" : "legacy /rest") : "none"}`, "vsphere");
      await rest?.logout();
    }
    this.placement ??= await resolvePlacement(this.session, this.v, signal);
    return { s: this.session, p: this.placement };
  }

  private remoteEntry(id: string, kind: "vm" | "file"): Extract<JournalEntry, { kind: "remote" }> {
    const detail: Record<string, string> = { kind, url: this.v.url, datacenter: this.placement?.datacenterPath ?? "", insecure: String(this.v.insecure) };
    if (this.v.caFile) detail.ca_file = this.v.caFile;
    return { kind: "remote", driver: "vsphere", id, detail };
  }

  // ---------- create ----------

  async createVm(spec: VmSpec, signal: AbortSignal): Promise<VmHandle> {
    const existing = this.vms.get(spec.name);
    if (existing) return existing.handle;
    const { s, p } = await this.connect(signal);
    const folderPath = inventoryPath(p.datacenterPath, "vm", this.v.folder ?? "");
    const path = `${folderPath}/${spec.name}`;
    if (await s.findByInventoryPath(path, signal)) throw new BuildError("VSPHERE_VM_EXISTS", `a VM named ${path} already exists`);

    const entry = this.remoteEntry(path, "vm");
    this.journal.add(entry);
    let ref: MoRef;
    try {
      ref = this.build.source.kind === "clone" ? await this.cloneFrom(s, p, spec.name, signal) : await this.createFromIso(s, p, spec, signal);
    } catch (err) {
      // A task that failed half-way may still have registered the VM.
      await this.destroyByPath(s, path).catch(() => undefined);
      this.journal.done(entry);
      throw err;
    }
    const handle: VmHandle = { id: ref.value, driver: "vsphere" };
    this.vms.set(spec.name, { handle, ref, path, kept: false });
    this.events.info(`created VM ${path} (${ref.value})`, "vsphere");
    return handle;
  }

  private async createFromIso(s: VimSession, p: Placement, spec: VmSpec, signal: AbortSignal): Promise<MoRef> {
    if (this.v.diskSize === undefined) throw new UserError("DISK_SIZE_REQUIRED", "drivers.vsphere.disk_size: required for an installer ISO build");
    const ds = new Datastore(s, p);
    const isoPath = spec.installerIso ? await this.uploadIso(ds, spec.installerIso, signal) : undefined;
    let media: { path: string; kind: "cd" | "floppy" } | undefined;
    if (spec.installerMedia) {
      const name = spec.installerMedia.kind === "floppy" ? "install.flp" : "install.iso";
      media = { kind: spec.installerMedia.kind, path: ds.path(`${await this.ensureTempFolder(ds, spec.buildId, signal)}/${name}`) };
      await ds.upload(spec.installerMedia.path, `${this.tempFolder}/${name}`, this.events, signal);
    }
    const network = await this.network(s, p, signal);
    const config = isoVmConfigSpec({
      name: spec.name,
      guestId: this.v.guestOsType,
      datastoreName: p.datastoreName,
      cpus: this.v.cpus,
      memoryMiB: this.v.memory,
      diskBytes: this.v.diskSize,
      firmware: this.v.firmware,
      isoPath,
      media,
      network,
    });
    const result = await s.task("CreateVM_Task", p.folder, [["config", config], ["pool", p.pool], ["host", p.host]], signal);
    return refOf(result)!;
  }

  private async network(s: VimSession, p: Placement, signal: AbortSignal) {
    let ref = p.network;
    let name = p.networkName;
    if (!ref) {
      // No network named: the datacenter's only one, else "VM Network" (vSphere's default port group).
      const list = children((await s.prop(p.datacenter, "network", signal)) ?? undefined, "ManagedObjectReference");
      if (list.length === 1) ref = refOf(list[0]);
      else ref = await s.findByInventoryPath(`${p.datacenterPath}/network/VM Network`, signal);
      if (!ref) throw new UserError("VSPHERE_PLACEMENT", "drivers.vsphere.network: required (the datacenter has several networks)");
      name = (await s.prop(ref, "name", signal))?.text ?? "";
    }
    let dvsUuid: string | undefined;
    if (ref.type === "DistributedVirtualPortgroup") {
      const dvs = refOf(await s.prop(ref, "config.distributedVirtualSwitch", signal));
      if (dvs) dvsUuid = (await s.prop(dvs, "uuid", signal))?.text;
    }
    return { name: name ?? "", ref, dvsUuid };
  }

  private async ensureTempFolder(ds: Datastore, buildId: string, signal: AbortSignal): Promise<string> {
    if (!this.tempFolder) {
      const folder = `vmkiln-tmp/${buildId}`;
      this.journal.add(this.remoteEntry(ds.path(folder), "file"));
      await ds.mkdir(folder, signal);
      this.tempFolder = folder;
    }
    return this.tempFolder;
  }

  /** Uploads the ISO into the digest-named cache unless an equal one is there already. */
  private async uploadIso(ds: Datastore, local: string, signal: AbortSignal): Promise<string> {
    const sha = await sha256File(local, signal);
    const rel = cachedIsoPath(this.v.isoCacheFolder, sha);
    if (await ds.exists(rel, signal)) {
      this.events.info(`ISO already on the datastore: ${ds.path(rel)}`, "vsphere");
      return ds.path(rel);
    }
    // Journaled while it uploads: a half-uploaded file must not stay in the cache under its digest.
    const entry = this.remoteEntry(ds.path(rel), "file");
    this.journal.add(entry);
    try {
      await ds.mkdir(this.v.isoCacheFolder, signal);
      await ds.upload(local, rel, this.events, signal);
    } catch (err) {
      await ds.remove(rel, AbortSignal.timeout(60_000)).catch(() => undefined);
      this.journal.done(entry);
      throw err;
    }
    this.journal.done(entry);
    return ds.path(rel);
  }

  private async cloneFrom(s: VimSession, p: Placement, name: string, signal: AbortSignal): Promise<MoRef> {
    const srcPath = inventoryPath(p.datacenterPath, "vm", this.build.source.location);
    const src = await s.findByInventoryPath(srcPath, signal);
    if (!src) throw new UserError("VSPHERE_NOT_FOUND", `source.clone.template: ${srcPath} not found`);
    let snapshot: MoRef | undefined;
    if (this.build.source.linked) {
      snapshot = refOf(await s.prop(src, "snapshot.currentSnapshot", signal));
      if (!snapshot) throw new UserError("VSPHERE_LINKED_CLONE", `source.clone.linked: ${srcPath} has no snapshot to link to`, { hint: "take a snapshot of the template, or set linked: false" });
    }
    const spec = cloneSpec({ pool: p.pool, datastore: p.datastore, host: p.host, cpus: this.v.cpus, memoryMiB: this.v.memory, linkedSnapshot: snapshot });
    const vm = refOf(await s.task("CloneVM_Task", src, [["folder", p.folder], ["name", name], ["spec", spec]], signal))!;
    // Set CPU/memory again on the clone: the clone spec's config is not applied everywhere (vcsim
    // ignores it), and a reconfigure is what the build relies on.
    await s.task("ReconfigVM_Task", vm, [["spec", { numCPUs: this.v.cpus, memoryMB: this.v.memory }]], signal);
    return vm;
  }

  // ---------- run ----------

  async start(vm: VmHandle, signal: AbortSignal): Promise<void> {
    const { s } = await this.connect(signal);
    await s.task("PowerOnVM_Task", this.state(vm).ref, [], signal);
    this.events.info(`powered on ${this.state(vm).path}`, "vsphere");
  }

  keyIntervalMs(): number {
    return this.build.install?.boot?.keyIntervalMs ?? DEFAULT_KEY_INTERVAL_MS;
  }

  async sendKeys(vm: VmHandle, keys: KeyEvent[], signal: AbortSignal): Promise<void> {
    const { s } = await this.connect(signal);
    const st = this.state(vm);
    const govc = govcUsable(process.env);
    if (govc) {
      this.events.info("typing the boot command with govc vm.keystrokes", "vsphere");
      await typeWithGovc(govc, govcKeystrokeCalls(st.path, keys, this.keyIntervalMs()), signal, this.events.secretList);
      return;
    }
    let first = true;
    for (const batch of toUsbBatches(keys)) {
      if ("waitMs" in batch) {
        await sleep(batch.waitMs, signal);
        first = true;
        continue;
      }
      if (!first) await sleep(this.keyIntervalMs(), signal);
      first = false;
      await s.call("PutUsbScanCodes", st.ref, [["spec", usbScanCodeSpec(batch.keyEvents)]], signal);
    }
  }

  /** Reads what VMware Tools reports about the guest's addresses. */
  async guestIps(vm: VmHandle, signal: AbortSignal): Promise<GuestIpInfo> {
    const { s } = await this.connect(signal);
    const props = await s.props(this.state(vm).ref, ["guest.ipAddress", "guest.net"], signal);
    return parseGuestIps(props.get("guest.ipAddress"), props.get("guest.net"));
  }

  async sshEndpoint(vm: VmHandle, signal: AbortSignal): Promise<{ host: string; port: number }> {
    const deadline = Date.now() + this.v.ipWaitTimeoutMs;
    this.events.info("waiting for the guest IP (VMware Tools)", "vsphere");
    for (;;) {
      const ip = pickGuestIp(await this.guestIps(vm, signal), { ipv6: this.v.ipv6, network: this.placement?.networkName });
      if (ip) {
        const host = this.v.sshHost ?? ip;
        const port = this.v.sshPort ?? this.build.ssh.port;
        this.events.info(`guest IP ${ip}${this.v.sshHost || this.v.sshPort ? `; SSH to ${host}:${port} (override)` : ""}`, "vsphere");
        return { host, port };
      }
      if (Date.now() > deadline) {
        throw new BuildError("VSPHERE_NO_IP", `no usable guest IP within ${Math.round(this.v.ipWaitTimeoutMs / 1000)} s`, {
          hint: "check that VMware Tools (open-vm-tools) runs in the guest and the NIC's network has DHCP",
        });
      }
      await sleep(2000, signal);
    }
  }

  async powerState(vm: VmHandle, signal: AbortSignal): Promise<string> {
    const { s } = await this.connect(signal);
    return (await s.prop(this.state(vm).ref, "runtime.powerState", signal))?.text ?? "";
  }

  private async waitPoweredOff(vm: VmHandle, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if ((await this.powerState(vm, signal)) === "poweredOff") return true;
      if (Date.now() >= deadline) return false;
      await sleep(Math.min(2000, Math.max(100, deadline - Date.now())), signal);
    }
  }

  async shutdown(vm: VmHandle, opts: { timeoutMs: number; guestInitiated: boolean }, signal: AbortSignal): Promise<void> {
    const { s } = await this.connect(signal);
    const ref = this.state(vm).ref;
    if (opts.guestInitiated && (await this.waitPoweredOff(vm, opts.timeoutMs, signal))) return;
    if ((await this.powerState(vm, signal)) === "poweredOff") return;
    // Ask through VMware Tools, then force after the timeout (Tools may not be running).
    this.events.info("asking the guest to shut down (ShutdownGuest)", "vsphere");
    try {
      await s.call("ShutdownGuest", ref, [], signal);
    } catch (err) {
      if (!(err instanceof SoapFault)) throw err;
      this.events.warn(`ShutdownGuest: ${err.faultType}`, "vsphere");
    }
    if (await this.waitPoweredOff(vm, opts.guestInitiated ? Math.min(opts.timeoutMs, 60_000) : opts.timeoutMs, signal)) return;
    this.events.warn("the guest did not power off: forcing power off", "vsphere");
    await this.powerOff(s, ref, signal);
  }

  private async powerOff(s: VimSession, ref: MoRef, signal: AbortSignal): Promise<void> {
    try {
      await s.task("PowerOffVM_Task", ref, [], signal);
    } catch (err) {
      if (!(err instanceof SoapFault && err.faultType === "InvalidPowerState")) throw err;
    }
  }

  // ---------- after ----------

  /** after: template / snapshot / none — the VM stays on vSphere (installer media detached first). */
  async finish(vm: VmHandle, after: "template" | "snapshot" | "none", buildId: string, signal: AbortSignal): Promise<string> {
    const { s } = await this.connect(signal);
    const st = this.state(vm);
    await this.detachInstallerMedia(s, st.ref, signal);
    if (after === "template") await s.call("MarkAsTemplate", st.ref, [], signal);
    if (after === "snapshot") {
      await s.task("CreateSnapshot_Task", st.ref, [["name", `vmkiln-${buildId}`], ["description", "vmkiln build"], ["memory", false], ["quiesce", false]], signal);
    }
    st.kept = true;
    this.journal.done(this.remoteEntry(st.path, "vm"));
    return st.path;
  }

  private async detachInstallerMedia(s: VimSession, ref: MoRef, signal: AbortSignal): Promise<void> {
    const devices = (await s.prop(ref, "config.hardware.device", signal))?.children ?? [];
    const remove: SoapObject[] = [];
    for (const d of devices) {
      const type = d.xsiType ?? "";
      const backing = child(d, "backing");
      const file = textOf(backing, "fileName") ?? "";
      const isMedia = (type === "VirtualCdrom" && file !== "") || type === "VirtualFloppy";
      if (!isMedia || (this.tempFolder === undefined && !file.includes(this.v.isoCacheFolder))) continue;
      remove.push({ $type: type, key: Number(textOf(d, "key")), ...(textOf(d, "controllerKey") ? { controllerKey: Number(textOf(d, "controllerKey")) } : {}) });
    }
    if (remove.length > 0) await s.task("ReconfigVM_Task", ref, [["spec", removeDevicesSpec(remove)]], signal);
  }

  // ---------- export ----------

  async exportAppliance(vm: VmHandle, to: { dir: string; basename: string }, signal: AbortSignal): Promise<ApplianceFiles> {
    const { s } = await this.connect(signal);
    await mkdir(to.dir, { recursive: true });
    const r = await exportVm(s, this.state(vm).ref, { dir: to.dir, basename: to.basename, events: this.events, signal });
    const ovfXml =
      r.ovfXml ??
      buildOvf({
        name: to.basename,
        cpus: this.v.cpus,
        memoryMiB: this.v.memory,
        firmware: this.v.firmware,
        osType: this.build.output.ova.osType,
        vmxVersion: this.build.output.ova.vmxVersion,
        disks: r.disks.map((d) => ({ fileName: d.name, fileSize: d.size, capacityBytes: d.capacity })),
      });
    const ovf = join(to.dir, `${to.basename}.ovf`);
    await writeFile(ovf, ovfXml);
    const manifest = join(to.dir, `${to.basename}.mf`);
    await writeFile(manifest, formatManifest([{ name: `${to.basename}.ovf`, sha256: await sha256File(ovf, signal) }, ...r.disks.map((d) => ({ name: d.name, sha256: d.sha256 }))]));
    return { ovf, manifest, files: r.disks.map((d) => d.path) };
  }

  async exportDisk(vm: VmHandle, to: ExportRequest, signal: AbortSignal): Promise<DiskFile> {
    if (to.format !== "vmdk") throw new UserError("FORMAT_UNSUPPORTED", `the vsphere driver exports VMDK disks (streamOptimized), not ${to.format}`);
    const { s } = await this.connect(signal);
    const dir = await mkdtemp(`${to.path}.nfc-`);
    try {
      const r = await exportVm(s, this.state(vm).ref, { dir, basename: "export", events: this.events, signal });
      const d = r.disks[0]!;
      await rename(d.path, to.path);
      return { path: to.path, format: "vmdk", size: d.size, virtualSize: d.capacity };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  // ---------- cleanup ----------

  async destroyVm(vm: VmHandle): Promise<void> {
    const st = [...this.vms.values()].find((x) => x.handle.id === vm.id);
    const s = this.session;
    if (!s) return;
    try {
      if (st && !st.kept) {
        await this.destroyByPath(s, st.path);
        this.journal.done(this.remoteEntry(st.path, "vm"));
        this.events.info(`destroyed VM ${st.path}`, "vsphere");
      }
      await this.removeTempFolder();
    } finally {
      if (st) this.vms.delete(st.path.split("/").pop()!);
      await this.close();
    }
  }

  /** Removes this build's uploaded media (after the VM that used them is gone). */
  async removeTempFolder(): Promise<void> {
    if (!this.tempFolder || !this.session || !this.placement) return;
    const ds = new Datastore(this.session, this.placement);
    await ds.remove(this.tempFolder, AbortSignal.timeout(120_000));
    this.journal.done(this.remoteEntry(ds.path(this.tempFolder), "file"));
    this.tempFolder = undefined;
  }

  private async destroyByPath(s: VimSession, path: string): Promise<void> {
    await destroyVmAt(s, path, AbortSignal.timeout(300_000));
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    this.placement = undefined;
    await s?.logout();
  }

  /** The inventory path of a VM this driver created (for tests and govc). */
  inventoryPathOf(vm: VmHandle): string {
    return this.state(vm).path;
  }

  private state(vm: VmHandle): VmState {
    const st = [...this.vms.values()].find((x) => x.handle.id === vm.id);
    if (!st) throw new BuildError("VM_UNKNOWN", `no such VM: ${vm.id}`);
    return st;
  }
}

export function parseGuestIps(primary: XNode | undefined, net: XNode | undefined): GuestIpInfo {
  return {
    primary: primary?.text || undefined,
    nics: (net?.children ?? []).map((n) => ({
      network: textOf(n, "network"),
      deviceConfigId: Number(textOf(n, "deviceConfigId") ?? -1),
      connected: textOf(n, "connected") !== "false",
      ipAddresses: children(n, "ipAddress").map((a) => a.text),
    })),
  };
}

export { gcVsphereEntry } from "./gc.js";
