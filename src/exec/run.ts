// The only place that spawns processes (docs/architecture.md "The exec wrapper"): argv arrays only, always a
// cancel signal, a timeout and a forced kill; stderr is teed to debug events; failures are ToolErrors.
import { execa, type ResultPromise } from "execa";
import { asAbortError } from "../errors.js";
import { ToolError, ToolMissingError } from "./tool-error.js";

export type LineSink = (stream: "stdout" | "stderr", line: string) => void;

export interface RunOptions {
  signal: AbortSignal;
  /** Milliseconds; 0 means no timeout (only for processes whose life the caller manages). */
  timeoutMs?: number;
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string | Buffer;
  /** Each line of output, as it arrives (for debug events and live logs). */
  onLine?: LineSink;
  /** Don't throw on a non-zero exit; the caller reads `exitCode`. */
  reject?: boolean;
  /** Install hint used when the program is missing. */
  installHint?: string;
  /** Redact these substrings from any error text. */
  secrets?: string[];
  /** Not stopped with its process group and not killed when vmkiln exits (a VM): vmkiln shuts it
   *  down itself, and --on-error=abort can leave it running. Every tool has its own process group,
   *  so a terminal's Ctrl-C reaches only vmkiln either way. */
  detached?: boolean;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const STDERR_TAIL_LINES = 15;

export async function run(file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const child = spawnTool(file, args, opts);
  try {
    const r = await child;
    // reject: false is about the exit code: a process stopped by abort or timeout still fails (it
    // has no exit code, and `?? 0` below would have called it a success).
    if (r.isCanceled || r.timedOut || (opts.signal.aborted && r.exitCode === undefined)) throw r;
    const exitCode = r.exitCode ?? 0;
    return { exitCode, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
  } catch (err) {
    throw toToolError(file, args, err, opts);
  }
}

/**
 * Starts a process. Every tool gets a session and process group of its own, so that stopping it
 * (abort, timeout) stops what it started too: a shell's background jobs, ansible's ssh, a script's
 * grandchild that ignores SIGTERM. execa stops only the process it spawned, and a grandchild holding
 * the output pipe kept the run waiting for as long as it lived. A `detached` process (a VM) is the
 * caller's to stop; the signal still kills it.
 */
export function spawnTool(file: string, args: readonly string[], opts: RunOptions): ResultPromise {
  const detached = opts.detached ?? false;
  const child = execa(file, [...args], {
    cancelSignal: opts.signal,
    timeout: opts.timeoutMs && opts.timeoutMs > 0 ? opts.timeoutMs : undefined,
    forceKillAfterDelay: 3000,
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: true,
    input: opts.input,
    reject: opts.reject === false ? false : true,
    stripFinalNewline: false,
    stdin: opts.input === undefined ? "ignore" : "pipe",
    buffer: true,
    maxBuffer: 64 * 1024 * 1024,
    // Own session (setsid) for every tool: its group is ours to signal. execa's exit cleanup skips
    // such children, so stopGroupWhenStopped kills the group when vmkiln exits instead.
    detached: true,
    cleanup: false,
  });
  if (!detached) stopGroupWhenStopped(child, opts);
  if (opts.onLine) attachLines(child, opts.onLine);
  return child;
}

/** How long a stopped tool's group has between SIGTERM and SIGKILL (execa's forceKillAfterDelay too). */
export const STOP_GRACE_MS = 3000;

/** Process groups of running tools, killed if vmkiln exits while they run (a second Ctrl-C). */
const liveGroups = new Set<number>();
let exitHook = false;

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // ESRCH: the group is gone already.
  }
}

/**
 * On abort or timeout: SIGTERM to the tool's whole process group, SIGKILL after STOP_GRACE_MS, and
 * SIGKILL at once to whatever is left of the group when the tool itself has ended. A tool that ends
 * by itself keeps its background jobs (a daemon a shell_local started on purpose).
 */
function stopGroupWhenStopped(child: ResultPromise, opts: RunOptions): void {
  const pgid = child.pid;
  if (pgid === undefined) return; // never started (ENOENT): execa reports it
  liveGroups.add(pgid);
  if (!exitHook) {
    exitHook = true;
    process.once("exit", () => {
      for (const g of liveGroups) signalGroup(g, "SIGKILL");
    });
  }
  let stopping = false;
  let grace: NodeJS.Timeout | undefined;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    signalGroup(pgid, "SIGTERM");
    grace = setTimeout(() => signalGroup(pgid, "SIGKILL"), STOP_GRACE_MS);
    grace.unref();
  };
  const timer = opts.timeoutMs && opts.timeoutMs > 0 ? setTimeout(stop, opts.timeoutMs) : undefined;
  if (opts.signal.aborted) stop();
  else opts.signal.addEventListener("abort", stop, { once: true });
  const settled = () => {
    clearTimeout(timer);
    clearTimeout(grace);
    opts.signal.removeEventListener("abort", stop);
    liveGroups.delete(pgid);
    if (stopping) signalGroup(pgid, "SIGKILL");
  };
  child.then(settled, settled);
}

function attachLines(child: ResultPromise, sink: LineSink): void {
  for (const stream of ["stdout", "stderr"] as const) {
    const s = child[stream];
    if (!s) continue;
    let buf = "";
    s.on("data", (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      // Split on CR too: progress printers (qemu-img -p) redraw a line with a bare "\r".
      let m: RegExpExecArray | null;
      while ((m = /\r?\n|\r/.exec(buf)) !== null) {
        if (m[0] === "\r" && m.index === buf.length - 1) break; // maybe the first half of CRLF
        const line = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        if (line.length > 0 || m[0] !== "\r") sink(stream, line);
      }
    });
    s.on("end", () => {
      if (buf) sink(stream, buf);
      buf = "";
    });
  }
}

export function toToolError(file: string, args: readonly string[], err: unknown, opts: Pick<RunOptions, "signal" | "installHint" | "secrets">): Error {
  const e = err as {
    code?: string;
    exitCode?: number;
    stderr?: unknown;
    isCanceled?: boolean;
    timedOut?: boolean;
    shortMessage?: string;
  };
  if (e.isCanceled || opts.signal.aborted) return asAbortError(opts.signal.reason);
  if (e.code === "ENOENT") {
    return new ToolMissingError(file, opts.installHint ?? `install ${file} and make sure it is on PATH`);
  }
  const command = redact([file, ...args].join(" "), opts.secrets);
  const tail = redact(tailLines(String(e.stderr ?? ""), STDERR_TAIL_LINES), opts.secrets);
  if (e.timedOut) return new ToolError(command, undefined, tail, `${command} timed out`);
  return new ToolError(command, e.exitCode, tail);
}

export function tailLines(text: string, n: number): string {
  const lines = text.replace(/\s+$/, "").split("\n");
  return lines.slice(-n).join("\n");
}

function redact(text: string, secrets: string[] | undefined): string {
  let out = text;
  for (const s of secrets ?? []) if (s) out = out.split(s).join("***");
  return out;
}
