// VBoxManage: pure argv builders (table-tested) and the one function that runs it, through the exec
// wrapper. Option spellings follow the VirtualBox manual's VBoxManage chapter; the failure rules
// follow what Packer learned (driver_4_2.go): stderr `VBoxManage: error:` is a failure even with exit
// 0, and the session-lock race after a shutdown (VBOX_E_INVALID_OBJECT_STATE, "is already locked")
// passes after a short wait (hashicorp/packer#184, packer-plugin-virtualbox#85).
import { BuildError, UserError, asAbortError } from "../../src/errors.js";
import { run } from "../../src/exec/run.js";
import { ToolError } from "../../src/exec/tool-error.js";
import type { EventBus } from "../../src/log/events.js";
import { sleep } from "../../src/util/abort.js";

export const VBOX_INSTALL_HINT = "install VirtualBox (https://www.virtualbox.org/wiki/Downloads) so that VBoxManage is on PATH";

export type VboxFirmware = "bios" | "efi";
export type GraphicsController = "vboxvga" | "vmsvga" | "vboxsvga" | "none";

export function createVmArgs(o: { name: string; osType: string; baseFolder: string }): string[] {
  return ["createvm", "--name", o.name, "--ostype", o.osType, "--register", "--basefolder", o.baseFolder];
}

export interface ModifyVmOptions {
  memoryMiB: number;
  cpus: number;
  firmware: VboxFirmware;
  graphicsController: GraphicsController;
  nicType: "82540EM" | "virtio";
  /** Video memory in MiB (VMSVGA wants at least 16 for a text console). */
  vramMiB: number;
}

export function modifyVmArgs(name: string, o: ModifyVmOptions): string[] {
  return [
    "modifyvm", name,
    "--memory", String(o.memoryMiB),
    "--cpus", String(o.cpus),
    // More than one vCPU needs the I/O APIC; on for one too, so the setting never changes with cpus.
    "--ioapic", "on",
    "--firmware", o.firmware,
    "--nic1", "nat",
    "--nictype1", o.nicType,
    "--graphicscontroller", o.graphicsController,
    "--vram", String(o.vramMiB),
    "--rtcuseutc", "on",
    "--boot1", "disk", "--boot2", "dvd", "--boot3", "none", "--boot4", "none",
  ];
}

export interface NatForward {
  name: string;
  hostIp: string;
  hostPort: number;
  guestPort: number;
}

/** `--natpf1 "ssh,tcp,127.0.0.1,2222,,22"` (name,proto,hostip,hostport,guestip,guestport). */
export function natForwardArgs(name: string, f: NatForward): string[] {
  if (/[,\s]/.test(f.name)) throw new UserError("VBOX_NAT_RULE", `NAT rule name ${JSON.stringify(f.name)} may not contain commas or spaces`);
  return ["modifyvm", name, "--natpf1", `${f.name},tcp,${f.hostIp},${f.hostPort},,${f.guestPort}`];
}

/**
 * VirtualBox 7.0 NAT no longer reaches the host's loopback at 10.0.2.2 unless asked: new machines get
 * localhost-reachable off (NATEngine::i_applyDefaults, VirtualBox bug 9896) and slirp drops the
 * guest's packets to the alias address. `--nat-localhostreachable<N>` exists from 7.0 only (6.1's
 * modifyvm rejects it as an unknown option). Packer never set it: hashicorp/packer#12118,
 * hashicorp/packer-plugin-virtualbox#104.
 */
export function natLocalhostReachableArgs(name: string, on: boolean, nic = 1): string[] {
  return ["modifyvm", name, `--nat-localhostreachable${nic}`, on ? "on" : "off"];
}

export function natForwardDeleteArgs(name: string, rule: string): string[] {
  return ["modifyvm", name, "--natpf1", "delete", rule];
}

export type ControllerKind = { bus: "sata" | "virtio"; name: string; portCount: number } | { bus: "ide"; name: string };

export function storageCtlArgs(name: string, c: ControllerKind): string[] {
  if (c.bus === "sata") return ["storagectl", name, "--name", c.name, "--add", "sata", "--controller", "IntelAhci", "--portcount", String(c.portCount)];
  // VirtIO SCSI (VirtualBox 6.1+): for guests whose kernel has virtio but no AHCI driver.
  if (c.bus === "virtio") return ["storagectl", name, "--name", c.name, "--add", "virtio", "--controller", "VirtIO", "--portcount", String(c.portCount)];
  return ["storagectl", name, "--name", c.name, "--add", "ide", "--controller", "PIIX4"];
}

export type Attachment =
  | { kind: "hdd"; controller: string; port: number; device: number; medium: string; ssd: boolean }
  | { kind: "dvd"; controller: string; port: number; device: number; medium: string };

export function storageAttachArgs(name: string, a: Attachment): string[] {
  const base = ["storageattach", name, "--storagectl", a.controller, "--port", String(a.port), "--device", String(a.device)];
  if (a.kind === "dvd") return [...base, "--type", "dvddrive", "--medium", a.medium];
  // --nonrotational/--discard let the guest's fstrim reach the image, so freed blocks leave the export.
  return [...base, "--type", "hdd", "--medium", a.medium, ...(a.ssd ? ["--nonrotational", "on", "--discard", "on"] : [])];
}

export function startVmArgs(name: string, headless: boolean): string[] {
  return ["startvm", name, "--type", headless ? "headless" : "gui"];
}

export function controlVmArgs(name: string, action: "acpipowerbutton" | "poweroff"): string[] {
  return ["controlvm", name, action];
}

export function scancodeArgs(name: string, codes: readonly string[]): string[] {
  if (codes.length === 0) throw new BuildError("VBOX_SCANCODES", "keyboardputscancode needs at least one code");
  for (const c of codes) if (!/^[0-9a-f]{2}$/i.test(c)) throw new BuildError("VBOX_SCANCODES", `not a scan code: ${JSON.stringify(c)}`);
  return ["controlvm", name, "keyboardputscancode", ...codes];
}

export function showVmInfoArgs(name: string): string[] {
  return ["showvminfo", name, "--machinereadable"];
}

export function unregisterVmArgs(name: string): string[] {
  return ["unregistervm", name, "--delete"];
}

export type OvfVersion = "1.0" | "2.0";

/** `export N -o out.ovf --ovf20 --manifest --options nomacs`: the OVF, streamOptimized VMDKs and a .mf. */
export function exportArgs(name: string, o: { out: string; ovfVersion: OvfVersion; vsysName?: string }): string[] {
  const args = ["export", name, "-o", o.out, o.ovfVersion === "2.0" ? "--ovf20" : "--ovf10", "--manifest", "--options", "nomacs"];
  if (o.vsysName !== undefined) args.push("--vsys", "0", "--vmname", o.vsysName);
  return args;
}

/** `clonemedium disk SRC DST --format VMDK --variant Stream`: the disk alone, in VirtualBox's formats. */
export function cloneMediumArgs(src: string, dst: string, format: "VDI" | "VMDK", variant: "Standard" | "Stream"): string[] {
  return ["clonemedium", "disk", src, dst, "--format", format, "--variant", variant];
}

export function guestPropertyGetArgs(name: string, property: string): string[] {
  return ["guestproperty", "get", name, property];
}

/** Packer's `vboxmanage` lists: `{{.Name}}` (Packer's spelling) is the per-build VM name. */
export function expandUserCommand(args: readonly string[], vmName: string): string[] {
  return args.map((a) => a.split("{{.Name}}").join(vmName).split("{{ .Name }}").join(vmName));
}

// ---- running it ----

const ERROR_LINE = /VBoxManage(?:[.a-z]+)?: error:/;
const LOCK_RACE = /VBOX_E_INVALID_OBJECT_STATE|is already locked/;

/** The failure VBoxManage reported, if any: exit code ≠ 0, or an error line on stderr with exit 0. */
export function vboxFailure(r: { exitCode: number; stderr: string }): string | undefined {
  const errorLines = r.stderr.split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => ERROR_LINE.test(l));
  if (r.exitCode === 0 && errorLines.length === 0) return undefined;
  const first = errorLines.find((l) => !/error: (Details|Context):/.test(l)) ?? errorLines[0];
  const detail = first !== undefined ? first.replace(/^.*?error:\s*/, "").trim() : (r.stderr.trim().split("\n").pop() ?? "").trim();
  const code = /code (VBOX_E_\w+|E_\w+|NS_ERROR_\w+)/.exec(r.stderr)?.[1];
  const why = detail || `exit code ${r.exitCode}`;
  return code ? `${why} (${code})` : why;
}

export function isLockRace(stderr: string): boolean {
  return LOCK_RACE.test(stderr);
}

export class VBoxManageError extends BuildError {
  constructor(
    readonly args: readonly string[],
    readonly exitCodeOfTool: number,
    readonly stderr: string,
    reason: string,
  ) {
    super("VBOX_FAILED", `VBoxManage ${args.slice(0, 2).join(" ")} failed: ${reason}`);
  }
}

export interface VBoxManageOptions {
  binary: string;
  events: EventBus;
  /** Session-lock retries (Packer: 5 tries a minute apart; the lock clears in seconds, so we wait less). */
  lockRetries?: number;
  lockRetryDelayMs?: number;
}

/** Runs VBoxManage; throws VBoxManageError on failure (after retrying the session-lock race). */
export async function vboxmanage(args: readonly string[], o: VBoxManageOptions, signal: AbortSignal, timeoutMs = 120_000): Promise<string> {
  const tries = (o.lockRetries ?? 5) + 1;
  for (let attempt = 1; ; attempt++) {
    o.events.debug(`VBoxManage ${args.join(" ")}`, "virtualbox");
    let r: { exitCode: number; stdout: string; stderr: string };
    try {
      r = await run(o.binary, args, {
        signal,
        timeoutMs,
        installHint: VBOX_INSTALL_HINT,
        onLine: (stream, line) => o.events.debug(line, `VBoxManage[${stream}]`),
      });
    } catch (err) {
      if (signal.aborted) throw asAbortError(signal.reason);
      // A non-zero exit: judge it by its stderr like any other result (ToolMissingError passes through).
      if (!(err instanceof ToolError)) throw err;
      if (err.exitCodeOfTool === undefined) throw new VBoxManageError(args, -1, err.stderrTail, err.message);
      r = { exitCode: err.exitCodeOfTool, stdout: "", stderr: err.stderrTail };
    }
    const failure = vboxFailure(r);
    if (failure === undefined) return r.stdout;
    if (isLockRace(r.stderr) && attempt < tries) {
      const delay = o.lockRetryDelayMs ?? 2_000;
      o.events.warn(`VBoxManage ${args[0]}: the machine is still locked by a session (${failure}); retrying in ${delay / 1000} s (${attempt}/${tries - 1})`, "virtualbox");
      await sleep(delay, signal);
      continue;
    }
    throw new VBoxManageError(args, r.exitCode, r.stderr, failure);
  }
}
