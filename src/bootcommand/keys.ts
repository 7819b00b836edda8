// Canonical key names shared by the boot-command parser and the three encoders (QEMU qcodes,
// PS/2 scan code set 1 for VirtualBox, USB HID usages for vSphere). A KeyName is a physical key on
// a US 104/105-key PC keyboard, not a character: "A" is the `a` key with Shift (see events.ts).

export const LETTER_KEYS = [
  "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m",
  "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z",
] as const;

export const DIGIT_KEYS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"] as const;

/** Base keys of the punctuation row and the space bar (named after the unshifted key). */
export const PUNCTUATION_KEYS = [
  "minus", "equal", "bracketLeft", "bracketRight", "backslash", "semicolon",
  "quote", "backquote", "comma", "period", "slash", "space",
] as const;

export const FUNCTION_KEYS = [
  "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12",
] as const;

/** Editing and navigation keys. `menu` is the PC "Application"/context-menu key. */
export const CONTROL_KEYS = [
  "enter", "esc", "tab", "backspace", "delete", "insert", "home", "end",
  "pageUp", "pageDown", "up", "down", "left", "right", "menu",
] as const;

export const MODIFIER_KEYS = [
  "leftShift", "rightShift", "leftCtrl", "rightCtrl",
  "leftAlt", "rightAlt", "leftSuper", "rightSuper",
] as const;

export type LetterKey = (typeof LETTER_KEYS)[number];
export type DigitKey = (typeof DIGIT_KEYS)[number];
export type PunctuationKey = (typeof PUNCTUATION_KEYS)[number];
export type FunctionKey = (typeof FUNCTION_KEYS)[number];
export type ControlKey = (typeof CONTROL_KEYS)[number];
export type ModifierKey = (typeof MODIFIER_KEYS)[number];
export type KeyName = LetterKey | DigitKey | PunctuationKey | FunctionKey | ControlKey | ModifierKey;

export const KEY_NAMES: readonly KeyName[] = [
  ...LETTER_KEYS, ...DIGIT_KEYS, ...PUNCTUATION_KEYS, ...FUNCTION_KEYS, ...CONTROL_KEYS, ...MODIFIER_KEYS,
];

const MODIFIER_SET: ReadonlySet<string> = new Set(MODIFIER_KEYS);

export function isModifier(key: KeyName): key is ModifierKey {
  return MODIFIER_SET.has(key);
}

export function isKeyName(s: string): s is KeyName {
  return (KEY_NAMES as readonly string[]).includes(s);
}

// ---------------------------------------------------------------------------------------------
// US layout: which key (and whether Shift) types each printable ASCII character.

/** [unshifted char, shifted char] for every key that types a character. */
const KEY_CHARS: ReadonlyArray<readonly [KeyName, string, string | undefined]> = [
  ...LETTER_KEYS.map((k) => [k, k, k.toUpperCase()] as const),
  ["1", "1", "!"], ["2", "2", "@"], ["3", "3", "#"], ["4", "4", "$"], ["5", "5", "%"],
  ["6", "6", "^"], ["7", "7", "&"], ["8", "8", "*"], ["9", "9", "("], ["0", "0", ")"],
  ["minus", "-", "_"], ["equal", "=", "+"], ["bracketLeft", "[", "{"], ["bracketRight", "]", "}"],
  ["backslash", "\\", "|"], ["semicolon", ";", ":"], ["quote", "'", '"'], ["backquote", "`", "~"],
  ["comma", ",", "<"], ["period", ".", ">"], ["slash", "/", "?"],
  // The space bar has no distinct shifted character.
  ["space", " ", undefined],
];

const CHAR_TO_KEY = new Map<string, { key: KeyName; shift: boolean }>();
const KEY_TO_CHARS = new Map<KeyName, { base: string; shifted: string | undefined }>();
for (const [key, base, shifted] of KEY_CHARS) {
  CHAR_TO_KEY.set(base, { key, shift: false });
  if (shifted !== undefined) CHAR_TO_KEY.set(shifted, { key, shift: true });
  KEY_TO_CHARS.set(key, { base, shifted });
}

/** The key (and Shift) that types `ch` on a US layout, or undefined if no single key does. */
export function keyForChar(ch: string): { key: KeyName; shift: boolean } | undefined {
  return CHAR_TO_KEY.get(ch);
}

/** The characters a key types, or undefined for keys that type none (enter, f1, shift, ...). */
export function charsOfKey(key: KeyName): { base: string; shifted: string | undefined } | undefined {
  return KEY_TO_CHARS.get(key);
}

/** True when Shift + key types a character (so a decoder may fold the Shift into the press). */
export function hasShiftedChar(key: KeyName): boolean {
  return KEY_TO_CHARS.get(key)?.shifted !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Packer's special-key names (its boot_command grammar, matched case-insensitively).

/** Canonical spelling (used by eventsToText) of each non-character key. */
export const SPECIAL_KEY_SPELLING: Readonly<Partial<Record<KeyName, string>>> = {
  backspace: "bs", delete: "del", enter: "enter", esc: "esc", tab: "tab", space: "spacebar",
  insert: "insert", home: "home", end: "end", pageUp: "pageUp", pageDown: "pageDown",
  up: "up", down: "down", left: "left", right: "right", menu: "menu",
  ...Object.fromEntries(FUNCTION_KEYS.map((k) => [k, k])),
  ...Object.fromEntries(MODIFIER_KEYS.map((k) => [k, k])),
};

/** Lower-cased Packer special name → key; `<return>` is Packer's alias of `<enter>`. */
export const SPECIAL_KEYS: ReadonlyMap<string, KeyName> = new Map<string, KeyName>([
  ...Object.entries(SPECIAL_KEY_SPELLING).map(([k, name]) => [name.toLowerCase(), k as KeyName] as const),
  ["return", "enter"],
]);
