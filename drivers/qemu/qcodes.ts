// Boot-command key events → QEMU QMP keyboard input, two ways:
//
// 1. `send-key` (toSendKeyCalls): each call is one chord — QEMU presses every listed key in
//    order, holds them `hold-time` ms, then releases them. It cannot leave a key held between
//    calls, so a modifier held with `<leftCtrlOn>` is emulated by adding it to every chord until
//    `<leftCtrlOff>`; a `<leftCtrlOn><leftCtrlOff>` with nothing in between sends nothing, and a
//    held non-modifier key (`<aOn>`) is typed once at its On and its Off is dropped.
// 2. `input-send-event` (toInputSendEvents): raw key-down/key-up events, exact hold semantics.
//    One call per boot-command event so the driver can pace calls by boot_key_interval.
//
// Names are QEMU's QKeyCode enum (qapi/ui.json). The Application/context-menu key is "compose"
// there: QEMU's "menu" qcode is Linux KEY_MENU (USB HID 0x76), not the PC Menu key (set-1 e0 5d,
// HID 0x65) that Packer's <menu> means.
import type { KeyEvent, KeyTransition } from "../../src/bootcommand/events.js";
import { isModifier, KEY_NAMES, type KeyName, type ModifierKey } from "../../src/bootcommand/keys.js";
import { fromTransitions, TransitionEncoder } from "../../src/bootcommand/transitions.js";
import { chordsToEvents, type Chord } from "../../src/bootcommand/chords.js";

export const QCODES: Readonly<Record<KeyName, string>> = {
  a: "a", b: "b", c: "c", d: "d", e: "e", f: "f", g: "g", h: "h", i: "i", j: "j", k: "k", l: "l", m: "m",
  n: "n", o: "o", p: "p", q: "q", r: "r", s: "s", t: "t", u: "u", v: "v", w: "w", x: "x", y: "y", z: "z",
  "0": "0", "1": "1", "2": "2", "3": "3", "4": "4", "5": "5", "6": "6", "7": "7", "8": "8", "9": "9",
  minus: "minus", equal: "equal", bracketLeft: "bracket_left", bracketRight: "bracket_right",
  backslash: "backslash", semicolon: "semicolon", quote: "apostrophe", backquote: "grave_accent",
  comma: "comma", period: "dot", slash: "slash", space: "spc",
  f1: "f1", f2: "f2", f3: "f3", f4: "f4", f5: "f5", f6: "f6",
  f7: "f7", f8: "f8", f9: "f9", f10: "f10", f11: "f11", f12: "f12",
  enter: "ret", esc: "esc", tab: "tab", backspace: "backspace", delete: "delete", insert: "insert",
  home: "home", end: "end", pageUp: "pgup", pageDown: "pgdn",
  up: "up", down: "down", left: "left", right: "right", menu: "compose",
  leftShift: "shift", rightShift: "shift_r", leftCtrl: "ctrl", rightCtrl: "ctrl_r",
  leftAlt: "alt", rightAlt: "alt_r", leftSuper: "meta_l", rightSuper: "meta_r",
};

const BY_QCODE: ReadonlyMap<string, KeyName> = new Map(KEY_NAMES.map((k) => [QCODES[k], k]));

export interface QKeyValue {
  type: "qcode";
  data: string;
}

/** One QMP `send-key` call (the driver sends `hold-time` from holdTimeMs), or a pause. */
export type SendKeyCall = { keys: QKeyValue[]; holdTimeMs?: number } | { waitMs: number };

/** One QMP `input-send-event` call, or a pause. */
export type InputSendEventCall =
  | { events: Array<{ type: "key"; data: { down: boolean; key: QKeyValue } }> }
  | { waitMs: number };

function qkey(key: KeyName): QKeyValue {
  return { type: "qcode", data: QCODES[key] };
}

function keyOf(data: string): KeyName {
  const key = BY_QCODE.get(data);
  if (key === undefined) throw new Error(`unknown qcode "${data}"`);
  return key;
}

export function toSendKeyCalls(events: readonly KeyEvent[], opts: { holdTimeMs?: number } = {}): SendKeyCall[] {
  const held: ModifierKey[] = []; // in the order they went down
  const calls: SendKeyCall[] = [];
  const chord = (key: KeyName, shift: boolean): void => {
    const keys: KeyName[] = [...held];
    if (shift && !held.includes("leftShift") && !held.includes("rightShift")) keys.push("leftShift");
    if (!keys.includes(key)) keys.push(key);
    const call: SendKeyCall = { keys: keys.map(qkey) };
    if (opts.holdTimeMs !== undefined) call.holdTimeMs = opts.holdTimeMs;
    calls.push(call);
  };
  for (const ev of events) {
    if (ev.kind === "wait") calls.push({ waitMs: ev.ms });
    else if (ev.kind === "press") chord(ev.key, ev.shift === true);
    else if (isModifier(ev.key)) {
      const at = held.indexOf(ev.key);
      if (ev.kind === "down" && at < 0) held.push(ev.key);
      if (ev.kind === "up" && at >= 0) held.splice(at, 1);
    } else if (ev.kind === "down") {
      chord(ev.key, false); // send-key cannot hold a key: type it once
    }
  }
  return calls;
}

/**
 * Decodes send-key calls back into events: the last key of a chord is the key pressed, the others
 * are modifiers — Shift folds into the press when it makes a character; other modifiers become
 * `down` before the first chord that has them and `up` before the first that lacks them (and at
 * the end, in reverse order).
 */
export function sendKeyCallsToEvents(calls: readonly SendKeyCall[]): KeyEvent[] {
  return chordsToEvents(
    calls.map((call): Chord => {
      if ("waitMs" in call) return call;
      const keys = call.keys.map((k) => keyOf(k.data));
      const key = keys.at(-1);
      if (key === undefined) throw new Error("send-key call with no keys");
      return { mods: keys.slice(0, -1), key };
    }),
  );
}

export function toInputSendEvents(events: readonly KeyEvent[]): InputSendEventCall[] {
  const enc = new TransitionEncoder();
  return events.map((ev): InputSendEventCall => {
    if (ev.kind === "wait") return { waitMs: ev.ms };
    return {
      events: enc.expand(ev).map((t) => {
        if (t.kind === "wait") throw new Error("unreachable: a key event expanded into a wait");
        return { type: "key" as const, data: { down: t.kind === "down", key: qkey(t.key) } };
      }),
    };
  });
}

/** Decodes input-send-event calls back into canonical events (see fromTransitions). */
export function inputSendEventsToEvents(calls: readonly InputSendEventCall[]): KeyEvent[] {
  return fromTransitions(
    calls.flatMap((call): KeyTransition[] =>
      "waitMs" in call
        ? [{ kind: "wait", ms: call.waitMs }]
        : call.events.map((e) => ({ kind: e.data.down ? "down" : "up", key: keyOf(e.data.key.data) })),
    ),
  );
}
