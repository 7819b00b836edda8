// The cleaning script runs for real (with dash, the guests' /bin/sh, and bash) against a scratch
// root laid out like the fixture guest after a build boot (what the offline inspection of an image
// built before issue 14 found). Commands that would act on the host are stubs given by path.
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CLOUD_INIT_IDLE,
  CLOUD_INIT_RUNNING_FN,
  cleaningScript,
  cloudInitSettleScript,
  HOSTS_FILTER_AWK,
  OPERATIONS,
  planOperations,
  REPORT_MARK,
  ReportCollector,
  type OperationReport,
} from "../../../src/provision/generalize.js";
import type { GeneralizeSpec } from "../../../src/template/spec.js";

const ALL: GeneralizeSpec = {
  cloudInit: true, keepDefaultUser: false, buildUser: true, passwdBackups: true, network: true, hostname: true, dhcp: true,
  machineId: true, randomSeed: true, sshHostKeys: true, tmp: true, shellHistory: true, packageCache: true, logs: true, trim: true,
};
const MACHINE_ID = "0123456789abcdef0123456789abcdef";
const BUILD_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuildKeyBuildKeyBuildKeyBuildKeyBuildKey vmkiln-build";

let root: string;
let stubs: string;
let calls: string;

async function put(path: string, content: string, opts: { mode?: number; uid?: number } = {}) {
  const p = join(root, path);
  await mkdir(dirname(p), { recursive: true });
  await writeFile(p, content);
  if (opts.mode !== undefined) await chmod(p, opts.mode);
  if (opts.uid !== undefined) await chown(p, opts.uid, opts.uid);
}
const read = (p: string) => readFile(join(root, p), "utf8");
const gone = (p: string) => !existsSync(join(root, p));

/** A stub that records its argv in `calls`; `body` runs after (with $R = root). */
async function stub(name: string, body = "exit 0") {
  const p = join(stubs, name);
  await writeFile(p, `#!/bin/sh\necho "${name} $*" >> '${calls}'\nR='${root}'\n${body}\n`);
  await chmod(p, 0o755);
  return p;
}

async function layOutBuiltGuest() {
  await put("etc/passwd", [
    "root:x:0:0:root:/root:/bin/bash",
    "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin",
    "builder:x:1000:1000::/home/builder:/bin/bash",
    "debian:x:1001:1001:Debian:/home/debian:/bin/bash",
    "node-agent:x:999:999::/home/node-agent:/usr/sbin/nologin",
    "",
  ].join("\n"));
  await put("etc/shadow", "root:*:1::::::\n_apt:*:1::::::\nbuilder:!:1::::::\ndebian:!:1::::::\nnode-agent:!:1::::::\n");
  await put("etc/group", [
    "root:x:0:", "adm:x:4:debian", "sudo:x:27:debian", "netdev:x:105:debian", "plugdev:x:46:debian",
    "builder:x:1000:", "debian:x:1001:", "node-agent:x:999:", "",
  ].join("\n"));
  await put("etc/gshadow", "root:*::\nadm:*::debian\nsudo:*::debian\nnetdev:!::debian\nbuilder:!::\ndebian:!::\nnode-agent:!::\n");
  for (const f of ["passwd-", "shadow-", "group-", "gshadow-", "subuid-", "subgid-"]) await put(`etc/${f}`, "debian:x:1001:1001::/home/debian:/bin/bash\n");
  await put("etc/sudoers.d/90-cloud-init-users", "# Created by cloud-init v. 22.4.2 on Fri, 05 Dec 2025 09:30:00 +0000\n\n# User rules for debian\ndebian ALL=(ALL) NOPASSWD:ALL\n\n# User rules for builder\nbuilder ALL=(ALL) NOPASSWD:ALL\n");
  await put("etc/sudoers.d/README", "# keep this\n");
  await put("home/builder/.bash_history", "sudo -n sh -c …\n", { uid: 1000 });
  await put("home/builder/.ssh/authorized_keys", BUILD_KEY + "\n", { uid: 1000 });
  await chown(join(root, "home/builder"), 1000, 1000);
  await put("home/debian/.bashrc", "", { uid: 1001 });
  await chown(join(root, "home/debian"), 1001, 1001);
  // A home the user does not own (a playbook pointed a system user at a shared directory).
  await mkdir(join(root, "home/node-agent"), { recursive: true });
  await put("home/node-agent/state", "keep");
  await put("root/.bash_history", "apt-get update\n");
  await put("root/.lesshst", "x\n");
  await put("root/.ssh/authorized_keys", "");
  await put("etc/hostname", "debian-12-node\n");
  await put("etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n127.0.1.1 debian-12-node.localdomain debian-12-node\n# a comment naming debian-12-node\n");
  await put("var/lib/cloud/data/set-hostname", '{\n "fqdn": "debian-12-node.localdomain",\n "hostname": "debian-12-node"\n}');
  await put("var/lib/cloud/data/previous-hostname", "debian-12-node");
  await put("var/lib/cloud/instance/boot-finished", "x");
  await put("etc/cloud/cloud.cfg", "users: [default]\nsystem_info:\n  default_user:\n    name: debian\n");
  await put("var/log/cloud-init.log", "2025-12-05 09:30:01,000 - __init__.py[DEBUG]: created group 'netdev' for user 'debian'\n");
  await put("var/log/cloud-init-output.log", "Cloud-init v. 22.4.2 finished\n");
  await put("etc/network/interfaces.d/50-cloud-init", "auto eth0\niface eth0 inet dhcp\n");
  await put("etc/network/interfaces", "source /etc/network/interfaces.d/*\n");
  await put("etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication no\n");
  await put("etc/ssh/sshd_config", "Include /etc/ssh/sshd_config.d/*.conf\n");
  for (const k of ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]) await put(`etc/ssh/${k}`, "key");
  await put("var/lib/dhcp/dhclient.eth0.leases", "default-duid \"\\000\\001\";\nlease { fixed-address 10.0.2.15; }\n");
  await put("var/lib/systemd/random-seed", "seed");
  await put("etc/machine-id", MACHINE_ID + "\n");
  await put("var/lib/dbus/machine-id", MACHINE_ID + "\n");
  await put(`var/log/journal/${MACHINE_ID}/system.journal`, "journal");
  await put("var/log/journal/fedcba9876543210fedcba9876543210/system@x.journal~", "old journal");
  await put("var/log/dpkg.log", "install tree\n");
  await put("var/log/apt/history.log.1.gz", "gz");
  await put("var/log/wtmp", "login");
  await put("tmp/vmkiln-packages.txt", "tree 2.1\n");
  await put("tmp/.hidden", "x");
  await put("var/tmp/cache", "x");
  await put("var/cache/apt/archives/tree_2.1.0-1_amd64.deb", "deb");
  await mkdir(join(root, "var/cache/apt/archives/partial"), { recursive: true });
  await put("var/cache/apt/pkgcache.bin", "bin");
  await put("var/lib/apt/lists/deb_dists_bookworm_InRelease", "lists stay");
  // What the user's provisioning made: kept.
  await put("etc/vmkiln/greeting", "hello from vmkiln\n");
  await put("etc/k8s-node/node.conf", "cluster=dev\n");
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "vmkiln-root-"));
  stubs = await mkdtemp(join(tmpdir(), "vmkiln-stubs-"));
  calls = join(stubs, "calls.log");
  await writeFile(calls, "");
  await layOutBuiltGuest();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(stubs, { recursive: true, force: true });
});

async function tools() {
  return {
    systemctl: await stub("systemctl", 'case "$1 $2" in "-q is-active") [ "$3" = systemd-random-seed.service ] && exit 0; exit 3;; esac'),
    journalctl: await stub("journalctl"),
    // What `cloud-init clean --logs --seed` does to these paths.
    cloudInit: await stub("cloud-init", 'rm -rf "$R"/var/lib/cloud/* "$R/var/log/cloud-init.log" "$R/var/log/cloud-init-output.log"'),
    // cloud-init's config reader (cloudinit.util.read_conf_with_confd) on the file it is given.
    python3: await stub("python3", 'sed -n "s/^ *name: *//p" "$3"'),
  };
}

/** Runs a script asynchronously (the tests change the scratch root while it runs). */
function sh(script: string, shell = "sh"): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(shell, ["-c", script], { encoding: "utf8", timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

async function run(script: string, shell = "sh") {
  const r = await sh(script, shell);
  const c = new ReportCollector(planOperations(ALL));
  const other: string[] = [];
  for (const l of r.stdout.split("\n").filter(Boolean)) if (!c.line("stdout", l)) other.push(l);
  for (const l of r.stderr.split("\n").filter(Boolean)) c.line("stderr", l);
  const reports = new Map(c.list().map((x) => [x.operation, x] as const));
  return { ...r, reports, other };
}

describe("cleaningScript against a built guest", () => {
  it.each(["sh", "bash"])("undoes the build boot's changes and keeps provisioning's (%s)", async (shell) => {
    await mkdir(join(root, "run/systemd/system"), { recursive: true });
    const script = cleaningScript(ALL, { username: "builder", root, tools: await tools() });
    const r = await run(script, shell);
    expect(r.status, r.stderr).toBe(0);
    expect(r.other).toEqual([]);
    for (const rep of r.reports.values()) if (rep.operation !== "trim") expect(rep.status, JSON.stringify(rep)).toBe("done");

    // Users: the default user and the build user, their groups, sudoers lines, homes.
    expect(await read("etc/passwd")).toBe("root:x:0:0:root:/root:/bin/bash\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\nnode-agent:x:999:999::/home/node-agent:/usr/sbin/nologin\n");
    expect(await read("etc/shadow")).toBe("root:*:1::::::\n_apt:*:1::::::\nnode-agent:!:1::::::\n");
    expect(await read("etc/group")).toBe("root:x:0:\nadm:x:4:\nsudo:x:27:\nplugdev:x:46:\nnode-agent:x:999:\n");
    expect(await read("etc/gshadow")).toBe("root:*::\nadm:*::\nsudo:*::\nnode-agent:!::\n");
    expect(gone("etc/sudoers.d/90-cloud-init-users")).toBe(true);
    expect(await read("etc/sudoers.d/README")).toBe("# keep this\n");
    expect(gone("home/builder") && gone("home/debian")).toBe(true);
    expect(await read("home/node-agent/state")).toBe("keep");
    expect(r.reports.get("default_user")!.changes).toContain("removed group netdev (cloud-init made it for the removed user)");
    for (const f of ["passwd-", "shadow-", "group-", "gshadow-", "subuid-", "subgid-"]) expect(gone(`etc/${f}`), f).toBe(true);
    // cloud-init's hostname, hosts line, network file, sshd drop-in, state and logs.
    expect(gone("etc/hostname")).toBe(true);
    expect(await read("etc/hosts")).toBe("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n# a comment naming debian-12-node\n");
    expect(gone("etc/network/interfaces.d/50-cloud-init")).toBe(true);
    expect(await read("etc/network/interfaces")).toBe("source /etc/network/interfaces.d/*\n");
    expect(gone("etc/ssh/sshd_config.d/50-cloud-init.conf")).toBe(true);
    expect(await readdir(join(root, "var/lib/cloud"))).toEqual([]);
    expect(gone("var/log/cloud-init.log")).toBe(true);
    expect(gone("root/.ssh/authorized_keys")).toBe(true);
    // Machine identity.
    expect(await readdir(join(root, "var/lib/dhcp"))).toEqual([]);
    expect(gone("var/lib/systemd/random-seed")).toBe(true);
    expect(await read("etc/machine-id")).toBe("");
    expect(gone("var/lib/dbus/machine-id")).toBe(true);
    expect(await readdir(join(root, "var/log/journal"))).toEqual([]);
    expect(await readdir(join(root, "etc/ssh"))).toEqual(["sshd_config", "sshd_config.d"]);
    // Temporary files, histories, caches, logs.
    expect(await readdir(join(root, "tmp"))).toEqual([]);
    expect(await readdir(join(root, "var/tmp"))).toEqual([]);
    expect(gone("root/.bash_history") && gone("root/.lesshst")).toBe(true);
    expect(gone("var/cache/apt/archives/tree_2.1.0-1_amd64.deb") && gone("var/cache/apt/pkgcache.bin")).toBe(true);
    expect(await read("var/lib/apt/lists/deb_dists_bookworm_InRelease")).toBe("lists stay");
    expect(gone("var/log/apt/history.log.1.gz")).toBe(true);
    expect(await read("var/log/dpkg.log")).toBe("");
    expect(await read("var/log/wtmp")).toBe("");
    // Provisioning's own files.
    expect(await read("etc/vmkiln/greeting")).toBe("hello from vmkiln\n");
    expect(await read("etc/k8s-node/node.conf")).toBe("cluster=dev\n");

    // The services that would write after the clean were stopped or moved off /var first.
    const log = await readFile(calls, "utf8");
    expect(log).toContain("systemctl stop systemd-random-seed.service");
    expect(log).toContain("journalctl --relinquish-var");
    expect(log).toContain("cloud-init clean --logs --seed");
    // journald is moved off /var before its directory goes.
    expect(r.reports.get("machine_id")!.changes).toEqual([
      "journald writes to /run from now on",
      `removed /var/log/journal/${MACHINE_ID}`,
      `emptied /etc/machine-id (was ${MACHINE_ID})`,
      "removed /var/lib/dbus/machine-id",
    ]);
  });

  it("an operation switched off leaves its part alone", async () => {
    const g = { ...ALL, keepDefaultUser: true, hostname: false, dhcp: false, logs: false, tmp: false };
    const r = await run(cleaningScript(g, { username: "builder", root, tools: await tools() }));
    expect(r.status, r.stderr).toBe(0);
    expect(await read("etc/passwd")).toContain("\ndebian:x:1001:");
    expect(await read("etc/sudoers.d/90-cloud-init-users")).toBe("# Created by cloud-init v. 22.4.2 on Fri, 05 Dec 2025 09:30:00 +0000\n\n# User rules for debian\ndebian ALL=(ALL) NOPASSWD:ALL\n\n");
    expect(await read("etc/hostname")).toBe("debian-12-node\n");
    expect(await read("var/lib/dhcp/dhclient.eth0.leases")).toContain("default-duid");
    expect(await read("var/log/dpkg.log")).toBe("install tree\n");
    expect(await read("tmp/vmkiln-packages.txt")).toBe("tree 2.1\n");
    expect(r.stdout).not.toMatch(/@vmkiln-generalize (default_user|hostname|dhcp|logs|tmp) /);
  });

  it("network and hostname need cloud_init: without it the first boot would not write them again", async () => {
    const g = { ...ALL, cloudInit: false };
    const plan = planOperations(g);
    expect(plan.find((p) => p.name === "network")).toMatchObject({ state: "skipped", why: expect.stringMatching(/cloud_init is off/) });
    expect((await run(cleaningScript(g, { username: "builder", root, tools: await tools() }))).status).toBe(0);
    expect(await read("etc/network/interfaces.d/50-cloud-init")).toContain("eth0");
    expect(await read("etc/hostname")).toBe("debian-12-node\n");
  });

  it("keeps a hostname that provisioning set, and only the cloud-init name's entries in /etc/hosts go", async () => {
    await put("etc/hostname", "golden\n");
    await put("etc/hosts", "127.0.0.1\tlocalhost   debian-12-node # inline\n10.0.0.5 golden debian-12-node.localdomain\n127.0.1.1 debian-12-node\n");
    const r = await run(cleaningScript({ ...ALL }, { username: "builder", root, tools: await tools() }));
    expect(r.status, r.stderr).toBe(0);
    expect(await read("etc/hostname")).toBe("golden\n");
    expect(await read("etc/hosts")).toBe("127.0.0.1 localhost # inline\n10.0.0.5 golden\n");
    expect(r.reports.get("hostname")!.changes[0]).toMatch(/^kept \/etc\/hostname: golden is not the name cloud-init set/);
  });

  it("regression (fuzz): names are compared as strings, so hostname 01 does not take 1 or 1.0 with it", () => {
    // awk compares two numeric-looking strings as numbers: "01" == "1" == "1.0" (fuzz counterexample).
    const r = spawnSync("awk", ["-v", "hn=01", "-v", "fq=01", HOSTS_FILTER_AWK], { input: "10.0.0.5 1 #x\n127.0.1.1 1.0\n127.0.1.2 01\n", encoding: "utf8" });
    expect(r.stdout).toBe("10.0.0.5 1 #x\n127.0.1.1 1.0\n");
  });

  it("with root as the build user, only the build key leaves root's authorized_keys", async () => {
    await put("root/.ssh/authorized_keys", `ssh-ed25519 AAAAOther admin\n${BUILD_KEY}\n`);
    const r = await run(cleaningScript(ALL, { username: "root", buildPublicKey: BUILD_KEY, root, tools: await tools() }));
    expect(r.status, r.stderr).toBe(0);
    expect(await read("root/.ssh/authorized_keys")).toBe("ssh-ed25519 AAAAOther admin\n");
    expect(await read("etc/passwd")).toMatch(/^root:x:0:0/);
    await put("root/.ssh/authorized_keys", `${BUILD_KEY}\n`);
    await run(cleaningScript({ ...ALL }, { username: "root", buildPublicKey: BUILD_KEY, root, tools: await tools() }));
    expect(gone("root/.ssh/authorized_keys")).toBe(true);
  });

  it("a failing operation is reported with its error, the others still run, and the script exits 3", async () => {
    const t = await tools();
    t.cloudInit = await stub("cloud-init", "echo 'clean: permission denied' >&2; exit 1");
    const r = await run(cleaningScript(ALL, { username: "builder", root, tools: t }));
    expect(r.status).toBe(3);
    const ci = r.reports.get("cloud_init") as OperationReport;
    expect(ci.status).toBe("failed");
    expect(ci.changes).toContain("output: clean: permission denied");
    expect(r.reports.get("logs")!.status).toBe("done");
  });

  it("waits while a cloud-init stage is still running", async () => {
    await put("proc/4242/cmdline", "/usr/bin/python3\0/usr/bin/cloud-init\0modules\0--mode=final\0");
    await put("proc/4243/cmdline", "sh\0-c\0cloud-init clean --logs\0"); // not cloud-init itself
    const t0 = Date.now();
    setTimeout(() => void rm(join(root, "proc/4242"), { recursive: true }), 1000);
    const r = await run(cleaningScript({ ...ALL }, { username: "builder", root, tools: await tools() }));
    expect(r.status, r.stderr).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
  });

  it("a default user the host read is removed without asking cloud-init's reader in the guest", async () => {
    const t = await tools();
    const r = await run(cleaningScript({ ...ALL }, { username: "builder", root, tools: t, defaultUser: "debian" }));
    expect(r.status, r.stderr).toBe(0);
    expect(r.reports.get("default_user")!.changes[0]).toMatch(/^removed user debian \(uid 1001\)/);
    expect(await readFile(calls, "utf8")).not.toContain("python3");
    // "" from the host: the configuration names none, and debian stays.
    await layOutBuiltGuest();
    const none = await run(cleaningScript({ ...ALL, buildUser: false }, { username: "builder", root, tools: t, defaultUser: "" }));
    expect(none.reports.get("default_user")!.changes).toEqual(["cloud-init's configuration names no default user"]);
    expect(await read("etc/passwd")).toContain("\ndebian:x:1001:");
    expect(await readFile(calls, "utf8")).not.toContain("python3");
  });

  it("a removed user's home is removed only when the user owns it", async () => {
    await put("etc/passwd", "root:x:0:0:root:/root:/bin/bash\nbuilder:x:1000:1000::/srv:/bin/bash\n");
    await put("srv/data", "keep");
    const r = await run(cleaningScript({ ...ALL }, { username: "builder", root, tools: await tools() }));
    expect(r.status, r.stderr).toBe(0);
    expect(await read("srv/data")).toBe("keep");
    expect(await read("etc/passwd")).toBe("root:x:0:0:root:/root:/bin/bash\n");
  });

  it("prints nothing when every operation is off", () => {
    const off = Object.fromEntries(Object.keys(ALL).map((k) => [k, k === "keepDefaultUser"])) as unknown as GeneralizeSpec;
    expect(cleaningScript(off, { username: "builder" })).toBe("");
    expect(planOperations(off).every((p) => p.state === "off")).toBe(true);
  });

  it("every operation has a template switch and is modelled on something named", () => {
    expect(OPERATIONS.map((o) => o.name)).toEqual(["default_user", "build_user", "passwd_backups", "hostname", "network", "cloud_init", "dhcp", "random_seed", "machine_id", "ssh_host_keys", "tmp", "shell_history", "package_cache", "logs"]);
    for (const o of OPERATIONS) expect(o.modelledOn.length).toBeGreaterThan(3);
  });
});

describe("ReportCollector", () => {
  it("folds begin/changes/ok, attributes stderr, and says what was never reached", () => {
    let t = 1000;
    const c = new ReportCollector(planOperations({ ...ALL, dhcp: false }), () => t);
    expect(c.line("stdout", `${REPORT_MARK} build_user begin`)).toBe(true);
    t = 3250.4;
    c.line("stdout", `${REPORT_MARK} build_user - removed /home/builder`);
    expect(c.line("stdout", "sed: oops")).toBe(true); // printed by the operation: part of its report
    expect(c.line("stderr", "sudo: unable to resolve host")).toBe(false);
    c.line("stdout", `${REPORT_MARK} build_user ok`);
    expect(c.line("stdout", "outside any operation")).toBe(false);
    c.line("stdout", `${REPORT_MARK} tmp begin`);
    const reps = new Map(c.list().map((r) => [r.operation, r] as const));
    expect(reps.get("build_user")).toEqual({ operation: "build_user", status: "done", changes: ["removed /home/builder", "output: sed: oops"], ms: 2250 });
    expect(reps.get("tmp")!.ms).toBeUndefined(); // began, never ended
    expect(reps.get("tmp")!.status).toBe("failed");
    expect(reps.get("dhcp")).toEqual({ operation: "dhcp", status: "off", changes: [] });
    expect(reps.get("logs")).toMatchObject({ status: "skipped", changes: ["not reached: the cleaning stopped before it"] });
  });
});

describe("ci_running", () => {
  /** Runs ci_running against the scratch root; noGrepZ: a grep that refuses -z, as BusyBox's may. */
  async function running(opts: { noGrepZ?: boolean } = {}) {
    let path = process.env.PATH ?? "";
    if (opts.noGrepZ) {
      await writeFile(join(stubs, "grep"), '#!/bin/sh\nfor a in "$@"; do case "$a" in -*z*) echo "grep: invalid option -- z" >&2; exit 2;; esac; done\nexec /bin/grep "$@"\n');
      await chmod(join(stubs, "grep"), 0o755);
      path = `${stubs}:${path}`;
    }
    return new Promise<string>((resolve, reject) => {
      execFile("sh", ["-c", `R='${root}'\n${CLOUD_INIT_RUNNING_FN}\nif ci_running; then echo yes; else echo no; fi`], { env: { ...process.env, PATH: path }, encoding: "utf8" }, (err, stdout) =>
        err ? reject(err) : resolve(stdout.trim()));
    });
  }

  it.each([false, true])("finds cloud-init as argv[0] or as the interpreter's script, nothing else (grep without -z: %s)", async (noGrepZ) => {
    expect(await running({ noGrepZ })).toBe("no"); // no /proc at all
    await put("proc/10/cmdline", "sh\0-c\0cloud-init clean --logs\0"); // a script naming it
    await put("proc/11/cmdline", "sudo\0-n\0/usr/bin/cloud-init\0status\0"); // argv[2]
    await put("proc/12/cmdline", "/usr/bin/cloud-init-wrapper\0"); // another program
    await put("proc/13/cmdline", "bash\0-c\0echo\ncloud-init\0"); // a line of argv[2] ends with it
    await put("proc/14/cmdline", ""); // a kernel thread
    expect(await running({ noGrepZ })).toBe("no");
    await put("proc/20/cmdline", "/usr/bin/python3\0/usr/bin/cloud-init\0modules\0--mode=final\0");
    expect(await running({ noGrepZ })).toBe("yes");
    await rm(join(root, "proc/20"), { recursive: true });
    await put("proc/21/cmdline", "cloud-init\0init\0");
    expect(await running({ noGrepZ })).toBe("yes");
  });

  it("one matching process is found too (grep names the file only with -H)", async () => {
    await put("proc/5/cmdline", "/usr/bin/python3\0/usr/bin/cloud-init\0init\0");
    expect(await running()).toBe("yes");
  });
});

describe("cloudInitSettleScript", () => {
  const settle = (extra: { giveUpPolls?: number; cloudInit?: string } = {}) => sh(cloudInitSettleScript({ root, cloudInit: "sh", ...extra }));

  it("waits for result.json, then for the last cloud-init process, and prints result.json", async () => {
    await put("run/cloud-init/enabled", "");
    await put("proc/77/cmdline", "/usr/bin/python3\0/usr/bin/cloud-init\0modules\0--mode=final\0");
    const result = JSON.stringify({ v1: { datasource: "DataSourceNoCloud", errors: [] } });
    setTimeout(() => void put("run/cloud-init/result.json", result), 600);
    setTimeout(() => void rm(join(root, "proc/77"), { recursive: true }), 1200);
    const t0 = Date.now();
    const r = await settle();
    expect(r.status, r.stderr).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1200);
    expect(r.stdout.trim()).toBe(result);
  });

  it("gives up quickly when cloud-init does not run in this boot, or is not installed", async () => {
    expect((await settle({ giveUpPolls: 2 })).status).toBe(CLOUD_INIT_IDLE);
    expect((await settle({ cloudInit: "vmkiln-no-such-command" })).status).toBe(CLOUD_INIT_IDLE);
  });
});

it("the scripts are valid POSIX sh", () => {
  execFileSync("sh", ["-n", "-c", cleaningScript(ALL, { username: "builder" })]);
  execFileSync("sh", ["-n", "-c", cloudInitSettleScript()]);
});
