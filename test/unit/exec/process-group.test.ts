// Issue 12 item 9: a tool stopped by abort or timeout takes its whole process tree with it. The
// commands start grandchildren that outlive their parent by default: one ignores SIGTERM, one
// keeps the output pipe open (which used to keep run() waiting as long as it lived), one does both.
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AbortError, BuildError } from "../../../src/errors.js";
import { run } from "../../../src/exec/run.js";
import { EventBus } from "../../../src/log/events.js";
import { runShellLocal } from "../../../src/provision/shell-local.js";
import { runWithOptions } from "../../../src/provision/options.js";
import type { ProvisionContext } from "../../../src/provision/types.js";
import type { ShellLocalProvisioner } from "../../../src/template/spec.js";
import { sleep } from "../../../src/util/abort.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie is dead for our purposes (its parent, here init, reaps it).
    return !/^\S+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function waitFor(file: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!existsSync(file) || readFileSync(file, "utf8").trim().split("\n").length < 3) {
    if (Date.now() > end) throw new Error(`${file} never appeared`);
    await sleep(20, new AbortController().signal);
  }
}

/** A script that starts three grandchildren, writes their pids, and waits for ever. */
function script(pids: string): string {
  return [
    // Ignores SIGTERM (inherited across exec), output to /dev/null.
    `sh -c 'trap "" TERM; exec sleep 300' >/dev/null 2>&1 & echo $! >> ${pids}`,
    // Holds the stdout pipe open.
    `sleep 301 & echo $! >> ${pids}`,
    // Both: only SIGKILL ends it, and until then the run cannot see its output end.
    `sh -c 'trap "" TERM; exec sleep 303' & echo $! >> ${pids}`,
    "sleep 302",
  ].join("\n");
}

describe("a stopped tool leaves no process behind", () => {
  let dir: string;
  let pids: string;
  const started: number[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmkiln-pgroup-"));
    pids = join(dir, "pids");
  });
  afterEach(async () => {
    // Never leave them running, even when a test fails.
    for (const p of started.splice(0)) if (alive(p)) process.kill(p, "SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  async function survivors(): Promise<number[]> {
    const list = readFileSync(pids, "utf8").trim().split("\n").map(Number);
    started.push(...list);
    // The group gets SIGTERM, then SIGKILL after the grace period.
    const end = Date.now() + 8000;
    while (list.some(alive) && Date.now() < end) await sleep(100, new AbortController().signal);
    return list.filter(alive);
  }

  it("run(): abort", async () => {
    const ac = new AbortController();
    const p = run("/bin/bash", ["-c", script(pids)], { signal: ac.signal, timeoutMs: 0 });
    await waitFor(pids, 5000);
    ac.abort(new AbortError("interrupted by SIGINT"));
    const t0 = Date.now();
    await expect(p).rejects.toBeInstanceOf(AbortError);
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(await survivors()).toEqual([]);
  }, 20_000);

  it("run(): timeout", async () => {
    const p = run("/bin/bash", ["-c", `${script(pids)}`], { signal: new AbortController().signal, timeoutMs: 1500 });
    await waitFor(pids, 5000);
    await expect(p).rejects.toThrow(/timed out/);
    expect(await survivors()).toEqual([]);
  }, 20_000);

  const provisioner = (inline: string[]) => ({ inline, env: {} }) as unknown as ShellLocalProvisioner;
  const pctx = (signal: AbortSignal): ProvisionContext =>
    ({ events: new EventBus(), signal, label: "provision[0] shell_local", buildDir: dir, buildName: "t", templateDir: dir, access: undefined }) as unknown as ProvisionContext;

  it("shell_local: the provisioner's timeout", async () => {
    const opts = { pauseBeforeMs: 0, timeoutMs: 1500, maxRetries: 0 };
    const p = runWithOptions(opts as never, new AbortController().signal, (s) => runShellLocal(provisioner(script(pids).split("\n")), pctx(s), 0), { events: new EventBus(), label: "provision[0] shell_local" });
    await expect(p).rejects.toBeInstanceOf(BuildError);
    await expect(p).rejects.toThrow(/timed out after 1\.5 s/);
    await waitFor(pids, 5000);
    expect(await survivors()).toEqual([]);
  }, 20_000);

  it("shell_local: Ctrl-C", async () => {
    const ac = new AbortController();
    const p = runShellLocal(provisioner(script(pids).split("\n")), pctx(ac.signal), 0);
    await waitFor(pids, 5000);
    ac.abort(new AbortError("interrupted by SIGINT"));
    await expect(p).rejects.toBeInstanceOf(AbortError);
    expect(await survivors()).toEqual([]);
  }, 20_000);

  it("run() with reject: false still fails when the process was stopped (it has no exit code)", async () => {
    await expect(run("sleep", ["5"], { signal: new AbortController().signal, timeoutMs: 300, reject: false })).rejects.toThrow(/sleep 5 timed out/);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new AbortError("interrupted by SIGINT")), 300);
    await expect(run("sleep", ["5"], { signal: ac.signal, timeoutMs: 0, reject: false })).rejects.toBeInstanceOf(AbortError);
  });

  it("vmkiln exiting while a tool runs (a second Ctrl-C) takes the tool's group with it", async () => {
    // In a process of its own (it must exit); needs dist/ (`npm test` builds it first).
    const dist = fileURLToPath(new URL("../../../dist/src/exec/run.js", import.meta.url));
    expect(existsSync(dist), "build dist/ first: npx tsc -p tsconfig.build.json").toBe(true);
    const code = `
      import { run } from ${JSON.stringify(dist)};
      import { existsSync, readFileSync } from "node:fs";
      run("/bin/bash", ["-c", ${JSON.stringify(script(pids))}], { signal: new AbortController().signal, timeoutMs: 0 }).catch(() => {});
      const t = setInterval(() => {
        if (existsSync(${JSON.stringify(pids)}) && readFileSync(${JSON.stringify(pids)}, "utf8").trim().split("\\n").length >= 3) process.exit(0);
      }, 20);`;
    await new Promise<void>((resolve, reject) => execFile(process.execPath, ["--input-type=module", "-e", code], { timeout: 15_000 }, (err) => (err ? reject(err) : resolve())));
    expect(await survivors()).toEqual([]);
  }, 30_000);
});
