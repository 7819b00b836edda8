// The typed, defaults-filled build spec every step reads (DESIGN.md "Data flow").
// Templates use snake_case (Packer users expect it); normalize.ts maps them onto these types.
// Durations are milliseconds, sizes are bytes, paths are absolute.

export type ChecksumSpec =
  | { kind: "sha256" | "sha512"; hex: string }
  | { kind: "file"; location: string } // a SHA256SUMS-style file: URL or absolute path
  | { kind: "none" };

export interface SourceSpec {
  kind: "cloud-image" | "iso";
  /** Absolute local path or an http(s) URL. */
  location: string;
  checksum: ChecksumSpec;
  /** Disk format of a cloud image; undefined means detect with qemu-img. */
  format: "qcow2" | "raw" | "vmdk" | "vdi" | undefined;
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
  machine: string;
  binary: string;
  /** Fixed host port for SSH forwarding; undefined picks a free 127.0.0.1 port. */
  sshHostPort: number | undefined;
  headless: boolean;
  extraArgs: string[];
}

export interface DriversSpec {
  qemu?: QemuSpec;
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
}

export interface ShellProvisioner extends ProvisionerCommon {
  type: "shell";
  /** Exactly one of inline/script is set. */
  inline: string[] | undefined;
  /** Absolute path of a local script uploaded and run. */
  script: string | undefined;
  env: Record<string, string>;
  sudo: boolean;
}

export interface FileProvisioner extends ProvisionerCommon {
  type: "file";
  /** Absolute local path (file or directory; a trailing slash on a directory uploads its contents). */
  source: string;
  destination: string;
}

export interface WaitCloudInitProvisioner extends ProvisionerCommon {
  type: "wait_cloud_init";
  timeoutMs: number;
}

export type ProvisionerSpec = ShellProvisioner | FileProvisioner | WaitCloudInitProvisioner;

export interface GeneralizeSpec {
  cloudInit: boolean;
  machineId: boolean;
  sshHostKeys: boolean;
  buildUser: boolean;
  logs: boolean;
  trim: boolean;
}

export interface ShutdownSpec {
  /** Command run over SSH (with sudo) to power off; then QMP/ACPI, then kill. */
  command: string;
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
  /** OVF descriptor settings for the ovf/ova formats. */
  ova: { osType: string; vmxVersion: number };
}

export interface BuildSpec {
  name: string;
  /** Absolute path of the template file ("<inline>" when built from an object). */
  templatePath: string;
  templateDir: string;
  variables: Record<string, string>;
  source: SourceSpec;
  drivers: DriversSpec;
  ssh: SshSpec;
  cloudInit: CloudInitSpec;
  provision: ProvisionerSpec[];
  generalize: GeneralizeSpec;
  shutdown: ShutdownSpec;
  output: OutputSpec;
}
