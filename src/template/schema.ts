// The raw template (snake_case, as users write it) as one zod schema: it validates, converts units
// (durations → ms, sizes → bytes, memory → MiB) and is also the source of the JSON Schema editors use.
// Cross-field rules (exactly-one-of, files exist, driver capabilities) live in rules.ts; defaults and
// path resolution in normalize.ts. Descriptions here are what an editor shows on hover.

import { OS_TYPES, DEFAULT_VMX_VERSION } from "../artifact/ovf.js";
import * as z from "zod";
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from "./duration.js";

const MiB = 1024 * 1024;

export const NAME_PATTERN = /^[A-Za-z0-9._-]+$/;
export const OUTPUT_FORMATS = ["qcow2", "raw", "vmdk", "ovf", "ova"] as const;
export const COMPRESSIONS = ["zlib", "zstd", "none"] as const;
export const IMAGE_FORMATS = ["qcow2", "raw", "vmdk", "vdi"] as const;
export const PROVISIONER_TYPES = ["shell", "file", "wait_cloud_init"] as const;
export const SOURCE_KINDS = ["cloud_image", "iso"] as const;
/** Drivers the template format knows about; only the implemented ones have a schema below. */
export const KNOWN_DRIVERS = ["qemu", "virtualbox", "vsphere"] as const;
export const IMPLEMENTED_DRIVERS = ["qemu"] as const;

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

const sizeBytes = (description: string) =>
  z
    .union([z.number().int().nonnegative(), z.string().meta({ pattern: SIZE_PATTERN })], {
      error: expecting("a size like 20G, 512M or a number of bytes"),
    })
    .transform((v, ctx) => {
      try {
        return parseSize(v);
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
      if (bytes < MiB || bytes % MiB !== 0) throw new Error(`must be a whole number of MiB (at least 1M)`);
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

const iso = z
  .strictObject({ path: sourceFields.path.optional(), url: sourceFields.url.optional(), checksum: sourceFields.checksum })
  .meta({ description: "Install from an installer ISO.", oneOf: [{ required: ["path"] }, { required: ["url"] }] });

const source = z
  .strictObject({ cloud_image: cloudImage.optional(), iso: iso.optional() }, { error: expecting("a mapping") })
  .meta({ description: "Where the first disk comes from: exactly one of cloud_image or iso.", minProperties: 1, maxProperties: 1 });

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

const drivers = z
  .strictObject({ qemu: qemu.optional() }, { error: expecting("a mapping of driver names") })
  .meta({ description: "Hypervisors to build with (at least one). Available now: qemu.", minProperties: 1 });

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
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "Run shell commands in the guest." });

const file = z
  .strictObject(
    {
      name: displayName,
      source: nonEmpty('Local file or directory (relative to the template). A trailing "/" uploads the directory\'s contents.'),
      destination: nonEmpty("Path in the guest."),
    },
    { error: expecting("a mapping") },
  )
  .meta({ description: "Upload a file or directory to the guest." });

const waitCloudInit = z
  .strictObject({ name: displayName, timeout: withDefault(duration("How long to wait for cloud-init to finish."), "15m") }, {
    error: expecting("a mapping"),
  })
  .nullable()
  .meta({ description: "Wait until cloud-init has finished in the guest." });

const provisioner = z
  .strictObject({ shell: shell.optional(), file: file.optional(), wait_cloud_init: waitCloudInit.optional() }, {
    error: expecting("a mapping with one provisioner type (shell, file, wait_cloud_init)"),
  })
  .meta({ description: "One provisioner: a single key naming its type.", minProperties: 1, maxProperties: 1 });

const generalizeFlags = {
  cloud_init: withDefault(bool("Clean cloud-init state so the image runs cloud-init again on first boot."), true),
  machine_id: withDefault(bool("Empty /etc/machine-id."), true),
  ssh_host_keys: withDefault(bool("Remove SSH host keys (regenerated on first boot)."), true),
  build_user: withDefault(bool("Remove the build user vmkiln created."), true),
  logs: withDefault(bool("Truncate logs and shell history."), true),
  trim: withDefault(bool("fstrim free space so the image compresses well."), true),
};

const generalize = z
  .union([z.boolean(), z.strictObject(generalizeFlags)], { error: expecting("true, false or a mapping") })
  .meta({ description: "Make the image safe to clone. `false` turns every step off; each defaults to true." });

const shutdown = z
  .strictObject(
    {
      command: nonEmpty("Command run with sudo over SSH to power off.").optional().meta({ default: "poweroff" }),
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
          },
          { error: expecting("a mapping") },
        )
        .optional()
        .meta({ description: "OVF/OVA descriptor settings." }),
    },
    { error: expecting("a mapping") },
  )
  .nullable()
  .meta({ description: "Artifacts." });

export const templateSchema = z
  .strictObject(
    {
      $schema: z.string().optional().meta({ description: "JSON Schema reference for editors; ignored by vmkiln." }),
      name: z
        .string({ error: expecting("a string") })
        .regex(NAME_PATTERN, { message: "must contain only letters, digits, '.', '_' and '-'" })
        .meta({ description: "Build name; also the default artifact base name. Letters, digits, '.', '_', '-'." }),
      variables: z
        .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/), scalarString, { error: expecting("a mapping of names to values") })
        .nullable()
        .optional()
        .meta({ description: "Defaults for ${var.NAME}; overridden by -var-file then -var. Values may use ${env.NAME}." }),
      source,
      drivers,
      ssh: ssh.optional(),
      cloud_init: cloudInit.optional(),
      provision: z
        .array(provisioner, { error: expecting("a list of provisioners") })
        .nullable()
        .optional()
        .meta({ description: "Steps run in the guest, in order." }),
      generalize: generalize.optional(),
      shutdown: shutdown.optional(),
      output: output.optional(),
    },
    { error: expecting("a mapping at the top level") },
  )
  .meta({ title: "vmkiln template", description: "A vmkiln build template." });

/** The schema's output: validated, units converted, still snake_case and without defaults. */
export type RawTemplate = z.output<typeof templateSchema>;

/** JSON Schema of the template as users write it (input side of transforms), for editors. */
export function templateJsonSchema(): object {
  return z.toJSONSchema(templateSchema, {
    io: "input",
    unrepresentable: "any",
    target: "draft-2020-12",
    override: (ctx) => {
      if (DEFAULTS.has(ctx.zodSchema)) ctx.jsonSchema.default = DEFAULTS.get(ctx.zodSchema);
    },
  });
}
