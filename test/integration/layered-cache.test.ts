// Issue 17 acceptance on real QEMU and the fixture guest: a two-stage template; an unchanged rebuild
// is a cache hit that boots nothing and writes byte-identical outputs; a change to the last stage's
// script boots only the last stage; a change to the base's script rebuilds both (after a kill -9 in
// the middle of the base, whose leftovers nothing trusts); the cache carried to a second cache dir
// by export/import builds there --offline. One file, builds shared across assertions (CI budget).
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, runCli, startCli, type CliResult } from "../helpers/cli.js";
import { ensureFixtureGuest } from "../helpers/fixture.js";
import { qemuProcesses } from "../helpers/processes.js";
import { FULL_TIER, itFull } from "../helpers/tier.js";

const TEMPLATE = join(REPO, "test/integration/templates/layered/two-stage.yaml");

const vmStarts = (r: CliResult) => r.events.filter((e) => e.type === "step-start" && e.step === "start vm").length;
const stageLogs = (r: CliResult) => r.events.filter((e) => e.type === "log" && e.source === "cache" && /^stage \S+: (cache hit|built)/.test(String(e.message))).map((e) => String(e.message).replace(/ \(key.*$/, ""));
const files = (dir: string) => Object.fromEntries(readdirSync(dir).sort().map((n) => [n, createHash("sha256").update(readFileSync(join(dir, n))).digest("hex")]));

describe("layered build: two stages, a stage cache", () => {
  let work: string;
  let env: Record<string, string>;
  const results: Record<string, CliResult> = {};
  let unchangedWallMs = 0;
  let afterKillLs: Array<{ stage: string }> = [];
  /** The output the offline build must reproduce: the last build made in this tier. */
  const lastOut = () => (FULL_TIER ? "out4" : "out3");
  const build = (name: string, out: string, extra: string[] = [], e: Record<string, string> = env) =>
    runCli(["build", join(work, "two-stage.yaml"), "--json", "-var", `output_dir=${join(work, out)}`, "-var", `scripts=${work}`, ...extra], e).then((r) => {
      if (r.code !== 0) console.error(`${name}:`, r.stderr.slice(-3000));
      results[name] = r;
      return r;
    });
  const script = (name: string, text: string) => writeFileSync(join(work, name), `#!/bin/sh\nset -e\n${text}\n`);

  beforeAll(async () => {
    const image = await ensureFixtureGuest();
    work = await mkdtemp(join(tmpdir(), "vmkiln-it-layers-"));
    copyFileSync(TEMPLATE, join(work, "two-stage.yaml"));
    // A private journal dir (the `vmkiln gc` below must see only this test's killed build) and build
    // dir: this test's VMs are the ones whose command line names it (other suites may run VMs too).
    await mkdir(join(work, "tmp"));
    env = { VMKILN_FIXTURE_IMAGE: image, VMKILN_CACHE_DIR: join(work, "cache"), VMKILN_STATE_DIR: join(work, "state"), VMKILN_TMPDIR: join(work, "tmp") };
    script("base.sh", "echo base-v1 > /etc/vmkiln-base");
    script("node.sh", 'echo "$(cat /etc/vmkiln-base) node-v1" > /etc/vmkiln-node-saw-base');
    await build("full", "out1");
    const t0 = Date.now();
    await build("unchanged", "out2");
    unchangedWallMs = Date.now() - t0;
    script("node.sh", 'echo "$(cat /etc/vmkiln-base) node-v2" > /etc/vmkiln-node-saw-base');
    await build("lastStage", "out3");

    // A base change, killed with SIGKILL while the base stage's VM runs.
    script("base.sh", "echo base-v2 > /etc/vmkiln-base");
    const killed = startCli(["build", join(work, "two-stage.yaml"), "--json", "-var", `output_dir=${join(work, "out-killed")}`, "-var", `scripts=${work}`], env);
    await killed.waitForEvent((e) => e.type === "step-end" && e.step === "start vm", 300_000);
    killed.child.kill("SIGKILL");
    await killed.done;
    // What a kill -9 leaves is `vmkiln gc`'s to remove (the VM, the build dir); the stage entry never appeared.
    await runCli(["gc"], env);
    for (const p of qemuProcesses(join(work, "tmp"))) process.kill(p.pid, "SIGKILL");
    afterKillLs = JSON.parse(execFileSync(process.execPath, [join(REPO, "bin/vmkiln.js"), "cache", "ls", "--json"], { env: { ...process.env, ...env }, encoding: "utf8" }));
    // Full tier (test/helpers/tier.ts): the base change built after the kill (two more stage builds).
    if (FULL_TIER) await build("baseChange", "out4");
    // The fast tier built no base-v2: the offline build below must reproduce the last-stage build.
    else script("base.sh", "echo base-v1 > /etc/vmkiln-base");

    execFileSync(process.execPath, [join(REPO, "bin/vmkiln.js"), "cache", "export", "-o", join(work, "bundle.tar")], { env: { ...process.env, ...env } });
    const env2 = { ...env, VMKILN_CACHE_DIR: join(work, "cache2") };
    execFileSync(process.execPath, [join(REPO, "bin/vmkiln.js"), "cache", "import", join(work, "bundle.tar")], { env: { ...process.env, ...env2 } });
    await build("offline", "out5", ["--offline"], env2);
  }, 1_500_000);

  afterAll(async () => {
    const left = work ? qemuProcesses(join(work, "tmp")) : [];
    if (work) await rm(work, { recursive: true, force: true });
    expect(left).toEqual([]);
  });

  it("a full build boots both stages and the last one sees the base's file", () => {
    const r = results.full!;
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(stageLogs(r)).toEqual(["stage base: built", "stage node: built"]);
    expect(vmStarts(r)).toBe(2);
    expect(readFileSync(join(work, "out1", "saw-base.txt"), "utf8").trim()).toBe("base-v1 node-v1");
    execFileSync("sha256sum", ["-c", "SHA256SUMS"], { cwd: join(work, "out1") });
    const info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", join(work, "out1", "layered-it.qcow2")], { encoding: "utf8" }));
    expect(info["backing-filename"]).toBeUndefined(); // the export flattens the chain
  });

  it("an unchanged rebuild is a cache hit: no VM, byte-identical outputs, within 2 s of build time", () => {
    const r = results.unchanged!;
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(stageLogs(r)).toEqual(["stage base: cache hit", "stage node: cache hit"]);
    expect(r.events.filter((e) => e.type === "step-start")).toEqual([]);
    expect(files(join(work, "out2"))).toEqual(files(join(work, "out1")));
    const end = r.events.find((e) => e.type === "build-end")!;
    expect(end.durationMs as number).toBeLessThanOrEqual(2000);
    // The whole CLI run, node start-up included, stays close to it.
    expect(unchangedWallMs).toBeLessThan(6000);
  });

  it("a change to the last stage's script boots only the last stage", () => {
    const r = results.lastStage!;
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(stageLogs(r)).toEqual(["stage base: cache hit", "stage node: built"]);
    expect(vmStarts(r)).toBe(1);
    expect(readFileSync(join(work, "out3", "saw-base.txt"), "utf8").trim()).toBe("base-v1 node-v2");
  });

  it("a kill -9 mid-base leaves no entry a later build would trust, and no output", () => {
    // What the killed build was writing stays under .tmp (a later build removes it: the full tier's
    // base change checks that), never among the entries: two base/node pairs so far, v1/v1 and
    // v1/v2 (node only); the killed base-v2 is not among them.
    expect(afterKillLs.map((e) => e.stage).sort()).toEqual(["base", "node", "node"]);
    expect(existsSync(join(work, "out-killed"))).toBe(false);
  });

  itFull("after a kill -9 mid-base, a base change rebuilds both stages; nothing half-built was trusted or left", () => {
    const r = results.baseChange!;
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(stageLogs(r)).toEqual(["stage base: built", "stage node: built"]);
    expect(vmStarts(r)).toBe(2);
    expect(readFileSync(join(work, "out4", "saw-base.txt"), "utf8").trim()).toBe("base-v2 node-v2");
    expect(existsSync(join(work, "out-killed"))).toBe(false);
    expect(readdirSync(join(work, "cache", "stages", ".tmp"))).toEqual([]);
    // Three base/node pairs were built: v1/v1, v1/v2 (node only), v2/v2.
    const ls = JSON.parse(execFileSync(process.execPath, [join(REPO, "bin/vmkiln.js"), "cache", "ls", "--json"], { env: { ...process.env, ...env }, encoding: "utf8" }));
    expect(ls.map((e: { stage: string }) => e.stage).sort()).toEqual(["base", "base", "node", "node", "node"]);
  });

  it("export → import into a second cache → an --offline build there hits every stage, same bytes", () => {
    const r = results.offline!;
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    expect(stageLogs(r)).toEqual(["stage base: cache hit", "stage node: cache hit"]);
    expect(vmStarts(r)).toBe(0);
    expect(files(join(work, "out5"))).toEqual(files(join(work, lastOut())));
    expect(qemuProcesses(join(work, "tmp"))).toEqual([]);
  });
});
