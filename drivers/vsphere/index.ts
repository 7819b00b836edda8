// The vSphere driver: vim25 SOAP for the VM's life (create/clone, power, guest IP, keystrokes,
// export lease), REST where it serves (content library: ISOs attached from a library, OVF templates
// deployed from and captured into one), datastore /folder for uploads. Every object it creates
// outside the process is journaled first so `vmkiln gc` can remove it after a crash, and undone on
// failure or abort.
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { formatManifest } from "../../src/artifact/manifest-mf.js";
import { sha256File } from "../../src/artifact/sums.js";
import { BuildError, UserError } from "../../src/errors.js";
import type { EventBus } from "../../src/log/events.js";
import type { ApplianceFiles, DiskFile, Driver, DriverFactoryContext, ExportRequest, KeptResult, KeyEvent, VmHandle, VmSpec } from "../../src/pipeline/driver.js";
import type { Journal, JournalEntry } from "../../src/pipeline/journal.js";
import { escalatePowerOff, type PowerOffPrimitives } from "../../src/pipeline/power-off.js";
import type { BuildSpec, VsphereSpec } from "../../src/template/spec.js";
import { sleep } from "../../src/util/abort.js";
import { Datastore } from "./datastore.js";
import { ensureCachedIso } from "./iso-cache.js";
import { govcKeystrokeCalls, govcUsable, typeWithGovc } from "./govc.js";
import { isLoopback, localAddressTowards, needsRouteLookup } from "./host-address.js";
import { inventoryPath, resolvePlacement, type Placement } from "./inventory.js";
import { pickGuestIp, type GuestIpInfo } from "./ip.js";
import { exportVm } from "./nfc-export.js";
import { destroyVmAt } from "./gc.js";
import { vspherePlan } from "./plan.js";
import { vsphereStageHandoff } from "./stages.js";
import { ContentLibrary, pickIsoFile } from "./library.js";
import { RestSession, storageUriToDsPath } from "./rest.js";
import { VimSession, type Connection } from "./session.js";
import { MoRef, SoapFault, children, refOf, textOf, type XNode } from "./soap.js";
import { toUsbBatches } from "./usb-hid.js";
import { cloneReconfigSpec, cloneSpec, detachMediaSpec, growFirstDisk, isoVmConfigSpec, usbScanCodeSpec } from "./vm-config.js";

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

/** Layered templates: a stage's VM is kept as a template and the next stage clones it (stages.ts). */
createVsphereDriver.stageHandoff = vsphereStageHandoff;

export class VsphereDriver implements Driver {
  readonly name = "vsphere" as const;
  readonly capabilities = {
    sources: ["iso", "clone"] as Array<"iso" | "clone">,
    keystrokes: true,
    exports: ["ovf", "ova"] as Array<"ovf" | "ova">,
    contentLibrary: true,
    remote: true,
  };
  private session: VimSession | undefined;
  private placement: Placement | undefined;
  private rest: RestSession | undefined;
  private readonly vms = new Map<string, VmState>();
  /** Per-build datastore folder for uploaded media (removed at the end). */
  private tempFolder: string | undefined;
  /**
   * `[ds] path`s of the media this build attached, and what happens to their devices before the VM
   * is exported or kept: the installer ISO's CD-ROM is emptied, the answer-file medium removed.
   */
  private readonly attachedMedia = new Map<string, "eject" | "remove">();

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
      // REST is optional (standalone ESXi has none); content-library work uses this session.
      const rest = await RestSession.login(this.session.origin, this.session.dispatcher, this.conn.username, this.conn.password, signal).catch(() => undefined);
      this.events.debug(`REST API: ${rest ? (rest.flavor === "api" ? "/api" : "legacy /rest") : "none"}`, "vsphere");
      if (rest) this.events.addSecret(rest.token);
      this.rest = rest;
    }
    this.placement ??= await resolvePlacement(this.session, this.v, signal);
    return { s: this.session, p: this.placement };
  }

  /** The REST session content libraries need (logged in once per build; vCenter only). */
  private async library(signal: AbortSignal): Promise<ContentLibrary> {
    const { s } = await this.connect(signal);
    if (!this.rest) {
      // Again without swallowing errors: the probe in connect() may have failed for another reason.
      const rest = await RestSession.login(s.origin, s.dispatcher, this.conn.username, this.conn.password, signal);
      if (!rest) {
        throw new UserError("VSPHERE_NO_REST", `content libraries need vCenter's REST API, and ${s.origin.host} has none (a standalone ESXi host?)`, {
          hint: "point drivers.vsphere.url at the vCenter that manages the library",
        });
      }
      this.events.addSecret(rest.token);
      this.rest = rest;
    }
    return new ContentLibrary(this.rest);
  }

  private remoteEntry(id: string, kind: "vm" | "file" | "library-item", extra: Record<string, string> = {}): Extract<JournalEntry, { kind: "remote" }> {
    const detail: Record<string, string> = { kind, url: this.v.url, datacenter: this.placement?.datacenterPath ?? "", insecure: String(this.v.insecure), ...extra };
    if (this.v.caFile) detail.ca_file = this.v.caFile;
    return { kind: "remote", driver: "vsphere", id, detail };
  }

  // ---------- install ----------

  /**
   * The address the guest reaches the build's HTTP server at: a specific bind address as is; for
   * 0.0.0.0, :: or loopback, this host's address on the route to vCenter (no packet is sent).
   */
  async guestHostAddress(bindAddress: string): Promise<string> {
    if (!needsRouteLookup(bindAddress)) return bindAddress;
    const u = new URL(this.v.url);
    const address = await localAddressTowards(u.hostname, Number(u.port || 443), AbortSignal.timeout(30_000));
    if (isLoopback(bindAddress) && !isLoopback(address)) {
      this.events.warn(`http.bind_address ${bindAddress} is not reachable from a vSphere VM; set it to 0.0.0.0 or ${address}`, "vsphere");
    }
    return address;
  }

  // ---------- create ----------

  async createVm(spec: VmSpec, signal: AbortSignal): Promise<VmHandle> {
    const existing = this.vms.get(spec.name);
    if (existing) return existing.handle;
    const { s, p } = await this.connect(signal);
    // after: library fails now, not after the whole build, when its library or name is wrong.
    if (this.v.after === "library") await this.libraryDestination(signal);
    const folderPath = inventoryPath(p.datacenterPath, "vm", this.v.folder ?? "");
    const path = `${folderPath}/${spec.name}`;
    if (await s.findByInventoryPath(path, signal)) throw new BuildError("VSPHERE_VM_EXISTS", `a VM named ${path} already exists`);

    const entry = this.remoteEntry(path, "vm");
    this.journal.add(entry);
    let ref: MoRef;
    try {
      ref = this.build.source.kind === "clone" ? await this.cloneFrom(s, p, spec.name, signal) : await this.createFromIso(s, p, spec, signal);
    } catch (err) {
      // A task that failed half-way may still have registered the VM. Done only once it is gone:
      // if it cannot be removed now, the journal keeps it for `vmkiln gc`.
      try {
        await this.destroyByPath(s, path);
        this.journal.done(entry);
      } catch (cleanupErr) {
        this.events.warn(`could not remove ${path} after the failed create (left for 'vmkiln gc'): ${(cleanupErr as Error).message}`, "vsphere");
      }
      // The media uploaded for it too: no undo is registered for a VM createVm never returned.
      await this.removeTempFolder().catch((cleanupErr: unknown) =>
        this.events.warn(`could not remove the uploaded media (left for 'vmkiln gc'): ${(cleanupErr as Error).message}`, "vsphere"),
      );
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
    const lib = this.build.source.library;
    // A content-library ISO is attached where the library keeps it; a local one is uploaded (once).
    const isoPath = lib ? await this.libraryIsoPath(s, p, lib, signal) : spec.installerIso ? await this.uploadIso(ds, spec.installerIso, signal) : undefined;
    let media: { path: string; kind: "cd" | "floppy" } | undefined;
    if (spec.installerMedia) {
      const name = spec.installerMedia.kind === "floppy" ? "install.flp" : "install.iso";
      media = { kind: spec.installerMedia.kind, path: ds.path(`${await this.ensureTempFolder(ds, spec.buildId, signal)}/${name}`) };
      await ds.upload(spec.installerMedia.path, `${this.tempFolder}/${name}`, this.events, signal);
    }
    if (isoPath) this.attachedMedia.set(isoPath, "eject");
    if (media) this.attachedMedia.set(media.path, "remove");
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

  /** Uploads the ISO into the digest-named cache unless a complete one is there already (iso-cache.ts). */
  private async uploadIso(ds: Datastore, local: string, signal: AbortSignal): Promise<string> {
    const [{ size }, sha256] = await Promise.all([stat(local), sha256File(local, signal)]);
    return ensureCachedIso(
      ds,
      { local, size, sha256, folder: this.v.isoCacheFolder, buildId: this.journal.buildId, journal: this.journal, entry: (p) => this.remoteEntry(p, "file"), events: this.events },
      signal,
    );
  }

  /** `[ds] path` of the .iso file of a content-library item, from its storage URI and the datastores' summary.url. */
  private async libraryIsoPath(s: VimSession, p: Placement, ref: { library: string; item: string }, signal: AbortSignal): Promise<string> {
    const field = "source.iso.content_library";
    const lib = await this.library(signal);
    const item = await lib.item(ref, field, signal);
    const file = pickIsoFile(await lib.storage(item.id, signal));
    if (!file) throw new UserError("VSPHERE_LIBRARY_ITEM", `${field}: ${ref.library}/${ref.item} holds no .iso file (type ${item.type || "unknown"})`);
    const datastores = [];
    for (const d of children((await s.prop(p.datacenter, "datastore", signal)) ?? undefined, "ManagedObjectReference")) {
      const props = await s.props(refOf(d)!, ["name", "summary.url"], signal);
      datastores.push({ name: props.get("name")?.text ?? "", url: props.get("summary.url")?.text ?? "" });
    }
    for (const uri of file.uris) {
      const path = storageUriToDsPath(uri, datastores);
      if (path) {
        this.events.info(`ISO from content library ${ref.library}/${ref.item}: ${path}`, "vsphere");
        return path;
      }
    }
    throw new BuildError("VSPHERE_LIBRARY_STORAGE", `${field}: ${file.name} is stored at ${file.uris.join(", ") || "no URI"}, on no datastore of ${p.datacenterPath}`);
  }

  private async cloneFrom(s: VimSession, p: Placement, name: string, signal: AbortSignal): Promise<MoRef> {
    if (this.build.source.library) return this.deployFromLibrary(s, p, name, this.build.source.library, signal);
    const srcPath = inventoryPath(p.datacenterPath, "vm", this.build.source.location);
    const src = await s.findByInventoryPath(srcPath, signal);
    if (!src) throw new UserError("VSPHERE_NOT_FOUND", `source.clone.template: ${srcPath} not found`);
    let snapshot: MoRef | undefined;
    if (this.build.source.linked) {
      snapshot = refOf(await s.prop(src, "snapshot.currentSnapshot", signal));
      if (!snapshot) throw new UserError("VSPHERE_LINKED_CLONE", `source.clone.linked: ${srcPath} has no snapshot to link to`, { hint: "take a snapshot of the template, or set linked: false" });
    }
    // A disk_size vSphere would refuse (smaller than the source's disk) fails before anything is cloned.
    if (this.v.diskSize !== undefined) growFirstDisk(await this.devices(s, src, signal), this.v.diskSize, srcPath);
    const spec = cloneSpec({ pool: p.pool, datastore: p.datastore, host: p.host, cpus: this.v.cpus, memoryMiB: this.v.memory, linkedSnapshot: snapshot });
    this.events.info(`cloning ${srcPath} (${src.value})${snapshot ? " as a linked clone" : ""}`, "vsphere");
    const vm = refOf(await s.task("CloneVM_Task", src, [["folder", p.folder], ["name", name], ["spec", spec]], signal))!;
    await this.reconfigureClone(s, vm, name, srcPath, signal);
    return vm;
  }

  /**
   * One reconfigure after the clone or deploy: CPU/memory again (the clone spec's config is not
   * applied everywhere; vcsim ignores it), and drivers.vsphere.disk_size's growth of the first disk
   * (on the clone's own disk: a linked clone's delta disk cannot grow, the rules refuse that).
   */
  private async reconfigureClone(s: VimSession, vm: MoRef, name: string, source: string, signal: AbortSignal): Promise<void> {
    const growth = this.v.diskSize === undefined ? undefined : growFirstDisk(await this.devices(s, vm, signal), this.v.diskSize, source);
    await s.task("ReconfigVM_Task", vm, [["spec", cloneReconfigSpec({ cpus: this.v.cpus, memoryMiB: this.v.memory, grownDisk: growth?.device })]], signal);
    if (growth) this.events.info(`${name}: ${growth.summary}`, "vsphere");
  }

  private async devices(s: VimSession, vm: MoRef, signal: AbortSignal): Promise<XNode[]> {
    return (await s.prop(vm, "config.hardware.device", signal))?.children ?? [];
  }

  /** Deploys a content-library OVF template as the build VM (then reconfigured like a clone). */
  private async deployFromLibrary(s: VimSession, p: Placement, name: string, ref: { library: string; item: string }, signal: AbortSignal): Promise<MoRef> {
    const field = "source.clone.content_library";
    const lib = await this.library(signal);
    const item = await lib.item(ref, field, signal);
    if (item.type !== "ovf") throw new UserError("VSPHERE_LIBRARY_ITEM", `${field}: ${ref.library}/${ref.item} is not an OVF template (type ${item.type || "unknown"})`);
    const target = { resourcePoolId: p.pool.value, folderId: p.folder.value, hostId: p.host?.value };
    // The OVF's networks all go to the build's network (an unmapped one may not exist here).
    const network = await this.network(s, p, signal);
    const networks = await lib.ovfNetworks(item.id, target, signal);
    this.events.info(`deploying OVF template ${ref.library}/${ref.item} as ${name}`, "vsphere");
    const id = await lib.deploy(item.id, target, { name, datastoreId: p.datastore.value, networkMappings: networks.map((n) => [n, network.ref.value]) }, `${ref.library}/${ref.item}`, signal);
    const vm = new MoRef("VirtualMachine", id);
    await this.reconfigureClone(s, vm, name, `${ref.library}/${ref.item}`, signal);
    return vm;
  }

  // ---------- run ----------

  async start(vm: VmHandle, signal: AbortSignal): Promise<void> {
    const { s } = await this.connect(signal);
    await s.task("PowerOnVM_Task", this.state(vm).ref, [], signal);
    this.events.info(`powered on ${this.state(vm).path}`, "vsphere");
  }

  /**
   * Types key events, one PutUsbScanCodes call (or govc run) per key. The pacing is in `keys`: the
   * boot-command step puts boot.key_interval waits between events.
   */
  async sendKeys(vm: VmHandle, keys: KeyEvent[], signal: AbortSignal): Promise<void> {
    const { s } = await this.connect(signal);
    const st = this.state(vm);
    const govc = govcUsable(process.env);
    if (govc) {
      this.events.info("typing the boot command with govc vm.keystrokes", "vsphere");
      await typeWithGovc(govc, govcKeystrokeCalls(st.path, keys, 0), signal, this.events.secretList);
      return;
    }
    for (const batch of toUsbBatches(keys)) {
      if ("waitMs" in batch) await sleep(batch.waitMs, signal);
      else await s.call("PutUsbScanCodes", st.ref, [["spec", usbScanCodeSpec(batch.keyEvents)]], signal);
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
    // Ask through VMware Tools (it may not be running: the fault is a warning), then force.
    const primitives: PowerOffPrimitives = {
      waitOff: (ms, sig) => this.waitPoweredOff(vm, ms, sig),
      askName: "ShutdownGuest",
      ask: async (sig) => void (await s.call("ShutdownGuest", ref, [], sig)),
      force: (sig) => this.powerOff(s, ref, sig),
    };
    await escalatePowerOff(primitives, { ...opts, events: this.events, source: "vsphere", vmName: this.state(vm).path }, signal);
  }

  private async powerOff(s: VimSession, ref: MoRef, signal: AbortSignal): Promise<void> {
    try {
      await s.task("PowerOffVM_Task", ref, [], signal);
    } catch (err) {
      if (!(err instanceof SoapFault && err.faultType === "InvalidPowerState")) throw err;
    }
  }

  // ---------- after ----------

  /**
   * after: template / snapshot / none — the VM stays on vSphere (installer media detached first).
   * A template also answers what identifies it (moref, instanceUuid): a layered build records that
   * in its stage cache and checks it on a hit (stages.ts). With stage_clone: linked a template gets a
   * snapshot first, which a linked clone of it needs (CloneVM_Task's snapshot, diskMoveType
   * createNewChildDiskBacking).
   */
  async finish(vm: VmHandle, after: "template" | "snapshot" | "none", buildId: string, signal: AbortSignal): Promise<{ path: string; kept?: KeptResult }> {
    const { s } = await this.connect(signal);
    const st = this.state(vm);
    await this.detachInstallerMedia(s, st.ref, signal);
    if (after === "snapshot" || (after === "template" && this.v.stageClone === "linked")) {
      await s.task("CreateSnapshot_Task", st.ref, [["name", `vmkiln-${buildId}`], ["description", "vmkiln build"], ["memory", false], ["quiesce", false]], signal);
    }
    let kept: KeptResult | undefined;
    if (after === "template") {
      await s.call("MarkAsTemplate", st.ref, [], signal);
      const instanceUuid = (await s.prop(st.ref, "config.instanceUuid", signal))?.text ?? "";
      kept = { driver: "vsphere", location: st.path, identity: { url: this.v.url, moref: st.ref.value, instanceUuid } };
    }
    st.kept = true;
    this.journal.done(this.remoteEntry(st.path, "vm"));
    return { path: st.path, ...(kept ? { kept } : {}) };
  }

  /** The after: library destination: its library's id, and the item name checked to be free. */
  private async libraryDestination(signal: AbortSignal) {
    const dest = this.v.libraryDestination;
    if (!dest) throw new UserError("VSPHERE_LIBRARY_DESTINATION", "drivers.vsphere.library_destination: required with after: library");
    const lib = await this.library(signal);
    const libraryId = await lib.libraryId(dest.library, "drivers.vsphere.library_destination.library", signal);
    // An existing item is someone's template: never overwrite it (and gc must not delete it).
    if ((await lib.findItems(libraryId, dest.name, signal)).length > 0) {
      throw new UserError("VSPHERE_LIBRARY_ITEM_EXISTS", `drivers.vsphere.library_destination.name: content library ${dest.library} already has an item named ${dest.name}`, {
        hint: "pick another name, or delete the old item first",
      });
    }
    return { lib, libraryId, dest };
  }

  /**
   * Before the VM leaves the build's hands (export, template, snapshot, library capture, none):
   * empties the installer ISO's CD-ROM and removes the answer-file medium (detachMediaSpec). Only
   * what this build attached; once per build (an ova and a vmdk export both ask).
   */
  private async detachInstallerMedia(s: VimSession, ref: MoRef, signal: AbortSignal): Promise<void> {
    if (this.attachedMedia.size === 0) return;
    const d = detachMediaSpec(await this.devices(s, ref, signal), this.attachedMedia);
    if (d.spec) await s.task("ReconfigVM_Task", ref, [["spec", d.spec]], signal);
    this.attachedMedia.clear();
    for (const f of d.ejected) this.events.info(`ejected ${f} (the CD-ROM drive stays, empty)`, "vsphere");
    for (const f of d.removed) this.events.info(`removed the device holding ${f}`, "vsphere");
  }

  /**
   * after: library — captures the (stopped) VM as an OVF template item in a content library; the
   * VM itself is removed at the end like an exported one. The item is journaled (by library and
   * name: its id is only known once it exists) so a crash mid-capture leaves nothing for good.
   */
  async captureToLibrary(vm: VmHandle, signal: AbortSignal): Promise<{ library: string; name: string; id: string }> {
    const { s } = await this.connect(signal);
    const st = this.state(vm);
    // Checked again: the name may have been taken while the VM was built.
    const { lib, libraryId, dest } = await this.libraryDestination(signal);
    await this.detachInstallerMedia(s, st.ref, signal);
    const entry = this.remoteEntry(`${dest.library}/${dest.name}`, "library-item", { library_id: libraryId, name: dest.name });
    this.journal.add(entry);
    let id: string;
    try {
      this.events.info(`capturing ${st.path} as OVF template ${dest.name} in content library ${dest.library}`, "vsphere");
      id = await lib.capture({ vmId: st.ref.value, libraryId, name: dest.name, description: dest.description }, `${st.path} into ${dest.library}`, signal);
    } catch (err) {
      // The capture may have created the item before failing (or before the abort reached it);
      // if it cannot be removed now, the journal keeps it for `vmkiln gc`.
      const removed = await lib.deleteItemsNamed(libraryId, dest.name, AbortSignal.timeout(120_000)).then(
        () => true,
        () => false,
      );
      if (removed) this.journal.done(entry);
      throw err;
    }
    this.journal.done(entry);
    return { library: dest.library, name: dest.name, id };
  }

  // ---------- export ----------
  // Both exports detach the installer media first: an OVF whose CD-ROM names the build's datastore
  // ISO (or whose floppy names the deleted answer-file image) does not import elsewhere.

  async exportAppliance(vm: VmHandle, to: { dir: string; basename: string }, signal: AbortSignal): Promise<ApplianceFiles> {
    const { s } = await this.connect(signal);
    const ref = this.state(vm).ref;
    await this.detachInstallerMedia(s, ref, signal);
    await mkdir(to.dir, { recursive: true });
    const r = await exportVm(s, ref, { dir: to.dir, basename: to.basename, events: this.events, signal });
    // The descriptor is vSphere's own (CreateDescriptor), made from the VM as it is now.
    const ovf = join(to.dir, `${to.basename}.ovf`);
    await writeFile(ovf, r.ovfXml);
    const manifest = join(to.dir, `${to.basename}.mf`);
    await writeFile(manifest, formatManifest([{ name: `${to.basename}.ovf`, sha256: await sha256File(ovf, signal) }, ...r.disks.map((d) => ({ name: d.name, sha256: d.sha256 }))]));
    return { ovf, manifest, files: r.disks.map((d) => d.path) };
  }

  async exportDisk(vm: VmHandle, to: ExportRequest, signal: AbortSignal): Promise<DiskFile> {
    if (to.format !== "vmdk") throw new UserError("FORMAT_UNSUPPORTED", `the vsphere driver exports VMDK disks (streamOptimized), not ${to.format}`);
    const { s } = await this.connect(signal);
    const ref = this.state(vm).ref;
    await this.detachInstallerMedia(s, ref, signal);
    const dir = await mkdtemp(`${to.path}.nfc-`);
    try {
      const r = await exportVm(s, ref, { dir, basename: "export", events: this.events, signal });
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
    const rest = this.rest;
    this.session = undefined;
    this.placement = undefined;
    this.rest = undefined;
    await rest?.logout();
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
