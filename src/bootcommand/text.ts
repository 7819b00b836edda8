// Renders key events back into canonical boot-command text, so driver tests can assert that the
// keys a double recorded decode to exactly the command typed.
//
// Canonical spelling: characters as themselves (space included), other keys as Packer spells
// them (`<enter>`, `<bs>`, `<f1>`, `<leftCtrl>`), holds as `<leftCtrlOn>` / `<aOn>`, waits as
// `<wait5s>` / `<wait1m30s>` / `<wait250ms>`, a typed "${" as "$${" (the parser's escape).
// Parsing the output yields the same events, except that a literal "<" followed by something that
// reads as a token would be re-read as that token, and a typed "{{ … }}" (only a value can type one)
// as a value reference: Packer has no escape for either.
import type { KeyEvent } from "./events.js";
import { formatDuration } from "./duration.js";
import { charsOfKey, SPECIAL_KEY_SPELLING, type KeyName } from "./keys.js";

function tokenName(key: KeyName): string {
  const special = SPECIAL_KEY_SPELLING[key];
  if (special !== undefined) return special;
  // Character keys: Packer's char toggle uses the character itself (<aOn>, <-Off>).
  return charsOfKey(key)!.base;
}

export function eventsToText(events: readonly KeyEvent[]): string {
  let out = "";
  for (const ev of events) {
    switch (ev.kind) {
      case "wait":
        out += `<wait${formatDuration(ev.ms)}>`;
        break;
      case "down":
        out += `<${tokenName(ev.key)}On>`;
        break;
      case "up":
        out += `<${tokenName(ev.key)}Off>`;
        break;
      case "press": {
        const chars = charsOfKey(ev.key);
        if (ev.shift) {
          // A typed "$" then "{" would read back as the start of a value reference (found by fuzzing).
          if (chars?.shifted === "{" && out.endsWith("$")) out += "$";
          out += chars?.shifted ?? `<leftShiftOn><${tokenName(ev.key)}><leftShiftOff>`;
        } else {
          out += chars ? chars.base : `<${tokenName(ev.key)}>`;
        }
        break;
      }
    }
  }
  return out;
}
