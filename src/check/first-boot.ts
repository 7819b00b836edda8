// The built-in first-boot checks: booted as its user boots it (a fresh seed, a new user, key and
// instance-id), the image must show nothing of the build. They complement generalize's offline
// view (test/helpers/generalized.ts reads the disk without booting it) by observing the running
// guest: what systemd, sshd and cloud-init made of the image at its first real boot.
//
// One root shell script gathers the facts (one SSH exec); judgeFirstBoot compares them with the
// build's identity from manifest.json (steps/build-identity.ts). Each check can be switched off.
import type { BuildIdentity } from "../artifact/manifest.js";
import type { CheckResult } from "./results.js";

export const FIRST_BOOT_CHECKS = ["machine_id", "ssh_host_keys", "build_user", "cloud_init", "logs", "growpart"] as const;
export type FirstBootCheck = (typeof FIRST_BOOT_CHECKS)[number];

const MARK = "@vmkiln-fb";

/**
 * Facts, one per line: `@vmkiln-fb <key> <value>`. Run as root after cloud-init finished the boot.
 * `$BUILD_USER` and `$BUILD_IID` come from the manifest (empty when there is none).
 */
export function factsScript(o: { buildUser: string; buildInstanceId: string; buildMachineId: string }): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `BUILD_USER=${q(o.buildUser)}; BUILD_IID=${q(o.buildInstanceId)}; BUILD_MID=${q(o.buildMachineId)}
say() { printf '${MARK} %s %s\\n' "$1" "$2"; }
say machine-id "$(cat /etc/machine-id 2>/dev/null)"
for f in /etc/ssh/ssh_host_*_key.pub; do [ -f "$f" ] && say host-key "$(ssh-keygen -lf "$f" 2>/dev/null | awk '{print $2}') $f"; done
if [ -n "$BUILD_USER" ] && [ "$BUILD_USER" != root ]; then
  getent passwd "$BUILD_USER" >/dev/null && say user-entry "$(getent passwd "$BUILD_USER")"
  [ -e "/home/$BUILD_USER" ] && say user-home "/home/$BUILD_USER"
  for f in /etc/sudoers /etc/sudoers.d/*; do
    [ -f "$f" ] && grep -Eq "^[[:space:]]*$BUILD_USER[[:space:]]" "$f" && say user-sudoers "$f"
  done
fi
# Every authorized_keys file: root's, each home's, and the AuthorizedKeysFile paths sshd reads.
{ ls -d /root/.ssh/authorized_keys* /home/*/.ssh/authorized_keys* /etc/ssh/authorized_keys* /var/lib/*/.ssh/authorized_keys* 2>/dev/null
  getent passwd | cut -d: -f6 | sort -u | while read -r h; do ls -d "$h"/.ssh/authorized_keys* 2>/dev/null; done; } | sort -u | while read -r f; do
  [ -f "$f" ] || continue
  grep -E '^[^#[:space:]]' "$f" | while read -r line; do
    fp=$(printf '%s\\n' "$line" | ssh-keygen -lf - 2>/dev/null | awk '{print $2}')
    [ -n "$fp" ] && say authorized-key "$fp $f"
  done
done
d=/var/lib/cloud
[ -f "$d/data/previous-instance-id" ] && say previous-iid "$(cat "$d/data/previous-instance-id")"
[ -f "$d/data/instance-id" ] && say iid "$(cat "$d/data/instance-id")"
for i in "$d"/instances/*; do [ -d "$i" ] && say instance-dir "$(basename "$i")"; done
[ -f /run/cloud-init/result.json ] && say result "$(tr -d '\\n' < /run/cloud-init/result.json)"
say boots "$(journalctl --list-boots --no-pager -q 2>/dev/null | grep -c .)"
for j in /var/log/journal/*/ /run/log/journal/*/; do [ -d "$j" ] && say journal-dir "$(basename "$j")"; done
if [ -n "$BUILD_IID" ]; then grep -rlsF -- "$BUILD_IID" /var/log 2>/dev/null | while read -r f; do say log-mentions "$f"; done; fi
if [ -n "$BUILD_MID" ]; then journalctl -q --no-pager _MACHINE_ID="$BUILD_MID" -n 1 -o cat 2>/dev/null | grep -q . && say journal-build-entries yes; fi
# growpart: cloud-init's module configured, and growpart (cloud-guest-utils) installed.
if grep -rqs -- '- growpart' /etc/cloud/cloud.cfg /etc/cloud/cloud.cfg.d/ && command -v growpart >/dev/null 2>&1; then say growpart-configured yes; fi
src=$(findmnt -no SOURCE / 2>/dev/null); say root-source "$src"
dev=$(basename "$(readlink -f "$src")")
if [ -e "/sys/class/block/$dev/partition" ]; then
  disk=$(basename "$(readlink -f "/sys/class/block/$dev/..")")
  say root-part "$dev $(cat /sys/class/block/$dev/start) $(cat /sys/class/block/$dev/size) $disk $(cat /sys/class/block/$disk/size)"
fi
say root-fs-bytes "$(df -B1 --output=size / | tail -n 1 | tr -d ' ')"
true`;
}

export interface FirstBootFacts {
  machineId: string;
  hostKeys: Array<{ fingerprint: string; file: string }>;
  userEntry?: string | undefined;
  userHome?: string | undefined;
  userSudoers: string[];
  authorizedKeys: Array<{ fingerprint: string; file: string }>;
  previousInstanceId?: string | undefined;
  instanceId?: string | undefined;
  instanceDirs: string[];
  result?: string | undefined;
  boots?: number | undefined;
  journalDirs: string[];
  logMentions: string[];
  journalBuildEntries: boolean;
  growpartConfigured: boolean;
  rootSource?: string | undefined;
  rootPart?: { dev: string; start: number; sectors: number; disk: string; diskSectors: number } | undefined;
  rootFsBytes?: number | undefined;
}

export function parseFacts(text: string): FirstBootFacts {
  const f: FirstBootFacts = { machineId: "", hostKeys: [], userSudoers: [], authorizedKeys: [], instanceDirs: [], journalDirs: [], logMentions: [], journalBuildEntries: false, growpartConfigured: false };
  for (const line of text.split("\n")) {
    if (!line.startsWith(MARK + " ")) continue;
    const rest = line.slice(MARK.length + 1);
    const sp = rest.indexOf(" ");
    const key = sp < 0 ? rest : rest.slice(0, sp);
    const v = sp < 0 ? "" : rest.slice(sp + 1);
    const pair = () => {
      const i = v.indexOf(" ");
      return { fingerprint: i < 0 ? v : v.slice(0, i), file: i < 0 ? "" : v.slice(i + 1) };
    };
    switch (key) {
      case "machine-id": f.machineId = v.trim(); break;
      case "host-key": f.hostKeys.push(pair()); break;
      case "user-entry": f.userEntry = v; break;
      case "user-home": f.userHome = v; break;
      case "user-sudoers": f.userSudoers.push(v); break;
      case "authorized-key": f.authorizedKeys.push(pair()); break;
      case "previous-iid": f.previousInstanceId = v.trim(); break;
      case "iid": f.instanceId = v.trim(); break;
      case "instance-dir": f.instanceDirs.push(v); break;
      case "result": f.result = v; break;
      case "boots": f.boots = Number(v); break;
      case "journal-dir": f.journalDirs.push(v); break;
      case "log-mentions": f.logMentions.push(v); break;
      case "journal-build-entries": f.journalBuildEntries = true; break;
      case "growpart-configured": f.growpartConfigured = true; break;
      case "root-source": f.rootSource = v; break;
      case "root-part": {
        const [dev, start, sectors, disk, diskSectors] = v.split(" ");
        f.rootPart = { dev: dev!, start: Number(start), sectors: Number(sectors), disk: disk!, diskSectors: Number(diskSectors) };
        break;
      }
      case "root-fs-bytes": f.rootFsBytes = Number(v); break;
    }
  }
  return f;
}

export interface JudgeInput {
  facts: FirstBootFacts;
  /** The build's identity (manifest.json), when the artifact has one. */
  identity: BuildIdentity | undefined;
  /** The host key the test's SSH connection saw. */
  seenHostKey: string;
  /** The instance-id of the test's own seed. */
  testInstanceId: string;
  /** cloud-init's result.json errors of this boot, or why there is none. */
  cloudInit: { ran: boolean; errors: string[] };
  /** The test disk is larger than the image (bytes more), so growpart has work to do. */
  grownBy: number;
  enabled: Record<FirstBootCheck, boolean>;
  durationMs: number;
}

const NO_MANIFEST = "no build identity: no manifest.json from vmkiln ≥ this version beside the artifact (or --manifest)";

export function judgeFirstBoot(i: JudgeInput): CheckResult[] {
  const out: CheckResult[] = [];
  const f = i.facts;
  const id = i.identity;
  const r = (check: FirstBootCheck, property: string, pass: boolean, expected: unknown, found: unknown, extra: Partial<CheckResult> = {}): void => {
    out.push({ suite: "first-boot", resourceType: "FirstBoot", resourceId: check, property, outcome: pass ? "pass" : "fail", expected, found, durationMs: i.durationMs, ...extra });
  };
  const skip = (check: FirstBootCheck, property: string, reason: string): void => {
    out.push({ suite: "first-boot", resourceType: "FirstBoot", resourceId: check, property, outcome: "skip", reason, durationMs: 0 });
  };
  const off = (check: FirstBootCheck, props: string[]) => props.forEach((p) => skip(check, p, "switched off"));

  // machine-id: systemd writes a new one at the first boot when /etc/machine-id is empty.
  if (!i.enabled.machine_id) off("machine_id", ["regenerated"]);
  else if (!id?.machine_id) {
    r("machine_id", "set", /^[0-9a-f]{32}$/.test(f.machineId), "a machine-id", f.machineId || "an empty /etc/machine-id");
    skip("machine_id", "regenerated", NO_MANIFEST);
  } else {
    r("machine_id", "regenerated", /^[0-9a-f]{32}$/.test(f.machineId) && f.machineId !== id.machine_id, `a new machine-id, not the build's ${id.machine_id}`, f.machineId || "an empty /etc/machine-id", f.machineId === id.machine_id ? { matcher: "not to equal", expected: id.machine_id } : {});
  }

  // SSH host keys: cloud-init's ssh module makes new ones when there are none.
  if (!i.enabled.ssh_host_keys) off("ssh_host_keys", ["regenerated"]);
  else if (!id) skip("ssh_host_keys", "regenerated", NO_MANIFEST);
  else {
    const build = new Set([...id.host_keys, ...(id.host_key_fingerprint ? [id.host_key_fingerprint] : [])]);
    const same = f.hostKeys.filter((k) => build.has(k.fingerprint)).map((k) => `${k.file} ${k.fingerprint}`);
    if (build.has(i.seenHostKey) && !same.some((s) => s.endsWith(i.seenHostKey))) same.push(`the key sshd presented: ${i.seenHostKey}`);
    r("ssh_host_keys", "regenerated", same.length === 0 && f.hostKeys.length > 0, "host keys none of which is the build's", same.length ? same : f.hostKeys.length ? f.hostKeys.map((k) => k.fingerprint) : "no host keys", same.length ? { matcher: "none to be the build's", expected: [...build] } : {});
  }

  // The build user and key.
  if (!i.enabled.build_user) off("build_user", ["user", "home", "sudoers", "authorized_keys"]);
  else if (!id) for (const p of ["user", "home", "sudoers", "authorized_keys"]) skip("build_user", p, NO_MANIFEST);
  else {
    if (id.user === "root") {
      for (const p of ["user", "home", "sudoers"]) skip("build_user", p, "the build logged in as root, which stays");
    } else {
      r("build_user", "user", !f.userEntry, `no user ${id.user}`, f.userEntry ? `/etc/passwd: ${f.userEntry}` : "none");
      r("build_user", "home", !f.userHome, `no /home/${id.user}`, f.userHome ?? "none");
      r("build_user", "sudoers", f.userSudoers.length === 0, `no sudoers line for ${id.user}`, f.userSudoers.length ? f.userSudoers.map((s) => `a line for ${id.user} in ${s}`) : "none");
    }
    if (!id.key_fingerprint) skip("build_user", "authorized_keys", "the manifest records no build key");
    else {
      const holders = f.authorizedKeys.filter((k) => k.fingerprint === id.key_fingerprint).map((k) => k.file);
      r("build_user", "authorized_keys", holders.length === 0, `no authorized_keys holding the build key ${id.key_fingerprint}`, holders.length ? holders : "none");
    }
  }

  // cloud-init: this boot is a new instance's first, with nothing of the build's reused.
  if (!i.enabled.cloud_init) off("cloud_init", ["first boot", "instances", "status"]);
  else if (!i.cloudInit.ran) r("cloud_init", "ran", false, "cloud-init to run at this boot", "cloud-init is not installed or did not run");
  else {
    // stages.py Init._reflect_cur_instance writes data/previous-instance-id from what
    // data/instance-id held (NO_PREVIOUS_INSTANCE_ID when nothing did). It runs again in a later
    // stage of the same boot, which then reads the id the earlier stage wrote: after a clean first
    // boot the file names this boot's own instance (seen on Debian 12's cloud-init 22.4). Any
    // other id is an earlier instance's.
    const prev = f.previousInstanceId;
    r("cloud_init", "first boot", prev === "NO_PREVIOUS_INSTANCE_ID" || prev === i.testInstanceId, `previous-instance-id NO_PREVIOUS_INSTANCE_ID or this boot's ${i.testInstanceId} (no earlier instance)`, prev ? `previous-instance-id ${prev}` : "no /var/lib/cloud/data/previous-instance-id");
    const others = f.instanceDirs.filter((d) => d !== i.testInstanceId);
    r("cloud_init", "instances", others.length === 0, `only this boot's instance (${i.testInstanceId}) in /var/lib/cloud/instances`, f.instanceDirs.length ? f.instanceDirs : "none");
    r("cloud_init", "status", i.cloudInit.errors.length === 0, "cloud-init status: done without errors", i.cloudInit.errors.length ? i.cloudInit.errors : "no errors");
  }

  // Logs: nothing written before this boot.
  if (!i.enabled.logs) off("logs", ["journal boots", "journal directories", "log files"]);
  else {
    if (f.boots === undefined || Number.isNaN(f.boots)) skip("logs", "journal boots", "journalctl is not available");
    else r("logs", "journal boots", f.boots <= 1 && !f.journalBuildEntries, "only this boot in the journal", f.journalBuildEntries ? `${f.boots} boots, with entries of the build's machine-id` : `${f.boots} boot(s)`);
    if (!id?.machine_id) skip("logs", "journal directories", NO_MANIFEST);
    else r("logs", "journal directories", !f.journalDirs.includes(id.machine_id), `no journal directory named after the build's machine-id ${id.machine_id}`, f.journalDirs.length ? f.journalDirs : "none");
    if (!id) skip("logs", "log files", NO_MANIFEST);
    else r("logs", "log files", f.logMentions.length === 0, `no file under /var/log naming the build's instance ${id.instance_id}`, f.logMentions.length ? f.logMentions : "none");
  }

  // growpart: the root partition (and its file system) fill the larger disk.
  if (!i.enabled.growpart) off("growpart", ["root fills the disk"]);
  else if (!f.growpartConfigured) skip("growpart", "root fills the disk", "the image does not use cloud-init's growpart (module not configured, or no growpart command)");
  else if (i.grownBy <= 0) skip("growpart", "root fills the disk", "the test disk is not larger than the image");
  else if (!f.rootPart) skip("growpart", "root fills the disk", `the root file system (${f.rootSource ?? "?"}) is not on a partition`);
  else {
    const p = f.rootPart;
    // What a partition table leaves at the end (GPT's backup header, alignment): 16 MiB of slack.
    const leftBytes = (p.diskSectors - (p.start + p.sectors)) * 512;
    const partBytes = p.sectors * 512;
    const fsOk = f.rootFsBytes !== undefined && f.rootFsBytes >= partBytes * 0.9;
    r(
      "growpart",
      "root fills the disk",
      leftBytes <= 16 * 1024 * 1024 && fsOk,
      `/dev/${p.dev} to reach the end of /dev/${p.disk} (${p.diskSectors * 512} bytes) and / to fill it`,
      `/dev/${p.dev} ends ${leftBytes} bytes before the end of the disk; / is ${f.rootFsBytes ?? "?"} bytes on a ${partBytes}-byte partition`,
    );
  }
  return out;
}
