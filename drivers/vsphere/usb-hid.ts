// Boot-command key events → vSphere `PutUsbScanCodes` (UsbScanCodeSpec.keyEvents). Each key event
// is one press+release of a USB HID usage from the Keyboard/Keypad page 0x07 (HID Usage Tables
// §10), sent as `usbHidCode = (usage << 16) | 7`, with the modifiers held during it as flags.
//
// vSphere has no key-down/key-up: a modifier held by `<leftCtrlOn>` becomes a flag on every event
// until `<leftCtrlOff>` (nothing is sent for an On/Off pair with no key between); a held
// non-modifier (`<aOn>`) is typed once at its On and its Off is dropped. Packer's vSphere builder
// sends one key event per call with boot_key_interval between, since hosts drop keys sent too
// fast; the default batch size of 1 keeps that behaviour.
import type { KeyEvent } from "../../src/bootcommand/events.js";
import { chordsToEvents, type Chord } from "../../src/bootcommand/chords.js";
import { isModifier, KEY_NAMES, MODIFIER_KEYS, type KeyName, type ModifierKey } from "../../src/bootcommand/keys.js";

/** HID usage IDs, keyboard page 0x07. */
export const HID_USAGE: Readonly<Record<KeyName, number>> = {
  a: 0x04, b: 0x05, c: 0x06, d: 0x07, e: 0x08, f: 0x09, g: 0x0a, h: 0x0b, i: 0x0c, j: 0x0d, k: 0x0e, l: 0x0f,
  m: 0x10, n: 0x11, o: 0x12, p: 0x13, q: 0x14, r: 0x15, s: 0x16, t: 0x17, u: 0x18, v: 0x19, w: 0x1a, x: 0x1b,
  y: 0x1c, z: 0x1d,
  "1": 0x1e, "2": 0x1f, "3": 0x20, "4": 0x21, "5": 0x22, "6": 0x23, "7": 0x24, "8": 0x25, "9": 0x26, "0": 0x27,
  enter: 0x28, esc: 0x29, backspace: 0x2a, tab: 0x2b, space: 0x2c,
  minus: 0x2d, equal: 0x2e, bracketLeft: 0x2f, bracketRight: 0x30, backslash: 0x31,
  semicolon: 0x33, quote: 0x34, backquote: 0x35, comma: 0x36, period: 0x37, slash: 0x38,
  f1: 0x3a, f2: 0x3b, f3: 0x3c, f4: 0x3d, f5: 0x3e, f6: 0x3f, f7: 0x40, f8: 0x41, f9: 0x42, f10: 0x43,
  f11: 0x44, f12: 0x45,
  insert: 0x49, home: 0x4a, pageUp: 0x4b, delete: 0x4c, end: 0x4d, pageDown: 0x4e,
  right: 0x4f, left: 0x50, down: 0x51, up: 0x52,
  menu: 0x65, // "Keyboard Application", the PC context-menu key
  leftCtrl: 0xe0, leftShift: 0xe1, leftAlt: 0xe2, leftSuper: 0xe3,
  rightCtrl: 0xe4, rightShift: 0xe5, rightAlt: 0xe6, rightSuper: 0xe7,
};

const BY_USAGE: ReadonlyMap<number, KeyName> = new Map(KEY_NAMES.map((k) => [HID_USAGE[k], k]));

/** vSphere's UsbScanCodeSpecModifierType; only set (true) flags are present. */
export interface UsbModifiers {
  leftControl?: boolean;
  leftShift?: boolean;
  leftAlt?: boolean;
  leftGui?: boolean;
  rightControl?: boolean;
  rightShift?: boolean;
  rightAlt?: boolean;
  rightGui?: boolean;
}

/** vSphere's UsbScanCodeSpecKeyEvent. */
export interface UsbKeyEvent {
  usbHidCode: number;
  modifiers: UsbModifiers;
}

export type UsbBatch = { keyEvents: UsbKeyEvent[] } | { waitMs: number };

const FLAG: Readonly<Record<ModifierKey, keyof UsbModifiers>> = {
  leftCtrl: "leftControl", leftShift: "leftShift", leftAlt: "leftAlt", leftSuper: "leftGui",
  rightCtrl: "rightControl", rightShift: "rightShift", rightAlt: "rightAlt", rightSuper: "rightGui",
};

/** The wire form: usage in the high 16 bits, 7 (the keyboard page) in the low bits. */
export function usbHidCode(key: KeyName): number {
  return ((HID_USAGE[key] << 16) | 7) >>> 0;
}

function modifiersOf(keys: Iterable<ModifierKey>): UsbModifiers {
  const m: UsbModifiers = {};
  // Fixed order so equal sets give deep-equal objects with the same key order.
  const set = new Set(keys);
  for (const k of MODIFIER_KEYS) if (set.has(k)) m[FLAG[k]] = true;
  return m;
}

/** Key events in order, before batching. */
export function toUsbKeyEvents(events: readonly KeyEvent[]): Array<UsbKeyEvent | { waitMs: number }> {
  const held: ModifierKey[] = [];
  const out: Array<UsbKeyEvent | { waitMs: number }> = [];
  for (const ev of events) {
    if (ev.kind === "wait") {
      out.push({ waitMs: ev.ms });
    } else if (ev.kind === "press" || (ev.kind === "down" && !isModifier(ev.key))) {
      const mods: ModifierKey[] = [...held];
      if (ev.kind === "press" && ev.shift && !held.includes("leftShift") && !held.includes("rightShift")) mods.push("leftShift");
      out.push({ usbHidCode: usbHidCode(ev.key), modifiers: modifiersOf(mods) });
    } else if (isModifier(ev.key)) {
      const at = held.indexOf(ev.key);
      if (ev.kind === "down" && at < 0) held.push(ev.key);
      if (ev.kind === "up" && at >= 0) held.splice(at, 1);
    }
  }
  return out;
}

export function toUsbBatches(events: readonly KeyEvent[], opts: { maxKeyEventsPerBatch?: number } = {}): UsbBatch[] {
  const max = opts.maxKeyEventsPerBatch ?? 1;
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxKeyEventsPerBatch must be a positive integer, got ${max}`);
  const batches: UsbBatch[] = [];
  let current: UsbKeyEvent[] = [];
  const flush = (): void => {
    if (current.length > 0) batches.push({ keyEvents: current });
    current = [];
  };
  for (const item of toUsbKeyEvents(events)) {
    if ("waitMs" in item) {
      flush();
      batches.push(item);
      continue;
    }
    if (current.length >= max) flush();
    current.push(item);
  }
  flush();
  return batches;
}

function keyOfCode(code: number): KeyName {
  if ((code & 0xffff) !== 7) throw new Error(`usbHidCode 0x${code.toString(16)} is not (usage << 16) | 7`);
  const key = BY_USAGE.get(code >>> 16);
  if (key === undefined) throw new Error(`unknown USB HID usage 0x${(code >>> 16).toString(16)}`);
  return key;
}

/**
 * Decodes what a vcsim harness recorded back into canonical events: Shift folds into a press
 * when it makes a character; other modifier flags become `down` before the first event that has
 * them and `up` before the first that lacks them (and at the end, in reverse order).
 */
export function usbKeyEventsToEvents(items: ReadonlyArray<UsbKeyEvent | { waitMs: number } | UsbBatch>): KeyEvent[] {
  const flat = items.flatMap((it) => ("keyEvents" in it ? it.keyEvents : [it]));
  return chordsToEvents(
    flat.map((item): Chord => ("waitMs" in item ? item : { mods: MODIFIER_KEYS.filter((m) => item.modifiers[FLAG[m]] === true), key: keyOfCode(item.usbHidCode) })),
  );
}

const GOVC_FLAG: Readonly<Record<keyof UsbModifiers, string>> = {
  leftControl: "-lc", leftShift: "-ls", leftAlt: "-la", leftGui: "-lg",
  rightControl: "-rc", rightShift: "-rs", rightAlt: "-ra", rightGui: "-rg",
};

/**
 * argv for `govc vm.keystrokes` typing one key event, e.g.
 * `["vm.keystrokes", "-vm", path, "-c", "0x28", "-lc=true"]`. govc's `-c` takes the bare usage
 * (it shifts and ors the 7 itself). Accepts an encoded UsbKeyEvent or a `press` KeyEvent.
 */
export function govcKeystrokeArgs(vmPath: string, event: UsbKeyEvent | KeyEvent): string[] {
  let usage: number;
  let modifiers: UsbModifiers;
  if ("usbHidCode" in event) {
    keyOfCode(event.usbHidCode); // validates
    usage = event.usbHidCode >>> 16;
    modifiers = event.modifiers;
  } else {
    if (event.kind !== "press") throw new Error(`govc vm.keystrokes types whole key presses, not a ${event.kind} event`);
    usage = HID_USAGE[event.key];
    modifiers = event.shift ? { leftShift: true } : {};
  }
  const argv = ["vm.keystrokes", "-vm", vmPath, "-c", `0x${usage.toString(16).padStart(2, "0")}`];
  for (const flag of Object.keys(GOVC_FLAG) as Array<keyof UsbModifiers>) {
    if (modifiers[flag] === true) argv.push(`${GOVC_FLAG[flag]}=true`);
  }
  return argv;
}
