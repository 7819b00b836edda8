// wait_cloud_init's wait loop, run for real by sh against a scratch "/run/cloud-init"; the SSH
// connection is replaced by local execution (the boundary this test fakes).
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BuildError } from "../../../src/errors.js";
import { EventBus, type BuildEvent } from "../../../src/log/events.js";
import { parseResultJson, resultWaitScript, runWaitCloudInit } from "../../../src/provision/cloud-init.js";
import type { ProvisionContext } from "../../../src/provision/types.js";
import type { Communicator, ExecOptions, ExecResult } from "../../../src/ssh/communicator.js";
import type { WaitCloudInitProvisioner } from "../../../src/template/spec.js";

/** Runs each command with sh on this host; `cloud-init status …` is answered by `statusAnswer`. */
function localComm(statusAnswer: { code: number; out: string }, commands: string[]): Communicator {
  const exec = (command: string, opts: ExecOptions): Promise<ExecResult> => {
    commands.push(command);
    const cmd = command.startsWith("cloud-init status") ? `printf '%s\\n' '${statusAnswer.out}'; exit ${statusAnswer.code}` : command;
    return new Promise((resolve) => {
      const child = spawn("sh", ["-c", cmd], { stdio: ["ignore", "pipe", "pipe"] });
      let buf = "";
      child.stdout.on("data", (d: Buffer) => (buf += d.toString()));
      child.on("close", (code) => {
        for (const l of buf.split("\n")) if (l) opts.onLine?.("stdout", l);
        resolve({ exitCode: code, disconnected: false });
      });
    });
  };
  const no = () => Promise.reject(new Error("not used"));
  return { exec, capture: no, upload: no, uploadContent: no, download: no, close: () => Promise.resolve() };
}

const p: WaitCloudInitProvisioner = { type: "wait_cloud_init", name: "wait_cloud_init #1", options: { pauseBeforeMs: 0, maxRetries: 0, timeoutMs: undefined, only: undefined, except: [] }, timeoutMs: 60_000 };

describe("wait_cloud_init", () => {
  let dir: string;
  let events: EventBus;
  let seen: BuildEvent[];
  let commands: string[];
  const ctx = (status = { code: 0, out: "status: done" }): ProvisionContext => ({
    ssh: localComm(status, commands),
    events,
    signal: new AbortController().signal,
    username: "builder",
    label: "provision[0] wait_cloud_init",
  });
  const logs = () => seen.filter((e) => e.type === "log").map((e) => `${(e as { level: string }).level}: ${(e as { message: string }).message}`);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmkiln-ci-"));
    events = new EventBus();
    seen = [];
    commands = [];
    events.subscribe((e) => seen.push(e));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("waits for result.json while cloud-init runs, without starting cloud-init's Python", async () => {
    await writeFile(join(dir, "enabled"), "");
    setTimeout(() => void writeFile(join(dir, "result.json"), JSON.stringify({ v1: { datasource: "NoCloud", errors: [] } })), 700);
    const t0 = performance.now();
    await runWaitCloudInit(p, ctx(), resultWaitScript(dir, 25));
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(650);
    expect(commands).toHaveLength(1);
    expect(commands[0]).not.toContain("cloud-init status");
    expect(logs()).toContain("info: provision[0] wait_cloud_init: cloud-init finished");
  });

  it("fails with cloud-init's own errors from result.json", async () => {
    await writeFile(join(dir, "result.json"), JSON.stringify({ v1: { errors: ["('users-groups', KeyError('x'))"] } }));
    const err = await runWaitCloudInit(p, ctx(), resultWaitScript(dir)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as Error).message).toBe("provision[0] wait_cloud_init: cloud-init finished with errors: ('users-groups', KeyError('x'))");
  });

  it("warns on recoverable errors (cloud-init >= 23.4) and goes on", async () => {
    await writeFile(join(dir, "result.json"), JSON.stringify({ v1: { errors: [], recoverable_errors: { WARNING: ["Failed to set locale"] } } }));
    await runWaitCloudInit(p, ctx(), resultWaitScript(dir));
    expect(logs()).toContain("warn: provision[0] wait_cloud_init: cloud-init finished with recoverable errors: WARNING: Failed to set locale");
  });

  it("asks `cloud-init status` when nothing says cloud-init will run (disabled)", async () => {
    await runWaitCloudInit(p, ctx({ code: 0, out: "status: disabled" }), resultWaitScript(dir, 2));
    expect(commands.map((c) => c.split(" ")[0])).toEqual(["sh", "cloud-init"]);
    expect(logs()).toContain("info: provision[0] wait_cloud_init: cloud-init is disabled in this guest");
  });

  it("reports a failing `cloud-init status` after an unreadable result.json", async () => {
    await writeFile(join(dir, "result.json"), "{ truncated");
    const err = await runWaitCloudInit(p, ctx({ code: 1, out: "status: error" }), resultWaitScript(dir)).catch((e: unknown) => e);
    expect((err as Error).message).toBe("provision[0] wait_cloud_init: cloud-init status exited with 1: status: error");
  });
});

describe("parseResultJson", () => {
  it.each([
    ['{"v1": {"datasource": "x", "errors": []}}', { errors: [], recoverable: [] }],
    ['{"v1": {"errors": ["a", "b"]}}', { errors: ["a", "b"], recoverable: [] }],
    ['{"v1": {"errors": [], "recoverable_errors": {"WARNING": ["w1"], "DEPRECATED": ["d1"]}}}', { errors: [], recoverable: ["WARNING: w1", "DEPRECATED: d1"] }],
    ['{"v2": {}}', undefined],
    ["null", undefined],
    ["not json", undefined],
  ])("%s", (text, want) => {
    expect(parseResultJson(text)).toEqual(want);
  });
});
