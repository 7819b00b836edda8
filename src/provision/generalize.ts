// Generalize: undo, in the guest, every change the build's boots made that the image's first real
// boot would make again, so the image looks as if it had never booted. One operation per template
// switch (schema.ts `generalize`), modelled on virt-sysprep's operations (virt-sysprep(1),
// "OPERATIONS"); README "Generalize" says which vmkiln performs and which it leaves.
//
// Everything here is a pure script builder (unit-tested by running the scripts against a scratch
// root). The scripts run as root in the guest in the same command that powers it off
// (steps/shutdown.ts), so cleaning is the last thing that writes to the disk; the generalize step
// only waits for cloud-init to settle before that (steps/generalize.ts).
import type { GeneralizeSpec } from "../template/spec.js";
import { shq } from "../ssh/session.js";

/** Marks the lines the cleaning script reports on: `@vmkiln-generalize <op> <kind> [text]`. */
export const REPORT_MARK = "@vmkiln-generalize";

export type OperationName =
  | "default_user"
  | "build_user"
  | "passwd_backups"
  | "hostname"
  | "network"
  | "cloud_init"
  | "dhcp"
  | "random_seed"
  | "machine_id"
  | "ssh_host_keys"
  | "tmp"
  | "shell_history"
  | "package_cache"
  | "logs"
  | "trim";

export interface ScriptInput {
  /** The SSH user vmkiln created for the build (removed by build_user). */
  username: string;
  /** The build's public key (`ssh-ed25519 AAAA… comment`): with username root, removed from root's authorized_keys. */
  buildPublicKey?: string;
  /** Root of the file system to clean: "" in the guest; a scratch directory in unit tests. */
  root?: string;
  /**
   * The default user's name as the host read it (provision/default-user.ts; "" = none named);
   * undefined: the script asks cloud-init's own reader in the guest.
   */
  defaultUser?: string | undefined;
  /** Commands, replaceable by stubs in unit tests (never the host's own systemctl). */
  tools?: Partial<Record<"systemctl" | "journalctl" | "cloudInit" | "python3", string>>;
}

interface Operation {
  name: OperationName;
  /** The virt-sysprep operation(s) it stands for, or what it is modelled on. */
  modelledOn: string;
  on(g: GeneralizeSpec): boolean;
  /** Why it does not run although switched on. */
  blocked?(g: GeneralizeSpec): string | undefined;
  /** The body of a shell function, run with `set -e` in a subshell; `say` reports a change. */
  body(input: ScriptInput): string;
}

const needsCloudInit = (g: GeneralizeSpec) =>
  g.cloudInit ? undefined : "cloud_init is off, so the first boot would not write it again";

/**
 * The operations in the order they run. Users go first (cloud-init's log still says which groups it
 * made for them), then what needs cloud-init's state (hostname reads /var/lib/cloud/data) before
 * `cloud-init clean` removes it, and logs last so they also lose what the others logged.
 */
export const OPERATIONS: readonly Operation[] = [
  {
    name: "default_user",
    modelledOn: "user-account (only this user)",
    on: (g) => !g.keepDefaultUser,
    body: () => `
name=$(default_user_name)
if [ -z "$name" ]; then say "cloud-init's configuration names no default user"; return 0; fi
if [ "$name" = "$BUILD_USER" ]; then say "the default user $name is the build user"; return 0; fi
if ! grep -q "^$name:" "$R/etc/passwd"; then say "no user $name"; return 0; fi
made=$(cloud_init_groups_for "$name")
remove_user "$name"
for g in $made; do remove_empty_group "$g"; done`,
  },
  {
    name: "build_user",
    modelledOn: "user-account (only this user), ssh-userdir",
    on: (g) => g.buildUser,
    body: () => `
if [ "$BUILD_USER" != root ]; then remove_user "$BUILD_USER"; return 0; fi
# Root stays; only the build key that cloud-init added to its authorized_keys goes.
f="$R/root/.ssh/authorized_keys"
if [ -z "$BUILD_KEY" ] || [ ! -f "$f" ] || ! grep -qF "$BUILD_KEY" "$f"; then say "the build key is not in /root/.ssh/authorized_keys"; return 0; fi
grep -vF "$BUILD_KEY" "$f" > "$f.vmkiln" || true
cat "$f.vmkiln" > "$f"; rm -f "$f.vmkiln"
say "removed the build key from /root/.ssh/authorized_keys"
if ! grep -q '^[^#[:space:]]' "$f"; then rm -f "$f"; say "removed /root/.ssh/authorized_keys (no key left)"; fi`,
  },
  {
    name: "passwd_backups",
    modelledOn: "passwd-backups",
    on: (g) => g.passwdBackups,
    body: () => `rmf "$R/etc/passwd-" "$R/etc/shadow-" "$R/etc/group-" "$R/etc/gshadow-" "$R/etc/subuid-" "$R/etc/subgid-"`,
  },
  {
    name: "hostname",
    modelledOn: "net-hostname (cloud-init's hostname, not the distribution's files)",
    on: (g) => g.hostname,
    blocked: needsCloudInit,
    // cc_set_hostname records what it set in data/set-hostname ({"hostname": …, "fqdn": …});
    // cc_update_hostname in data/previous-hostname.
    body: () => `
d="$R/var/lib/cloud/data"
hn=; fq=
if [ -f "$d/set-hostname" ]; then
  hn=$(grep -o '"hostname": *"[^"]*"' "$d/set-hostname" | sed 's/.*"\\([^"]*\\)"$/\\1/' || true)
  fq=$(grep -o '"fqdn": *"[^"]*"' "$d/set-hostname" | sed 's/.*"\\([^"]*\\)"$/\\1/' || true)
fi
if [ -z "$hn" ] && [ -f "$d/previous-hostname" ]; then hn=$(tr -d '[:space:]' < "$d/previous-hostname"); fi
if [ -z "$hn" ] || [ "$hn" = localhost ]; then say "cloud-init set no hostname"; return 0; fi
[ -n "$fq" ] || fq=$hn
if [ -f "$R/etc/hostname" ]; then
  cur=$(tr -d '[:space:]' < "$R/etc/hostname")
  if [ "$cur" = "$hn" ] || [ "$cur" = "$fq" ]; then rm -f "$R/etc/hostname"; say "removed /etc/hostname ($cur, set by cloud-init)"
  else say "kept /etc/hostname: $cur is not the name cloud-init set ($hn)"; fi
fi
f="$R/etc/hosts"
[ -f "$f" ] || return 0
if awk -v hn="$hn" -v fq="$fq" ${shq(HOSTS_FILTER_AWK)} "$f" > "$f.vmkiln"; then cat "$f.vmkiln" > "$f"; say "removed $fq $hn from /etc/hosts"; fi
rm -f "$f.vmkiln"`,
  },
  {
    name: "network",
    modelledOn: "net-hwaddr, net-nmconn, udev-persistent-net (cloud-init's generated files only)",
    on: (g) => g.network,
    blocked: needsCloudInit,
    // cloud-init >= 23.1 removes these with `clean --configs network` (cloudinit/cmd/clean.py,
    // GEN_NET_CONFIG_FILES), but lists Ubuntu's 50-cloud-init.cfg, not Debian's 50-cloud-init
    // (cloudinit/distros/debian.py, NETWORK_CONF_FN); 22.4 (Debian 12) has no --configs at all.
    body: () => `
if ci_has_configs; then "$CLOUD_INIT" clean --configs network >/dev/null; say "cloud-init clean --configs network"; fi
rmf "$R/etc/network/interfaces.d/50-cloud-init" "$R/etc/network/interfaces.d/50-cloud-init.cfg" \\
  "$R/etc/netplan/50-cloud-init.yaml" "$R/etc/NetworkManager/conf.d/99-cloud-init.conf" \\
  "$R/etc/NetworkManager/conf.d/30-cloud-init-ip6-addr-gen-mode.conf" \\
  "$R"/etc/NetworkManager/system-connections/cloud-init-*.nmconnection \\
  "$R"/etc/systemd/network/10-cloud-init-*.network "$R/etc/udev/rules.d/70-persistent-net.rules"
for f in "$R"/etc/sysconfig/network-scripts/ifcfg-*; do
  [ -f "$f" ] && head -n 3 "$f" | grep -q 'Created by cloud-init' && rmf "$f"
done
return 0`,
  },
  {
    name: "cloud_init",
    modelledOn: "cloud-init clean (virt-sysprep has no cloud-init operation)",
    on: (g) => g.cloudInit,
    body: () => `
if ! command -v "$CLOUD_INIT" >/dev/null 2>&1; then say "cloud-init is not installed"; return 0; fi
# The generalize step waited for this boot's final stage; if a stage still runs, it would write
# after the clean (as it did after a mid-provisioning reboot), so wait for it to end.
n=0
while ci_running; do
  n=$((n + 1)); [ "$n" -le 600 ] || { echo "cloud-init is still running after 120 s" >&2; return 1; }
  sleep 0.2
done
if ci_has_configs; then "$CLOUD_INIT" clean --logs --seed --configs ssh_config; say "cloud-init clean --logs --seed --configs ssh_config"
else "$CLOUD_INIT" clean --logs --seed; say "cloud-init clean --logs --seed"; fi
# What older versions leave: the sshd drop-in cc_set_passwords writes (GEN_SSH_CONFIG_FILES upstream).
rmf "$R/etc/ssh/sshd_config.d/50-cloud-init.conf"
# cc_ssh writes root's authorized_keys even with no key for root; an empty one is cloud-init's.
f="$R/root/.ssh/authorized_keys"
if [ -f "$f" ] && ! grep -q '[^[:space:]]' "$f"; then rmf "$f"; fi`,
  },
  {
    name: "dhcp",
    modelledOn: "dhcp-client-state",
    on: (g) => g.dhcp,
    // A dhclient lease file also holds the DUID (default-duid) that every clone would share.
    body: () => `
rmf "$R"/var/lib/dhcp/dhclient* "$R"/var/lib/dhclient/* "$R"/var/lib/dhcpcd/* "$R/etc/dhcpcd.duid" "$R/etc/dhcpcd.secret" \\
  "$R"/var/lib/NetworkManager/*.lease "$R/var/lib/NetworkManager/secret_key" "$R/var/lib/NetworkManager/timestamps" \\
  "$R/var/lib/NetworkManager/seen-bssids"`,
  },
  {
    name: "random_seed",
    modelledOn: "customize (virt-sysprep writes a new seed; systemd's image guide says remove it)",
    on: (g) => g.randomSeed,
    // systemd-random-seed.service saves a seed when it stops: stop it now (saving once), then remove.
    body: () => `
if systemd_booted && "$SYSTEMCTL" -q is-active systemd-random-seed.service 2>/dev/null; then
  "$SYSTEMCTL" stop systemd-random-seed.service; say "stopped systemd-random-seed.service (it saves a seed when stopped)"
fi
rmf "$R/var/lib/systemd/random-seed" "$R/var/lib/systemd/credential.secret" "$R/var/lib/urandom/random-seed"`,
  },
  {
    name: "machine_id",
    modelledOn: "machine-id",
    on: (g) => g.machineId,
    // An empty (not missing) /etc/machine-id makes systemd make a new one at boot; a copied id
    // makes DHCP (systemd-networkd's DUID) and journald collide between clones.
    body: () => `
id=$(tr -d '[:space:]' < "$R/etc/machine-id" 2>/dev/null || true)
journal_off
if [ -n "$id" ]; then rmf "$R/var/log/journal/$id"; fi
if [ -n "$id" ]; then : > "$R/etc/machine-id"; say "emptied /etc/machine-id (was $id)"; fi
rmf "$R/var/lib/dbus/machine-id"`,
  },
  {
    name: "ssh_host_keys",
    modelledOn: "ssh-hostkeys",
    on: (g) => g.sshHostKeys,
    body: () => `rmf "$R"/etc/ssh/ssh_host_*`,
  },
  {
    name: "tmp",
    modelledOn: "tmp-files",
    on: (g) => g.tmp,
    body: () => `empty_dir "$R/tmp"; empty_dir "$R/var/tmp"`,
  },
  {
    name: "shell_history",
    modelledOn: "bash-history (every user's home, and other shells and tools)",
    on: (g) => g.shellHistory,
    body: () => `
for h in /root $(awk -F: '{ print $6 }' "$R/etc/passwd" | sort -u); do
  [ "$h" != / ] && [ -d "$R$h" ] || continue
  rmf "$R$h/.bash_history" "$R$h/.zsh_history" "$R$h/.sh_history" "$R$h/.history" "$R$h/.ash_history" \\
    "$R$h/.python_history" "$R$h/.lesshst" "$R$h/.viminfo" "$R$h/.mysql_history" "$R$h/.psql_history" \\
    "$R$h/.sqlite_history" "$R$h/.node_repl_history" "$R$h/.wget-hsts"
done`,
  },
  {
    name: "package_cache",
    modelledOn: "package-manager-cache",
    on: (g) => g.packageCache,
    // What `apt-get clean` removes, done by hand so no package manager runs (and locks) here.
    body: () => `
rmf "$R"/var/cache/apt/archives/*.deb "$R"/var/cache/apt/archives/partial/* "$R"/var/cache/apt/*.bin \\
  "$R"/var/cache/dnf/* "$R"/var/cache/yum/* "$R"/var/cache/zypp/packages/*`,
  },
  {
    name: "logs",
    modelledOn: "logfiles, utmp (wtmp, btmp, lastlog)",
    on: (g) => g.logs,
    // journald and syslog first stop writing to /var/log, then the journal directories go (the
    // directory /var/log/journal itself stays: with Storage=auto it is what makes the journal
    // persistent), rotated logs are removed and the others emptied in place.
    body: () => `
journal_off
if systemd_booted; then
  for u in rsyslog.service syslog-ng.service; do
    if "$SYSTEMCTL" -q is-active "$u" 2>/dev/null; then "$SYSTEMCTL" stop "$u" syslog.socket 2>/dev/null || "$SYSTEMCTL" stop "$u"; say "stopped $u"; fi
  done
fi
rmf "$R"/var/log/journal/*
rot() { find "$R/var/log" -type f \\( -name '*.gz' -o -name '*.xz' -o -name '*.zst' -o -name '*.[0-9]' -o -name '*.old' -o -name '*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]' \\) "$@"; }
n=$(rot -print | wc -l); rot -delete
[ "$n" -eq 0 ] || say "removed $n rotated logs under /var/log"
n=$(find "$R/var/log" -type f -size +0 -print | wc -l)
find "$R/var/log" -type f -size +0 -exec truncate -s 0 -- {} +
[ "$n" -eq 0 ] || say "emptied $n logs under /var/log"
rmf "$R/var/lib/logrotate/status"`,
  },
];

/**
 * /etc/hosts without the names `hn` and `fq` (awk -v): comments and blank lines stay, a line naming
 * neither stays byte for byte, a line naming one loses it (and is dropped when no name is left;
 * an inline `# comment` stays with the line). Exits 0 when it changed something, 1 when not (no
 * `cmp` needed: minimal EL images lack diffutils). Names compare as strings: awk would take "01"
 * for "1" and "1.0" (fuzz counterexample).
 */
export const HOSTS_FILTER_AWK = `  /^[[:space:]]*(#|$)/ { print; next }
  { out = $1; kept = 0; dropped = 0
    for (i = 2; i <= NF; i++) {
      if (substr($i, 1, 1) == "#") { for (; i <= NF; i++) out = out " " $i; break }
      if (($i "") == (hn "") || ($i "") == (fq "")) { dropped = 1; continue }
      out = out " " $i; kept++
    }
    if (!dropped) print; else { changed = 1; if (kept > 0) print out } }
  END { exit !changed }`;

/** Shell functions the operations share. */
function preamble(input: ScriptInput): string {
  const t = input.tools ?? {};
  const key = input.buildPublicKey?.trim().split(/\s+/)[1] ?? "";
  return `R=${shq(input.root ?? "")}
BUILD_USER=${shq(input.username)}
BUILD_KEY=${shq(key)}
SYSTEMCTL=${shq(t.systemctl ?? "systemctl")}
JOURNALCTL=${shq(t.journalctl ?? "journalctl")}
CLOUD_INIT=${shq(t.cloudInit ?? "cloud-init")}
PYTHON3=${shq(t.python3 ?? "python3")}
DEFAULT_USER_KNOWN=${input.defaultUser === undefined ? 0 : 1}
DEFAULT_USER=${shq(input.defaultUser ?? "")}
op=
report() { printf '${REPORT_MARK} %s %s\\n' "$op" "$*"; }
say() { report "- $*"; }
rmf() {
  # One rm for all that exist (a program start costs ~50 ms under TCG); the arguments become the
  # list of those (the given ones are shifted away after the loop).
  rmf_n=$#
  for f in "$@"; do
    if [ -e "$f" ] || [ -L "$f" ]; then set -- "$@" "$f"; fi
  done
  shift "$rmf_n"
  [ "$#" -gt 0 ] || return 0
  rm -rf -- "$@"
  for f in "$@"; do say "removed \${f#"$R"}"; done
}
empty_dir() {
  [ -d "$1" ] || return 0
  n=$(find "$1" -mindepth 1 -maxdepth 1 | wc -l)
  [ "$n" -gt 0 ] || return 0
  find "$1" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
  say "emptied \${1#"$R"} ($n entries)"
}
systemd_booted() { [ -d "$R/run/systemd/system" ]; }
journal_off() {
  # journald keeps writing to /var/log/journal until told to go back to /run (systemd >= 243).
  systemd_booted || return 0
  if "$JOURNALCTL" --relinquish-var >/dev/null 2>&1; then say "journald writes to /run from now on"
  else say "journald could not be moved off /var/log/journal (systemd < 243?)"; fi
}
${CLOUD_INIT_RUNNING_FN}
ci_has_configs() {
  # cloud-init >= 23.1 has \`clean --configs\`; asking --help would cost a Python start per call.
  for f in "$R"/usr/lib/python3*/*-packages/cloudinit/cmd/clean.py; do grep -q -- '"--configs"' "$f" 2>/dev/null && return 0; done
  return 1
}
default_user_name() {
  # cloud.cfg's system_info.default_user.name, merged with cloud.cfg.d/ by cloud-init's own reader
  # (the merged config in /run/cloud-init/instance-data-sensitive.json has system_info removed),
  # unless the host could read it (a Python start costs 2-3 s under TCG).
  if [ "$DEFAULT_USER_KNOWN" = 1 ]; then printf '%s\n' "$DEFAULT_USER"; return 0; fi
  [ -f "$R/etc/cloud/cloud.cfg" ] || return 0
  "$PYTHON3" -c 'import sys
from cloudinit import util
try:
    print(util.read_conf_with_confd(sys.argv[1])["system_info"]["default_user"]["name"])
except (KeyError, TypeError):
    pass' "$R/etc/cloud/cloud.cfg" 2>/dev/null || true
}
cloud_init_groups_for() {
  # Groups cloud-init created for a user because they did not exist (its log says so).
  for f in "$R/var/log/cloud-init.log"; do
    [ -f "$f" ] && sed -n "s/.*created group '\\([^']*\\)' for user '$1'.*/\\1/p" "$f" | sort -u
  done
  return 0
}
remove_empty_group() {
  g=$1
  line=$(grep "^$g:" "$R/etc/group" || true)
  [ -n "$line" ] || return 0
  gid=$(echo "$line" | cut -d: -f3); members=$(echo "$line" | cut -d: -f4)
  if [ -n "$members" ] || awk -F: -v gid="$gid" '$4 == gid { f = 1 } END { exit !f }' "$R/etc/passwd"; then
    say "kept group $g (cloud-init made it, but it has members)"; return 0
  fi
  for f in "$R/etc/group" "$R/etc/gshadow"; do [ -f "$f" ] && sed -i "/^$g:/d" "$f"; done
  say "removed group $g (cloud-init made it for the removed user)"
}
remove_user() {
  # Exactly one user: its lines in passwd, shadow, subuid, subgid, its private group when nobody
  # else is in it, its name in other groups' member lists, its sudoers lines (and the drop-in when
  # nothing else is left in it), home, mail and crontab. Never restores /etc/passwd- backups,
  # which would drop users that packages created during the build.
  # Few program starts (each ~50 ms under TCG): one sed for the four files, one awk for both group files.
  u=$1
  ent=$(grep -m 1 "^$u:" "$R/etc/passwd" || true)
  if [ -z "$ent" ]; then say "no user $u"; return 0; fi
  # name:password:uid:gid:gecos:home:shell, split by the shell itself.
  ru_ifs=$IFS; IFS=:; set -f; set -- $ent; set +f; IFS=$ru_ifs
  uid=$3; home=$6
  set --
  for f in "$R/etc/passwd" "$R/etc/shadow" "$R/etc/subuid" "$R/etc/subgid"; do [ -f "$f" ] && set -- "$@" "$f"; done
  sed -i "/^$u:/d" "$@"
  set --
  for f in "$R/etc/group" "$R/etc/gshadow"; do [ -f "$f" ] && set -- "$@" "$f" && : > "$f.vmkiln"; done
  if [ "$#" -gt 0 ]; then
    awk -F: -v OFS=: -v u="$u" -v gsf="$R/etc/gshadow" '
      function strip(list,   n, a, i, out) { n = split(list, a, ","); out = ""; for (i = 1; i <= n; i++) if (a[i] != u && a[i] != "") out = out (out == "" ? "" : ",") a[i]; return out }
      FNR == 1 { out = FILENAME ".vmkiln"; gs = (FILENAME == gsf) }
      { if ($1 == u && strip($4) == "") next; $4 = strip($4); if (gs) $3 = strip($3); print > (out) }' "$@"
    for f in "$@"; do cat "$f.vmkiln" > "$f"; done
    rm -f "$R/etc/group.vmkiln" "$R/etc/gshadow.vmkiln"
  fi
  say "removed user $u (uid $uid) from passwd, shadow, group, gshadow, subuid, subgid"
  grep -l "^$u[[:space:]]" "$R"/etc/sudoers.d/* 2>/dev/null | while IFS= read -r f; do
    [ -f "$f" ] || continue
    sed -i "/^$u[[:space:]]/d; /^# User rules for $u\\$/d" "$f"; say "removed $u's lines from \${f#"$R"}"
    if ! grep -q '^[^#[:space:]]' "$f"; then rm -f "$f"; say "removed \${f#"$R"} (nothing else left in it)"; fi
  done
  # Only a home the user owns: never a shared directory such as / or /var/lib/something.
  if [ -n "$home" ] && [ "$home" != / ] && [ -d "$R$home" ] && [ "$(stat -c %u "$R$home")" = "$uid" ]; then rmf "$R$home"; fi
  rmf "$R/var/mail/$u" "$R/var/spool/mail/$u" "$R/var/spool/cron/crontabs/$u" "$R/var/spool/cron/$u" "$R/var/lib/sudo/lectured/$u" "$R/var/lib/AccountsService/users/$u"
}
`;
}

/**
 * True while a cloud-init stage runs: a process whose program (argv[0], or argv[1] after the
 * Python interpreter) is cloud-init. Our own `sh -c '<script naming cloud-init>'` does not match.
 * One GNU `grep -z` reads every process's argv (NUL-separated: one "line" per argument, -n its
 * index + 1, -H the file even when only one matches the glob): a loop of three programs per
 * process took 6.4 s for 75 processes under TCG, this one grep 0.1 s, and the loop ran twice per
 * build (generalize's wait, the cloud_init operation). A grep without -z (BusyBox) takes the loop.
 */
export const CLOUD_INIT_RUNNING_FN = `ci_running() {
  if printf 'x\\000' | grep -q -z x 2>/dev/null; then
    grep -s -H -z -n -E '(^|/)cloud-init$' "$R"/proc/[0-9]*/cmdline | tr '\\000' '\\n' | grep -q -E '/cmdline:[12]:'
    return
  fi
  for c in "$R"/proc/[0-9]*/cmdline; do
    [ -r "$c" ] || continue
    tr '\\000' '\\n' < "$c" 2>/dev/null | head -n 2 | grep -q -E '(^|/)cloud-init$' && return 0
  done
  return 1
}`;

export interface PlannedOperation {
  name: OperationName;
  modelledOn: string;
  /** run: part of the script; off: switched off; skipped: switched on but blocked (why). */
  state: "run" | "off" | "skipped";
  why?: string;
}

export function planOperations(g: GeneralizeSpec): PlannedOperation[] {
  const plan: PlannedOperation[] = OPERATIONS.map((o) => {
    if (!o.on(g)) return { name: o.name, modelledOn: o.modelledOn, state: "off" };
    const why = o.blocked?.(g);
    return why ? { name: o.name, modelledOn: o.modelledOn, state: "skipped", why } : { name: o.name, modelledOn: o.modelledOn, state: "run" };
  });
  plan.push({ name: "trim", modelledOn: "virt-sparsify --in-place", state: g.trim ? "run" : "off" });
  return plan;
}

/**
 * The cleaning script: every operation that runs, each in a `set -e` subshell reporting
 * `begin`, its changes (`- …`) and `ok` or `failed <status>`. Exits 3 after the last operation
 * if any failed (the caller then does not power off, so nothing half-cleaned is exported); prints
 * nothing and exits 0 when no operation runs.
 */
export function cleaningScript(g: GeneralizeSpec, input: ScriptInput): string {
  const run = OPERATIONS.filter((o) => o.on(g) && !o.blocked?.(g));
  if (run.length === 0) return "";
  const parts = [preamble(input), "failed=0"];
  for (const o of run) {
    parts.push(
      `op_${o.name}() {\n${o.body(input).replace(/^\n/, "")}\n}`,
      // stderr joins stdout so that what an operation prints stays in order with its report lines.
      `op=${o.name}; report begin; ( set -e; op_${o.name} ) 2>&1; rc=$?`,
      `if [ "$rc" -eq 0 ]; then report ok; else report failed "$rc"; failed=1; fi`,
    );
  }
  parts.push(`op=; [ "$failed" -eq 0 ] || exit 3`);
  return parts.join("\n") + "\n";
}

export interface OperationReport {
  operation: OperationName;
  /** done: ran; off: switched off; skipped: switched on but not applicable (why in changes); failed. */
  status: "done" | "off" | "skipped" | "failed";
  changes: string[];
  /** From its `begin` to its `ok`/`failed` line as they reached the host (issue 19: where the seconds go). */
  ms?: number;
}

/** Folds the script's report lines (and stderr lines, attributed to the operation running) into reports. */
export class ReportCollector {
  private readonly reports = new Map<OperationName, OperationReport>();
  private readonly pending = new Set<OperationName>();
  private current: OperationReport | undefined;
  private began = 0;

  constructor(plan: PlannedOperation[], private readonly now: () => number = () => performance.now()) {
    for (const p of plan) {
      this.reports.set(p.name, { operation: p.name, status: p.state === "off" ? "off" : "skipped", changes: p.why ? [p.why] : [] });
      if (p.state === "run") this.pending.add(p.name);
    }
  }

  /**
   * Feeds one output line; returns true when it belongs to the report (a report line, or what an
   * operation printed, kept as `output: …`), false for other output (to be shown as is).
   */
  line(stream: "stdout" | "stderr", line: string): boolean {
    if (!line.startsWith(REPORT_MARK + " ")) {
      if (stream === "stdout" && this.current) {
        this.current.changes.push(`output: ${line}`);
        return true;
      }
      return false;
    }
    const rest = line.slice(REPORT_MARK.length + 1);
    const sp = rest.indexOf(" ");
    const name = (sp < 0 ? rest : rest.slice(0, sp)) as OperationName;
    const text = sp < 0 ? "" : rest.slice(sp + 1);
    const r = this.reports.get(name);
    if (!r) return true;
    if (text === "begin") {
      this.current = r;
      this.began = this.now();
      this.pending.delete(name);
      r.status = "failed"; // until it says ok
    } else if (text.startsWith("- ")) r.changes.push(text.slice(2));
    else if (text === "ok" || text.startsWith("failed")) {
      r.status = text === "ok" ? "done" : "failed";
      if (this.current === r) r.ms = Math.round(this.now() - this.began);
      this.current = undefined;
    }
    return true;
  }

  /**
   * One report per operation, in order. An operation that began but never said ok failed (also
   * when the connection dropped); one that never began was not reached.
   */
  list(): OperationReport[] {
    return [...this.reports.values()].map((r) =>
      this.pending.has(r.operation) ? { ...r, status: "skipped" as const, changes: [...r.changes, "not reached: the cleaning stopped before it"] } : r,
    );
  }
}

/** Exit status of the settle script when cloud-init is not installed or did not run in this boot. */
export const CLOUD_INIT_IDLE = 100;

/**
 * Waits until cloud-init is done with the current boot, whatever provisioning did before (a
 * reboot starts all its stages again): /run/cloud-init/result.json is written when the final stage
 * ends (it is per boot: /run is a tmpfs), and then no cloud-init process may be left. Prints
 * result.json. Exits CLOUD_INIT_IDLE when cloud-init is not installed, or neither its generator's
 * /run/cloud-init/enabled nor a stage's status.json appears within `giveUpPolls` × 0.2 s (disabled).
 */
export function cloudInitSettleScript(opts: { root?: string; cloudInit?: string; giveUpPolls?: number } = {}): string {
  return `R=${shq(opts.root ?? "")}
command -v ${shq(opts.cloudInit ?? "cloud-init")} >/dev/null 2>&1 || exit ${CLOUD_INIT_IDLE}
${CLOUD_INIT_RUNNING_FN}
d="$R/run/cloud-init"; n=0
while [ ! -e "$d/result.json" ]; do
  if [ -e "$d/enabled" ] || [ -e "$d/status.json" ]; then n=0; else n=$((n + 1)); fi
  [ "$n" -le ${opts.giveUpPolls ?? 25} ] || exit ${CLOUD_INIT_IDLE}
  sleep 0.2
done
while ci_running; do sleep 0.2; done
cat "$d/result.json"
`;
}
