// The real CLI process for unit-tier tests (bad input, signals, fuzzing through argv): `node
// bin/vmkiln.js`, which runs dist/. `npm test` builds before the unit tier; when a test file runs on
// its own after a source edit, dist/ would be stale and the test would check old code, so
// `ensureBuilt()` rebuilds first (under a lock: test files run in parallel). Every run has a kill
// timer: a CLI that hangs (a busy loop ignores SIGTERM) fails its test instead of hanging the suite.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, REPO } from "./cli.js";

const CHECK = join(REPO, "test/helpers/ensure-built.mjs");

let built: Promise<void> | undefined;

/** Builds dist/ when a source file is newer than its output (once per test file). */
export function ensureBuilt(): Promise<void> {
  built ??= new Promise<void>((resolve, reject) => {
    const lock = join(tmpdir(), `vmkiln-build-${createHash("sha256").update(REPO).digest("hex").slice(0, 12)}.lock`);
    try {
      execFileSync("flock", [lock, process.execPath, CHECK], { cwd: REPO, stdio: ["ignore", "ignore", "pipe"], timeout: 300_000 });
      resolve();
    } catch (err) {
      reject(new Error(`building dist/ for the CLI tests failed: ${String((err as { stderr?: Buffer }).stderr ?? err)}`));
    }
  });
  return built;
}

export interface TimedResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
  /** True when the kill timer fired (the CLI hung). */
  killed: boolean;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  /** SIGKILL after this long (default 10 s): SIGTERM cannot stop a blocked event loop. */
  timeoutMs?: number;
  cwd?: string;
  stdin?: string;
}

/** Runs `vmkiln <args>` to completion (or the kill timer). */
export function runCliTimed(args: string[], o: CliOptions = {}): Promise<TimedResult> {
  return startCliTimed(args, o).done;
}

/** Starts `vmkiln <args>`: the child (to signal it) and its result. */
export function startCliTimed(args: string[], o: CliOptions = {}): { child: ChildProcess; done: Promise<TimedResult> } {
  const started = performance.now();
  const env = { ...process.env, ...o.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const child = spawn(process.execPath, [BIN, ...args], { cwd: o.cwd ?? REPO, env, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let killed = false;
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(o.stdin ?? "");
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, o.timeoutMs ?? 10_000);
  const done = new Promise<TimedResult>((resolve) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started, killed });
    });
  });
  return { child, done };
}
