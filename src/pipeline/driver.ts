// The driver contract (docs/architecture.md "The driver contract"): small, with declared capabilities.
// Concrete drivers live in drivers/ and `satisfies Driver`; src/ reaches them only through the
// registry the CLI wires up.
import type { EventBus } from "../log/events.js";
import type { BuildSpec, DriverName, Firmware } from "../template/spec.js";
import type { Journal, JournalEntry } from "./journal.js";
import type { Step } from "./step.js";

import type { KeyEvent } from "../bootcommand/events.js";

export type { KeyEvent };

export interface VmSpec {
  /** Unique per build: drivers name their VM after it. */
  name: string;
  buildId: string;
  /** The build's private working directory (removed at the end). */
  buildDir: string;
  /** Boot disk source (a cloud image): the driver overlays or copies it. `slice`: the disk is that
   *  byte range of the file (the VMDK inside an OVA); only drivers with `capabilities.diskSlices`. */
  sourceDisk: { path: string; format: string | undefined; slice?: { offset: number; size: number } | undefined } | undefined;
  /** Installer ISO (later: ISO installs). */
  installerIso: string | undefined;
  /** NoCloud seed ISO attached read-only. */
  cidataIso: string | undefined;
  /** Bytes; undefined keeps the source's size. */
  diskSize: number | undefined;
  firmware: Firmware;
  /** ISO installs: a kickstart/preseed CD or floppy (OEMDRV, cidata) attached with the installer. */
  installerMedia?: { path: string; kind: "cd" | "floppy" } | undefined;
  /** ISO installs: a guest reboot stops the VM (QEMU -no-reboot) so the end of the install is seen. */
  exitOnReboot?: boolean;
}

export interface VmHandle {
  readonly id: string;
  readonly driver: DriverName;
  /** The disk the VM writes to, when the driver has it locally. */
  readonly diskPath?: string;
  /** Where the serial console is logged, when the driver has one. */
  readonly consoleLog?: string;
}

export type DiskFormat = "qcow2" | "raw" | "vmdk" | "vdi";

export interface ExportRequest {
  format: DiskFormat;
  /** Absolute path of the file to write. */
  path: string;
  compression: "zlib" | "zstd" | "none";
  /** For vmdk: streamOptimized for OVF/OVA. */
  subformat?: "streamOptimized" | "monolithicSparse";
}

export interface DiskFile {
  path: string;
  format: DiskFormat;
  size: number;
  virtualSize: number;
}

export interface ApplianceFiles {
  /** Absolute paths: the descriptor, its manifest (when written) and the files it references. */
  ovf: string;
  manifest: string | undefined;
  files: string[];
}

export interface DriverCapabilities {
  sources: Array<"cloud-image" | "iso" | "clone">;
  keystrokes: boolean;
  exports: Array<"qcow2" | "raw" | "vmdk" | "ovf" | "ova">;
  /** createVm takes a source disk that is a byte range of a file (`vmkiln test` on an OVA). */
  diskSlices?: boolean;
  /** Sources may name a content-library item (source.*.content_library): vSphere. */
  contentLibrary?: boolean;
  /** The hypervisor is reached over the network (vSphere): `--offline` refuses the driver. */
  remote?: boolean;
}

export interface Driver {
  readonly name: DriverName;
  readonly capabilities: DriverCapabilities;
  createVm(spec: VmSpec, signal: AbortSignal): Promise<VmHandle>;
  start(vm: VmHandle, signal: AbortSignal): Promise<void>;
  sendKeys?(vm: VmHandle, keys: KeyEvent[], signal: AbortSignal): Promise<void>;
  sshEndpoint(vm: VmHandle, signal: AbortSignal): Promise<{ host: string; port: number }>;
  /** Resolves when the VM is off. Waits `timeoutMs` for a guest-initiated power-off, then asks
   *  (ACPI), then forces: `escalatePowerOff` (power-off.ts) with the driver's own primitives. */
  shutdown(vm: VmHandle, opts: { timeoutMs: number; guestInitiated: boolean }, signal: AbortSignal): Promise<void>;
  /** Rejects when the VM stops unexpectedly (crash, guest power-off) while the build still needs it. */
  exited?(vm: VmHandle): Promise<string>;
  exportDisk(vm: VmHandle, to: ExportRequest, signal: AbortSignal): Promise<DiskFile>;
  /** The hypervisor's own OVF export (descriptor, disks, manifest) into `dir`, for the ovf/ova formats. */
  exportAppliance?(vm: VmHandle, to: { dir: string; basename: string }, signal: AbortSignal): Promise<ApplianceFiles>;
  /** Safe on a half-created VM; idempotent. */
  destroyVm(vm: VmHandle): Promise<void>;

  // ISO installs (issue 4): optional, needed for source.iso.
  /** The address the guest reaches a host listener on `bindAddress` at (QEMU user networking:
   *  10.0.2.2; vSphere: the local address that routes to the server). */
  guestHostAddress?(bindAddress: string): string | Promise<string>;
  /** Where the guest's connections to a host listener come from, as the listener sees them, when
   *  the driver knows (QEMU user networking and VirtualBox NAT: the guest dials 10.0.2.2 and the
   *  connection arrives from the host's 127.0.0.1). The installer HTTP server then serves only that
   *  peer. Undefined, or no method (vSphere: the guest's address is known only once it runs): the
   *  path prefix alone guards the answer files. */
  guestPeerAddress?(guestAddress: string): string | undefined;
  /** Resolves true when the guest stops by itself (installer power-off, or reboot with exitOnReboot), false after timeoutMs. */
  waitForGuestStop?(vm: VmHandle, opts: { timeoutMs: number }, signal: AbortSignal): Promise<boolean>;
  /** Boots the stopped VM again, without the installer ISO and media when asked. */
  restart?(vm: VmHandle, opts: { removeInstallerMedia: boolean }, signal: AbortSignal): Promise<void>;

  /** A driver whose flow differs from the generic plan (vSphere: clone sources, keeping the VM as a
   *  template) lists its own steps, reusing the generic ones. */
  plan?(spec: BuildSpec): Step[];
}

export interface DriverFactoryContext {
  spec: BuildSpec;
  events: EventBus;
  journal: Journal;
}

/**
 * A stage's result the hypervisor keeps (issue 17, docs/architecture.md "Layered builds"): what the
 * stage cache records instead of a disk file, and what the next stage is built from. vSphere: the VM
 * kept as a template, by inventory path, with its moref and instanceUuid.
 */
export interface KeptResult {
  driver: DriverName;
  /** Where it is, as the driver finds it again (vSphere: the inventory path). */
  location: string;
  /** What makes it the one this stage made (vSphere: moref, instanceUuid); part of the next stage's key. */
  identity: Record<string, string>;
}

/**
 * How a layered build hands one stage's result to the next, for a driver whose result is not a
 * disk file. Without it (QEMU, VirtualBox) a stage exports its disk (qcow2, else VMDK) into the
 * stage cache and the next stage's source is that file.
 */
export interface StageHandoff {
  /** The spec of a stage another is built on: it ends with its VM kept (vSphere: after: template). */
  keepSpec(spec: BuildSpec): BuildSpec;
  /** The next stage's spec, its source the kept result (vSphere: source.clone of the template). */
  fromKept(spec: BuildSpec, kept: KeptResult): BuildSpec;
  /**
   * A cache hit's check: undefined when the kept result still exists and is the one recorded, else
   * why not (the stage is then built again). Connects with the stage spec's own settings.
   */
  verifyKept(spec: BuildSpec, kept: KeptResult, events: EventBus, signal: AbortSignal): Promise<string | undefined>;
}

export type DriverFactory = ((ctx: DriverFactoryContext) => Driver) & {
  /** Layered builds: set by a driver whose stage results stay on the hypervisor (see StageHandoff). */
  stageHandoff?: StageHandoff;
};

/** Removes one `remote` journal entry a killed build left (`vmkiln gc`); idempotent. */
export type DriverGc = (entry: Extract<JournalEntry, { kind: "remote" }>, signal: AbortSignal) => Promise<void>;
