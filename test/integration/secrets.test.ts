// Issue 12 acceptance: a real build with a sensitive variable (from -var-file) that flows into a step
// name, a shell env and a command the guest echoes back. The value never appears in what vmkiln
// prints (--json events, --debug) or writes (manifest.json); the guest's output shows *** instead.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCli, REPO, type CliResult, type CliRun } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuProcesses } from "../helpers/processes.js";

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
    if (cli && cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill("SIGINT");
      await cli.done;
    }
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
});
