// The VirtualBox driver: everything through VBoxManage (vboxmanage.ts), disks prepared with qemu-img.
// One registered machine per build, named after the build and kept (with its disk) under
// `--basefolder` inside the build dir, so removing the build dir never leaves VirtualBox pointing at
// deleted files and `unregistervm --delete` has nothing outside the build to touch.
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { BuildError, UserError } from "../../src/errors.js";
import { EventBus } from "../../src/log/events.js";
import type {
  ApplianceFiles,
  DiskFile,
  Driver,
  DriverFactoryContext,
  ExportRequest,
  KeyEvent,
  VmHandle,
  VmSpec,
} from "../../src/pipeline/driver.js";
import type { Journal, JournalEntry } from "../../src/pipeline/journal.js";
import { escalatePowerOff, type PowerOffPrimitives } from "../../src/pipeline/power-off.js";
import type { HttpSpec, VirtualBoxSpec } from "../../src/template/spec.js";
import { sleep } from "../../src/util/abort.js";
import { freePort, natGuestPeerAddress } from "../../src/util/net.js";
import { convert, createOverlay, imageInfo } from "../../src/artifact/qemu-img.js";
import { isCrashedState, isRunningState, parseCreatedUuid, parseVmInfo } from "./machinereadable.js";
import { toScancodeGroups } from "./scancodes.js";
import { checkVersion, hasNatLocalhostReachable } from "./version.js";
import {
  VBoxManageError,
  cloneMediumArgs,
  controlVmArgs,
  createVmArgs,
  expandUserCommand,
  exportArgs,
  modifyVmArgs,
  natForwardArgs,
  natLocalhostReachableArgs,
  scancodeArgs,
  showVmInfoArgs,
  startVmArgs,
  storageAttachArgs,
  storageCtlArgs,
  unregisterVmArgs,
  vboxmanage,
  type VBoxManageOptions,
} from "./vboxmanage.js";

/** Packer pauses about 100 ms between keyboardputscancode calls so the guest's buffer keeps up. */
const GROUP_PAUSE_MS = 100;
const POLL_MS = 1_000;
/** NAT's alias for the host (VirtualBox's CTL_ALIAS in 10.0.2.0/24): the host's loopback, seen from the guest. */
const NAT_HOST_ALIAS = "10.0.2.2";

/** Where the guest reaches a host listener bound to `bindAddress` through VirtualBox's NAT. */
export function natGuestAddress(bindAddress: string): string {
  const loopbackOrAny = bindAddress === "0.0.0.0" || bindAddress === "::" || bindAddress === "::1" || bindAddress.startsWith("127.") || bindAddress === "localhost";
  return loopbackOrAny ? NAT_HOST_ALIAS : bindAddress;
}

/** Whether the guest must reach a host listener through 10.0.2.2 (the installer's HTTP server). */
export function needsHostLoopback(http: HttpSpec | undefined): boolean {
  return http !== undefined && (http.guestAddress ?? natGuestAddress(http.bindAddress)) === NAT_HOST_ALIAS;
}

interface VmState {
  handle: VmHandle;
  dir: string;
  disk: string;
  sshPort: number;
  registered: boolean;
  started: boolean;
  journal: Extract<JournalEntry, { kind: "remote" }>;
  /** IDE slots holding the installer ISO and its media, emptied by restart({ removeInstallerMedia }). */
  installerSlots: Array<{ port: number; device: number }>;
}

export function createVirtualBoxDriver(ctx: DriverFactoryContext): Driver {
  const spec = ctx.spec.drivers.virtualbox;
  if (!spec) throw new UserError("DRIVER_NOT_CONFIGURED", "drivers.virtualbox: not configured in the template");
  return new VirtualBoxDriver(spec, ctx.spec.ssh.port, ctx.events, ctx.journal, { hostLoopback: needsHostLoopback(ctx.spec.http) });
}

export class VirtualBoxDriver implements Driver {
  readonly name = "virtualbox" as const;
  readonly capabilities = {
    sources: ["cloud-image", "iso"] as Array<"cloud-image" | "iso">,
    keystrokes: true,
    exports: ["vmdk", "ovf", "ova"] as Array<"qcow2" | "raw" | "vmdk" | "ovf" | "ova">,
  };
  private readonly vms = new Map<string, VmState>();
  private version: string | undefined;
  private readonly vbox: VBoxManageOptions;
  /** The guest must reach a listener on the host's loopback through NAT (10.0.2.2). */
  private readonly hostLoopback: boolean;

  constructor(
    private readonly spec: VirtualBoxSpec,
    private readonly guestSshPort: number,
    private readonly events: EventBus,
    private readonly journal: Journal,
    opts: { lockRetryDelayMs?: number; hostLoopback?: boolean } = {},
  ) {
    this.vbox = { binary: spec.binary, events, ...(opts.lockRetryDelayMs !== undefined ? { lockRetryDelayMs: opts.lockRetryDelayMs } : {}) };
    this.hostLoopback = opts.hostLoopback ?? false;
  }

  /** `VBoxManage --version`, checked once per driver: a broken or too old VirtualBox is refused. */
  async ensureVersion(signal: AbortSignal): Promise<string> {
    if (this.version) return this.version;
    const out = await vboxmanage(["--version"], this.vbox, signal, 30_000);
    this.version = checkVersion(out, this.spec.binary);
    this.events.info(`VirtualBox ${this.version}`, "virtualbox");
    return this.version;
  }

  async createVm(vmSpec: VmSpec, signal: AbortSignal): Promise<VmHandle> {
    const existing = this.vms.get(vmSpec.name);
    if (existing) return existing.handle; // idempotent per build id
    const version = await this.ensureVersion(signal);
    const name = vmSpec.name;
    const dir = join(vmSpec.buildDir, "virtualbox");
    await mkdir(dir, { recursive: true });
    const ext = this.spec.diskFormat;
    const st: VmState = {
      handle: { id: name, driver: "virtualbox" },
      dir,
      disk: join(dir, `${name}-disk1.${ext}`),
      sshPort: 0,
      registered: false,
      started: false,
      journal: { kind: "remote", driver: "virtualbox", id: name, detail: { basefolder: dir, binary: this.spec.binary } },
      installerSlots: [],
    };
    this.vms.set(name, st);
    try {
      // Journal first: a crash between createvm and the undo registration still leaves a trace for gc.
      this.journal.add(st.journal);
      const out = await this.run(createVmArgs({ name, osType: this.spec.guestOsType, baseFolder: dir }), signal);
      st.registered = true;
      this.events.info(`registered VirtualBox machine ${name} (${parseCreatedUuid(out) ?? "no UUID printed"})`, "virtualbox");
      await this.run(
        modifyVmArgs(name, {
          memoryMiB: this.spec.memory,
          cpus: this.spec.cpus,
          firmware: vmSpec.firmware,
          graphicsController: this.spec.graphicsController,
          nicType: this.spec.nicType,
          vramMiB: 16,
        }),
        signal,
      );
      // SSH through NAT on a free loopback port; the guest reaches the host (kickstart over HTTP) at 10.0.2.2.
      st.sshPort = this.spec.sshHostPort ?? (await freePort());
      await this.run(natForwardArgs(name, { name: "ssh", hostIp: "127.0.0.1", hostPort: st.sshPort, guestPort: this.guestSshPort }), signal);
      // VirtualBox 7.0 NAT drops what the guest sends to 10.0.2.2 unless asked (6.1 always passes it
      // and has no such option): the installer would never fetch its kickstart.
      if (this.hostLoopback && hasNatLocalhostReachable(version)) {
        await this.run(natLocalhostReachableArgs(name, true), signal);
        this.events.info("NAT: the guest may reach the host's loopback at 10.0.2.2 (--nat-localhostreachable1 on, VirtualBox 7)", "virtualbox");
      }

      await this.prepareDisk(vmSpec, st.disk, signal);
      const ctl = this.spec.diskController === "virtio" ? "VirtIO" : "SATA";
      await this.run(storageCtlArgs(name, { bus: this.spec.diskController, name: ctl, portCount: 1 }), signal);
      await this.run(storageAttachArgs(name, { kind: "hdd", controller: ctl, port: 0, device: 0, medium: st.disk, ssd: true }), signal);
      if (vmSpec.installerMedia?.kind === "floppy") {
        throw new UserError("MEDIA_UNSUPPORTED", "install_media: the virtualbox driver attaches answer-file media as a CD only (use a CD instead of a floppy)");
      }
      if (vmSpec.exitOnReboot) this.events.warn("VirtualBox cannot stop the VM on a guest reboot: the installer must power off at its end", "virtualbox");
      // IDE: primary master/slave, then secondary master (VirtualBox's PIIX4 has two ports of two devices).
      const dvds = [
        { medium: vmSpec.installerIso, installer: true },
        { medium: vmSpec.installerMedia?.path, installer: true },
        { medium: vmSpec.cidataIso, installer: false },
      ].filter((d): d is { medium: string; installer: boolean } => d.medium !== undefined);
      if (dvds.length > 0) {
        await this.run(storageCtlArgs(name, { bus: "ide", name: "IDE" }), signal);
        for (const [i, d] of dvds.entries()) {
          const slot = { port: i >> 1, device: i & 1 };
          await this.run(storageAttachArgs(name, { kind: "dvd", controller: "IDE", ...slot, medium: d.medium }), signal);
          if (d.installer) st.installerSlots.push(slot);
        }
      }
      for (const cmd of this.spec.vboxmanage) await this.run(expandUserCommand(cmd, name), signal);
    } catch (err) {
      // The step never sees a handle when createVm throws: undo the half-created machine here.
      await this.destroyVm(st.handle).catch((e: unknown) => this.events.warn(`cleanup of ${name} failed: ${(e as Error).message}`, "virtualbox"));
      throw err;
    }
    return st.handle;
  }

  /** Converts the cloud image to the VM's disk format (grown to disk_size), or creates an empty disk. */
  private async prepareDisk(vmSpec: VmSpec, disk: string, signal: AbortSignal): Promise<void> {
    const format = this.spec.diskFormat;
    if (vmSpec.sourceDisk) {
      const src = vmSpec.sourceDisk;
      const info = await imageInfo(src.path, signal, src.format);
      const srcFormat = src.format ?? info.format;
      let from = { path: src.path, format: srcFormat };
      if (vmSpec.diskSize !== undefined) {
        if (vmSpec.diskSize < info.virtualSize) {
          throw new UserError("DISK_TOO_SMALL", `drivers.virtualbox.disk_size: ${vmSpec.diskSize} bytes is smaller than the source image's virtual size (${info.virtualSize} bytes)`);
        }
        // qemu-img cannot resize a VDI: convert through a grown qcow2 overlay (tiny, never written).
        const overlay = join(this.vms.get(vmSpec.name)!.dir, "grow.qcow2");
        await createOverlay(src.path, srcFormat, overlay, vmSpec.diskSize, signal);
        from = { path: overlay, format: "qcow2" };
      }
      await convert({ src: from.path, srcFormat: from.format, dst: disk, format }, this.events, `convert source to ${format.toUpperCase()}`, signal);
      if (from.path !== src.path) await rm(from.path, { force: true });
      return;
    }
    if (vmSpec.diskSize === undefined) throw new UserError("DISK_SIZE_REQUIRED", "drivers.virtualbox.disk_size: required for an installer ISO build");
    const mb = Math.ceil(vmSpec.diskSize / (1024 * 1024));
    await this.run(["createmedium", "disk", "--filename", disk, "--size", String(mb), "--format", format.toUpperCase()], signal);
  }

  async start(vm: VmHandle, signal: AbortSignal): Promise<void> {
    const st = this.state(vm);
    await this.run(startVmArgs(vm.id, this.spec.headless), signal, 300_000);
    st.started = true;
    this.events.info(`VM ${vm.id} started (${this.spec.headless ? "headless" : "gui"}, ssh on 127.0.0.1:${st.sshPort})`, "virtualbox");
  }

  /** NAT: the guest reaches the host's loopback (and wildcard) listeners at 10.0.2.2, others at their address. */
  guestHostAddress(bindAddress: string): string {
    return natGuestAddress(bindAddress);
  }
  readonly guestPeerAddress = natGuestPeerAddress; // through 10.0.2.2, connections arrive from 127.0.0.1

  /** ISO installs: true when the guest powered off by itself within timeoutMs. */
  async waitForGuestStop(vm: VmHandle, opts: { timeoutMs: number }, signal: AbortSignal): Promise<boolean> {
    return this.waitStopped(vm, opts.timeoutMs, signal);
  }

  /** Boots the stopped VM again, with the installer ISO and media ejected when asked. */
  async restart(vm: VmHandle, opts: { removeInstallerMedia: boolean }, signal: AbortSignal): Promise<void> {
    const st = this.state(vm);
    if (!(await this.waitStopped(vm, 60_000, signal))) throw new BuildError("VM_RUNNING", `VM ${vm.id} is still running; cannot restart it`);
    if (opts.removeInstallerMedia) {
      // Right after the power-off the session lock may still be held: vboxmanage() retries that.
      for (const slot of st.installerSlots) await this.run(storageAttachArgs(vm.id, { kind: "dvd", controller: "IDE", ...slot, medium: "emptydrive" }), signal);
      st.installerSlots = [];
    }
    await this.start(vm, signal);
  }

  async sshEndpoint(vm: VmHandle): Promise<{ host: string; port: number }> {
    return { host: "127.0.0.1", port: this.state(vm).sshPort };
  }

  /** Boot commands as PS/2 set-1 scan codes, one `keyboardputscancode` call per bounded group. */
  async sendKeys(vm: VmHandle, keys: KeyEvent[], signal: AbortSignal): Promise<void> {
    const groups = toScancodeGroups(keys);
    for (const [i, g] of groups.entries()) {
      if ("waitMs" in g) {
        await sleep(g.waitMs, signal);
        continue;
      }
      await this.run(scancodeArgs(vm.id, g.codes), signal, 30_000);
      if (i < groups.length - 1) await sleep(GROUP_PAUSE_MS, signal);
    }
  }

  async shutdown(vm: VmHandle, opts: { timeoutMs: number; guestInitiated: boolean }, signal: AbortSignal): Promise<void> {
    if (!this.state(vm).started) return;
    const primitives: PowerOffPrimitives = {
      waitOff: (ms, sig) => this.waitStopped(vm, ms, sig),
      askName: "ACPI power button",
      ask: async (sig) => void (await this.run(controlVmArgs(vm.id, "acpipowerbutton"), sig)),
      force: async (sig) => void (await this.run(controlVmArgs(vm.id, "poweroff"), sig)),
    };
    await escalatePowerOff(primitives, { ...opts, events: this.events, source: "virtualbox", vmName: vm.id }, signal);
  }

  /**
   * Polls `showvminfo` until VMState is no longer running/stopping/paused. A VM that ended `aborted`
   * (its VM process died) or is stuck in `gurumeditation` did not finish what the build waited for:
   * that fails the build, naming the state and the VM's VBox.log, instead of passing for a power-off.
   */
  private async waitStopped(vm: VmHandle, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await this.vmInfo(vm.id, signal);
      const state = info.state;
      if (state !== undefined && isCrashedState(state)) {
        this.state(vm).started = state === "gurumeditation"; // a guru-meditation VM still needs its power-off
        const log = info.raw.get("LogFldr");
        throw new BuildError("VBOX_VM_CRASHED", `VM ${vm.id} ended in state ${state} (${state === "aborted" ? "its VM process died" : "the VM hit a Guru Meditation"})`, {
          hint: `see ${log ? join(log, "VBox.log") : "the VM's Logs/VBox.log"}`,
        });
      }
      if (state !== undefined && !isRunningState(state)) {
        this.state(vm).started = false;
        return true;
      }
      if (Date.now() >= deadline) return false;
      await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())), signal);
    }
  }

  async vmState(name: string, signal: AbortSignal): Promise<string | undefined> {
    return (await this.vmInfo(name, signal)).state;
  }

  private async vmInfo(name: string, signal: AbortSignal): Promise<ReturnType<typeof parseVmInfo>> {
    return parseVmInfo(await this.run(showVmInfoArgs(name), signal, 30_000));
  }

  /** The disk alone: VDI/VMDK through `clonemedium` (Stream = streamOptimized VMDK); else qemu-img. */
  async exportDisk(vm: VmHandle, to: ExportRequest, signal: AbortSignal): Promise<DiskFile> {
    const st = this.state(vm);
    const state = await this.vmState(vm.id, signal);
    if (state !== undefined && isRunningState(state)) throw new BuildError("VM_RUNNING", `cannot export the disk of ${vm.id} while it is ${state}`);
    await rm(to.path, { force: true });
    if (to.format === "vmdk" || to.format === "vdi") {
      const variant = to.format === "vmdk" && to.subformat === "streamOptimized" ? "Stream" : "Standard";
      await this.run(cloneMediumArgs(st.disk, to.path, to.format === "vmdk" ? "VMDK" : "VDI", variant), signal, 0);
      // clonemedium registers the copy in VirtualBox's media registry; the artifact must not stay there.
      await this.run(["closemedium", "disk", to.path], signal).catch((e: unknown) => this.events.warn(`closemedium ${to.path}: ${(e as Error).message}`, "virtualbox"));
    } else {
      await convert({ src: st.disk, srcFormat: this.spec.diskFormat, dst: to.path, format: to.format, compression: to.compression }, this.events, `convert to ${to.format}`, signal);
    }
    const info = await imageInfo(to.path, signal, to.format);
    const { size } = await stat(to.path);
    return { path: to.path, format: to.format, size, virtualSize: info.virtualSize };
  }

  /** `VBoxManage export --ovf10|--ovf20`: the OVF, its streamOptimized disks and a SHA1/SHA256 .mf. */
  async exportAppliance(vm: VmHandle, to: { dir: string; basename: string }, signal: AbortSignal): Promise<ApplianceFiles> {
    const state = await this.vmState(vm.id, signal);
    if (state !== undefined && isRunningState(state)) throw new BuildError("VM_RUNNING", `cannot export ${vm.id} while it is ${state}`);
    await mkdir(to.dir, { recursive: true });
    const ovf = join(to.dir, `${to.basename}.ovf`);
    await this.run(exportArgs(vm.id, { out: ovf, ovfVersion: this.spec.ovfVersion, vsysName: to.basename }), signal, 0);
    const manifest = join(to.dir, `${to.basename}.mf`);
    const hasMf = await stat(manifest).then(() => true, () => false);
    const files = (await readdir(to.dir)).filter((n) => n.startsWith(`${to.basename}-disk`)).sort().map((n) => join(to.dir, n));
    this.events.info(`exported OVF ${this.spec.ovfVersion}: ${[ovf, ...files].map((f) => basename(f)).join(", ")}`, "virtualbox");
    return { ovf, manifest: hasMf ? manifest : undefined, files };
  }

  /** Powers off if needed, then `unregistervm --delete`. Safe on a half-created or unknown VM. */
  async destroyVm(vm: VmHandle): Promise<void> {
    const st = this.vms.get(vm.id);
    if (!st) return;
    const never = new AbortController().signal;
    if (st.registered) {
      const state = await this.vmState(vm.id, never).catch(() => undefined);
      // A guru-meditation VM keeps its VM process (and lock) until it is powered off.
      if (state !== undefined && (isRunningState(state) || state === "gurumeditation")) {
        await this.run(controlVmArgs(vm.id, "poweroff"), never).catch((e: unknown) => this.events.warn(`poweroff ${vm.id}: ${(e as Error).message}`, "virtualbox"));
        await this.waitStopped(vm, 30_000, never).catch(() => false);
      }
      try {
        await this.run(unregisterVmArgs(vm.id), never);
      } catch (err) {
        // Already gone (unregistered by hand, or createvm failed after all): nothing left to do.
        if (!(err instanceof VBoxManageError && /VBOX_E_OBJECT_NOT_FOUND/.test(err.stderr))) throw err;
      }
      st.registered = false;
    }
    await rm(st.dir, { recursive: true, force: true });
    this.journal.done(st.journal);
    this.vms.delete(vm.id);
  }

  private run(args: readonly string[], signal: AbortSignal, timeoutMs = 120_000): Promise<string> {
    return vboxmanage(args, this.vbox, signal, timeoutMs);
  }

  private state(vm: VmHandle): VmState {
    const st = this.vms.get(vm.id);
    if (!st) throw new BuildError("VM_UNKNOWN", `no such VM: ${vm.id}`);
    return st;
  }
}

/** `vmkiln gc`: a killed build's registered machine is powered off and unregistered with its files. */
export async function gcVirtualBoxEntry(entry: Extract<JournalEntry, { kind: "remote" }>, signal: AbortSignal): Promise<void> {
  const o: VBoxManageOptions = { binary: entry.detail?.binary ?? "VBoxManage", events: new EventBus() };
  try {
    const state = parseVmInfo(await vboxmanage(showVmInfoArgs(entry.id), o, signal, 30_000)).state;
    if (state !== undefined && (isRunningState(state) || state === "gurumeditation")) await vboxmanage(controlVmArgs(entry.id, "poweroff"), o, signal);
    await vboxmanage(unregisterVmArgs(entry.id), o, signal);
  } catch (err) {
    if (!(err instanceof VBoxManageError && /VBOX_E_OBJECT_NOT_FOUND/.test(err.stderr))) throw err;
  }
  if (entry.detail?.basefolder) await rm(entry.detail.basefolder, { recursive: true, force: true });
}
