// Decoding chord-based encodings (QMP send-key, vSphere USB HID events) back into key events.
// Both can only say "these modifiers are down while this key is pressed", so a held modifier shows
// up on every chord; the decoder turns runs of it back into one down/up pair.
import type { KeyEvent } from "./events.js";
import { hasShiftedChar, type KeyName } from "./keys.js";

export type Chord = { mods: readonly KeyName[]; key: KeyName } | { waitMs: number };

/**
 * Shift folds into the press when it makes a character (`A`, `:`); other modifiers become `down`
 * before the first chord that has them and `up` before the first that lacks them (and at the end,
 * in reverse order), keeping the order they went down in.
 */
export function chordsToEvents(chords: Iterable<Chord>): KeyEvent[] {
  const out: KeyEvent[] = [];
  const held: KeyName[] = [];
  const sync = (want: readonly KeyName[]): void => {
    for (const k of [...held].reverse()) {
      if (!want.includes(k)) {
        out.push({ kind: "up", key: k });
        held.splice(held.indexOf(k), 1);
      }
    }
    for (const k of want) {
      if (!held.includes(k)) {
        out.push({ kind: "down", key: k });
        held.push(k);
      }
    }
  };
  for (const c of chords) {
    if ("waitMs" in c) {
      out.push({ kind: "wait", ms: c.waitMs });
      continue;
    }
    let mods = [...c.mods];
    // Fold only when Left Shift is the chord's one Shift: with Right Shift down too, the encoders
    // send `A` as [shift_r, a] (they add no second Shift), so folding [shift_r, shift, a] into
    // `<rightShiftOn>A` decoded differently the second time round (found by fuzzing).
    const shift =
      mods.includes("leftShift") && !held.includes("leftShift") && !mods.includes("rightShift") && !held.includes("rightShift") && hasShiftedChar(c.key);
    if (shift) mods = mods.filter((m) => m !== "leftShift");
    sync([...held.filter((h) => mods.includes(h)), ...mods.filter((m) => !held.includes(m))]);
    out.push(shift ? { kind: "press", key: c.key, shift: true } : { kind: "press", key: c.key });
  }
  sync([]);
  return out;
}
