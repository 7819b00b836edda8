// Issue 14's acceptance, item by item: what a build boot leaves in an image that its first real boot
// would make again. `leftovers` reads a tree extracted from an image offline (helpers/guestfs.ts)
// and names every such thing it finds; a generalized image has none. Run against an image built
// before the fix, it lists what the issue found (the report's "before").
import { existsSync, lstatSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** The guest directories `leftovers` reads (pass them, plus a test's own, to readImageTrees). */
export const GENERALIZE_DIRS = [
  "/etc", "/root", "/home", "/tmp", "/var/tmp", "/var/log", "/var/lib/cloud", "/var/lib/dhcp", "/var/lib/systemd",
  "/var/lib/dbus", "/var/cache/apt", "/var/mail", "/var/spool/cron",
];

export interface BuildIdentity {
  /** The build's SSH user (vmkiln's cidata made it). */
  buildUser: string;
  /** The distribution's default user cloud-init would make (cloud.cfg system_info.default_user). */
  defaultUser: string;
  /** The hostname the build's seed gave (the template name). */
  hostname: string;
}

const HISTORIES = [".bash_history", ".zsh_history", ".sh_history", ".python_history", ".lesshst", ".viminfo"];

export function leftovers(root: string, id: BuildIdentity): string[] {
  const found: string[] = [];
  const p = (rel: string) => join(root, rel);
  const exists = (rel: string) => existsSync(p(rel)) || isLink(p(rel));
  const read = (rel: string) => (existsSync(p(rel)) ? readFileSync(p(rel), "utf8") : "");
  const list = (rel: string) => (existsSync(p(rel)) && statSync(p(rel)).isDirectory() ? readdirSync(p(rel)).sort() : []);
  const users = [id.buildUser, id.defaultUser];

  // Users and groups cloud-init created for the build, their homes, sudoers lines, backups.
  for (const f of ["etc/passwd", "etc/shadow", "etc/subuid", "etc/subgid"]) {
    for (const u of users) if (read(f).split("\n").some((l) => l.startsWith(`${u}:`))) found.push(`user ${u} in /${f}`);
  }
  for (const f of ["etc/group", "etc/gshadow"]) {
    for (const line of read(f).split("\n").filter(Boolean)) {
      const [name, , a, b] = line.split(":");
      const members = [...(a ?? "").split(","), ...(b ?? "").split(",")];
      for (const u of users) if (name === u || members.includes(u)) found.push(`${u} in /${f}: ${line}`);
    }
  }
  for (const u of users) if (exists(`home/${u}`)) found.push(`home /home/${u}`);
  for (const f of list("etc/sudoers.d")) {
    const text = read(`etc/sudoers.d/${f}`);
    for (const u of users) if (text.split("\n").some((l) => l.startsWith(`${u} `) || l.startsWith(`${u}\t`))) found.push(`sudoers line for ${u} in /etc/sudoers.d/${f}`);
    if (f === "90-cloud-init-users" && !/^[^#\s]/m.test(text)) found.push("/etc/sudoers.d/90-cloud-init-users with nothing left in it");
  }
  for (const f of ["passwd-", "shadow-", "group-", "gshadow-", "subuid-", "subgid-"]) if (exists(`etc/${f}`)) found.push(`backup /etc/${f}`);
  for (const d of ["var/mail", "var/spool/cron/crontabs"]) for (const u of users) if (exists(`${d}/${u}`)) found.push(`/${d}/${u}`);

  // What cloud-init wrote from the build's datasource: network, hostname, hosts, sshd drop-in.
  for (const f of ["etc/network/interfaces.d/50-cloud-init", "etc/network/interfaces.d/50-cloud-init.cfg", "etc/netplan/50-cloud-init.yaml", "etc/ssh/sshd_config.d/50-cloud-init.conf"]) {
    if (exists(f)) found.push(`cloud-init's /${f}`);
  }
  if (read("etc/hostname").trim() === id.hostname) found.push(`/etc/hostname = ${id.hostname}`);
  for (const line of read("etc/hosts").split("\n")) {
    if (!line.trim().startsWith("#") && line.split(/\s+/).slice(1).some((n) => n === id.hostname || n.startsWith(`${id.hostname}.`))) found.push(`/etc/hosts line: ${line}`);
  }
  // cloud-init's own state and logs (the race: a stage that ended after the clean wrote them back).
  for (const f of list("var/lib/cloud")) found.push(`/var/lib/cloud/${f}`);
  for (const f of list("var/log").filter((n) => n.startsWith("cloud-init"))) found.push(`/var/log/${f}`);
  const rootKeys = "root/.ssh/authorized_keys";
  if (exists(rootKeys) && read(rootKeys).trim() === "") found.push("cloud-init's empty /root/.ssh/authorized_keys");

  // Machine identity.
  for (const f of list("var/lib/dhcp")) found.push(`DHCP state /var/lib/dhcp/${f}${/default-duid/.test(read(`var/lib/dhcp/${f}`)) ? " (with a default-duid)" : ""}`);
  if (exists("var/lib/systemd/random-seed")) found.push("random seed /var/lib/systemd/random-seed");
  const mid = read("etc/machine-id").trim();
  if (mid) found.push(`/etc/machine-id = ${mid}`);
  if (exists("var/lib/dbus/machine-id")) found.push("/var/lib/dbus/machine-id");
  for (const d of list("var/log/journal")) found.push(`journal /var/log/journal/${d} (${kib(duBytes(p(`var/log/journal/${d}`)))})`);
  for (const f of list("etc/ssh").filter((n) => n.startsWith("ssh_host_"))) found.push(`host key /etc/ssh/${f}`);

  // Temporary files, histories, package caches, logs.
  for (const d of ["tmp", "var/tmp"]) for (const f of list(d)) found.push(`/${d}/${f}`);
  for (const h of ["root", ...list("home").map((u) => `home/${u}`)]) for (const f of HISTORIES) if (exists(`${h}/${f}`)) found.push(`history /${h}/${f}`);
  for (const f of list("var/cache/apt/archives").filter((n) => n.endsWith(".deb"))) found.push(`package /var/cache/apt/archives/${f}`);
  for (const f of list("var/cache/apt").filter((n) => n.endsWith(".bin"))) found.push(`apt cache /var/cache/apt/${f}`);
  for (const f of walk(p("var/log"))) {
    const rel = f.slice(root.length);
    if (rel.startsWith("/var/log/journal/")) continue; // counted above, per directory
    if (/\.(gz|xz|zst|old|\d)$/.test(rel)) found.push(`rotated log ${rel}`);
    else if (statSync(f).size > 0) found.push(`log ${rel} (${statSync(f).size} bytes)`);
  }
  return found;
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const f = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(f));
    else if (e.isFile()) out.push(f);
  }
  return out;
}

function duBytes(path: string): number {
  return statSync(path).isDirectory() ? walk(path).reduce((n, f) => n + statSync(f).size, 0) : statSync(path).size;
}

function kib(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;
}
