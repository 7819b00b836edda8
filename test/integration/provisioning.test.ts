// Issue 8 acceptance: one build (VM time is precious) runs a real Ansible playbook from the host over
// the build's key with host key checking against the pinned key, reboots the guest mid-build and goes
// on provisioning (retry, pause_before, download, host glue), then the exported image is booted again.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootImage, type BootedVm } from "../helpers/boot.js";
import { runCli, startCli, stopCli, REPO, type CliResult, type CliRun } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuProcesses } from "../helpers/processes.js";

const TEMPLATE = join(REPO, "test/integration/templates/provisioning.yaml");
const K8S_EXAMPLE = join(REPO, "fixtures/examples/k8s-node.yaml");

type Ev = Record<string, unknown>;
const logs = (r: CliResult) => r.events.filter((e) => e.type === "log");
const outputOf = (r: CliResult, source: RegExp) => r.events.filter((e) => e.type === "output" && source.test(String(e.source))).map((e) => String(e.line));
const at = (e: Ev | undefined) => Date.parse(String(e?.time));

describe("provisioning: ansible, reboot, retries, download (one build)", () => {
  let work: string;
  let home: string;
  let out: string;
  let res: CliResult;
  let cli: CliRun | undefined;
  let booted: BootedVm | undefined;

  beforeAll(async () => {
    const image = await ensureFixtureGuest();
    work = await mkdtemp(join(tmpdir(), "vmkiln-prov-"));
    out = join(work, "out");
    // A HOME of its own: the build must not write ~/.ssh/known_hosts (ansible, ssh from shell_local).
    home = join(work, "home");
    mkdirSync(join(home, ".ssh"), { recursive: true });
    writeFileSync(join(home, ".ssh", "known_hosts"), "");
    cli = startCli(["build", TEMPLATE, "--json", "-var", `output_dir=${out}`], { VMKILN_FIXTURE_IMAGE: image, HOME: home, CI: "true" });
    res = await cli.done;
    if (res.code !== 0) console.error(res.stderr.slice(-4000));
    // Two boots and a playbook under TCG on a shared 2-core machine: measured 15+ min under load.
  }, 45 * 60_000);

  afterAll(async () => {
    await stopCli(cli);
    await booted?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    expect(qemuProcesses()).toEqual([]);
  });

  it("builds", () => {
    expect(res.code, res.stderr.slice(-3000)).toBe(0);
  });

  it("runs ansible-playbook from the host with a generated inventory, streaming its output", () => {
    const lines = outputOf(res, /node role/);
    expect(lines.some((l) => /^PLAY \[Prepare a Kubernetes node image\]/.test(l))).toBe(true);
    expect(lines.some((l) => /^TASK \[Node config from a template\]/.test(l))).toBe(true);
    expect(lines.some((l) => /^default\s+: ok=\d+\s+changed=[1-9]/.test(l)), lines.slice(-5).join("\n")).toBe(true);
    // Host key checking on, against the pinned key, and ~/.ssh untouched.
    const cmd = logs(res).find((e) => /node role: ansible-playbook -i /.test(String(e.message)));
    expect(cmd).toBeDefined();
    expect(readFileSync(join(home, ".ssh", "known_hosts"), "utf8")).toBe("");
  });

  it("reboots mid-build, reconnects with the same pinned host key, and provisions on", () => {
    const msgs = logs(res).map((e) => String(e.message));
    expect(msgs.some((m) => /provision\[2\] reboot: the guest is going down \(expect_disconnect\)/.test(m))).toBe(true);
    expect(msgs.some((m) => /provision\[2\] reboot: the guest is back/.test(m))).toBe(true);
    expect(msgs.filter((m) => /matches the pinned key/.test(m)).length).toBeGreaterThanOrEqual(1);
    expect(msgs.some((m) => /HOST_KEY_CHANGED|host key changed/.test(m))).toBe(false);
  });

  it("retries a failing step (max_retries) and waits pause_before first", () => {
    const msgs = logs(res);
    const pause = msgs.find((e) => /after reboot: pause_before: waiting 5 s/.test(String(e.message)));
    const firstOut = res.events.find((e) => e.type === "output" && /after reboot/.test(String(e.source)));
    expect(pause).toBeDefined();
    expect(firstOut).toBeDefined();
    const waitedMs = at(firstOut) - at(pause);
    console.log(`pause_before 5s: first output ${waitedMs} ms after the pause began`);
    expect(waitedMs).toBeGreaterThanOrEqual(5000);
    expect(msgs.some((e) => /after reboot: attempt 1 of 3 failed: .*exit code 1; retrying/.test(String(e.message)))).toBe(true);
    expect(msgs.some((e) => /after reboot: done in .* \(attempt 2\)/.test(String(e.message)))).toBe(true);
  });

  it("runs host glue with the VM's address, skips only/except steps, never pauses in CI", () => {
    expect(outputOf(res, /host glue/).some((l) => /^glue reached /.test(l))).toBe(true);
    const msgs = logs(res).map((e) => String(e.message));
    expect(msgs.some((m) => /virtualbox only: skipped for the qemu driver/.test(m))).toBe(true);
    expect(msgs.some((m) => /breakpoint #8: not pausing in CI/.test(m))).toBe(true);
  });

  it("puts the downloaded file into the output dir, SHA256SUMS and manifest.json", () => {
    const list = readFileSync(join(out, "reports/packages.txt"), "utf8").split("\n");
    expect(list).toContain("tree");
    expect(list).toContain("jq");
    expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toMatch(/^[0-9a-f]{64} {2}reports\/packages\.txt$/m);
    execFileSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: out });
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    expect(m.artifacts.map((a: { name: string; format: string }) => `${a.name}:${a.format}`)).toEqual(["provisioning-it.qcow2:qcow2", "reports/packages.txt:download"]);
    expect(readdirSync(out).sort()).toEqual(["SHA256SUMS", "manifest.json", "provisioning-it.qcow2", "reports"]);
  });

  it("the exported image, booted again, has the package, the templated file, the system user and the post-reboot work", async () => {
    booted = await bootImage(join(out, "provisioning-it.qcow2"), { username: "tester", timeoutMs: 15 * 60_000 });
    const sh = booted.sh;
    expect((await sh("command -v tree jq")).trim().split("\n")).toHaveLength(2);
    const conf = await sh("cat /etc/k8s-node/node.conf");
    expect(conf).toContain("environment=prod");
    expect(conf).toContain("cluster=prod-cluster");
    expect(conf).toContain("max_pods=42"); // extra_vars "@file" beat vars/prod.yml
    expect(conf).toMatch(/build provisioning-it \(qemu\)/);
    expect(await sh("getent passwd node-agent | cut -d: -f3,7")).toMatch(/^\d{1,3}:\/usr\/sbin\/nologin/);
    expect(Number((await sh("id -u node-agent")).trim())).toBeLessThan(1000);
    const before = (await sh("cat /etc/vmkiln-boot-before")).trim();
    const after = (await sh("cat /etc/vmkiln-boot-after")).trim();
    expect(after).toMatch(/^[0-9a-f-]{36}$/);
    expect(after).not.toBe(before);
    // Ansible's temp files and the build user are gone.
    expect(await sh("ls -d /tmp/vmkiln-ansible /home/builder 2>/dev/null || true")).toBe("");
  }, 20 * 60_000);
});

describe("provisioning: fails fast and clearly", () => {
  it("a missing ansible-playbook exits 2 before any VM starts, naming the provisioner and the fix", async () => {
    const emptyBin = await mkdtemp(join(tmpdir(), "vmkiln-nopath-"));
    try {
      const started = Date.now();
      const r = await runCli(["build", K8S_EXAMPLE, "-var", `output_dir=${join(emptyBin, "out")}`], { VMKILN_FIXTURE_IMAGE: process.execPath, PATH: emptyBin });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain("vmkiln: error: provision[1] node role: ansible-playbook not found on PATH");
      expect(r.stderr).toMatch(/hint: .*apt-get install ansible-core.*pipx install ansible-core/);
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(existsSync(join(emptyBin, "out"))).toBe(false);
    } finally {
      await rm(emptyBin, { recursive: true, force: true });
    }
  });
});
