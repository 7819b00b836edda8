// Boot-command key events → PC/XT scan code set 1, for `VBoxManage controlvm NAME
// keyboardputscancode 2a 1e 9e aa`. Make code on press, break = make | 0x80 on release; the
// "extended" keys (right Ctrl/Alt, the navigation block, arrows, Windows and Menu keys) carry an
// e0 prefix on both make and break. Codes are the published set-1 table (IBM PC/AT, as in
// Microsoft's "Keyboard Scan Code Specification").
//
// Codes go out in groups, one VBoxManage call each: long single calls drop keys (Packer sends
// about 25 codes per call), and an e0 prefix is never separated from its code.
import { UserError } from "../../src/errors.js";
import type { KeyEvent, KeyTransition } from "../../src/bootcommand/events.js";
import { KEY_NAMES, type KeyName } from "../../src/bootcommand/keys.js";
import { fromTransitions, toTransitions } from "../../src/bootcommand/transitions.js";

/** Make code and whether it is an e0-prefixed extended key. */
export const SET1: Readonly<Record<KeyName, { make: number; extended?: true }>> = {
  esc: { make: 0x01 },
  "1": { make: 0x02 }, "2": { make: 0x03 }, "3": { make: 0x04 }, "4": { make: 0x05 }, "5": { make: 0x06 },
  "6": { make: 0x07 }, "7": { make: 0x08 }, "8": { make: 0x09 }, "9": { make: 0x0a }, "0": { make: 0x0b },
  minus: { make: 0x0c }, equal: { make: 0x0d }, backspace: { make: 0x0e }, tab: { make: 0x0f },
  q: { make: 0x10 }, w: { make: 0x11 }, e: { make: 0x12 }, r: { make: 0x13 }, t: { make: 0x14 },
  y: { make: 0x15 }, u: { make: 0x16 }, i: { make: 0x17 }, o: { make: 0x18 }, p: { make: 0x19 },
  bracketLeft: { make: 0x1a }, bracketRight: { make: 0x1b }, enter: { make: 0x1c }, leftCtrl: { make: 0x1d },
  a: { make: 0x1e }, s: { make: 0x1f }, d: { make: 0x20 }, f: { make: 0x21 }, g: { make: 0x22 },
  h: { make: 0x23 }, j: { make: 0x24 }, k: { make: 0x25 }, l: { make: 0x26 },
  semicolon: { make: 0x27 }, quote: { make: 0x28 }, backquote: { make: 0x29 }, leftShift: { make: 0x2a },
  backslash: { make: 0x2b },
  z: { make: 0x2c }, x: { make: 0x2d }, c: { make: 0x2e }, v: { make: 0x2f }, b: { make: 0x30 },
  n: { make: 0x31 }, m: { make: 0x32 },
  comma: { make: 0x33 }, period: { make: 0x34 }, slash: { make: 0x35 }, rightShift: { make: 0x36 },
  leftAlt: { make: 0x38 }, space: { make: 0x39 },
  f1: { make: 0x3b }, f2: { make: 0x3c }, f3: { make: 0x3d }, f4: { make: 0x3e }, f5: { make: 0x3f },
  f6: { make: 0x40 }, f7: { make: 0x41 }, f8: { make: 0x42 }, f9: { make: 0x43 }, f10: { make: 0x44 },
  f11: { make: 0x57 }, f12: { make: 0x58 },
  rightCtrl: { make: 0x1d, extended: true }, rightAlt: { make: 0x38, extended: true },
  home: { make: 0x47, extended: true }, up: { make: 0x48, extended: true }, pageUp: { make: 0x49, extended: true },
  left: { make: 0x4b, extended: true }, right: { make: 0x4d, extended: true }, end: { make: 0x4f, extended: true },
  down: { make: 0x50, extended: true }, pageDown: { make: 0x51, extended: true },
  insert: { make: 0x52, extended: true }, delete: { make: 0x53, extended: true },
  leftSuper: { make: 0x5b, extended: true }, rightSuper: { make: 0x5c, extended: true },
  menu: { make: 0x5d, extended: true },
};

const BY_CODE: ReadonlyMap<number, KeyName> = new Map(
  KEY_NAMES.map((k) => [(SET1[k].extended ? 0xe000 : 0) | SET1[k].make, k]),
);

/** One `keyboardputscancode` call's arguments, or a pause between calls. */
export type ScancodeGroup = { codes: string[] } | { waitMs: number };

export const DEFAULT_MAX_CODES_PER_GROUP = 25;

const hex = (n: number): string => n.toString(16).padStart(2, "0");

/** Scan codes (two-digit lower-case hex) for one transition: [e0,] make or break. */
export function transitionCodes(t: { kind: "down" | "up"; key: KeyName }): string[] {
  const { make, extended } = SET1[t.key];
  const code = hex(t.kind === "down" ? make : make | 0x80);
  return extended ? ["e0", code] : [code];
}

export function toScancodeGroups(
  events: readonly KeyEvent[],
  opts: { maxCodesPerGroup?: number } = {},
): ScancodeGroup[] {
  const max = opts.maxCodesPerGroup ?? DEFAULT_MAX_CODES_PER_GROUP;
  if (!Number.isInteger(max) || max < 2) {
    throw new UserError("SCANCODE_GROUP_SIZE", `scan code group size must be an integer of at least 2 (an e0 pair), got ${max}`);
  }
  const groups: ScancodeGroup[] = [];
  let current: string[] = [];
  const flush = (): void => {
    if (current.length > 0) groups.push({ codes: current });
    current = [];
  };
  for (const t of toTransitions(events)) {
    if (t.kind === "wait") {
      flush();
      groups.push({ waitMs: t.ms });
      continue;
    }
    const codes = transitionCodes(t);
    if (current.length + codes.length > max) flush();
    current.push(...codes);
  }
  flush();
  return groups;
}

/** Transitions for a flat list of scan codes (case-insensitive hex). Throws on unknown codes. */
export function scancodesToTransitions(codes: readonly string[]): KeyTransition[] {
  const out: KeyTransition[] = [];
  for (let i = 0; i < codes.length; i++) {
    let n = parseHex(codes[i]!);
    let prefix = 0;
    if (n === 0xe0) {
      const next = codes[i + 1];
      if (next === undefined) throw new Error(`scan code e0 at index ${i} has no code after it`);
      n = parseHex(next);
      prefix = 0xe000;
      i++;
    }
    const key = BY_CODE.get(prefix | (n & 0x7f));
    if (key === undefined) throw new Error(`unknown scan code ${prefix ? "e0 " : ""}${hex(n)} at index ${i}`);
    out.push({ kind: n & 0x80 ? "up" : "down", key });
  }
  return out;
}

function parseHex(s: string): number {
  if (!/^[0-9a-fA-F]{2}$/.test(s)) throw new Error(`not a two-digit hex scan code: "${s}"`);
  return parseInt(s, 16);
}

/** Decodes scan codes (e.g. what the VBoxManage double recorded) into canonical events. */
export function scancodesToEvents(codes: readonly string[]): KeyEvent[] {
  return fromTransitions(scancodesToTransitions(codes));
}

/** Decodes groups, pauses included. */
export function scancodeGroupsToEvents(groups: readonly ScancodeGroup[]): KeyEvent[] {
  return fromTransitions(
    groups.flatMap((g): KeyTransition[] => ("waitMs" in g ? [{ kind: "wait", ms: g.waitMs }] : scancodesToTransitions(g.codes))),
  );
}
