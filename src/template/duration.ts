// Durations and sizes as users write them in templates. Both parsers throw a plain Error with a short,
// user-facing message; the template schema turns that message into a problem at the field's path.

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;

/** Pattern for JSON Schema hover/validation: `90s`, `1h30m`, `500ms`, or plain seconds. */
export const DURATION_PATTERN = "^(?:\\d+(?:\\.\\d+)?(?:ms|s|m|h|d))+$|^\\d+(?:\\.\\d+)?$";

/**
 * The longest wait a timer can hold: Node's setTimeout takes at most 2^31-1 ms (about 24.8 days) and
 * fires after 1 ms for anything longer (with only a TimeoutOverflowWarning), so `timeout: 30d` would
 * have meant "now". Every template duration ends up in a timer; longer ones are rejected.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** MAX_TIMER_MS as users write durations. */
export const MAX_TIMER_TEXT = "24d20h31m23s";

/**
 * Parses `"90s"`, `"10m"`, `"1h30m"`, `"500ms"`, a bare number of seconds (number or numeric string)
 * into milliseconds, at most MAX_TIMER_MS.
 */
export function parseDuration(input: string | number): number {
  const ms = parseDurationUnbounded(input);
  if (ms > MAX_TIMER_MS) throw new Error(`duration ${typeof input === "number" ? input : JSON.stringify(input)} is too long: at most ${MAX_TIMER_TEXT}`);
  return ms;
}

function parseDurationUnbounded(input: string | number): number {
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input < 0) throw new Error(`invalid duration ${input}: must be a non-negative number of seconds`);
    return Math.round(input * 1000);
  }
  const text = input.trim();
  // A numeric string comes from a variable (variables are strings): treat it like a number.
  if (/^\d+(?:\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  if (text === "") throw new Error(`invalid duration "": use e.g. 90s, 10m, 1h30m`);
  let total = 0;
  DURATION_PART.lastIndex = 0;
  let pos = 0;
  for (let m = DURATION_PART.exec(text); m; m = DURATION_PART.exec(text)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    pos = DURATION_PART.lastIndex;
  }
  if (pos !== text.length) throw new Error(`invalid duration ${JSON.stringify(input)}: use e.g. 90s, 10m, 1h30m`);
  return Math.round(total);
}

const SIZE_UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i;

/** Pattern for JSON Schema: `20G`, `512MiB`, `1.5T`, `4096`. */
export const SIZE_PATTERN = "^\\d+(?:\\.\\d+)?\\s*(?:[KMGTkmgt]?(?:[iI]?[bB])?)?$";

export interface ParseSizeOptions {
  /** Multiplier for a unit-less value (bytes by default; memory uses MiB). */
  defaultUnit?: number;
}

/**
 * Parses a size into bytes. Suffixes K/M/G/T (optionally KB/KiB...) are powers of 1024, as qemu-img
 * and most hypervisors read them; nobody sizing a disk means 10^9.
 */
export function parseSize(input: string | number, opts: ParseSizeOptions = {}): number {
  const unitless = opts.defaultUnit ?? 1;
  if (typeof input === "number") {
    if (!Number.isFinite(input) || input < 0) throw new Error(`invalid size ${input}: must be a non-negative number`);
    return Math.round(input * unitless);
  }
  const m = SIZE_RE.exec(input.trim());
  if (!m) throw new Error(`invalid size ${JSON.stringify(input)}: use e.g. 20G, 512M, 1T`);
  const unit = m[2]!.toUpperCase();
  const factor = unit === "" && !/b$/i.test(input.trim()) ? unitless : SIZE_UNITS[unit]!;
  return Math.round(Number(m[1]) * factor);
}
