// The raw template (snake_case, as users write it) as one zod schema: it validates, converts units
// (durations → ms, sizes → bytes, memory → MiB) and is also the source of the JSON Schema editors use.
// Cross-field rules (exactly-one-of, files exist, driver capabilities) live in rules.ts; defaults and
// path resolution in normalize.ts. Descriptions here are what an editor shows on hover.

import { OS_TYPES, DEFAULT_VMX_VERSION } from "../artifact/ovf.js";
import * as z from "zod";
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from "./duration.js";
import { parseOciReference } from "../publish/reference.js";

const MiB = 1024 * 1024;

export const NAME_PATTERN = /^[A-Za-z0-9._-]+$/;
export const OUTPUT_FORMATS = ["qcow2", "raw", "vmdk", "ovf", "ova"] as const;
export const COMPRESSIONS = ["zlib", "zstd", "none"] as const;
export const IMAGE_FORMATS = ["qcow2", "raw", "vmdk", "vdi"] as const;
export const PROVISIONER_TYPES = ["shell", "file", "wait_cloud_init", "ansible", "ansible_local", "shell_local", "restart", "breakpoint"] as const;
export const SOURCE_KINDS = ["cloud_image", "iso", "clone"] as const;
/** Drivers the template format knows about; only the implemented ones have a schema below. */
export const KNOWN_DRIVERS = ["qemu", "virtualbox", "vsphere"] as const;
export const IMPLEMENTED_DRIVERS = ["qemu", "virtualbox", "vsphere"] as const;

/**
 * Schema-level message for a wrong type: "required" when absent, else `expected <what>`. Other issues
 * (a check like .min() inherits this map) return undefined and fall through to issues.ts's errorMap.
 */
function expecting(what: string) {
  return (iss: { code?: string; input?: unknown }) => {
    if (iss.code !== "invalid_type" && iss.code !== "invalid_union") return undefined;
    return iss.input === undefined ? "required" : `expected ${what}`;
  };
}

// Zod leaves `default` out of the input-side JSON Schema for transformed fields, so defaults shown on
// hover are kept here and added back in templateJsonSchema(). The value is what a user would write.
const DEFAULTS = new WeakMap<object, unknown>();
function withDefault<T extends z.ZodType>(schema: T, value: unknown) {
  const optional = schema.optional();
  DEFAULTS.set(optional, value);
  return optional;
}

// Variables are strings, so every number/boolean field also takes the string form a variable yields.

const duration = (description: string) =>
  z
    .union([z.number(), z.string().meta({ pattern: DURATION_PATTERN })], {
      error: expecting("a duration like 90s, 10m, 1h30m or a number of seconds"),
    })
    .transform((v, ctx) => {
      try {
        return parseDuration(v);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message, input: v });
        return z.NEVER;
      }
    })
    .meta({ description });

const intIn = (min: number, max: number, description: string) =>
  z
    .union([z.number().int().min(min).max(max), z.string().regex(/^\s*\d+\s*$/, { message: `expected an integer from ${min} to ${max}` })], {
      error: expecting(`an integer from ${min} to ${max}`),
    })
    .transform(Number)
    .pipe(z.number().min(min).max(max))
    .meta({ description });

const bool = (description: string) =>
  z
    .union([z.boolean(), z.enum(["true", "false"], { error: () => "expected true or false" })], { error: expecting("true or false") })
    .transform((v) => v === true || v === "true")
    .meta({ description });

// Bounds on what no hypervisor accepts, so `disk_size: 0` or `memory: 99999999999` fail at validate
// time rather than minutes into a build (issue 12). Disks: at least 1 MiB (VirtualBox sizes disks in
// whole MiB, and nothing smaller holds a boot loader) and at most 64 TiB (vSphere's largest VMDK is
// 62 TB; a bigger qcow2 exists, but no image built by booting a VM needs one). Memory: at least
// 4 MiB (nothing vmkiln builds, with SSH and cloud-init, boots in less) and at most 24 TiB (vSphere
// 8's per-VM maximum, the largest of the three; a QEMU host backs far less).
const DISK_MIN = MiB;
const DISK_MAX = 64 * 1024 ** 4;
const MEMORY_MIN_MIB = 4;
const MEMORY_MAX_MIB = 24 * 1024 * 1024;

/** "64 TiB" for a byte count that is a whole number of the unit. */
function sizeText(bytes: number): string {
  for (const [unit, size] of [["TiB", 1024 ** 4], ["GiB", 1024 ** 3], ["MiB", MiB], ["KiB", 1024]] as const) if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  return `${bytes} bytes`;
}

const sizeBytes = (description: string) =>
  z
    .union([z.number().int().nonnegative(), z.string().meta({ pattern: SIZE_PATTERN })], {
      error: expecting("a size like 20G, 512M or a number of bytes"),
    })
    .transform((v, ctx) => {
      try {
        const bytes = parseSize(v);
        if (bytes < DISK_MIN || bytes > DISK_MAX) throw new Error(`must be from ${sizeText(DISK_MIN)} to ${sizeText(DISK_MAX)} (got ${JSON.stringify(v)})`);
        return bytes;
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message, input: v });
        return z.NEVER;
      }
    })
    .meta({ description });

const memoryMiB = z
  .union([z.number().int().positive(), z.string().meta({ pattern: SIZE_PATTERN })], {
    error: expecting("MiB as a number or a size like 1G, 1024M"),
  })
  .transform((v, ctx) => {
    try {
      const bytes = parseSize(v, { defaultUnit: MiB });
      if (bytes < MEMORY_MIN_MIB * MiB || bytes > MEMORY_MAX_MIB * MiB)
        throw new Error(`must be from ${sizeText(MEMORY_MIN_MIB * MiB)} to ${sizeText(MEMORY_MAX_MIB * MiB)} (got ${JSON.stringify(v)})`);
      if (bytes % MiB !== 0) throw new Error(`must be a whole number of MiB`);
      return bytes / MiB;
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message, input: v });
      return z.NEVER;
    }
  })
  .meta({ description: "Guest memory: a number of MiB, or a size such as 2G or 2048M." });

const nonEmpty = (description: string) => z.string({ error: expecting("a string") }).min(1).meta({ description });

const stringList = (description: string) =>
  z.array(z.string({ error: expecting("a string") }), { error: expecting("a list of strings") }).meta({ description });

/** Scalars coerced to strings: `PORT: 8080` in YAML should not be an error. */
const scalarString = z
  .union([z.string(), z.number(), z.boolean()], { error: expecting("a string, number or boolean") })
  .transform(String);

/** A variable: its default value, or Packer HCL2's block form `{ default, sensitive, description }`. */
const variable = z.union(
  [
    scalarString,
    z.strictObject(
      {
        default: scalarString.optional().meta({ description: "The value unless -var-file or -var sets one; without it, one of them must." }),
        sensitive: withDefault(bool("Mask the value in every log line, error message and printed spec (inspect, manifest.json)."), false),
        description: z.string({ error: expecting("a string") }).optional().meta({ description: "What the variable is for." }),
      },
      { error: expecting("a mapping") },
    ),
  ],
  { error: expecting("a string, number, boolean, or { default, sensitive, description }") },
);

const mapping = (description: string) =>
  z.record(z.string(), z.unknown(), { error: expecting("a mapping") }).meta({ description });

const httpUrl = z
  .string({ error: expecting("a string") })
  .refine((s) => /^https?:\/\//i.test(s) && URL.canParse(s), { message: "expected an http:// or https:// URL" })
  .meta({ description: "http(s) URL to download from.", format: "uri" });

export type RawChecksum =
  | { kind: "sha256" | "sha512"; hex: string }
  | { kind: "file"; location: string }
  | { kind: "none" };

/** Parses the checksum forms; `file:` keeps its location unresolved (normalize resolves paths). */
export function parseChecksum(text: string): RawChecksum | undefined {
  const t = text.trim();
  if (t.toLowerCase() === "none") return { kind: "none" };
  if (t.startsWith("file:")) {
    const location = t.slice(5).trim();
    return location === "" ? undefined : { kind: "file", location };
  }
  const m = /^(?:(sha256|sha512):)?([0-9a-fA-F]+)$/i.exec(t);
  if (!m) return undefined;
  const hex = m[2]!.toLowerCase();
  const algo = m[1]?.toLowerCase();
  if (algo === "sha256" || (algo === undefined && hex.length === 64)) return hex.length === 64 ? { kind: "sha256", hex } : undefined;
  if (algo === "sha512" || (algo === undefined && hex.length === 128)) return hex.length === 128 ? { kind: "sha512", hex } : undefined;
  return undefined;
}

const checksum = z
  .string({ error: expecting('a checksum: "none", "sha256:<hex>", "sha512:<hex>" or "file:<SHA256SUMS url or path>"') })
  .transform((v, ctx) => {
    const parsed = parseChecksum(v);
    if (parsed) return parsed;
    ctx.addIssue({
      code: "custom",
      input: v,
      message: 'invalid checksum: use "none", "sha256:<64 hex>", "sha512:<128 hex>", bare hex, or "file:<url or path>"',
    });
    return z.NEVER;
  })
  .meta({
    description:
      'Required. "none", "sha256:<64 hex>", "sha512:<128 hex>", bare hex (algorithm inferred from length), or "file:<url or path>" of a SHA256SUMS-style file.',
    examples: ["none", "file:https://cloud-images.ubuntu.com/noble/current/SHA256SUMS"],
  });

const sourceFields = {
  path: nonEmpty("Local file, relative to the template's directory. Exactly one of path or url."),
  url: httpUrl,
  checksum,
};

const cloudImage = z
  .strictObject({
    path: sourceFields.path.optional(),
    url: sourceFields.url.optional(),
    checksum: sourceFields.checksum,
    format: z
      .enum(IMAGE_FORMATS)
      .optional()
      .meta({ description: "Disk format of the image; detected with qemu-img when omitted." }),
  })
  .meta({ description: "Boot a prebuilt cloud image (configured by cloud-init).", oneOf: [{ required: ["path"] }, { required: ["url"] }] });

/** "Library/Item": a vSphere content-library item, by the library's name and the item's name in it. */
export const LIBRARY_ITEM_PATTERN = /^[^/]+\/.+$/;

const libraryItem = (description: string) =>
  z
    .string({ error: expecting('"Library/Item"') })
    .regex(LIBRARY_ITEM_PATTERN, { message: 'expected "Library/Item": the content library\'s name, "/", the item\'s name' })
    .meta({ description });

const iso = z
  .strictObject({
    path: sourceFields.path.optional(),
    url: sourceFields.url.optional(),
    // Optional here: rules.ts requires it with path/url; a content-library ISO has none.
    checksum: sourceFields.checksum.optional(),
    content_library: libraryItem(
      'vsphere only: an ISO in a content library, "Library/Item". Attached from the library\'s datastore (nothing is downloaded or uploaded); no checksum. Exactly one of path, url or content_library.',
    ).optional(),
  })
  .meta({
    description: "Install from an installer ISO.",
    oneOf: [{ required: ["path", "checksum"] }, { required: ["url", "checksum"] }, { required: ["content_library"] }],
  });

const clone = z
  .strictObject(
    {
      template: nonEmpty("The VM or template to clone: a name (in the datacenter's VM folder) or an absolute inventory path.").optional(),
      content_library: libraryItem('An OVF template in a content library, "Library/Item": deployed, then built like a clone. Exactly one of template or content_library.').optional(),
      linked: withDefault(bool("Linked clone: share the source's disks through its current snapshot (fast, thin). Not with content_library or drivers.vsphere.disk_size."), false),
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "Clone a VM or template that exists on the hypervisor (vSphere).", oneOf: [{ required: ["template"] }, { required: ["content_library"] }] });

const source = z
  .strictObject({ cloud_image: cloudImage.optional(), iso: iso.optional(), clone: clone.optional() }, { error: expecting("a mapping") })
  .meta({ description: "Where the first disk comes from: exactly one of cloud_image, iso or clone.", minProperties: 1, maxProperties: 1 });

const qemu = z
  .strictObject(
    {
      accelerator: z
        .enum(["auto", "kvm", "tcg"])
        .optional()
        .meta({ description: "kvm needs /dev/kvm; tcg is software emulation; auto picks kvm when usable.", default: "auto" }),
      cpus: withDefault(intIn(1, 64, "Virtual CPUs."), 2),
      memory: withDefault(memoryMiB, 1024),
      disk_size: sizeBytes("Grow the disk to this size (bytes, or 20G / 512M / 1T; powers of 1024). Omit to keep the image's size.").optional(),
      disk_mode: z
        .enum(["overlay", "copy"])
        .optional()
        .meta({ description: "overlay: a qcow2 overlay on the cached image (fast); copy: a full copy.", default: "overlay" }),
      firmware: z.enum(["bios", "efi"]).optional().meta({ description: "Guest firmware.", default: "bios" }),
      efi_firmware_code: nonEmpty("firmware: efi — the OVMF CODE image to boot (with efi_firmware_vars); probed when omitted.").optional(),
      efi_firmware_vars: nonEmpty("firmware: efi — the OVMF VARS template; each VM boots on its own copy.").optional(),
      efi_secure_boot: withDefault(bool("firmware: efi — boot Secure Boot firmware with Microsoft's keys enrolled (SMM on)."), false),
      machine: nonEmpty("QEMU machine type (-machine).").optional().meta({ default: "q35" }),
      binary: nonEmpty("QEMU system emulator to run.").optional().meta({ default: "qemu-system-x86_64" }),
      ssh_host_port: intIn(1, 65535, "Fixed host port forwarded to guest SSH; a free port is picked when omitted.").optional(),
      headless: withDefault(bool("Run without a display window."), true),
      extra_args: stringList("Extra arguments appended to the qemu command line.").optional(),
    },
    { error: expecting("a mapping") },
  )
  .nullable()
  .meta({ description: "Build with QEMU." });

const virtualbox = z
  .strictObject(
    {
      cpus: withDefault(intIn(1, 64, "Virtual CPUs."), 2),
      memory: withDefault(memoryMiB, 1024),
      disk_size: sizeBytes("Grow the disk to this size (bytes, or 20G / 512M). Omit to keep the image's size; required for an ISO install.").optional(),
      firmware: z.enum(["bios", "efi"]).optional().meta({ description: "Guest firmware.", default: "bios" }),
      disk_format: z.enum(["vdi", "vmdk"]).optional().meta({ description: "Format of the VM's disk inside VirtualBox.", default: "vdi" }),
      headless: withDefault(bool("startvm --type headless (true) or gui (false)."), true),
      guest_os_type: nonEmpty("VirtualBox OS type id (VBoxManage list ostypes), e.g. Debian_64, RedHat_64, Oracle_64.").optional().meta({ default: "Linux_64" }),
      graphics_controller: z
        .enum(["vboxvga", "vmsvga", "vboxsvga", "none"])
        .optional()
        .meta({ description: "modifyvm --graphicscontroller.", default: "vmsvga" }),
      disk_controller: z
        .enum(["sata", "virtio"])
        .optional()
        .meta({ description: "Boot disk controller: sata (AHCI) or virtio (VirtIO SCSI; for kernels without AHCI, such as Debian's cloud kernel).", default: "sata" }),
      nic_type: z
        .enum(["82540EM", "virtio"])
        .optional()
        .meta({ description: "NIC type (modifyvm --nictype1): 82540EM (Intel PRO/1000, e1000) or virtio.", default: "82540EM" }),
      ovf_version: z.enum(["1.0", "2.0"]).optional().meta({ description: "OVF version VBoxManage export writes for ovf/ova.", default: "1.0" }),
      vboxmanage: z
        .array(stringList("One VBoxManage command as a list of arguments."), { error: expecting("a list of argument lists") })
        .optional()
        .meta({ description: 'Extra VBoxManage commands run before the first boot (Packer\'s vboxmanage); "{{.Name}}" is the VM name.' }),
      binary: nonEmpty("The VBoxManage program.").optional().meta({ default: "VBoxManage" }),
      ssh_host_port: intIn(1, 65535, "Fixed host port of the SSH NAT rule; a free port is picked when omitted.").optional(),
    },
    { error: expecting("a mapping") },
  )
  .nullable()
  .meta({ description: "Build with VirtualBox (through VBoxManage)." });

const vsphere = z
  .strictObject(
    {
      url: nonEmpty("vCenter or ESXi URL (https://…). TLS is verified: see ca_file and insecure."),
      username: nonEmpty("Login user; default: $VSPHERE_USERNAME. Never logged.").optional(),
      password: z.string({ error: expecting("a string") }).optional().meta({ description: "Login password; default: $VSPHERE_PASSWORD. Never logged." }),
      datacenter: nonEmpty("Datacenter name or inventory path; optional when there is only one.").optional(),
      cluster: nonEmpty("Cluster to run the VM on (name or inventory path).").optional(),
      host: nonEmpty("ESXi host to run the VM on (name or inventory path); with cluster, a host in it.").optional(),
      resource_pool: nonEmpty("Resource pool (name under the cluster/host, or inventory path); default: the root pool.").optional(),
      folder: nonEmpty("VM folder (relative to the datacenter's VM folder, or inventory path).").optional(),
      datastore: nonEmpty("Datastore for the VM and uploads; optional when there is only one.").optional(),
      network: nonEmpty("Network (port group) for the VM's NIC.").optional(),
      ca_file: nonEmpty("PEM CA certificate(s) to trust for the server (relative to the template).").optional(),
      insecure: withDefault(bool("Skip TLS verification. Only for lab servers."), false),
      cpus: withDefault(intIn(1, 128, "Virtual CPUs."), 2),
      memory: withDefault(memoryMiB, 1024),
      disk_size: sizeBytes("Thin disk size for an ISO build (required there); for a clone, grow the first disk to it (never shrinks; not with a linked clone).").optional(),
      guest_os_type: nonEmpty("vSphere guest OS identifier (VirtualMachineGuestOsIdentifier).").optional().meta({ default: "otherLinux64Guest" }),
      firmware: z.enum(["bios", "efi"]).optional().meta({ description: "Guest firmware.", default: "bios" }),
      after: z
        .enum(["export", "template", "snapshot", "library", "none"])
        .optional()
        .meta({
          description:
            "After shutdown: export (then delete the VM), convert to a template, take a snapshot, capture it as an OVF template into a content library (library_destination; then delete the VM), or leave the VM.",
          default: "export",
        }),
      stage_clone: z
        .enum(["full", "linked"])
        .optional()
        .meta({
          description:
            "Layered templates (stages:, from:): each stage another is built on is kept as a VM template, and the next stage is a full or a linked clone of it (linked: the template gets a snapshot; disk_size must then equal the base's).",
          default: "full",
        }),
      library_destination: z
        .strictObject(
          {
            library: nonEmpty("Name of the content library (local, on this vCenter) to capture into."),
            name: nonEmpty("Name of the new OVF template item; default: the template's name. It must not exist yet.").optional(),
            description: z.string({ error: expecting("a string") }).optional().meta({ description: "Description of the item." }),
          },
          { error: expecting("a mapping") },
        )
        .optional()
        .meta({ description: "Where after: library puts the built VM (Packer's content_library_destination with ovf: true)." }),
      iso_cache_folder: nonEmpty("Datastore folder where uploaded ISOs are kept under their SHA-256.").optional().meta({ default: "vmkiln-cache" }),
      ssh_host: nonEmpty("SSH to this address instead of the guest IP VMware Tools reports.").optional(),
      ssh_port: intIn(1, 65535, "SSH to this port instead of ssh.port (NAT, tests).").optional(),
      ipv6: withDefault(bool("Accept an IPv6 guest address."), false),
      ip_wait_timeout: withDefault(duration("How long to wait for a usable guest IP."), "30m"),
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "Build on vSphere (vCenter or ESXi) through its SOAP and REST APIs." });

const drivers = z
  .strictObject({ qemu: qemu.optional(), virtualbox: virtualbox.optional(), vsphere: vsphere.optional() }, { error: expecting("a mapping of driver names") })
  .meta({ description: "Hypervisors to build with (at least one). Available now: qemu, virtualbox, vsphere.", minProperties: 1 });

const ssh = z
  .strictObject(
    {
      username: nonEmpty("Build user created through cloud-init and used over SSH.").optional().meta({ default: "vmkiln" }),
      password: z.string({ error: expecting("a string") }).optional().meta({ description: "Password login instead of the ephemeral key. Never logged." }),
      private_key_file: nonEmpty("Private key to use instead of the ephemeral ed25519 key (relative to the template).").optional(),
      port: withDefault(intIn(1, 65535, "Guest SSH port."), 22),
      timeout: withDefault(duration("How long to wait for SSH to come up."), "15m"),
    },
    { error: expecting("a mapping") },
  )
  .nullable()
  .meta({ description: "How vmkiln reaches the guest." });

const cloudInit = z
  .strictObject(
    {
      user_data: mapping("cloud-config keys merged over what vmkiln generates (the build user and its key).").optional(),
      meta_data: mapping("meta-data keys.").optional(),
      network_config: mapping("network-config document (v1 or v2).").optional(),
      vendor_data: z.string({ error: expecting("a string") }).optional().meta({ description: "vendor-data, verbatim." }),
    },
    { error: expecting("a mapping") },
  )
  .nullable()
  .meta({ description: "NoCloud seed served to the guest." });

const displayName = nonEmpty("Display name in logs (default: <type> #<n>).").optional();

const driverList = (description: string) =>
  z.array(z.enum(KNOWN_DRIVERS), { error: expecting(`a list of drivers (${KNOWN_DRIVERS.join(", ")})`) }).optional().meta({ description });

/** Options every provisioner kind takes (Packer's names); src/provision/options.ts applies them. */
const provisionerOptions = {
  pause_before: duration("Wait this long before running this provisioner.").optional(),
  max_retries: intIn(0, 100, "Run again up to this many times when it fails (the last error is reported).").optional(),
  timeout: duration("Give up on one attempt after this long.").optional(),
  only: driverList("Run only when building with these drivers."),
  except: driverList("Skip when building with these drivers."),
};

const envMap = (description: string) =>
  z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), scalarString, { error: expecting("a mapping of environment variables") })
    .optional()
    .meta({ description });

const extraVars = z
  .union(
    [
      z.string().regex(/^@.+/, { message: 'expected "@<file>" or a mapping' }),
      z.record(z.string(), z.unknown()),
      z.array(z.union([z.string().regex(/^@.+/, { message: 'expected "@<file>" or a mapping' }), z.record(z.string(), z.unknown())])),
    ],
    { error: expecting('a mapping, "@<vars file>", or a list of those') },
  )
  .optional()
  .meta({ description: 'Extra variables: a mapping, "@<file>" (YAML/JSON, relative to the template), or a list of those (later wins).' });

const shell = z
  .strictObject(
    {
      name: displayName,
      inline: stringList("Commands run one after another (exactly one of inline or script).").optional(),
      script: nonEmpty("Local script uploaded and run (relative to the template; exactly one of inline or script).").optional(),
      sudo: withDefault(bool("Run as root through sudo."), false),
      env: z
        .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), scalarString, { error: expecting("a mapping of environment variables") })
        .optional()
        .meta({ description: "Environment variables for the commands." }),
      expect_disconnect: withDefault(
        bool("The script may drop the SSH connection (e.g. it reboots): wait for SSH again instead of failing."),
        false,
      ),
      ...provisionerOptions,
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "Run shell commands in the guest." });

const file = z
  .strictObject(
    {
      name: displayName,
      source: nonEmpty(
        'upload: local file or directory (relative to the template; a trailing "/" uploads the directory\'s contents). download: a file in the guest.',
      ),
      destination: nonEmpty("upload: path in the guest. download: path relative to output.directory (listed in manifest.json and SHA256SUMS)."),
      direction: z.enum(["upload", "download"]).optional().meta({ description: "upload (to the guest) or download (from it).", default: "upload" }),
      ...provisionerOptions,
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "Copy a file or directory to the guest, or a file out of it." });

const ansible = z
  .strictObject(
    {
      name: displayName,
      playbook: nonEmpty("Playbook run from the host against the build VM (relative to the template)."),
      command: nonEmpty("ansible-playbook program to run.").optional().meta({ default: "ansible-playbook" }),
      groups: stringList("Inventory groups the build VM belongs to, so `hosts: <group>` plays match.").optional(),
      host_alias: z
        .string({ error: expecting("a string") })
        .regex(/^[A-Za-z0-9._-]+$/, { message: "must contain only letters, digits, '.', '_' and '-'" })
        .optional()
        .meta({ description: "Inventory name of the build VM.", default: "default" }),
      extra_vars: extraVars,
      extra_arguments: stringList("More ansible-playbook arguments, e.g. [--tags, base, --vault-password-file, ./pw].").optional(),
      env: envMap("Environment for ansible-playbook, e.g. ANSIBLE_ROLES_PATH."),
      become: withDefault(bool("Set ansible_become in the inventory (tasks run as root through sudo)."), true),
      ...provisionerOptions,
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "Run an Ansible playbook from the host over the build's SSH key (host key checked against the pinned key)." });

const ansibleLocal = z
  .strictObject(
    {
      name: displayName,
      playbook: nonEmpty("Playbook (relative to the template), uploaded and run inside the guest."),
      playbook_dir: nonEmpty("Directory uploaded with the playbook (roles, vars); default: the playbook's directory.").optional(),
      command: nonEmpty("ansible-playbook in the guest.").optional().meta({ default: "ansible-playbook" }),
      extra_vars: extraVars,
      extra_arguments: stringList("More ansible-playbook arguments.").optional(),
      env: envMap("Environment for ansible-playbook in the guest."),
      sudo: withDefault(bool("Run ansible-playbook as root through sudo."), true),
      ...provisionerOptions,
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "Run an Ansible playbook inside the guest (ansible must be installed there)." });

const shellLocal = z
  .strictObject(
    {
      name: displayName,
      inline: stringList("Commands run on the host with bash (exactly one of inline or script).").optional(),
      script: nonEmpty("Local script run on the host (relative to the template).").optional(),
      env: envMap("Environment for the commands; VMKILN_SSH_HOST/PORT/USER/KEY and VMKILN_KNOWN_HOSTS are set too."),
      ...provisionerOptions,
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "Run commands on the host (glue), with the VM's SSH address in the environment." });

const restart = z
  .strictObject(
    {
      name: displayName,
      command: nonEmpty("Command run as root to reboot.").optional().meta({ default: "reboot" }),
      restart_timeout: withDefault(duration("How long to wait for the guest to come back."), "10m"),
      ...provisionerOptions,
    },
    { error: expecting("a mapping") },
  )
  .nullable()
  .meta({ description: "Reboot the guest and wait for SSH again (same pinned host key, new boot)." });

const breakpoint = z
  .strictObject(
    {
      name: displayName,
      note: z.string({ error: expecting("a string") }).optional().meta({ description: "Shown when the build pauses." }),
      wait_for_file: nonEmpty("Continue when this host file exists (relative to the template) instead of on Enter.").optional(),
      disable: withDefault(bool("Keep the breakpoint in the template but don't stop."), false),
      ...provisionerOptions,
    },
    { error: expecting("a mapping") },
  )
  .nullable()
  .meta({ description: "Pause the build (until Enter on a terminal, or until wait_for_file exists). Never pauses in CI." });

const waitCloudInit = z
  .strictObject(
    {
      name: displayName,
      timeout: withDefault(duration("How long to wait for cloud-init to finish."), "15m"),
      pause_before: provisionerOptions.pause_before,
      max_retries: provisionerOptions.max_retries,
      only: provisionerOptions.only,
      except: provisionerOptions.except,
    },
    { error: expecting("a mapping") },
  )
  .nullable()
  .meta({ description: "Wait until cloud-init has finished in the guest." });

const provisioner = z
  .strictObject(
    {
      shell: shell.optional(),
      file: file.optional(),
      wait_cloud_init: waitCloudInit.optional(),
      ansible: ansible.optional(),
      ansible_local: ansibleLocal.optional(),
      shell_local: shellLocal.optional(),
      restart: restart.optional(),
      breakpoint: breakpoint.optional(),
    },
    { error: expecting(`a mapping with one provisioner type (${PROVISIONER_TYPES.join(", ")})`) },
  )
  .meta({ description: "One provisioner: a single key naming its type.", minProperties: 1, maxProperties: 1 });

// One switch per operation (src/provision/generalize.ts runs them; README "Generalize" lists them
// against virt-sysprep's operations). Every one defaults to on; `generalize: false` turns all off.
const generalizeFlags = {
  cloud_init: withDefault(bool("Wait for cloud-init to finish the current boot, then `cloud-init clean --logs --seed` (and the sshd drop-in it wrote): the first boot is a first boot again."), true),
  keep_default_user: withDefault(bool("Keep the distribution's default user (e.g. `debian`) if one exists; by default it is removed with its home, sudoers lines and the groups cloud-init made for it, as the first boot creates it again."), false),
  build_user: withDefault(bool("Remove the build user vmkiln created (its passwd/shadow/group lines, sudoers lines, home, mail and crontab); with `ssh.username: root`, the build key from root's authorized_keys."), true),
  passwd_backups: withDefault(bool("Remove /etc/passwd-, shadow-, group-, gshadow-, subuid-, subgid- (they still list the removed users)."), true),
  network: withDefault(bool("Remove the network configuration cloud-init generated for the build, and udev's persistent net rules (needs cloud_init: the first boot writes them again)."), true),
  hostname: withDefault(bool("Remove the hostname cloud-init set for the build: /etc/hostname when it is cloud-init's, and that name from /etc/hosts (needs cloud_init)."), true),
  dhcp: withDefault(bool("Remove DHCP client leases and DUIDs (dhclient, dhcpcd, NetworkManager)."), true),
  machine_id: withDefault(bool("Empty /etc/machine-id (a new one is made at first boot), remove /var/lib/dbus/machine-id and the journal directory named after the build's id."), true),
  random_seed: withDefault(bool("Remove the saved random seed (/var/lib/systemd/random-seed) so clones do not start from the same one."), true),
  ssh_host_keys: withDefault(bool("Remove SSH host keys (regenerated on first boot)."), true),
  tmp: withDefault(bool("Empty /tmp and /var/tmp."), true),
  shell_history: withDefault(bool("Remove shell and tool histories (.bash_history, .zsh_history, .python_history, .lesshst, …) of every user."), true),
  package_cache: withDefault(bool("Remove downloaded packages and caches (apt, dnf, yum, zypper); apt's lists are kept."), true),
  logs: withDefault(bool("Remove the journal (/var/log/journal/*), rotated logs and truncate the others, including wtmp/btmp/lastlog."), true),
  trim: withDefault(bool("fstrim free space so the image compresses well."), true),
};

const generalize = z
  .union([z.boolean(), z.strictObject(generalizeFlags)], { error: expecting("true, false or a mapping") })
  .meta({ description: "Make the image look as if it had never booted. `false` turns every operation off; each defaults to on (keep_default_user to off)." });

const shutdown = z
  .strictObject(
    {
      mode: z
        .enum(["fast", "graceful"])
        .optional()
        .meta({
          description:
            "fast: `systemctl poweroff --force`: units' stop jobs are skipped, but every process still gets SIGTERM and every file system is unmounted or remounted read-only and synced, so the disk is clean (about 3 s sooner under emulation). graceful: `systemctl poweroff`, every unit stopped in order (for services whose ExecStop= writes state the image needs). Without systemd both run `poweroff`.",
          default: "fast",
        }),
      command: nonEmpty("Command run as root over SSH to power off; replaces mode.").optional(),
      timeout: withDefault(duration("How long to wait for power-off before forcing it."), "5m"),
    },
    { error: expecting("a mapping") },
  )
  .nullable()
  .meta({ description: "How the guest is stopped." });

const output = z
  .strictObject(
    {
      directory: nonEmpty("Where artifacts go (relative to the template).").optional().meta({ default: "./output/${name}" }),
      formats: z
        .array(z.enum(OUTPUT_FORMATS), { error: expecting(`a list of formats (${OUTPUT_FORMATS.join(", ")})`) })
        .min(1)
        .optional()
        .meta({ description: "Artifact formats.", default: ["qcow2"] }),
      compression: z.enum(COMPRESSIONS).optional().meta({ description: "qcow2 compression.", default: "zlib" }),
      basename: z
        .string({ error: expecting("a string") })
        .regex(NAME_PATTERN, { message: "must contain only letters, digits, '.', '_' and '-'" })
        .optional()
        .meta({ description: "Base file name of artifacts.", default: "${name}" }),
      ova: z
        .strictObject(
          {
            os_type: z
              .enum(Object.keys(OS_TYPES) as [string, ...string[]])
              .optional()
              .meta({ description: "Guest OS written into the OVF (OperatingSystemSection, vmw:osType).", default: "linux" }),
            vmx_version: z
              .number({ error: expecting("a number") })
              .int()
              .min(7)
              .max(21)
              .optional()
              .meta({ description: "VirtualSystemType vmx-NN: the oldest vSphere hardware family that must import it.", default: DEFAULT_VMX_VERSION }),
            sign: z
              .strictObject(
                {
                  key: nonEmpty("PEM private key (relative to the template). Encrypted keys: passphrase_file or $VMKILN_OVA_KEY_PASSPHRASE. Never logged."),
                  certificate: nonEmpty("PEM X.509 certificate of the key (relative to the template); a chain may follow it."),
                  passphrase_file: nonEmpty("File holding the passphrase of an encrypted key (relative to the template).").optional(),
                },
                { error: expecting("a mapping") },
              )
              .optional()
              .meta({ description: "Sign the OVA: a .cert member after the manifest holds the manifest's SHA-256 signature and the certificate (OVF 2.0 / ovftool layout)." }),
          },
          { error: expecting("a mapping") },
        )
        .optional()
        .meta({ description: "OVF/OVA descriptor settings." }),
      sbom: withDefault(
        bool("Write <basename>.spdx.json: the guest's installed packages (dpkg or rpm) as an SPDX 2.3 document, taken at the end of provisioning."),
        true,
      ),
      publish: z
        .array(
          z.strictObject(
            {
              to: z
                .string({ error: expecting("oci://HOST/REPOSITORY:TAG") })
                .superRefine((v, ctx) => {
                  const r = parseOciReference(v);
                  if (typeof r === "string") ctx.addIssue({ code: "custom", message: r, input: v });
                })
                .meta({ description: "Where to push the qcow2: oci://HOST[:PORT]/REPOSITORY[:TAG]. Credentials come from $VMKILN_REGISTRY_USERNAME/PASSWORD or the Docker/Podman auth file, never from the template." }),
              as: z
                .enum(["containerdisk", "artifact"])
                .optional()
                .meta({ description: "containerdisk: a KubeVirt containerDisk image (the qcow2 under /disk/); artifact: an OCI artifact (artifactType application/vnd.diskimage.qcow2).", default: "containerdisk" }),
              ca_file: nonEmpty("PEM CA certificate(s) to trust for the registry (relative to the template).").optional(),
              insecure: withDefault(bool("Plain HTTP, or HTTPS without certificate checks. Only for lab registries."), false),
            },
            { error: expecting("a mapping") },
          ),
          { error: expecting("a list of { to, as } mappings") },
        )
        .optional()
        .meta({ description: "Push the built qcow2 to OCI registries after the export; each pushed digest goes into manifest.json." }),
    },
    { error: expecting("a mapping") },
  )
  .nullable()
  .meta({ description: "Artifacts." });

// ---- ISO installs (issue 4): boot command, HTTP server, installer media, install completion.

const renderedText = z
  .union(
    [
      z.string(),
      z.strictObject({ file: nonEmpty("Local file (relative to the template) whose text is rendered and served.") }),
    ],
    { error: expecting('text, or { file: <path> }') },
  )
  .meta({
    description:
      "Text, or { file: path } to read it from a file. Rendered with build variables when the build runs: ${var.NAME}, ${env.NAME}, ${name}, ${http.ip}, ${http.port}, ${http.url}, ${http.prefix}, ${ssh.public_key}, and Packer's {{ .HTTPIP }} / {{ .HTTPPort }} / {{ .HTTPPrefix }} / {{ .Name }}; write $${ for a literal ${.",
  });

const boot = z
  .strictObject(
    {
      command: stringList(
        "Keys typed at the installer's boot prompt (Packer's boot_command, same syntax): text, <enter> <esc> <tab> <bs> <f1>…, <leftCtrlOn>/<leftCtrlOff>, <wait>, <wait5>, <wait1m30s>; values {{ .HTTPIP }} {{ .HTTPPort }} {{ .HTTPPrefix }} {{ .Name }} or ${http.ip} ${http.port} ${http.prefix} ${http.url} ${name}. The list is typed as one string.",
      ),
      wait: withDefault(duration("Packer's boot_wait: how long after power-on to wait before typing."), "10s"),
      // Unpaced keys overflow the firmware's 16-key buffer when the guest polls slowly (TCG, a busy
      // host): isolinux typed "priority=cical" for "priority=critical". 100 ms is Packer's default.
      key_interval: withDefault(duration("Packer's boot_key_interval: pause between key events (0 sends them back to back)."), "100ms"),
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "Typing the boot command (needs a driver with keystrokes)." });

const httpSection = z
  .strictObject(
    {
      directory: nonEmpty("Packer's http_directory: a local directory served verbatim (relative to the template).").optional(),
      content: z
        .record(z.string(), renderedText, {
          error: expecting("a mapping of URL paths to text"),
        })
        .optional()
        .meta({ description: "Packer's http_content: URL path → text (or { file }), rendered with build variables; served before http.directory." }),
      bind_address: nonEmpty("Packer's http_bind_address: where the server listens. Under QEMU user networking the guest reaches the host's 127.0.0.1 at 10.0.2.2.")
        .optional()
        .meta({ default: "127.0.0.1" }),
      port: intIn(0, 65535, "Port to listen on; 0 picks a free one.").optional().meta({ default: 0 }),
      guest_address: nonEmpty("Packer's http_ip: the address the guest uses for {{ .HTTPIP }}; default: the driver's (10.0.2.2 under QEMU user networking).").optional(),
      path_prefix: withDefault(
        bool(
          "Serve everything under a random path prefix (${http.url} and {{ .HTTPPrefix }} include it; a URL written http://{{ .HTTPIP }}:{{ .HTTPPort }}/… gets it after the port). false serves at the root, for installers whose command line is too short.",
        ),
        true,
      ),
      expect: stringList("URL paths the installer must fetch (default: every http.content path); the build fails if one is never requested within expect_timeout.").optional(),
      expect_timeout: withDefault(duration("How long after the boot command the expected paths may take to be fetched."), "20m"),
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "An HTTP server for the installer (kickstart, preseed, autoinstall). Every request is logged." });

const installMedia = z
  .strictObject(
    {
      cd_files: stringList("Packer's cd_files: local files put in the root of a CD image (exactly one of cd_* or floppy_*).").optional(),
      floppy_files: stringList("Packer's floppy_files: local files put on a 1.44 MB floppy image.").optional(),
      content: z
        .record(z.string(), renderedText, {
          error: expecting("a mapping of file names to text"),
        })
        .optional()
        .meta({ description: "Packer's cd_content/floppy_content: file name → text (or { file }), rendered with build variables." }),
      type: z.enum(["cd", "floppy"]).optional().meta({ description: "Medium for content-only media.", default: "cd" }),
      label: nonEmpty('Volume label the installer looks for: OEMDRV (EL kickstart), cidata (Ubuntu autoinstall / NoCloud).')
        .optional()
        .meta({ default: "OEMDRV" }),
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "Installer media for setups without network: a CD or floppy image attached during the install." });

const install = z
  .strictObject(
    {
      wait_for: z
        .enum(["poweroff", "reboot"])
        .optional()
        .meta({ description: "How the installer signals it is done; under QEMU both end the install run (-no-reboot).", default: "poweroff" }),
      timeout: withDefault(duration("How long the unattended install may take."), "1h"),
    },
    { error: expecting("a mapping") },
  )
  .nullable()
  .meta({ description: "Install completion: wait for the installer to stop the VM, remove the installer media, boot the installed disk." });

// `test:` (issue 16): after export, boot the artifacts as their user would and check them
// (src/check/: the first-boot checks, gossfiles). A failed check fails the build (exit 1); the
// artifacts stay and manifest.json says what failed.
const firstBootFlags = {
  machine_id: withDefault(bool("/etc/machine-id was regenerated and is not the build's."), true),
  ssh_host_keys: withDefault(bool("SSH host keys were regenerated; none is the build's."), true),
  build_user: withDefault(bool("The build user, its home and sudoers line are gone; no authorized_keys holds the build key."), true),
  cloud_init: withDefault(bool("cloud-init ran as a first boot (no earlier instance) and reports no errors."), true),
  logs: withDefault(bool("The journal and /var/log hold nothing from the build (no earlier boot, no journal directory of the build's machine-id)."), true),
  growpart: withDefault(bool("The root file system grew to the (larger) disk, where the image uses cloud-init's growpart."), true),
};
const testSection = z
  .strictObject(
    {
      checks: z
        .array(nonEmpty("A gossfile (goss YAML), relative to the template."), { error: expecting("a list of gossfiles") })
        .optional()
        .meta({ description: "gossfiles evaluated in the booted guest (goss's YAML format; see README \"Testing images\")." }),
      vars: nonEmpty("A YAML/JSON file of values for the gossfiles' {{ .Vars }} (goss --vars).").optional(),
      formats: z
        .array(z.enum(["qcow2", "raw", "vmdk", "ova"]), { error: expecting("a list of qcow2, raw, vmdk, ova") })
        .optional()
        .meta({ description: "Which exported artifacts to boot and check (default: the first of output.formats that is one of these)." }),
      first_boot: z
        .union([z.boolean(), z.strictObject(firstBootFlags)], { error: expecting("true, false or a mapping") })
        .optional()
        .meta({ description: "The built-in first-boot checks; each defaults to on. `false` turns all off." }),
      goss_binary: nonEmpty("A goss binary for the guest: uploaded and run instead of vmkiln's own evaluation (goss validate -f json).").optional(),
      retry_timeout: withDefault(duration("Retry failing gossfile checks until they pass or this much time has passed (goss validate --retry-timeout)."), "0s"),
      sleep: withDefault(duration("Time between retries (goss validate --sleep)."), "1s"),
      timeout: withDefault(duration("How long the test boot may take to answer SSH and finish cloud-init."), "10m"),
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "Boot the exported image as its user would (fresh seed, user, key, instance-id) and check it: built-in first-boot checks and gossfiles." });

export const templateSchema = z
  .strictObject(
    {
      $schema: z.string().optional().meta({ description: "JSON Schema reference for editors; ignored by vmkiln." }),
      name: z
        .string({ error: expecting("a string") })
        .regex(NAME_PATTERN, { message: "must contain only letters, digits, '.', '_' and '-'" })
        .meta({ description: "Build name; also the default artifact base name. Letters, digits, '.', '_', '-'." }),
      variables: z
        .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/), variable, { error: expecting("a mapping of names to values") })
        .nullable()
        .optional()
        .meta({
          description:
            "Defaults for ${var.NAME}; overridden by -var-file then -var. Values may use ${env.NAME}. A value, or { default, sensitive, description } (sensitive: true masks the value in every log, error and printed spec, as Packer's HCL2 `sensitive = true`).",
        }),
      sensitive_variables: z
        .array(z.string({ error: expecting("a variable name") }), { error: expecting("a list of variable names") })
        .optional()
        .meta({ description: "Packer JSON's sensitive-variables: names of variables whose values are masked in every log, error and printed spec." }),
      source,
      drivers,
      ssh: ssh.optional(),
      cloud_init: cloudInit.optional(),
      boot: boot.optional(),
      http: httpSection.optional(),
      install_media: installMedia.optional(),
      install: install.optional(),
      provision: z
        .array(provisioner, { error: expecting("a list of provisioners") })
        .nullable()
        .optional()
        .meta({ description: "Steps run in the guest, in order." }),
      generalize: generalize.optional(),
      shutdown: shutdown.optional(),
      output: output.optional(),
      test: testSection.optional(),
    },
    { error: expecting("a mapping at the top level") },
  )
  .meta({ title: "vmkiln template", description: "A vmkiln build template." });

/** The schema's output: validated, units converted, still snake_case and without defaults. */
export type RawTemplate = z.output<typeof templateSchema>;

/** A stage's name (layered templates, src/layers/load.ts): what labels, logs and `from:` use. */
export const STAGE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

const stage = z
  .strictObject(
    {
      name: z.string({ error: expecting("a string") }).regex(STAGE_NAME_PATTERN).meta({ description: "The stage's name: letters, digits, '.', '_', '-' (at most 63), unique in the template." }),
      from: nonEmpty("The earlier stage this one is built on (default: the stage before; the first stage is built on source, or on the from: template).").optional(),
      provision: z
        .array(provisioner, { error: expecting("a list of provisioners") })
        .nullable()
        .optional()
        .meta({ description: "This stage's steps in the guest." }),
      generalize: generalize.optional().meta({ description: "Generalize this stage's result. Default: only the last stage generalizes (a base is not generalized twice)." }),
    },
    { error: expecting("a mapping (name, provision, generalize, from)") },
  )
  .meta({ description: "One stage: built on the one before (its disk, or on vSphere a clone of its kept template), cached under a key of everything it reads." });

/**
 * What `vmkiln schema` prints: the template, plus the layered-template fields src/layers/load.ts reads
 * before the rest is validated as a template (issue 17): `from:` instead of `source:`, `stages:`
 * instead of `provision:`.
 */
const documentedSchema = templateSchema
  .extend({
    source: source.optional().meta({ description: "Where the first disk comes from: exactly one of cloud_image, iso or clone. Required unless from: names the template this one builds on." }),
    from: nonEmpty("Build on another template (a path relative to this file): its last stage, built first when missing or stale and then taken from the stage cache, is this template's source. Not with source:.").optional(),
    stages: z
      .array(stage, { error: expecting("a list of stages") })
      .min(1)
      .optional()
      .meta({ description: "Named stages, each built on the one before and cached (layered builds): the last one's outputs go to output.directory. Not with a top-level provision:." }),
  })
  .meta({
    title: "vmkiln template",
    description: "A vmkiln build template.",
    anyOf: [{ required: ["source"] }, { required: ["from"] }],
    allOf: [{ not: { required: ["source", "from"] } }, { not: { required: ["stages", "provision"] } }],
  });

/** JSON Schema of the template as users write it (input side of transforms), for editors. */
export function templateJsonSchema(): object {
  return z.toJSONSchema(documentedSchema, {
    io: "input",
    unrepresentable: "any",
    target: "draft-2020-12",
    override: (ctx) => {
      if (DEFAULTS.has(ctx.zodSchema)) ctx.jsonSchema.default = DEFAULTS.get(ctx.zodSchema);
    },
  });
}
