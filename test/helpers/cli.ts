// Runs the built CLI (dist/) as a user would: a child process, real argv, real exit code.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
export const BIN = fileURLToPath(new URL("../../bin/vmkiln.js", import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Parsed `--json` lines from stdout. */
  events: Array<Record<string, unknown>>;
}

export interface CliRun {
  child: ChildProcess;
  done: Promise<CliResult>;
  /** Resolves with the first JSON event that matches. */
  waitForEvent(pred: (e: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>>;
}

export function startCli(args: string[], env: Record<string, string> = {}): CliRun {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<{ pred: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }> = [];
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    stdout += d.toString();
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const e = JSON.parse(line) as Record<string, unknown>;
        events.push(e);
        for (const w of [...waiters]) {
          if (w.pred(e)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(e);
          }
        }
      } catch {
        /* not a JSON line */
      }
    }
  });
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
    if (process.env.VMKILN_TEST_VERBOSE) process.stderr.write(d);
  });
  const done = new Promise<CliResult>((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, events }));
  });
  return {
    child,
    done,
    waitForEvent(pred, timeoutMs) {
      const hit = events.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no matching event within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`)), timeoutMs);
        waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e)) });
        void done.then(() => reject(new Error(`CLI exited before the event; stderr: ${stderr.slice(-2000)}`)));
      });
    },
  };
}

/**
 * A build still running when a test file ends (its hook timed out, an assertion threw): Ctrl-C it, so
 * vmkiln undoes its VM, and wait for it. A SIGKILL would leave QEMU running.
 */
export async function stopCli(run: CliRun | undefined): Promise<void> {
  if (run && run.child.exitCode === null && run.child.signalCode === null) {
    run.child.kill("SIGINT");
    await run.done;
  }
}

export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startCli(args, env).done;
}
