// Boot-command language: parse Packer's boot_command into KeyEvent[] and render it back.
export type { KeyEvent, KeyTransition } from "./events.js";
export { withKeyInterval } from "./events.js";
export type { KeyName, ModifierKey } from "./keys.js";
export { KEY_NAMES, MODIFIER_KEYS, isModifier, isKeyName, keyForChar, charsOfKey, hasShiftedChar } from "./keys.js";
export { parseBootCommand, type ParseOptions, type UnknownToken } from "./parse.js";
export { substituteValues, type BootCommandValues } from "./values.js";
export { eventsToText } from "./text.js";
export { parseGoDuration, formatDuration } from "./duration.js";
export { TransitionEncoder, toTransitions, fromTransitions } from "./transitions.js";
