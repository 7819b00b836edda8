// Issue 12 acceptance: a real build with a sensitive variable (from -var-file) that flows into a step
// name, a shell env and a command the guest echoes back. The value never appears in what vmkiln
// prints (--json events, --debug) or writes (manifest.json); the guest's output shows *** instead.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, startCli, stopCli, REPO, type CliResult, type CliRun } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuProcesses } from "../helpers/processes.js";
import { itFull } from "../helpers/tier.js";

const TEMPLATE = join(REPO, "test/integration/templates/secrets.yaml");
const TOKEN = "tok-5f3a9c1e-never-print-me";

describe("a sensitive variable through a real build", () => {
  let work: string;
  let out: string;
  let res: CliResult;
  let cli: CliRun | undefined;

  beforeAll(async () => {
    const image = await ensureFixtureGuest();
    work = await mkdtemp(join(tmpdir(), "vmkiln-secrets-"));
    out = join(work, "out");
    const vars = join(work, "vars.yaml");
    writeFileSync(vars, `token: ${TOKEN}\n`);
    cli = startCli(["build", TEMPLATE, "--json", "--debug", "-var-file", vars, "-var", `output_dir=${out}`], { VMKILN_FIXTURE_IMAGE: image, CI: "true" });
    res = await cli.done;
    if (res.code !== 0) console.error(res.stderr.slice(-4000));
  }, 30 * 60_000);

  afterAll(async () => {
    await stopCli(cli);
    if (work) await rm(work, { recursive: true, force: true });
    expect(qemuProcesses()).toEqual([]);
  });

  it("builds", () => {
    expect(res.code, res.stderr.slice(-3000)).toBe(0);
  });

  it("the guest's output and the step name show *** where the value was", () => {
    const lines = res.events.filter((e) => e.type === "output").map((e) => String(e.line));
    expect(lines).toContain("token from env is ***");
    expect(lines).toContain("token inline is ***");
    expect(res.events.some((e) => typeof e.source === "string" && e.source.includes("log in with ***"))).toBe(true);
  });

  it("the value is nowhere in stdout, stderr (with --debug) or manifest.json", () => {
    expect(res.stdout + res.stderr).not.toContain(TOKEN);
    const manifest = join(out, "manifest.json");
    expect(existsSync(manifest)).toBe(true);
    expect(readFileSync(manifest, "utf8")).not.toContain(TOKEN);
    expect(JSON.parse(readFileSync(manifest, "utf8")).vmkiln_version).toBe(JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version);
  });

  // Full tier (test/helpers/tier.ts): a second boot; qemu-build.test.ts runs vmkiln test in the fast tier.
  itFull("vmkiln test: this image, built with generalize: false, fails the first-boot checks, each naming what it found (issue 16)", async () => {
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    const id = m.build_identity;
    expect(id).toMatchObject({ user: "builder", instance_id: `vmkiln-${m.build_id}` });
    const r = await runCli(["test", join(out, "secrets-it.qcow2"), "--json"]);
    expect(r.code, r.stderr.slice(-3000)).toBe(1);
    const fails = r.events.filter((e) => e.type === "check" && e.outcome === "fail").map((e) => String(e.line));
    const line = (prefix: string) => fails.find((l) => l.startsWith(prefix));
    expect(line("FirstBoot: machine_id: regenerated:")).toBe(`FirstBoot: machine_id: regenerated: expected not to equal "${id.machine_id}", found "${id.machine_id}"`);
    expect(line("FirstBoot: build_user: user:")).toMatch(/^FirstBoot: build_user: user: expected "no user builder", found "\/etc\/passwd: builder:x:\d+:\d+:[^"]*"$/);
    expect(line("FirstBoot: build_user: home:")).toBe('FirstBoot: build_user: home: expected "no /home/builder", found "/home/builder"');
    expect(line("FirstBoot: build_user: sudoers:")).toMatch(/^FirstBoot: build_user: sudoers: expected "no sudoers line for builder", found \["a line for builder in \/etc\/sudoers\.d\/[^"]+"\]$/);
    expect(line("FirstBoot: build_user: authorized_keys:")).toBe(`FirstBoot: build_user: authorized_keys: expected "no authorized_keys holding the build key ${id.key_fingerprint}", found ["/home/builder/.ssh/authorized_keys"]`);
    expect(line("FirstBoot: cloud_init: instances:")).toMatch(new RegExp(`^FirstBoot: cloud_init: instances: expected .*, found \\[.*"${id.instance_id}".*\\]$`));
    expect(line("FirstBoot: logs: journal boots:")).toMatch(/^FirstBoot: logs: journal boots: expected "only this boot in the journal", found "\d+ boots, with entries of the build's machine-id"$/);
    expect(line("FirstBoot: logs: journal directories:")).toMatch(new RegExp(`^FirstBoot: logs: journal directories: expected .*, found \\[.*"${id.machine_id}".*\\]$`));
    expect(r.events.find((e) => e.type === "test-end")).toMatchObject({ ok: false });
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
  });
});
