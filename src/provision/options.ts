// Options every provisioner kind takes (Packer's names): only/except per driver, pause_before,
// timeout per attempt, max_retries. Applied uniformly by the provision step, never by a provisioner.
import { AbortError, BuildError, UserError, VmkilnError, asAbortError, messageOf } from "../errors.js";
import type { EventBus } from "../log/events.js";
import type { ProvisionerOptions } from "../template/spec.js";
import { abortable, sleep } from "../util/abort.js";

/** Whether a provisioner runs with this driver: `only` lists the drivers it runs on, `except` the ones it skips. */
export function appliesTo(o: Pick<ProvisionerOptions, "only" | "except">, driver: string): boolean {
  if (o.only !== undefined && !(o.only as string[]).includes(driver)) return false;
  return !(o.except as string[]).includes(driver);
}

export interface AttemptHooks {
  events: EventBus;
  label: string;
  /** Between attempts (e.g. reconnect SSH when the failed attempt left the session dead). */
  beforeRetry?: (attempt: number, signal: AbortSignal) => Promise<void>;
  /** Pause between attempts; Packer waits too, so a transient failure (apt lock, mirror) can clear. */
  retryDelayMs?: number;
}

/**
 * Runs `attempt` after `pause_before`, at most 1 + max_retries times, each limited to `timeout`.
 * The attempt gets a signal that fires on the build's abort or on its own timeout. A UserError (the
 * template is wrong, a tool is missing) is not retried: running it again cannot help.
 */
export async function runWithOptions(o: ProvisionerOptions, signal: AbortSignal, attempt: (signal: AbortSignal, n: number) => Promise<void>, hooks: AttemptHooks): Promise<{ attempts: number }> {
  if (o.pauseBeforeMs > 0) {
    hooks.events.info(`${hooks.label}: pause_before: waiting ${fmtSeconds(o.pauseBeforeMs)}`, "provision");
    await sleep(o.pauseBeforeMs, signal);
  }
  const tries = 1 + o.maxRetries;
  for (let n = 1; ; n++) {
    try {
      await runAttempt(o.timeoutMs, signal, (s) => attempt(s, n), hooks.label);
      return { attempts: n };
    } catch (err) {
      if (signal.aborted) throw asAbortError(signal.reason);
      if (err instanceof UserError || err instanceof AbortError) throw err;
      if (n >= tries) {
        if (tries === 1) throw err;
        const code = err instanceof VmkilnError ? err.code : "PROVISION_FAILED";
        const hint = err instanceof VmkilnError ? err.hint : undefined;
        throw new BuildError(code, `${messageOf(err)} (failed ${tries} attempts; this was the last)`, { cause: err, hint });
      }
      const delay = hooks.retryDelayMs ?? 2000;
      hooks.events.warn(`${hooks.label}: attempt ${n} of ${tries} failed: ${messageOf(err)}; retrying in ${fmtSeconds(delay)}`, "provision");
      await sleep(delay, signal);
      await hooks.beforeRetry?.(n, signal);
    }
  }
}

async function runAttempt(timeoutMs: number | undefined, signal: AbortSignal, fn: (s: AbortSignal) => Promise<void>, label: string): Promise<void> {
  if (timeoutMs === undefined) return fn(signal);
  const local = new AbortController();
  const onAbort = () => local.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  const timedOut = new BuildError("PROVISION_TIMEOUT", `${label}: timed out after ${fmtSeconds(timeoutMs)} (timeout)`);
  const timer = setTimeout(() => local.abort(timedOut), timeoutMs);
  try {
    // abortable: a provisioner that ignores its signal still ends the attempt at the deadline.
    await abortable(fn(local.signal), local.signal);
  } catch (err) {
    if (!signal.aborted && local.signal.aborted && local.signal.reason === timedOut) throw timedOut;
    throw err;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}

function fmtSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
