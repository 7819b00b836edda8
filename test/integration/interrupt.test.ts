// SIGINT undoes everything: no qemu process, build dir, output dir or staging dir survives (exit 130).
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCli, REPO } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuProcesses, qemuSnapshot } from "../helpers/processes.js";

const SLEEPY = join(REPO, "test/fixtures/templates/integration/sleepy.yaml");

describe("SIGINT undoes the build", () => {
  let image: string;
  let work: string;
  // Other suites or users may run VMs on this machine: only ours must be gone afterwards.
  const vms = qemuSnapshot();
  beforeAll(async () => {
    image = await ensureFixtureGuest();
    work = await mkdtemp(join(tmpdir(), "vmkiln-int-"));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
    expect(vms.leaked()).toEqual([]);
  });

  async function interruptAt(label: string, pred: (e: Record<string, unknown>) => boolean, timeoutMs: number) {
    const output = join(work, label, "out");
    const run = startCli(["build", SLEEPY, "--json"], { VMKILN_FIXTURE_IMAGE: image, VMKILN_TEST_OUTPUT: output });
    const first = await run.waitForEvent((e) => e.type === "log" && /^build \S+:/.test(String(e.message)), 60_000);
    const m = /^build (\S+): .*\(build dir (.+)\)$/.exec(String(first.message));
    expect(m).not.toBeNull();
    const [, buildId, buildDir] = m!;
    await run.waitForEvent(pred, timeoutMs);
    expect(qemuProcesses(buildId!)).toHaveLength(1); // the VM is really running when we interrupt
    run.child.kill("SIGINT");
    const r = await run.done;
    expect(r.code, r.stderr.slice(-2000)).toBe(130);
    expect(r.stderr).toMatch(/interrupted by SIGINT/);
    expect(qemuProcesses(buildId!)).toEqual([]);
    expect(existsSync(buildDir!)).toBe(false);
    expect(existsSync(output)).toBe(false);
    const parent = join(work, label);
    expect(existsSync(parent) ? readdirSync(parent) : []).toEqual([]);
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith(`vmkiln-${buildId}`))).toEqual([]);
    const cleanups = r.events.filter((e) => e.type === "cleanup");
    expect(cleanups.some((e) => /destroy vm/.test(String(e.what)) && e.ok === true)).toBe(true);
  }

  it("during the SSH wait", async () => {
    await interruptAt("ssh", (e) => e.type === "step-start" && e.step === "wait for ssh", 120_000);
  });

  it("during provisioning", async () => {
    await interruptAt("provision", (e) => e.type === "output" && e.line === "provisioning-started", 400_000);
  });
});
