// Runs steps in order with an undo stack (docs/architecture.md "Steps and undo"). On failure or abort the
// stack is undone in reverse order and cleanup errors are joined, not swallowed.
import { AbortError, BuildError, VmkilnError, asAbortError, isAbortLike, messageOf } from "../errors.js";
import type { BuildContext, Undo } from "./context.js";
import type { Step } from "./step.js";

export interface RunStepsResult {
  ok: boolean;
  error?: VmkilnError;
  cleanupErrors: string[];
}

/**
 * Runs `steps`. Returns the outcome rather than throwing so the caller can still write what it
 * needs (events, exit code). Undo entries registered with ctx.defer run:
 * - always, in reverse order, after the last step (success or failure) unless onlyOnFailure;
 * - entries with onlyOnFailure only when the build failed.
 * With onError "abort", nothing is undone on failure (the user inspects the leftovers).
 */
export async function runSteps(ctx: BuildContext, undos: Undo[], steps: Step[], signal: AbortSignal): Promise<RunStepsResult> {
  let error: VmkilnError | undefined;
  for (const [index, step] of steps.entries()) {
    if (signal.aborted) {
      error = asAbortError(signal.reason);
      break;
    }
    try {
      await ctx.options.beforeStep?.(ctx, step.name, signal); // --debug step mode: pause, not timed
    } catch (err) {
      error = classify(err, signal);
      break;
    }
    const started = performance.now();
    ctx.events.emit({ type: "step-start", step: step.name, index, total: steps.length });
    try {
      await step.run(ctx, signal);
      const durationMs = Math.round(performance.now() - started);
      ctx.timings.push({ step: step.name, durationMs, ok: true });
      ctx.events.emit({ type: "step-end", step: step.name, ok: true, durationMs });
    } catch (err) {
      error = classify(err, signal);
      const durationMs = Math.round(performance.now() - started);
      ctx.timings.push({ step: step.name, durationMs, ok: false });
      ctx.events.emit({ type: "step-end", step: step.name, ok: false, durationMs, error: error.message });
      break;
    }
  }

  const failed = error !== undefined;
  const cleanupErrors: string[] = [];
  if (failed && ctx.options.onError === "abort" && !(error instanceof AbortError)) {
    ctx.events.warn(`--on-error=abort: leaving ${undos.length} thing(s) in place for inspection (build dir ${ctx.buildDir}); run 'vmkiln gc' to remove them`);
    return { ok: false, error: error!, cleanupErrors };
  }
  while (undos.length > 0) {
    const undo = undos.pop()!;
    if (undo.onlyOnFailure && !failed) continue;
    try {
      await undo.fn();
      ctx.events.emit({ type: "cleanup", what: undo.what, ok: true });
    } catch (err) {
      cleanupErrors.push(`${undo.what}: ${messageOf(err)}`);
      ctx.events.emit({ type: "cleanup", what: undo.what, ok: false, error: messageOf(err) });
    }
  }
  if (failed) return { ok: false, error: error!, cleanupErrors };
  if (cleanupErrors.length > 0) {
    return { ok: false, error: new BuildError("CLEANUP_FAILED", `cleanup failed: ${cleanupErrors.join("; ")}`), cleanupErrors };
  }
  return { ok: true, cleanupErrors };
}

function classify(err: unknown, signal: AbortSignal): VmkilnError {
  if (signal.aborted) return asAbortError(signal.reason);
  if (err instanceof VmkilnError) return err;
  if (isAbortLike(err)) return asAbortError(err);
  return new BuildError("INTERNAL", messageOf(err), { cause: err });
}
