// Issue 14 acceptance: a template that reboots mid-provisioning and goes on without waiting for
// cloud-init, built once; the image is then read offline with libguestfs (not through vmkiln) and
// must hold nothing of the build boots that its first real boot would make again, while keeping
// what the playbook made. The example build gets the same offline checks in qemu-build.test.ts.
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCli, stopCli, REPO, type CliResult, type CliRun } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { GENERALIZE_DIRS, leftovers } from "../helpers/generalized.js";
import { readImageTrees } from "../helpers/guestfs.js";
import { qemuProcesses } from "../helpers/processes.js";

const TEMPLATE = join(REPO, "test/integration/templates/generalize-reboot.yaml");
const OPERATIONS = ["default_user", "build_user", "passwd_backups", "hostname", "network", "cloud_init", "dhcp", "random_seed", "machine_id", "ssh_host_keys", "tmp", "shell_history", "package_cache", "logs", "trim"];

describe("generalize: reboot mid-provisioning, no wait after it (one build, read offline)", () => {
  let work: string;
  let out: string;
  let tree: string;
  let res: CliResult;
  let cli: CliRun | undefined;

  beforeAll(async () => {
    const image = await ensureFixtureGuest();
    work = await mkdtemp(join(tmpdir(), "vmkiln-gen-"));
    out = join(work, "out");
    cli = startCli(["build", TEMPLATE, "--json", "-var", `output_dir=${out}`], { VMKILN_FIXTURE_IMAGE: image, CI: "true" });
    res = await cli.done;
    if (res.code !== 0) {
      console.error(res.stderr.slice(-4000));
      return;
    }
    tree = await readImageTrees(join(out, "gen-reboot.qcow2"), [...GENERALIZE_DIRS, "/var/lib/node-agent"], join(work, "image"));
  }, 45 * 60_000);

  afterAll(async () => {
    await stopCli(cli);
    if (work) await rm(work, { recursive: true, force: true });
    expect(qemuProcesses()).toEqual([]);
  });

  const logs = () => res.events.filter((e) => e.type === "log").map((e) => String(e.message));

  it("builds, and the step after the reboot ran while cloud-init's final stage was still going", () => {
    expect(res.code, res.stderr.slice(-3000)).toBe(0);
    const lines = res.events.filter((e) => e.type === "output").map((e) => String(e.line));
    expect(lines).toContain("cloud-init is still running");
  });

  it("generalize waited for that stage to end before cleaning", () => {
    expect(logs()).toContain("cloud-init finished this boot; no stage is running");
    const i = res.events.findIndex((e) => e.type === "log" && e.message === "cloud-init finished this boot; no stage is running");
    const firstOp = res.events.findIndex((e) => e.type === "log" && /^generalize \w+ /.test(String(e.message)));
    expect(i).toBeGreaterThan(0);
    expect(firstOp).toBeGreaterThan(i);
  });

  it("offline, the image holds nothing of the build boots that its first boot would make again", () => {
    expect(leftovers(tree, { buildUser: "builder", defaultUser: "debian", hostname: "gen-reboot" })).toEqual([]);
    // The directories whose contents go are still there (journald's persistence, tmp's mode).
    expect(readFileSync(join(tree, "etc/machine-id"), "utf8")).toBe("");
  });

  it("keeps what the playbook and the provisioning made: the system user, its home and files", () => {
    const passwd = readFileSync(join(tree, "etc/passwd"), "utf8");
    expect(passwd).toMatch(/^node-agent:x:\d+:\d+::\/var\/lib\/node-agent:\/usr\/sbin\/nologin$/m);
    expect(readFileSync(join(tree, "etc/shadow"), "utf8")).toMatch(/^node-agent:/m);
    expect(readFileSync(join(tree, "etc/group"), "utf8")).toMatch(/^node-agent:/m);
    expect(readFileSync(join(tree, "etc/node-agent.conf"), "utf8")).toBe("cluster = it\n");
    expect(readFileSync(join(tree, "var/lib/node-agent/after-reboot"), "utf8")).toBe("rebooted\n");
  });

  it("reports every operation in the build log and manifest.json", () => {
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")) as { generalize: Array<{ operation: string; status: string; changes: string[] }> };
    expect(m.generalize.map((g) => g.operation)).toEqual(OPERATIONS);
    for (const g of m.generalize) expect(g.status, JSON.stringify(g)).toBe("done");
    const by = new Map(m.generalize.map((g) => [g.operation, g.changes] as const));
    const all = JSON.stringify(m.generalize, null, 1);
    // The template's own user-data asked for the default user; generalize removes it. The fixture's
    // netdev group (gid 107, made by a package) is one cloud-init did not make: it stays.
    expect(by.get("default_user"), all).toEqual([
      expect.stringMatching(/^removed user debian \(uid \d+\) from passwd, shadow, group, gshadow, subuid, subgid$/),
      "removed debian's lines from /etc/sudoers.d/90-cloud-init-users",
      "removed /home/debian",
    ]);
    expect(readFileSync(join(tree, "etc/group"), "utf8")).toMatch(/^netdev:x:\d+:$/m);
    expect(by.get("build_user")!.join("\n")).toMatch(/removed user builder/);
    expect(by.get("hostname")).toContain("removed /etc/hostname (gen-reboot, set by cloud-init)");
    expect(by.get("network")).toContain("removed /etc/network/interfaces.d/50-cloud-init");
    expect(by.get("dhcp")!.join("\n")).toMatch(/removed \/var\/lib\/dhcp\/dhclient\.eth0\.leases/);
    expect(by.get("machine_id")!.join("\n")).toMatch(/removed \/var\/log\/journal\/[0-9a-f]{32}/);
    for (const op of OPERATIONS) expect(logs().some((l) => l.startsWith(`generalize ${op} done`)), op).toBe(true);
  });
});
