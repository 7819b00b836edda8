// Parsers for VBoxManage's text outputs: `showvminfo --machinereadable`, `list vms|runningvms`,
// `guestproperty get`, `--version`. Formats are checked against real outputs recorded in
// test/doubles/recorded/ (see SOURCES.md there).

/**
 * `showvminfo NAME --machinereadable`: one `key=value` per line. VBoxManage writes them with
 * VBoxManageInfo.cpp's outputMachineReadableString: `"` and `\` in a name or value escaped by a
 * backslash (Windows paths come out as `C:\\dir`), quoted or not: a name is quoted when it holds `=`
 * or the caller asks (`"SATA-0-0"="/path/disk.vdi"`) and escaped either way, so a controller named
 * `a"b` gives `a\"b-0-0=…`. Values are quoted; numbers are bare in older versions. Nothing else is
 * escaped: a value with a newline (a VM description) runs on to the next lines, until the quote
 * that ends a line. Windows ends lines with CRLF (Packer trims the CR, as we do). Lines that are not
 * key=value are skipped. Linear in the text, whatever it holds.
 */
export function parseMachineReadable(text: string): Map<string, string> {
  const out = new Map<string, string>();
  // A quoted value scanned from `from` to the end of the text found no closing quote at a line end
  // before `until`; a later scan starting in between sees the same escapes and fails the same way.
  const failed = { from: -1, until: -1 };
  for (let at = 0; at < text.length; ) {
    let eol = text.indexOf("\n", at);
    if (eol < 0) eol = text.length;
    const line = text.slice(at, eol).replace(/\r$/, "");
    let next = eol + 1;
    let key: string | undefined;
    let rest = 0; // offset of the value in `line`
    if (line.startsWith('"')) {
      const k = readQuoted(line, 0, false);
      if (k && line[k.end] === "=") {
        key = k.value;
        rest = k.end + 1;
      }
    } else {
      const eq = line.indexOf("=");
      if (eq > 0) {
        key = unescape(line.slice(0, eq));
        rest = eq + 1;
      }
    }
    if (key !== undefined) {
      if (line[rest] !== '"') out.set(key, line.slice(rest));
      else {
        const v = readQuoted(line, rest, false);
        if (v) out.set(key, v.value);
        else {
          // Not closed on its line: a value with newlines, if a quote ends a later line.
          const start = at + rest;
          const multi = start > failed.from && start < failed.until ? undefined : readQuoted(text, start, true);
          if (multi && multi.lineEnd) {
            out.set(key, multi.value);
            next = text.indexOf("\n", multi.end) + 1 || text.length;
          } else {
            if (multi) Object.assign(failed, { from: start, until: multi.end });
            out.set(key, unescape(line.slice(rest + 1)));
          }
        }
      }
    }
    at = next;
  }
  return out;
}

/** `\"` → `"`, `\\` → `\` (VBoxManage escapes nothing else). */
function unescape(s: string): string {
  return s.includes("\\") ? s.replace(/\\(.)/gs, "$1") : s;
}

/**
 * The quoted string opening at `s[start]`: its value and the index after its closing quote. With
 * `multiLine`, the first unescaped quote closes it and `lineEnd` says whether a line ends right
 * after (the only place VBoxManage puts one); without, it must close before the end of `s`.
 * Undefined when no quote closes it (`end` is then s.length for a multi-line scan, see caller).
 */
function readQuoted(s: string, start: number, multiLine: boolean): { value: string; end: number; lineEnd?: boolean } | undefined {
  let value = "";
  let from = start + 1;
  for (let i = start + 1; i < s.length; i++) {
    const c = s[i]!;
    if (c === "\\" && i + 1 < s.length) {
      value += s.slice(from, i) + s[i + 1];
      from = ++i + 1;
      continue;
    }
    if (c === '"') {
      value += s.slice(from, i);
      const end = i + 1;
      if (!multiLine) return { value, end };
      return { value, end, lineEnd: end === s.length || s[end] === "\n" || (s[end] === "\r" && (end + 1 === s.length || s[end + 1] === "\n")) };
    }
  }
  return multiLine ? { value: "", end: s.length, lineEnd: false } : undefined;
}

/** VMState short names (VBoxManageInfo.cpp's machineStateToName with the short form). */
export type VmState =
  | "poweroff" | "saved" | "teleported" | "aborted" | "running" | "paused" | "gurumeditation" | "teleporting"
  | "livesnapshotting" | "starting" | "stopping" | "saving" | "restoring" | "teleportingpausedvm" | "teleportingin"
  | "deletingsnapshotlive" | "deletingsnapshotlivepaused" | "onlinesnapshotting" | "restoringsnapshot"
  | "deletingsnapshot" | "settingup" | "snapshotting" | "unknown";

/** Packer counts `running`, `stopping` and `paused` as still running (driver_4_2.go IsRunning). */
export function isRunningState(state: string): boolean {
  return state === "running" || state === "stopping" || state === "paused";
}

/**
 * A VM that did not end by powering off: `aborted` (its VM process died: SessionMachine::uninit with
 * Uninit::Abnormal in VirtualBox's MachineImpl.cpp) or `gurumeditation` (MachineState_Stuck, a fatal
 * VMM error such as a guest triple fault). Packer's IsRunning treats both as stopped, so a crashed
 * installer looks like a finished install.
 */
export function isCrashedState(state: string): boolean {
  return state === "aborted" || state === "gurumeditation";
}

export interface NatRule {
  name: string;
  proto: "tcp" | "udp";
  hostIp: string;
  hostPort: number;
  guestIp: string;
  guestPort: number;
}

/** `ssh,tcp,127.0.0.1,2222,,22` (the `--natpf1` argument and the `Forwarding(N)` value). */
export function parseNatRule(s: string): NatRule | undefined {
  const p = s.split(",");
  if (p.length !== 6) return undefined;
  const [name, proto, hostIp, hostPort, guestIp, guestPort] = p as [string, string, string, string, string, string];
  if (proto !== "tcp" && proto !== "udp") return undefined;
  const hp = Number(hostPort);
  const gp = Number(guestPort);
  if (!Number.isInteger(hp) || !Number.isInteger(gp) || hp < 0 || hp > 65535 || gp < 1 || gp > 65535) return undefined;
  return { name, proto, hostIp, hostPort: hp, guestIp, guestPort: gp };
}

export interface VmInfo {
  name: string | undefined;
  uuid: string | undefined;
  state: string | undefined;
  memoryMiB: number | undefined;
  cpus: number | undefined;
  firmware: string | undefined;
  forwarding: NatRule[];
  controllers: Array<{ name: string; type: string }>;
  /** `"SATA-0-0"="/path/disk.vdi"` → { "SATA-0-0": "/path/disk.vdi" } ("none" and "emptydrive" kept). */
  attachments: Record<string, string>;
  raw: Map<string, string>;
}

export function parseVmInfo(text: string): VmInfo {
  const m = parseMachineReadable(text);
  const num = (k: string) => (m.has(k) && /^\d+$/.test(m.get(k)!) ? Number(m.get(k)) : undefined);
  const forwarding: NatRule[] = [];
  const controllers: Array<{ name: string; type: string }> = [];
  const attachments: Record<string, string> = {};
  for (const [k, v] of m) {
    if (/^Forwarding\(\d+\)$/.test(k)) {
      const r = parseNatRule(v);
      if (r) forwarding.push(r);
    }
    const c = /^storagecontrollername(\d+)$/.exec(k);
    if (c) controllers.push({ name: v, type: m.get(`storagecontrollertype${c[1]}`) ?? "" });
  }
  for (const c of controllers) {
    for (const [k, v] of m) if (k.startsWith(`${c.name}-`) && /^\d+-\d+$/.test(k.slice(c.name.length + 1))) attachments[k] = v;
  }
  return {
    name: m.get("name"),
    uuid: m.get("UUID"),
    state: m.get("VMState"),
    memoryMiB: num("memory"),
    cpus: num("cpus"),
    firmware: m.get("firmware"),
    forwarding,
    controllers,
    attachments,
    raw: m,
  };
}

/** `list vms` / `list runningvms`: `"NAME" {uuid}` per line (names may contain quotes and spaces). */
export function parseVmList(text: string): Array<{ name: string; uuid: string }> {
  const out: Array<{ name: string; uuid: string }> = [];
  for (const raw of text.split("\n")) {
    const m = /^"(.*)" \{([0-9a-fA-F-]{36})\}\s*$/.exec(raw.replace(/\r$/, ""));
    if (m) out.push({ name: m[1]!, uuid: m[2]!.toLowerCase() });
  }
  return out;
}

/** `guestproperty get`: `Value: X`, or `No value set!` (exit 0) when the property is absent. */
export function parseGuestProperty(text: string): string | undefined {
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\r$/, "");
    if (line.startsWith("Value: ")) return line.slice("Value: ".length);
  }
  return undefined;
}

/** `createvm` prints `UUID: …` among its lines. */
export function parseCreatedUuid(text: string): string | undefined {
  return /^UUID:\s*([0-9a-fA-F-]{36})\s*$/m.exec(text)?.[1]?.toLowerCase();
}

export type VersionResult = { ok: true; version: string; raw: string } | { ok: false; reason: "vboxdrv" | "unparsable"; raw: string };

/**
 * `VBoxManage --version`: `7.0.20r163906`, `4.1.2_Ubuntur38459`, `6.1.0_RC1r…`. Packer's rule: any
 * mention of `vboxdrv` means a broken install (the kernel module warning arrives on stdout with
 * exit 0, before the version), else the version is `^([.0-9]+)(?:_(?:RC|OSEr)[0-9]+)?`.
 */
export function parseVersion(text: string): VersionResult {
  const raw = text.trim();
  if (raw.includes("vboxdrv")) return { ok: false, reason: "vboxdrv", raw };
  const m = /^([.0-9]+)(?:_(?:RC|OSEr)[0-9]+)?/.exec(raw);
  if (!m || !/^\d+(\.\d+)*$/.test(m[1]!)) return { ok: false, reason: "unparsable", raw };
  return { ok: true, version: m[1]!, raw };
}
