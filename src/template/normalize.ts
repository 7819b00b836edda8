// Validated raw template (snake_case, units converted) → BuildSpec: defaults filled, paths absolute,
// camelCase. Total on schema-valid input; cross-field rules have already run (rules.ts).

import { DEFAULT_VMX_VERSION } from "../artifact/ovf.js";
import { homedir } from "node:os";
import path from "node:path";
import type { RawTemplate } from "./schema.js";
import { normalizeVsphere } from "./normalize-vsphere.js";
import type {
  BuildSpec,
  ChecksumSpec,
  DriverName,
  GeneralizeSpec,
  ProvisionerOptions,
  ProvisionerSpec,
  QemuSpec,
  RenderedText,
  SourceSpec,
  TestSpec,
  VirtualBoxSpec,
} from "./spec.js";

export interface NormalizeContext {
  baseDir: string;
  templatePath: string;
  /** Effective variables (template < var files < -var). */
  variables: Record<string, string>;
  /** For the drivers' environment fallbacks (VSPHERE_USERNAME…); default process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Names of the variables whose values are masked wherever they are printed. */
  sensitiveVariables?: string[];
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
    sensitiveVariables: [...(ctx.sensitiveVariables ?? [])],
    source: normalizeSource(raw.source, local),
    drivers: {
      ...(raw.drivers.qemu !== undefined ? { qemu: normalizeQemu(raw.drivers.qemu ?? {}, local) } : {}),
      ...(raw.drivers.virtualbox !== undefined ? { virtualbox: normalizeVirtualBox(raw.drivers.virtualbox ?? {}) } : {}),
      ...(raw.drivers.vsphere !== undefined ? { vsphere: normalizeVsphere(raw.drivers.vsphere, local, raw.name, ctx.env ?? process.env) } : {}),
    },
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
    ...installFields(raw, local),
    provision: (raw.provision ?? []).map((item, i) => normalizeProvisioner(item, i, local)),
    generalize: normalizeGeneralize(raw.generalize),
    shutdown: { mode: raw.shutdown?.mode ?? "fast", command: raw.shutdown?.command, timeoutMs: raw.shutdown?.timeout ?? 5 * 60_000 },
    output: {
      // `${name}` in these defaults is already the name: the schema saw the interpolated tree.
      directory: local(output.directory ?? `./output/${raw.name}`),
      // vSphere exports only ovf/ova: a vSphere-only template defaults to an OVA.
      formats: dedupe(output.formats ?? (raw.drivers.vsphere && !raw.drivers.qemu && !raw.drivers.virtualbox ? ["ova"] : ["qcow2"])),
      compression: output.compression ?? "zlib",
      basename: output.basename ?? raw.name,
      ova: {
        osType: output.ova?.os_type ?? "linux",
        vmxVersion: output.ova?.vmx_version ?? DEFAULT_VMX_VERSION,
        ...(output.ova?.sign
          ? {
              sign: {
                keyFile: local(output.ova.sign.key),
                certificateFile: local(output.ova.sign.certificate),
                passphraseFile: output.ova.sign.passphrase_file === undefined ? undefined : local(output.ova.sign.passphrase_file),
              },
            }
          : {}),
      },
      sbom: output.sbom ?? true,
      publish: (output.publish ?? []).map((p) => ({
        to: p.to,
        layout: p.as ?? "containerdisk",
        caFile: p.ca_file === undefined ? undefined : local(p.ca_file),
        insecure: p.insecure ?? false,
      })),
    },
    ...(raw.test ? { test: normalizeTest(raw.test, output.formats ?? [], local) } : {}),
  };
}

type RawRendered = string | { file: string };

function rendered(map: Record<string, RawRendered> | undefined, local: (p: string) => string): Record<string, RenderedText> {
  const out: Record<string, RenderedText> = {};
  for (const [k, v] of Object.entries(map ?? {})) out[k] = typeof v === "string" ? { text: v } : { file: local(v.file) };
  return out;
}

/** The ISO-install sections (issue 4); `install` is set for every ISO build, `http` when configured. */
function installFields(raw: RawTemplate, local: (p: string) => string): Pick<BuildSpec, "install" | "http"> {
  const out: Pick<BuildSpec, "install" | "http"> = {};
  if (raw.http) {
    const h = raw.http;
    const content = rendered(h.content, local);
    out.http = {
      directory: h.directory === undefined ? undefined : local(h.directory),
      content,
      bindAddress: h.bind_address ?? "127.0.0.1",
      port: h.port ?? 0,
      guestAddress: h.guest_address,
      pathPrefix: h.path_prefix ?? true,
      expect: h.expect ?? Object.keys(content),
      expectTimeoutMs: h.expect_timeout ?? 20 * 60_000,
    };
  }
  if (raw.source.iso) {
    const m = raw.install_media;
    out.install = {
      boot: raw.boot ? { command: raw.boot.command, waitMs: raw.boot.wait ?? 10_000, keyIntervalMs: raw.boot.key_interval ?? 100 } : undefined,
      media: m
        ? {
            type: m.floppy_files ? "floppy" : m.cd_files ? "cd" : (m.type ?? "cd"),
            label: m.label ?? "OEMDRV",
            files: (m.cd_files ?? m.floppy_files ?? []).map(local),
            content: rendered(m.content, local),
          }
        : undefined,
      waitFor: raw.install?.wait_for ?? "poweroff",
      timeoutMs: raw.install?.timeout ?? 60 * 60_000,
    };
  }
  return out;
}

/** "Library/Item" → its two names (the item's name may itself contain "/"). */
export function splitLibraryItem(ref: string): { library: string; item: string } {
  const i = ref.indexOf("/");
  return { library: ref.slice(0, i), item: ref.slice(i + 1) };
}

function normalizeSource(source: RawTemplate["source"], local: (p: string) => string): SourceSpec {
  const none: ChecksumSpec = { kind: "none" };
  if (source.clone) {
    const lib = source.clone.content_library;
    if (lib !== undefined) return { kind: "clone", location: lib, checksum: none, format: undefined, linked: false, library: splitLibraryItem(lib) };
    return { kind: "clone", location: source.clone.template!, checksum: none, format: undefined, linked: source.clone.linked ?? false };
  }
  const lib = source.iso?.content_library;
  if (lib !== undefined) return { kind: "iso", location: lib, checksum: none, format: undefined, library: splitLibraryItem(lib) };
  const image = source.cloud_image;
  const s = image ?? source.iso!;
  const location = s.url ?? local(s.path!);
  // rules.ts requires a checksum with path/url.
  const c = s.checksum ?? none;
  const checksum: ChecksumSpec = c.kind === "file" ? { kind: "file", location: isUrl(c.location) ? c.location : local(c.location) } : c;
  return { kind: image ? "cloud-image" : "iso", location, checksum, format: image?.format };
}

type RawVirtualBox = NonNullable<NonNullable<RawTemplate["drivers"]["virtualbox"]>>;

function normalizeVirtualBox(v: Partial<RawVirtualBox>): VirtualBoxSpec {
  return {
    cpus: v.cpus ?? 2,
    memory: v.memory ?? 1024,
    diskSize: v.disk_size,
    firmware: v.firmware ?? "bios",
    diskFormat: v.disk_format ?? "vdi",
    headless: v.headless ?? true,
    guestOsType: v.guest_os_type ?? "Linux_64",
    graphicsController: v.graphics_controller ?? "vmsvga",
    diskController: v.disk_controller ?? "sata",
    nicType: v.nic_type ?? "82540EM",
    ovfVersion: v.ovf_version ?? "1.0",
    vboxmanage: v.vboxmanage ?? [],
    binary: v.binary ?? "VBoxManage",
    sshHostPort: v.ssh_host_port,
  };
}

type RawQemu = NonNullable<NonNullable<RawTemplate["drivers"]["qemu"]>>;

function normalizeQemu(q: Partial<RawQemu>, local: (p: string) => string): QemuSpec {
  return {
    accelerator: q.accelerator ?? "auto",
    cpus: q.cpus ?? 2,
    memory: q.memory ?? 1024,
    diskSize: q.disk_size,
    diskMode: q.disk_mode ?? "overlay",
    firmware: q.firmware ?? "bios",
    ...(q.efi_firmware_code !== undefined ? { efiFirmwareCode: local(q.efi_firmware_code) } : {}),
    ...(q.efi_firmware_vars !== undefined ? { efiFirmwareVars: local(q.efi_firmware_vars) } : {}),
    ...(q.efi_secure_boot ? { efiSecureBoot: true } : {}),
    machine: q.machine ?? "q35",
    binary: q.binary ?? "qemu-system-x86_64",
    sshHostPort: q.ssh_host_port,
    headless: q.headless ?? true,
    extraArgs: q.extra_args ?? [],
  };
}

type RawProvisioner = NonNullable<RawTemplate["provision"]>[number];

interface RawOptions {
  pause_before?: number | undefined;
  max_retries?: number | undefined;
  timeout?: number | undefined;
  only?: DriverName[] | undefined;
  except?: DriverName[] | undefined;
}

function normalizeOptions(o: RawOptions): ProvisionerOptions {
  return { pauseBeforeMs: o.pause_before ?? 0, maxRetries: o.max_retries ?? 0, timeoutMs: o.timeout, only: o.only, except: o.except ?? [] };
}

/** `{a: 1}` / `"@vars.yml"` / a list of those → maps kept, files as `@/abs/path`. */
function normalizeExtraVars(v: string | Record<string, unknown> | Array<string | Record<string, unknown>> | undefined, local: (p: string) => string) {
  const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
  return list.map((x) => (typeof x === "string" ? "@" + local(x.slice(1)) : x));
}

function normalizeProvisioner(item: RawProvisioner, i: number, local: (p: string) => string): ProvisionerSpec {
  const n = i + 1;
  if (item.shell) {
    const s = item.shell;
    return {
      type: "shell",
      name: s.name ?? `shell #${n}`,
      options: normalizeOptions(s),
      inline: s.inline,
      script: s.script === undefined ? undefined : local(s.script),
      env: s.env ?? {},
      sudo: s.sudo ?? false,
      expectDisconnect: s.expect_disconnect ?? false,
    };
  }
  if (item.file) {
    const f = item.file;
    const direction = f.direction ?? "upload";
    // upload: local source; download: local destination inside the output dir (kept relative).
    const source = direction === "upload" ? local(f.source) : f.source;
    return { type: "file", name: f.name ?? `file #${n}`, options: normalizeOptions(f), direction, source, destination: f.destination };
  }
  if (item.ansible) {
    const a = item.ansible;
    return {
      type: "ansible",
      name: a.name ?? `ansible #${n}`,
      options: normalizeOptions(a),
      playbook: local(a.playbook),
      command: a.command ?? "ansible-playbook",
      groups: a.groups ?? [],
      hostAlias: a.host_alias ?? "default",
      extraVars: normalizeExtraVars(a.extra_vars, local),
      extraArguments: a.extra_arguments ?? [],
      env: a.env ?? {},
      become: a.become ?? true,
    };
  }
  if (item.ansible_local) {
    const a = item.ansible_local;
    const playbook = local(a.playbook);
    return {
      type: "ansible_local",
      name: a.name ?? `ansible_local #${n}`,
      options: normalizeOptions(a),
      playbook,
      playbookDir: a.playbook_dir === undefined ? path.dirname(playbook) : local(a.playbook_dir).replace(/[\\/]$/, ""),
      command: a.command ?? "ansible-playbook",
      extraVars: normalizeExtraVars(a.extra_vars, local),
      extraArguments: a.extra_arguments ?? [],
      env: a.env ?? {},
      sudo: a.sudo ?? true,
    };
  }
  if (item.shell_local) {
    const s = item.shell_local;
    return {
      type: "shell_local",
      name: s.name ?? `shell_local #${n}`,
      options: normalizeOptions(s),
      inline: s.inline,
      script: s.script === undefined ? undefined : local(s.script),
      env: s.env ?? {},
    };
  }
  if ("restart" in item) {
    const r = item.restart ?? {};
    return {
      type: "restart",
      name: r.name ?? `restart #${n}`,
      options: normalizeOptions(r),
      command: r.command ?? "reboot",
      restartTimeoutMs: r.restart_timeout ?? 10 * 60_000,
    };
  }
  if ("breakpoint" in item) {
    const b = item.breakpoint ?? {};
    return {
      type: "breakpoint",
      name: b.name ?? `breakpoint #${n}`,
      options: normalizeOptions(b),
      note: b.note,
      waitForFile: b.wait_for_file === undefined ? undefined : local(b.wait_for_file),
      disable: b.disable ?? false,
    };
  }
  // rules.ts guarantees exactly one key; a bare `- wait_cloud_init:` is null.
  const w = item.wait_cloud_init ?? {};
  return { type: "wait_cloud_init", name: w.name ?? `wait_cloud_init #${n}`, options: normalizeOptions({ ...w, timeout: undefined }), timeoutMs: w.timeout ?? 15 * 60_000 };
}

function normalizeGeneralize(g: RawTemplate["generalize"]): GeneralizeSpec {
  const all = g !== false;
  const f = typeof g === "object" ? g : {};
  return {
    cloudInit: f.cloud_init ?? all,
    keepDefaultUser: f.keep_default_user ?? !all,
    buildUser: f.build_user ?? all,
    passwdBackups: f.passwd_backups ?? all,
    network: f.network ?? all,
    hostname: f.hostname ?? all,
    dhcp: f.dhcp ?? all,
    machineId: f.machine_id ?? all,
    randomSeed: f.random_seed ?? all,
    sshHostKeys: f.ssh_host_keys ?? all,
    tmp: f.tmp ?? all,
    shellHistory: f.shell_history ?? all,
    packageCache: f.package_cache ?? all,
    logs: f.logs ?? all,
    trim: f.trim ?? all,
  };
}

function dedupe<T>(list: T[]): T[] {
  return [...new Set(list)];
}

const TESTABLE = ["qcow2", "raw", "vmdk", "ova"] as const;

function normalizeTest(t: NonNullable<RawTemplate["test"]>, formats: readonly string[], local: (p: string) => string): TestSpec {
  const fb = t.first_boot;
  const all = (v: boolean) => ({ machine_id: v, ssh_host_keys: v, build_user: v, cloud_init: v, logs: v, growpart: v });
  const firstBoot =
    fb === undefined || fb === true ? all(true) : fb === false ? all(false)
      : {
          machine_id: fb.machine_id ?? true, ssh_host_keys: fb.ssh_host_keys ?? true, build_user: fb.build_user ?? true,
          cloud_init: fb.cloud_init ?? true, logs: fb.logs ?? true, growpart: fb.growpart ?? true,
        };
  const first = TESTABLE.find((f) => (formats.length ? formats : ["qcow2"]).includes(f));
  return {
    checks: (t.checks ?? []).map(local),
    vars: t.vars === undefined ? undefined : local(t.vars),
    formats: t.formats ?? (first ? [first] : []),
    firstBoot,
    gossBinary: t.goss_binary === undefined ? undefined : local(t.goss_binary),
    retryTimeoutMs: t.retry_timeout ?? 0,
    sleepMs: t.sleep ?? 1000,
    timeoutMs: t.timeout ?? 10 * 60_000,
  };
}
