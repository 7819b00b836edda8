// The parsed form of a boot command: a flat list of key events, produced once by parse.ts and
// consumed by every encoder.
import type { KeyName } from "./keys.js";

/**
 * - `press`: the key goes down and up. `shift: true` means "with the left Shift held around it";
 *   literal upper-case letters and shifted symbols (`A`, `:`, `|`) parse to this form. Keeping
 *   Shift a flag on the press (rather than down-shift/press/up-shift) lets the QEMU encoder emit
 *   one chord `[shift, a]`, the vSphere encoder set `modifiers.leftShift` on one event, and the
 *   PS/2 encoder wrap it in 2a … aa, with no modifier state to track for ordinary text.
 * - `down`/`up`: a key held until released (Packer's `<leftCtrlOn>` / `<leftCtrlOff>`).
 * - `wait`: a pause in milliseconds (`<wait>`, `<wait5>`, `<wait1m30s>`).
 */
export type KeyEvent =
  | { kind: "press"; key: KeyName; shift?: boolean }
  | { kind: "down"; key: KeyName }
  | { kind: "up"; key: KeyName }
  | { kind: "wait"; ms: number };

/** A key going down or up, or a pause: the raw form PS/2 and QMP input-send-event speak. */
export type KeyTransition = Extract<KeyEvent, { kind: "down" | "up" | "wait" }>;

/**
 * Inserts a `wait` of `ms` between every two consecutive key events (Packer's
 * `boot_key_interval`). Drivers that pace their own sends need not use it; it exists so a driver
 * can turn pacing into plain data before encoding.
 */
export function withKeyInterval(events: readonly KeyEvent[], ms: number): KeyEvent[] {
  if (!(ms > 0)) return [...events];
  const out: KeyEvent[] = [];
  let prev: KeyEvent | undefined;
  for (const ev of events) {
    if (prev !== undefined && prev.kind !== "wait" && ev.kind !== "wait") out.push({ kind: "wait", ms });
    out.push(ev);
    prev = ev;
  }
  return out;
}
