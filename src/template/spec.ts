// The typed, defaults-filled build spec every step reads (docs/architecture.md "Templates").
// Templates use snake_case (Packer users expect it); normalize.ts maps them onto these types.
// Durations are milliseconds, sizes are bytes, paths are absolute.

import type { Problem } from "../errors.js";

export type ChecksumSpec =
  | { kind: "sha256" | "sha512"; hex: string }
  | { kind: "file"; location: string } // a SHA256SUMS-style file: URL or absolute path
  | { kind: "none" };

export interface SourceSpec {
  /** clone: a VM or template that already exists on the hypervisor (vSphere); `location` is its name or inventory path. */
  kind: "cloud-image" | "iso" | "clone";
  /** Absolute local path or an http(s) URL. */
  location: string;
  checksum: ChecksumSpec;
  /** Disk format of a cloud image; undefined means detect with qemu-img. */
  format: "qcow2" | "raw" | "vmdk" | "vdi" | undefined;
  /** clone only: a linked clone (shares the source's disks through a snapshot). */
  linked?: boolean;
  /**
   * A vSphere content-library item (`content_library: "Library/Item"`): an ISO attached from the
   * library's datastore, or an OVF template deployed for a clone. Nothing is fetched; `location`
   * is "Library/Item".
   */
  library?: { library: string; item: string };
}

export type Accelerator = "auto" | "kvm" | "tcg";
export type Firmware = "bios" | "efi";

export interface QemuSpec {
  accelerator: Accelerator;
  cpus: number;
  /** MiB */
  memory: number;
  /** Bytes; undefined keeps the source's virtual size. */
  diskSize: number | undefined;
  /** overlay: qcow2 overlay on the cached source (fast); copy: a full copy. */
  diskMode: "overlay" | "copy";
  firmware: Firmware;
  /** firmware: efi — OVMF CODE and VARS template named by the template (absolute); probed when undefined. */
  efiFirmwareCode?: string | undefined;
  efiFirmwareVars?: string | undefined;
  /** firmware: efi — Secure Boot firmware with enrolled keys. */
  efiSecureBoot?: boolean;
  machine: string;
  binary: string;
  /** Fixed host port for SSH forwarding; undefined picks a free 127.0.0.1 port. */
  sshHostPort: number | undefined;
  headless: boolean;
  extraArgs: string[];
}

export interface VirtualBoxSpec {
  cpus: number;
  /** MiB */
  memory: number;
  /** Bytes; undefined keeps the source's size. */
  diskSize: number | undefined;
  firmware: Firmware;
  /** Format of the VM's disk inside VirtualBox. */
  diskFormat: "vdi" | "vmdk";
  headless: boolean;
  /** VirtualBox OS type id (`VBoxManage list ostypes`), e.g. Debian_64, RedHat_64. */
  guestOsType: string;
  graphicsController: "vboxvga" | "vmsvga" | "vboxsvga" | "none";
  /** Controller of the boot disk: SATA (AHCI), or VirtIO SCSI for kernels without AHCI (cloud kernels). */
  diskController: "sata" | "virtio";
  /** NIC 1 type: Intel PRO/1000 MT (VirtualBox's default) or virtio-net. */
  nicType: "82540EM" | "virtio";
  /** OVF version `VBoxManage export` writes for the ovf/ova formats. */
  ovfVersion: "1.0" | "2.0";
  /** Extra VBoxManage commands run before the first boot (Packer's `vboxmanage`); `{{.Name}}` is the VM. */
  vboxmanage: string[][];
  binary: string;
  /** Fixed host port for the SSH NAT rule; undefined picks a free 127.0.0.1 port. */
  sshHostPort: number | undefined;
}

export interface VsphereSpec {
  /** https://vcenter.example.com (or an ESXi host). */
  url: string;
  /** Template value or VSPHERE_USERNAME / VSPHERE_PASSWORD from the environment; never logged. */
  username: string | undefined;
  password: string | undefined;
  /** Each by name (relative to the datacenter's folder) or by absolute inventory path. */
  datacenter: string | undefined;
  cluster: string | undefined;
  host: string | undefined;
  resourcePool: string | undefined;
  folder: string | undefined;
  datastore: string | undefined;
  network: string | undefined;
  /** PEM CA bundle to trust instead of the system store (absolute path). */
  caFile: string | undefined;
  insecure: boolean;
  cpus: number;
  /** MiB */
  memory: number;
  /** Bytes: the thin disk of an ISO build; for a (full) clone, grow the first disk to this. */
  diskSize: number | undefined;
  guestOsType: string;
  firmware: Firmware;
  /** What happens to the VM after shutdown. */
  after: "export" | "template" | "snapshot" | "library" | "none";
  /** Layered templates: a stage built on a kept stage is a full clone of its template, or a linked clone (the template then gets a snapshot). */
  stageClone: "full" | "linked";
  /** after: library — the content library and the OVF template item to create in it. */
  libraryDestination: { library: string; name: string; description: string } | undefined;
  /** Datastore folder holding uploaded ISOs under their SHA-256. */
  isoCacheFolder: string;
  /** Address and port to SSH to instead of the guest IP VMware Tools reports (tests, NAT). */
  sshHost: string | undefined;
  sshPort: number | undefined;
  /** Accept an IPv6 guest address. */
  ipv6: boolean;
  ipWaitTimeoutMs: number;
}

export interface DriversSpec {
  qemu?: QemuSpec;
  virtualbox?: VirtualBoxSpec;
  vsphere?: VsphereSpec;
}

export type DriverName = "qemu" | "virtualbox" | "vsphere";

export interface SshSpec {
  username: string;
  /** Used instead of the ephemeral key when given. Never logged. */
  password: string | undefined;
  /** A private key file to use instead of the ephemeral ed25519 key. */
  privateKeyFile: string | undefined;
  port: number;
  timeoutMs: number;
}

export interface CloudInitSpec {
  /** Extra cloud-config merged over what vmkiln generates (the build user, its key). */
  userData: Record<string, unknown>;
  metaData: Record<string, unknown>;
  /** network-config document (v1 or v2); undefined ships an empty one. */
  networkConfig: Record<string, unknown> | undefined;
  vendorData: string | undefined;
}

export interface ProvisionerCommon {
  /** Display name in logs; defaults to `<type> #<n>`. */
  name: string;
  /** Options every provisioner kind takes (src/provision/options.ts applies them). */
  options: ProvisionerOptions;
}

export interface ProvisionerOptions {
  /** Wait this long before running (ms). */
  pauseBeforeMs: number;
  /** Run again this many times after a failure (0 = once). */
  maxRetries: number;
  /** Per-attempt time limit (ms); undefined = none. */
  timeoutMs: number | undefined;
  /** Run only with these drivers (undefined = all). */
  only: DriverName[] | undefined;
  /** Skip with these drivers. */
  except: DriverName[];
}

export interface ShellProvisioner extends ProvisionerCommon {
  type: "shell";
  /** Exactly one of inline/script is set. */
  inline: string[] | undefined;
  /** Absolute path of a local script uploaded and run. */
  script: string | undefined;
  env: Record<string, string>;
  sudo: boolean;
  /** The script may drop the connection (a reboot): reconnect instead of failing. */
  expectDisconnect: boolean;
}

export interface FileProvisioner extends ProvisionerCommon {
  type: "file";
  /**
   * upload: absolute local path (file or directory; a trailing slash on a directory uploads its
   * contents) → guest path. download: guest file path → a path relative to the output directory.
   */
  direction: "upload" | "download";
  source: string;
  destination: string;
}

export interface WaitCloudInitProvisioner extends ProvisionerCommon {
  type: "wait_cloud_init";
  timeoutMs: number;
}

/** Packer's ansible provisioner: ansible-playbook on the host against the build VM. */
export interface AnsibleProvisioner extends ProvisionerCommon {
  type: "ansible";
  /** Absolute path of the playbook. */
  playbook: string;
  /** The ansible-playbook program (name on PATH or a path). */
  command: string;
  /** Inventory groups the build VM is in (for `hosts: <group>`). */
  groups: string[];
  hostAlias: string;
  /** Maps become a JSON vars file; strings are `@/abs/path` files. Applied in order. */
  extraVars: Array<Record<string, unknown> | string>;
  extraArguments: string[];
  env: Record<string, string>;
  become: boolean;
}

/** ansible-playbook run inside the guest (ansible must be installed there). */
export interface AnsibleLocalProvisioner extends ProvisionerCommon {
  type: "ansible_local";
  playbook: string;
  /** Absolute local directory uploaded with the playbook (roles, vars); default: the playbook's dir. */
  playbookDir: string;
  command: string;
  extraVars: Array<Record<string, unknown> | string>;
  extraArguments: string[];
  env: Record<string, string>;
  sudo: boolean;
}

/** Commands run on the host, with the VM's SSH address in the environment. */
export interface ShellLocalProvisioner extends ProvisionerCommon {
  type: "shell_local";
  inline: string[] | undefined;
  script: string | undefined;
  env: Record<string, string>;
}

/** Reboot the guest and wait until it is back (new boot id, same pinned host key). */
export interface RestartProvisioner extends ProvisionerCommon {
  type: "restart";
  command: string;
  /** How long to wait for the guest to come back. */
  restartTimeoutMs: number;
}

/** Pause the build for a human: until Enter on a TTY, or until a file appears. Skipped in CI. */
export interface BreakpointProvisioner extends ProvisionerCommon {
  type: "breakpoint";
  note: string | undefined;
  /** Absolute path: continue when it exists. */
  waitForFile: string | undefined;
  disable: boolean;
}

export type ProvisionerSpec =
  | ShellProvisioner
  | FileProvisioner
  | WaitCloudInitProvisioner
  | AnsibleProvisioner
  | AnsibleLocalProvisioner
  | ShellLocalProvisioner
  | RestartProvisioner
  | BreakpointProvisioner;

/** The `generalize` switches (schema.ts describes each; src/provision/generalize.ts runs them). */
export interface GeneralizeSpec {
  cloudInit: boolean;
  /** The one switch that is off by default: on keeps the distribution's default user. */
  keepDefaultUser: boolean;
  buildUser: boolean;
  passwdBackups: boolean;
  network: boolean;
  hostname: boolean;
  dhcp: boolean;
  machineId: boolean;
  randomSeed: boolean;
  sshHostKeys: boolean;
  tmp: boolean;
  shellHistory: boolean;
  packageCache: boolean;
  logs: boolean;
  trim: boolean;
}

export interface ShutdownSpec {
  /** How the default power-off runs (see the schema's description); ignored with `command`. */
  mode: "fast" | "graceful";
  /** The template's own power-off command (run as root over SSH); then ACPI, then kill. */
  command: string | undefined;
  timeoutMs: number;
}

export type OutputFormat = "qcow2" | "raw" | "vmdk" | "ovf" | "ova";
export type Compression = "zlib" | "zstd" | "none";

export interface OutputSpec {
  /** Absolute directory. */
  directory: string;
  formats: OutputFormat[];
  compression: Compression;
  /** Base file name of artifacts (defaults to the template name). */
  basename: string;
  /** OVF descriptor settings for the ovf/ova formats; `sign` adds a .cert member to the OVA. */
  ova: { osType: string; vmxVersion: number; sign?: OvaSignSpec };
  /** Write an SPDX 2.3 SBOM of the guest's packages (default true). */
  sbom: boolean;
  /** Registries the qcow2 is pushed to after the export. */
  publish: PublishSpec[];
}

export interface OvaSignSpec {
  /** Absolute paths. */
  keyFile: string;
  certificateFile: string;
  passphraseFile: string | undefined;
}

export interface PublishSpec {
  /** oci://HOST/REPOSITORY:TAG as written. */
  to: string;
  layout: "containerdisk" | "artifact";
  /** Absolute path of a PEM CA bundle, or undefined for the system store. */
  caFile: string | undefined;
  insecure: boolean;
}

/** Text served or written to installer media: inline, or read from a local file; rendered at build time. */
export type RenderedText = { text: string } | { file: string };

export interface HttpSpec {
  /** Absolute directory served verbatim, or undefined. */
  directory: string | undefined;
  /** URL path ("/preseed.cfg") → text rendered with build variables (http.ip, http.port, ssh.public_key…). */
  content: Record<string, RenderedText>;
  bindAddress: string;
  /** 0 picks a free port. */
  port: number;
  /** What the guest uses for `{{ .HTTPIP }}`; undefined asks the driver. */
  guestAddress: string | undefined;
  /** Serve under a random path prefix (`${http.url}` and `{{ .HTTPPrefix }}` include it). */
  pathPrefix: boolean;
  /** URL paths that must be requested within expectTimeoutMs of the boot command. */
  expect: string[];
  expectTimeoutMs: number;
}

export interface BootSpec {
  command: string[];
  waitMs: number;
  /** Pause between key events (default 100 ms, Packer's); 0 sends them back to back. */
  keyIntervalMs: number;
}

export interface InstallMediaSpec {
  type: "cd" | "floppy";
  label: string;
  /** Absolute paths of local files put in the medium's root. */
  files: string[];
  /** File name → text rendered with build variables. */
  content: Record<string, RenderedText>;
}

/** An installer-ISO build: how it is driven and how its end is recognised. */
export interface InstallSpec {
  boot: BootSpec | undefined;
  media: InstallMediaSpec | undefined;
  waitFor: "poweroff" | "reboot";
  timeoutMs: number;
}

export interface BuildSpec {
  name: string;
  /** Absolute path of the template file ("<inline>" when built from an object). */
  templatePath: string;
  templateDir: string;
  variables: Record<string, string>;
  /**
   * Variables whose values are secrets (`sensitive: true`, `sensitive_variables`): masked in every
   * event, error and printed spec (src/log/redact.ts). Optional for specs built by hand.
   */
  sensitiveVariables?: string[];
  /** What the loader found valid but most likely a mistake (field path + message); logged by a build. */
  warnings?: Problem[];
  source: SourceSpec;
  drivers: DriversSpec;
  ssh: SshSpec;
  cloudInit: CloudInitSpec;
  /** ISO installs only (source.kind "iso"); undefined for cloud images. */
  install?: InstallSpec;
  /** The HTTP server for the installer, when the template has an `http` section. */
  http?: HttpSpec;
  provision: ProvisionerSpec[];
  generalize: GeneralizeSpec;
  shutdown: ShutdownSpec;
  output: OutputSpec;
  /** The `test:` section: check the exported artifacts in a booted guest (src/check/). */
  test?: TestSpec;
}

export interface TestSpec {
  /** Absolute paths of gossfiles. */
  checks: string[];
  vars: string | undefined;
  formats: Array<"qcow2" | "raw" | "vmdk" | "ova">;
  firstBoot: Record<"machine_id" | "ssh_host_keys" | "build_user" | "cloud_init" | "logs" | "growpart", boolean>;
  gossBinary: string | undefined;
  retryTimeoutMs: number;
  sleepMs: number;
  timeoutMs: number;
}
