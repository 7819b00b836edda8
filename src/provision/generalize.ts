// Scripts that turn a built VM into a generic image. Pure builders (unit-tested); run as root.
import type { GeneralizeSpec } from "../template/spec.js";
import { shq } from "../ssh/session.js";

export function generalizeScript(g: GeneralizeSpec): string {
  const s: string[] = ["set -e"];
  if (g.cloudInit) {
    // Next boot is a first boot again: cloud-init re-reads its datasource, creates users, and
    // regenerates host keys. --machine-id is left to the machine_id switch below.
    s.push("if command -v cloud-init >/dev/null; then cloud-init clean --logs --seed; fi");
  }
  if (g.machineId) {
    // An empty (not missing) /etc/machine-id makes systemd generate a fresh one at next boot; a
    // copied id makes DHCP leases and journald collide between clones.
    s.push(": > /etc/machine-id", "rm -f /var/lib/dbus/machine-id");
  }
  if (g.sshHostKeys) s.push("rm -f /etc/ssh/ssh_host_*");
  if (g.logs) {
    s.push(
      "if command -v journalctl >/dev/null; then journalctl --rotate >/dev/null 2>&1 || true; journalctl --vacuum-time=1s >/dev/null 2>&1 || true; fi",
      "find /var/log -type f \\( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \\) -delete",
      "find /var/log -type f -exec truncate -s 0 {} +",
      "rm -f /root/.bash_history",
      "rm -rf /tmp/vmkiln-* /var/tmp/vmkiln-*",
    );
  }
  if (g.cloudInit || g.logs) s.push("if command -v apt-get >/dev/null; then apt-get clean; fi");
  return s.join("\n") + "\n";
}

/**
 * Removes exactly one user: its lines in passwd, shadow, group, gshadow, subuid, subgid, its name
 * in other groups' member lists, its sudoers lines, home and mail spool. Never restores
 * /etc/passwd- backups, which would drop users that packages created during the build.
 */
export function removeUserScript(user: string): string {
  const u = shq(user);
  return [
    `u=${u}`,
    `home=$(getent passwd "$u" | cut -d: -f6)`,
    // Own entries: the first field is the name (the user's private group has the same name).
    `for f in /etc/passwd /etc/shadow /etc/subuid /etc/subgid; do [ -f "$f" ] && sed -i "/^$u:/d" "$f"; done`,
    // Group files: drop the user's private group only when nobody else is in it; remove the user
    // from every member list (4th field in group, 4th in gshadow; admins 3rd in gshadow).
    `for f in /etc/group /etc/gshadow; do [ -f "$f" ] || continue; awk -F: -v OFS=: -v u="$u" -v gs="$([ "$f" = /etc/gshadow ] && echo 1)" '` +
      `function strip(list,   n, a, i, out) { n = split(list, a, ","); out = ""; for (i = 1; i <= n; i++) if (a[i] != u && a[i] != "") out = out (out == "" ? "" : ",") a[i]; return out }` +
      ` { if ($1 == u && strip($4) == "") next; $4 = strip($4); if (gs) $3 = strip($3); print }' "$f" > "$f.vmkiln" && cat "$f.vmkiln" > "$f" && rm -f "$f.vmkiln"; done`,
    // sudoers drop-ins: cloud-init writes the user's line into 90-cloud-init-users.
    `for f in /etc/sudoers.d/*; do [ -f "$f" ] || continue; if grep -q "^$u[[:space:]]" "$f"; then sed -i "/^$u[[:space:]]/d" "$f"; if ! grep -q '^[^#[:space:]]' "$f"; then rm -f "$f"; fi; fi; done`,
    `[ -n "$home" ] && [ "$home" != / ] && rm -rf "$home"`,
    `rm -f "/var/mail/$u" "/var/spool/mail/$u" "/var/spool/cron/crontabs/$u"`,
    "",
  ].join("\n");
}
