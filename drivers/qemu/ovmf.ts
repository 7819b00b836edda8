// Finding UEFI firmware (OVMF) for `firmware: efi`: the CODE image QEMU maps read-only and the VARS
// template each VM gets a private copy of. Distributions put them in different places under
// different names, so we ask the firmware descriptors first (QEMU's docs/interop/firmware.json: the
// way libvirt picks firmware), then try the well-known paths of Debian/Ubuntu, Fedora/RHEL, Arch,
// Gentoo and QEMU's own install. Everything here takes a `root` prefix so the unit tests run it
// against fake directory trees.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { chmod, copyFile } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "../../src/errors.js";

export type FlashFormat = "raw" | "qcow2";

export interface OvmfFirmware {
  /** Firmware executable, mapped read-only (pflash unit 0). */
  code: string;
  codeFormat: FlashFormat;
  /** NVRAM template: never mapped itself; each VM boots on its own copy (pflash unit 1). */
  varsTemplate: string;
  varsFormat: FlashFormat;
  /** Secure Boot with enrolled keys: needs `-machine smm=on` and SMM-only writes to the VARS flash. */
  secureBoot: boolean;
  /** Where the pair came from: a descriptor file, "well-known path", or the template field. */
  origin: string;
}

export interface OvmfProbeOptions {
  /** Prefix for every path looked at ("/" on a real system; a temp dir in tests). */
  root?: string;
  /** QEMU machine type (`drivers.qemu.machine`), matched against the descriptors' globs. */
  machine: string;
  secureBoot: boolean;
  /** For the per-user descriptor directory ($XDG_CONFIG_HOME, else $HOME/.config). */
  env?: Record<string, string | undefined>;
}

/**
 * Well-known CODE/VARS pairs, most common first. Secure Boot pairs have Microsoft's keys enrolled in
 * the VARS template (without keys, Secure Boot stays in setup mode and enforces nothing).
 */
export const KNOWN_PAIRS: ReadonlyArray<{ code: string; vars: string; secureBoot: boolean; distro: string }> = [
  // Debian 11+ and Ubuntu 22.04+ (package ovmf): 4 MiB builds; the 2 MiB names are older releases.
  { code: "/usr/share/OVMF/OVMF_CODE_4M.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.fd", secureBoot: false, distro: "Debian/Ubuntu" },
  { code: "/usr/share/OVMF/OVMF_CODE.fd", vars: "/usr/share/OVMF/OVMF_VARS.fd", secureBoot: false, distro: "Debian/Ubuntu, RHEL" },
  // Fedora / RHEL / CentOS (edk2-ovmf).
  { code: "/usr/share/edk2/ovmf/OVMF_CODE.fd", vars: "/usr/share/edk2/ovmf/OVMF_VARS.fd", secureBoot: false, distro: "Fedora/RHEL" },
  { code: "/usr/share/edk2/ovmf/OVMF_CODE_4M.qcow2", vars: "/usr/share/edk2/ovmf/OVMF_VARS_4M.qcow2", secureBoot: false, distro: "Fedora" },
  { code: "/usr/share/edk2/ovmf-4m/OVMF_CODE.fd", vars: "/usr/share/edk2/ovmf-4m/OVMF_VARS.fd", secureBoot: false, distro: "Fedora" },
  // Arch (edk2-ovmf 202202 and later; older releases used /usr/share/edk2-ovmf/x64).
  { code: "/usr/share/edk2/x64/OVMF_CODE.4m.fd", vars: "/usr/share/edk2/x64/OVMF_VARS.4m.fd", secureBoot: false, distro: "Arch" },
  { code: "/usr/share/edk2/x64/OVMF_CODE.fd", vars: "/usr/share/edk2/x64/OVMF_VARS.fd", secureBoot: false, distro: "Arch" },
  { code: "/usr/share/edk2-ovmf/x64/OVMF_CODE.fd", vars: "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd", secureBoot: false, distro: "Arch (older)" },
  // Gentoo (sys-firmware/edk2-ovmf).
  { code: "/usr/share/edk2-ovmf/OVMF_CODE.fd", vars: "/usr/share/edk2-ovmf/OVMF_VARS.fd", secureBoot: false, distro: "Gentoo" },
  // QEMU's own build (`make install`, some macOS/BSD packages).
  { code: "/usr/share/qemu/edk2-x86_64-code.fd", vars: "/usr/share/qemu/edk2-i386-vars.fd", secureBoot: false, distro: "QEMU" },
  { code: "/usr/local/share/qemu/edk2-x86_64-code.fd", vars: "/usr/local/share/qemu/edk2-i386-vars.fd", secureBoot: false, distro: "QEMU" },
  // Secure Boot, Microsoft keys enrolled.
  { code: "/usr/share/OVMF/OVMF_CODE_4M.ms.fd", vars: "/usr/share/OVMF/OVMF_VARS_4M.ms.fd", secureBoot: true, distro: "Debian/Ubuntu" },
  { code: "/usr/share/OVMF/OVMF_CODE.secboot.fd", vars: "/usr/share/OVMF/OVMF_VARS.ms.fd", secureBoot: true, distro: "Debian/Ubuntu" },
  { code: "/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd", vars: "/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd", secureBoot: true, distro: "Fedora/RHEL" },
  { code: "/usr/share/edk2/ovmf-4m/OVMF_CODE.secboot.fd", vars: "/usr/share/edk2/ovmf-4m/OVMF_VARS.secboot.fd", secureBoot: true, distro: "Fedora" },
];

/** The descriptor directories, general to specific (firmware.json, "@Firmware"). */
export function descriptorDirs(env: Record<string, string | undefined>): string[] {
  const dirs = ["/usr/share/qemu/firmware", "/etc/qemu/firmware"];
  const config = env["XDG_CONFIG_HOME"] || (env["HOME"] ? join(env["HOME"], ".config") : undefined);
  if (config) dirs.push(join(config, "qemu/firmware"));
  return dirs;
}

/**
 * The OVMF pair to boot with. Descriptors win (the distribution's own statement of what its files
 * are); the well-known paths are the fallback for systems that ship the files without descriptors.
 * Throws UserError (exit 2) naming everything searched when nothing fits.
 */
export function probeOvmf(opts: OvmfProbeOptions): OvmfFirmware {
  const root = opts.root ?? "/";
  const searched: string[] = [];
  const rejected: string[] = [];

  const fromDescriptor = searchDescriptors(root, opts, searched, rejected);
  if (fromDescriptor) return fromDescriptor;

  for (const p of KNOWN_PAIRS) {
    if (p.secureBoot !== opts.secureBoot) continue;
    searched.push(`${p.code} + ${p.vars}`);
    const code = join(root, p.code);
    const vars = join(root, p.vars);
    if (!isFile(code) || !isFile(vars)) continue;
    const problem = pairProblem(code, flashFormat(code), vars, flashFormat(vars));
    if (problem) {
      rejected.push(`${p.code}: ${problem}`);
      continue;
    }
    return { code, codeFormat: flashFormat(code), varsTemplate: vars, varsFormat: flashFormat(vars), secureBoot: p.secureBoot, origin: `well-known path (${p.distro})` };
  }

  const what = opts.secureBoot ? "UEFI firmware with Secure Boot and enrolled keys (OVMF)" : "UEFI firmware (OVMF)";
  throw new UserError(
    "OVMF_MISSING",
    `firmware: efi needs ${what} for x86_64 machine ${opts.machine}; none found. Searched: ${searched.join("; ")}` +
      (rejected.length ? `. Rejected: ${rejected.join("; ")}` : ""),
    { hint: "install it (Debian/Ubuntu: apt-get install ovmf; Fedora/RHEL: dnf install edk2-ovmf; Arch: pacman -S edk2-ovmf), or set drivers.qemu.efi_firmware_code and efi_firmware_vars" },
  );
}

/**
 * A pair the template names (`efi_firmware_code` / `efi_firmware_vars`): checked like a probed one,
 * so a 4 MiB CODE with a 2 MiB VARS fails here with both names instead of as a firmware hang. When a
 * descriptor (or a well-known file name) says what the build is, `efi_secure_boot` must agree with
 * it: a build that requires SMM gets SMM only with efi_secure_boot: true, and efi_secure_boot: true
 * on a build without Secure Boot, or on a VARS template without keys, would boot enforcing nothing.
 * A build nothing describes is taken as the template says.
 */
export function explicitOvmf(code: string, vars: string, secureBoot: boolean, opts: { root?: string; env?: Record<string, string | undefined> } = {}): OvmfFirmware {
  for (const [field, p] of [["efi_firmware_code", code], ["efi_firmware_vars", vars]] as const) {
    if (!isFile(p)) throw new UserError("OVMF_MISSING", `drivers.qemu.${field}: not a readable file: ${p}`);
  }
  const problem = pairProblem(code, flashFormat(code), vars, flashFormat(vars));
  if (problem) throw new UserError("OVMF_MISMATCH", `drivers.qemu.efi_firmware_code and efi_firmware_vars do not belong together: ${problem}`);
  const known = describe(code, vars, opts.root ?? "/", opts.env ?? process.env);
  if (known) {
    const has = (f: string) => known.features.includes(f);
    if (!secureBoot && has("requires-smm")) {
      throw new UserError("OVMF_NEEDS_SMM", `drivers.qemu.efi_firmware_code: ${code} needs SMM (${known.source} says requires-smm), which only efi_secure_boot: true turns on`, {
        hint: "set drivers.qemu.efi_secure_boot: true, or name a build without Secure Boot",
      });
    }
    if (secureBoot && !(has("secure-boot") && has("requires-smm"))) {
      throw new UserError("OVMF_NOT_SECURE_BOOT", `drivers.qemu.efi_secure_boot: ${code} is not a Secure Boot build with SMM (${known.source} lists: ${known.features.join(", ") || "nothing"})`, {
        hint: "name a Secure Boot pair, or leave efi_firmware_code and efi_firmware_vars out to have one found",
      });
    }
    if (secureBoot && known.pair && !has("enrolled-keys")) {
      throw new UserError("OVMF_NOT_SECURE_BOOT", `drivers.qemu.efi_secure_boot: ${vars} has no keys enrolled (${known.source}): Secure Boot would stay in setup mode and enforce nothing`, {
        hint: "name the VARS template with Microsoft's keys enrolled (Debian: OVMF_VARS_4M.ms.fd)",
      });
    }
  }
  return { code, codeFormat: flashFormat(code), varsTemplate: vars, varsFormat: flashFormat(vars), secureBoot, origin: "drivers.qemu.efi_firmware_code" };
}

/**
 * What the system says a CODE file is: the features of the first descriptor whose executable is
 * this file (by identity: Debian's OVMF_CODE_4M.ms.fd is a symlink), preferring one that also names
 * this VARS (`pair`: then the features cover the VARS template, enrolled keys included); else a
 * well-known file name's Secure Boot flag. Undefined when nothing describes it.
 */
function describe(code: string, vars: string, root: string, env: Record<string, string | undefined>): { features: string[]; source: string; pair: boolean } | undefined {
  let codeOnly: { features: string[]; source: string; pair: boolean } | undefined;
  for (const path of descriptorFiles(root, env)) {
    let d: Descriptor;
    try {
      d = JSON.parse(readFileSync(path, "utf8")) as Descriptor;
    } catch {
      continue; // empty (hiding) or unreadable: probeOvmf reports those
    }
    if (d === null || typeof d !== "object" || !isRecord(d.mapping)) continue;
    const exe = d.mapping.executable;
    const tpl = d.mapping["nvram-template"];
    if (!isRecord(exe) || typeof exe.filename !== "string" || !sameFile(join(root, exe.filename), code)) continue;
    const features = Array.isArray(d.features) ? d.features.filter((f): f is string => typeof f === "string") : [];
    const pair = isRecord(tpl) && typeof tpl.filename === "string" && sameFile(join(root, tpl.filename), vars);
    if (pair) return { features, source: path, pair };
    codeOnly ??= { features, source: path, pair };
  }
  if (codeOnly) return codeOnly;
  const p = KNOWN_PAIRS.find((k) => sameFile(join(root, k.code), code));
  if (!p) return undefined;
  return { features: p.secureBoot ? ["secure-boot", "requires-smm"] : [], source: `the ${p.distro} file name`, pair: false };
}

/** Every descriptor file in effect, in the order QEMU reads them (see searchDescriptors). */
function descriptorFiles(root: string, env: Record<string, string | undefined>): string[] {
  const byName = new Map<string, string>();
  for (const dir of descriptorDirs(env)) {
    let names: string[];
    try {
      names = readdirSync(join(root, dir));
    } catch {
      continue;
    }
    for (const n of names) if (n.endsWith(".json")) byName.set(n, join(root, dir, n));
  }
  return [...byName.keys()].sort().map((n) => byName.get(n)!);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** One file under two names (a symlink or a hard link), not just one spelling. */
function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

interface Descriptor {
  "interface-types"?: unknown;
  mapping?: {
    device?: unknown;
    mode?: unknown;
    executable?: { filename?: unknown; format?: unknown };
    "nvram-template"?: { filename?: unknown; format?: unknown };
  };
  targets?: Array<{ architecture?: unknown; machines?: unknown }>;
  features?: unknown;
}

function searchDescriptors(root: string, opts: OvmfProbeOptions, searched: string[], rejected: string[]): OvmfFirmware | undefined {
  // All files of all directories, sorted by file name; a more specific directory's file replaces a
  // same-named one, and an empty file there hides it (firmware.json, "@Firmware").
  const env = opts.env ?? process.env;
  for (const dir of descriptorDirs(env)) searched.push(`${join(dir, "*.json")}`);
  for (const path of descriptorFiles(root, env)) {
    let d: Descriptor;
    try {
      const text = readFileSync(path, "utf8");
      if (text.trim() === "") continue; // a hiding file
      d = JSON.parse(text) as Descriptor;
    } catch (err) {
      rejected.push(`${path}: unreadable (${(err as Error).message})`);
      continue;
    }
    if (descriptorMismatch(d, opts)) continue; // another kind of firmware: not worth listing
    const m = d.mapping!;
    const code = join(root, String(m.executable!.filename));
    const vars = join(root, String(m["nvram-template"]!.filename));
    const codeFormat = m.executable!.format as FlashFormat;
    const varsFormat = m["nvram-template"]!.format as FlashFormat;
    if (!isFile(code) || !isFile(vars)) {
      rejected.push(`${path}: names ${isFile(code) ? vars : code}, which does not exist`);
      continue;
    }
    const problem = pairProblem(code, codeFormat, vars, varsFormat);
    if (problem) {
      rejected.push(`${path}: ${problem}`);
      continue;
    }
    return { code, codeFormat, varsTemplate: vars, varsFormat, secureBoot: opts.secureBoot, origin: path };
  }
  return undefined;
}

/** Why a descriptor does not describe what we can boot (undefined: it does). */
export function descriptorMismatch(d: Descriptor, opts: Pick<OvmfProbeOptions, "machine" | "secureBoot">): string | undefined {
  // Any JSON may sit in these files (a `null` crashed the probe: fuzz counterexample, ovmf.test.ts).
  if (d === null || typeof d !== "object" || Array.isArray(d)) return "not a JSON object";
  if (!Array.isArray(d["interface-types"]) || !d["interface-types"].includes("uefi")) return "not UEFI";
  const m = d.mapping;
  if (!m || typeof m !== "object" || m.device !== "flash") return "not a flash mapping";
  // "split" (the default) is CODE + NVRAM template; "combined" and "stateless" have no template.
  if (m.mode !== undefined && m.mode !== "split") return `mapping mode ${String(m.mode)}`;
  for (const f of [m.executable, m["nvram-template"]]) {
    if (!f || typeof f !== "object" || typeof f.filename !== "string" || f.filename === "") return "no executable or nvram-template";
    if (f.format !== "raw" && f.format !== "qcow2") return `flash format ${String(f.format)}`;
  }
  const concrete = concreteMachine(opts.machine);
  const fits = Array.isArray(d.targets) && d.targets.some(
    (t) => t !== null && typeof t === "object" && t.architecture === "x86_64" && Array.isArray(t.machines) && t.machines.some((g) => typeof g === "string" && globMatch(g, concrete)),
  );
  if (!fits) return `no x86_64 target for ${opts.machine}`;
  const features = Array.isArray(d.features) ? d.features : [];
  if (opts.secureBoot) {
    if (!features.includes("secure-boot") || !features.includes("enrolled-keys")) return "no Secure Boot with enrolled keys";
  } else {
    // Secure Boot capable builds need SMM (and an SMM-only VARS flash); we boot those only when asked.
    if (features.includes("secure-boot") || features.includes("requires-smm") || features.includes("enrolled-keys")) return "Secure Boot build";
  }
  // Confidential-computing builds (stateless, no NVRAM) boot only on such hosts.
  if (features.includes("amd-sev-es") || features.includes("amd-sev-snp") || features.includes("intel-tdx")) return "confidential-computing build";
  return undefined;
}

/**
 * Descriptors list concrete machine types ("pc-q35-*"); templates usually name the alias QEMU
 * resolves to its newest version ("q35", "pc"), which matches the same globs.
 */
export function concreteMachine(machine: string): string {
  if (machine === "q35") return "pc-q35-latest";
  if (machine === "pc") return "pc-i440fx-latest";
  return machine;
}

/** fnmatch-style `*`, `?` and `[...]`, the patterns descriptors use for machine types. */
export function globMatch(glob: string, s: string): boolean {
  let re = "^";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        const body = glob.slice(i + 1, end).replace(/\\/g, "\\\\");
        re += `[${body.startsWith("!") ? "^" + body.slice(1) : body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  try {
    return new RegExp(re + "$").test(s);
  } catch {
    return false;
  }
}

/**
 * Why CODE and VARS cannot be used together (undefined: they can). OVMF is built as one flash image
 * of 1, 2 or 4 MiB split into VARS and CODE, so a raw pair's sizes add up to exactly that; a 4 MiB
 * CODE with a 2 MiB VARS boots into a hang, not an error. qcow2 files are not checked by size.
 */
export function pairProblem(code: string, codeFormat: FlashFormat, vars: string, varsFormat: FlashFormat): string | undefined {
  if (code === vars || sameFile(code, vars)) return "CODE and VARS are the same file";
  if (codeFormat !== "raw" || varsFormat !== "raw") return undefined;
  const total = size(code) + size(vars);
  if (![1, 2, 4].some((m) => total === m * 1024 * 1024)) {
    return `${code} (${size(code)} bytes) and ${vars} (${size(vars)} bytes) are not halves of one 1, 2 or 4 MiB OVMF build`;
  }
  return undefined;
}

export function flashFormat(path: string): FlashFormat {
  return path.endsWith(".qcow2") ? "qcow2" : "raw";
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function size(p: string): number {
  return statSync(p).size;
}

/**
 * The VM's own VARS file, copied from the template. The copy must be writable for QEMU even when the
 * template is not (a 0444 file in a Nix or Guix store: copyFile keeps the mode, and a non-root QEMU
 * then fails to open pflash unit 1 read-write).
 */
export async function copyVarsTemplate(template: string, dest: string): Promise<void> {
  await copyFile(template, dest);
  await chmod(dest, 0o600);
}
