// Packer-compatible boot_command parser: substitute values, then turn text into KeyEvent[] once.
//
// Grammar (Packer's, matched case-insensitively):
//   <wait> = 1 s · <waitN> = N seconds · <wait1m30s>, <wait250ms> = Go duration
//   <bs> <del> <enter> <return> <esc> <tab> <spacebar> <insert> <home> <end> <pageUp> <pageDown>
//   <up> <down> <left> <right> <f1>…<f12> <menu> <leftAlt> <rightAlt> <leftCtrl> <rightCtrl>
//   <leftShift> <rightShift> <leftSuper> <rightSuper>                         → press
//   <NAMEOn> / <NAMEOff> for any of those keys                                → down / up
//   <cOn> / <cOff> for a single character c (Packer's "char toggle")         → down / up
//   anything else: typed literally, character by character.
// Packer types an unknown `<foo>` as the six characters `<foo>`; `strict: true` rejects it.
//
// Beyond Packer: "\n" (or "\r\n") types Enter and "\t" types Tab, so YAML block scalars work; any
// other control or non-ASCII character is rejected (only a US layout is modelled, and guessing
// a key for "é" would type something else silently).
import { UserError } from "../errors.js";
import type { KeyEvent } from "./events.js";
import { parseGoDuration } from "./duration.js";
import { keyForChar, SPECIAL_KEYS } from "./keys.js";
import { substituteValues, type BootCommandValues } from "./values.js";

export interface ParseOptions {
  /** Values for `{{ .HTTPIP }}` / `${http.ip}` etc. */
  values?: BootCommandValues;
  /** Reject `<word>` tokens that are not keys or waits instead of typing them (default false). */
  strict?: boolean;
  /**
   * Told about each `<word>` that is not a key or a wait and is typed as text (Packer's behaviour,
   * and almost always a typo such as `<enterr>`): `element` indexes the list, `column` is 1-based.
   */
  onUnknownToken?: (unknown: UnknownToken) => void;
}

export interface UnknownToken {
  element: number;
  column: number;
  /** As written, with its angle brackets. */
  token: string;
}

/** The longest wait a timer can hold (Node's setTimeout limit, 2^31-1 ms). */
const MAX_WAIT_MS = 2 ** 31 - 1;

/** A `<…>` that is meant as a token: what strict mode checks (a word, maybe with digits/dots). */
const TOKEN_LIKE = /<([A-Za-z][A-Za-z0-9 ._µμ]{0,40})>/y;
/** Any `<…>` Packer could read as a token: one or more non-`<>` characters. */
const TOKEN = /<([^<>]{1,48})>/y;

/** Parses Packer's `boot_command` (a list of strings typed as one) into key events. */
export function parseBootCommand(commands: string | readonly string[], opts: ParseOptions = {}): KeyEvent[] {
  const list = typeof commands === "string" ? [commands] : commands;
  const values = opts.values ?? {};
  // Substitute per element so errors can name the element; Packer joins the list with "" first,
  // so tokens may still span elements and positions map back through `starts`.
  const parts = list.map((c, i) => substituteValues(c, values, `boot_command[${i}]`));
  const text = parts.join("");
  const starts: number[] = [];
  let acc = 0;
  for (const p of parts) {
    starts.push(acc);
    acc += p.length;
  }
  const locate = (pos: number): { element: number; column: number } => {
    let idx = parts.length - 1;
    for (let j = 0; j < parts.length; j++) {
      if (pos >= starts[j]! && pos < starts[j]! + parts[j]!.length) {
        idx = j;
        break;
      }
    }
    return { element: idx, column: pos - starts[idx]! + 1 };
  };
  const where = (pos: number): string => {
    const { element, column } = locate(pos);
    return `boot_command[${element}], column ${column}`;
  };

  const out: KeyEvent[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === "<") {
      TOKEN.lastIndex = i;
      const m = TOKEN.exec(text);
      const events = m ? tokenEvents(m[1]!) : undefined;
      const wait = events?.find((e) => e.kind === "wait" && e.ms > MAX_WAIT_MS);
      if (wait) {
        // A longer setTimeout fires after 1 ms (Node caps timers at 2^31-1 ms): <wait30d> was no wait.
        throw new UserError("BOOT_COMMAND_INVALID", `${where(i)}: ${m![0]} is too long: a wait is at most 596h31m23s (about 24.8 days)`);
      }
      if (m && events) {
        out.push(...events);
        i += m[0].length;
        continue;
      }
      TOKEN_LIKE.lastIndex = i;
      const like = TOKEN_LIKE.exec(text);
      if (like && opts.strict) {
        throw new UserError("BOOT_COMMAND_INVALID", `${where(i)}: unknown key ${like[0]}`, {
          hint: "keys are <enter> <esc> <tab> <bs> <del> <spacebar> <f1>…<f12> <up> <leftCtrlOn> … and waits <wait>, <wait5>, <wait1m30s>; without strict mode (Packer's behaviour) an unknown token is typed as text",
        });
      }
      if (like) opts.onUnknownToken?.({ ...locate(i), token: like[0] });
      // Not a token: the "<" is typed like any character (Packer's behaviour).
    }
    if (ch === "\r") {
      out.push({ kind: "press", key: "enter" });
      i += text[i + 1] === "\n" ? 2 : 1;
      continue;
    }
    if (ch === "\n") {
      out.push({ kind: "press", key: "enter" });
      i += 1;
      continue;
    }
    if (ch === "\t") {
      out.push({ kind: "press", key: "tab" });
      i += 1;
      continue;
    }
    const k = keyForChar(ch);
    if (!k) {
      const cp = ch.codePointAt(0)!;
      const shown = cp < 0x20 || cp === 0x7f ? "" : ` "${String.fromCodePoint(cp)}"`;
      throw new UserError(
        "BOOT_COMMAND_INVALID",
        `${where(i)}: cannot type${shown} (U+${cp.toString(16).toUpperCase().padStart(4, "0")}): only printable US-ASCII, newline and tab can be typed`,
      );
    }
    out.push(k.shift ? { kind: "press", key: k.key, shift: true } : { kind: "press", key: k.key });
    i += 1;
  }
  return out;
}

/** Events for the inside of a `<…>`, or undefined when it is not a token Packer knows. */
function tokenEvents(inner: string): KeyEvent[] | undefined {
  const lower = inner.toLowerCase();
  if (lower.startsWith("wait")) {
    const arg = inner.slice(4);
    if (arg === "") return [{ kind: "wait", ms: 1000 }];
    // A bare integer is seconds (<wait5>, <wait10>); otherwise a Go duration with units.
    const ms = /^\d+$/.test(arg) ? Number(arg) * 1000 : parseGoDuration(arg);
    return ms === undefined ? undefined : [{ kind: "wait", ms }];
  }
  const special = SPECIAL_KEYS.get(lower);
  if (special) return [{ kind: "press", key: special }];
  const toggle = /^(.+?)(on|off)$/.exec(lower);
  if (!toggle) return undefined;
  const kind = toggle[2] === "on" ? "down" : "up";
  const name = toggle[1]!;
  const key = SPECIAL_KEYS.get(name);
  if (key) return [{ kind, key }];
  // Packer's char toggle: exactly one character (use the original case: <AOn> holds Shift too).
  const ch = inner.slice(0, inner.length - toggle[2]!.length);
  if ([...ch].length !== 1) return undefined;
  const k = keyForChar(ch);
  if (!k) return undefined;
  if (!k.shift) return [{ kind, key: k.key }];
  return kind === "down"
    ? [{ kind: "down", key: "leftShift" }, { kind: "down", key: k.key }]
    : [{ kind: "up", key: k.key }, { kind: "up", key: "leftShift" }];
}
