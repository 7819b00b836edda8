// Validated raw template (snake_case, units converted) → BuildSpec: defaults filled, paths absolute,
// camelCase. Total on schema-valid input; cross-field rules have already run (rules.ts).

import { DEFAULT_VMX_VERSION } from "../artifact/ovf.js";
import { homedir } from "node:os";
import path from "node:path";
import type { RawTemplate } from "./schema.js";
import type {
  BuildSpec,
  ChecksumSpec,
  GeneralizeSpec,
  ProvisionerSpec,
  QemuSpec,
  SourceSpec,
} from "./spec.js";

export interface NormalizeContext {
  baseDir: string;
  templatePath: string;
  /** Effective variables (template < var files < -var). */
  variables: Record<string, string>;
}

export function isUrl(s: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(s);
}

/**
 * Resolves a template-relative path. `~/` means the user's home (templates are shared between
 * machines). A trailing "/" survives: on a file-provisioner source it means "the directory's contents".
 */
export function resolveLocalPath(baseDir: string, p: string): string {
  const expanded = p === "~" || p.startsWith("~/") ? path.join(homedir(), p.slice(1)) : p;
  const abs = path.resolve(baseDir, expanded);
  return /[\\/]$/.test(p) && !abs.endsWith(path.sep) ? abs + path.sep : abs;
}

export function normalize(raw: RawTemplate, ctx: NormalizeContext): BuildSpec {
  const local = (p: string) => resolveLocalPath(ctx.baseDir, p);
  const output = raw.output ?? {};
  return {
    name: raw.name,
    templatePath: ctx.templatePath,
    templateDir: ctx.baseDir,
    variables: { ...ctx.variables },
    source: normalizeSource(raw.source, local),
    drivers: raw.drivers.qemu !== undefined ? { qemu: normalizeQemu(raw.drivers.qemu ?? {}) } : {},
    ssh: {
      username: raw.ssh?.username ?? "vmkiln",
      password: raw.ssh?.password,
      privateKeyFile: raw.ssh?.private_key_file === undefined ? undefined : local(raw.ssh.private_key_file),
      port: raw.ssh?.port ?? 22,
      timeoutMs: raw.ssh?.timeout ?? 15 * 60_000,
    },
    cloudInit: {
      userData: raw.cloud_init?.user_data ?? {},
      metaData: raw.cloud_init?.meta_data ?? {},
      networkConfig: raw.cloud_init?.network_config,
      vendorData: raw.cloud_init?.vendor_data,
    },
    provision: (raw.provision ?? []).map((item, i) => normalizeProvisioner(item, i, local)),
    generalize: normalizeGeneralize(raw.generalize),
    shutdown: { command: raw.shutdown?.command ?? "poweroff", timeoutMs: raw.shutdown?.timeout ?? 5 * 60_000 },
    output: {
      // `${name}` in these defaults is already the name: the schema saw the interpolated tree.
      directory: local(output.directory ?? `./output/${raw.name}`),
      formats: dedupe(output.formats ?? ["qcow2"]),
      compression: output.compression ?? "zlib",
      basename: output.basename ?? raw.name,
      ova: { osType: output.ova?.os_type ?? "linux", vmxVersion: output.ova?.vmx_version ?? DEFAULT_VMX_VERSION },
    },
  };
}

function normalizeSource(source: RawTemplate["source"], local: (p: string) => string): SourceSpec {
  const image = source.cloud_image;
  const s = image ?? source.iso!;
  const location = s.url ?? local(s.path!);
  const c = s.checksum;
  const checksum: ChecksumSpec = c.kind === "file" ? { kind: "file", location: isUrl(c.location) ? c.location : local(c.location) } : c;
  return { kind: image ? "cloud-image" : "iso", location, checksum, format: image?.format };
}

type RawQemu = NonNullable<NonNullable<RawTemplate["drivers"]["qemu"]>>;

function normalizeQemu(q: Partial<RawQemu>): QemuSpec {
  return {
    accelerator: q.accelerator ?? "auto",
    cpus: q.cpus ?? 2,
    memory: q.memory ?? 1024,
    diskSize: q.disk_size,
    diskMode: q.disk_mode ?? "overlay",
    firmware: q.firmware ?? "bios",
    machine: q.machine ?? "q35",
    binary: q.binary ?? "qemu-system-x86_64",
    sshHostPort: q.ssh_host_port,
    headless: q.headless ?? true,
    extraArgs: q.extra_args ?? [],
  };
}

type RawProvisioner = NonNullable<RawTemplate["provision"]>[number];

function normalizeProvisioner(item: RawProvisioner, i: number, local: (p: string) => string): ProvisionerSpec {
  const n = i + 1;
  if (item.shell) {
    const s = item.shell;
    return {
      type: "shell",
      name: s.name ?? `shell #${n}`,
      inline: s.inline,
      script: s.script === undefined ? undefined : local(s.script),
      env: s.env ?? {},
      sudo: s.sudo ?? false,
    };
  }
  if (item.file) {
    const f = item.file;
    return { type: "file", name: f.name ?? `file #${n}`, source: local(f.source), destination: f.destination };
  }
  // rules.ts guarantees exactly one key; a bare `- wait_cloud_init:` is null.
  const w = item.wait_cloud_init ?? {};
  return { type: "wait_cloud_init", name: w.name ?? `wait_cloud_init #${n}`, timeoutMs: w.timeout ?? 15 * 60_000 };
}

function normalizeGeneralize(g: RawTemplate["generalize"]): GeneralizeSpec {
  const all = g !== false;
  const flags = typeof g === "object" ? g : {};
  return {
    cloudInit: flags.cloud_init ?? all,
    machineId: flags.machine_id ?? all,
    sshHostKeys: flags.ssh_host_keys ?? all,
    buildUser: flags.build_user ?? all,
    logs: flags.logs ?? all,
    trim: flags.trim ?? all,
  };
}

function dedupe<T>(list: T[]): T[] {
  return [...new Set(list)];
}
