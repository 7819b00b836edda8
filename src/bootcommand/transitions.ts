// Presses ⇄ raw key transitions. The PS/2 (VirtualBox) and QMP input-send-event encoders speak in
// key-down/key-up; this module expands presses into transitions and folds transitions back into
// the canonical events the parser would have produced, so decoders share one normalisation.
import type { KeyEvent, KeyTransition } from "./events.js";
import { hasShiftedChar, isModifier, type KeyName } from "./keys.js";

/** Tracks held keys across events; `expand` turns one event into its transitions. */
export class TransitionEncoder {
  private readonly held = new Set<KeyName>();

  expand(ev: KeyEvent): KeyTransition[] {
    switch (ev.kind) {
      case "wait":
        return [ev];
      case "down":
        this.held.add(ev.key);
        return [{ kind: "down", key: ev.key }];
      case "up":
        this.held.delete(ev.key);
        return [{ kind: "up", key: ev.key }];
      case "press": {
        const base: KeyTransition[] = [
          { kind: "down", key: ev.key },
          { kind: "up", key: ev.key },
        ];
        // A Shift the user already holds (<leftShiftOn>) must not be pressed again: its release
        // would end the user's hold early.
        if (!ev.shift || this.held.has("leftShift") || this.held.has("rightShift")) return base;
        return [{ kind: "down", key: "leftShift" }, ...base, { kind: "up", key: "leftShift" }];
      }
    }
  }
}

export function toTransitions(events: readonly KeyEvent[]): KeyTransition[] {
  const enc = new TransitionEncoder();
  return events.flatMap((ev) => enc.expand(ev));
}

/**
 * Folds transitions into canonical events: `down X, up X` → press X; `down leftShift, down X,
 * up X, up leftShift` → press X with shift when Shift+X types a character. Anything else stays a
 * down/up. Lossy on purpose: `<leftShiftOn>a<leftShiftOff>` and `A` encode identically, and
 * decode to `A`.
 */
export function fromTransitions(transitions: readonly KeyTransition[]): KeyEvent[] {
  const out: KeyEvent[] = [];
  let i = 0;
  while (i < transitions.length) {
    const t0 = transitions[i]!;
    const t1 = transitions[i + 1];
    const t2 = transitions[i + 2];
    const t3 = transitions[i + 3];
    if (
      t0.kind === "down" && t0.key === "leftShift" &&
      t1?.kind === "down" && !isModifier(t1.key) && hasShiftedChar(t1.key) &&
      t2?.kind === "up" && t2.key === t1.key &&
      t3?.kind === "up" && t3.key === "leftShift"
    ) {
      out.push({ kind: "press", key: t1.key, shift: true });
      i += 4;
    } else if (t0.kind === "down" && t1?.kind === "up" && t1.key === t0.key) {
      out.push({ kind: "press", key: t0.key });
      i += 2;
    } else {
      out.push(t0);
      i += 1;
    }
  }
  return out;
}
