// The power-off escalation every driver's `shutdown()` follows (docs/architecture.md "Shutdown"):
// wait for the guest's own power-off, then ask the guest OS to shut down (ACPI power button, VMware
// Tools), then cut the power. Driver-blind: each driver hands in its three primitives
// (how it sees "off", how it asks, how it forces); the order, the timings and the messages are here.
import { BuildError, asAbortError, isAbortLike } from "../errors.js";
import type { EventBus } from "../log/events.js";

/** How long a guest that already ran its power-off command gets to act on the request (ACPI,
 *  ShutdownGuest) at most, and how long a forced power-off may take to show. */
export const ASK_GRACE_MS = 60_000;
export const FORCE_GRACE_MS = 60_000;

export interface PowerOffPrimitives {
  /** Resolves true once the VM is off, false when `timeoutMs` passes first (0: look once). Rejects
   *  when the signal aborts. */
  waitOff(timeoutMs: number, signal: AbortSignal): Promise<boolean>;
  /** Asks the guest OS to shut down (ACPI power button, VMware Tools ShutdownGuest). A failure is
   *  reported as a warning and the escalation goes on (the force follows). */
  ask(signal: AbortSignal): Promise<void>;
  /** What `ask` does, for messages: "ACPI power button", "ShutdownGuest". */
  askName: string;
  /** Cuts the power. */
  force(signal: AbortSignal): Promise<void>;
}

export interface PowerOffOptions {
  /** shutdown.timeout: how long to wait for the guest's own power-off, and for the request. */
  timeoutMs: number;
  /** The build's power-off command ran (or the connection dropped as the guest went down): wait for
   *  the guest first. Otherwise ask right away. */
  guestInitiated: boolean;
  events: EventBus;
  /** The event source (the driver's name). */
  source: string;
  /** For the error message when even the forced power-off does not show. */
  vmName: string;
}

/**
 * Resolves when the VM is off. Phases: (1) with `guestInitiated`, wait `timeoutMs` for the guest's
 * own power-off; (2) ask, then wait min(`timeoutMs`, ASK_GRACE_MS) (`timeoutMs` when the guest was
 * not asked before); (3) force, then wait
 * FORCE_GRACE_MS, and throw BuildError POWER_OFF_FAILED if the VM still runs. Every wait takes the
 * signal; an abort in any phase rejects with AbortError and skips the later phases (undo destroys
 * the VM).
 */
export async function escalatePowerOff(p: PowerOffPrimitives, o: PowerOffOptions, signal: AbortSignal): Promise<void> {
  try {
    await escalate(p, o, signal);
  } catch (err) {
    // A driver's wait may reject with the signal's raw reason (a DOMException): one error family.
    if (signal.aborted) throw asAbortError(signal.reason);
    throw err;
  }
}

async function escalate(p: PowerOffPrimitives, o: PowerOffOptions, signal: AbortSignal): Promise<void> {
  const seconds = (ms: number) => Math.round(ms / 1000);
  if (o.guestInitiated) {
    if (await p.waitOff(o.timeoutMs, signal)) return;
    o.events.warn(`the guest did not power off within ${seconds(o.timeoutMs)} s: asking it to shut down (${p.askName})`, o.source);
  } else {
    if (await p.waitOff(0, signal)) return;
    o.events.info(`asking the guest to shut down (${p.askName})`, o.source);
  }

  try {
    await p.ask(signal);
  } catch (err) {
    if (signal.aborted || isAbortLike(err)) throw err;
    o.events.warn(`could not ask the guest to shut down (${p.askName}): ${(err as Error).message}`, o.source);
  }
  // The guest already had `timeoutMs` to act on its own power-off command: the request gets at most
  // ASK_GRACE_MS more. Without that command, the request is the first the guest hears: `timeoutMs`.
  const askWait = o.guestInitiated ? Math.min(o.timeoutMs, ASK_GRACE_MS) : o.timeoutMs;
  if (await p.waitOff(askWait, signal)) return;

  o.events.warn(`the guest did not power off within ${seconds(askWait)} s of the request (${p.askName}): forcing power off`, o.source);
  await p.force(signal);
  if (!(await p.waitOff(FORCE_GRACE_MS, signal))) {
    throw new BuildError("POWER_OFF_FAILED", `VM ${o.vmName} is still running ${seconds(FORCE_GRACE_MS)} s after a forced power off`);
  }
}
