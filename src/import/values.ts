// The value form both expression evaluators produce: JSON-like, where every string is already in
// vmkiln's template syntax: a reference the user's template kept (`{{user \`x\`}}`, `var.x`)
// is `${var.x}`, a literal `${` is escaped as `$${`. So a string can be written into the YAML as it
// is, and `concrete` gives the value it would have with the variables' current values.

import { interpolateString } from "../template/interpolate.js";

export type Val = string | number | boolean | null | Val[] | { [key: string]: Val };

export const isObj = (v: unknown): v is Record<string, Val> => v !== null && typeof v === "object" && !Array.isArray(v);

/** Literal text → vmkiln template text. */
export function escapeText(s: string): string {
  return s.split("${").join("$${");
}

/** Whether a vmkiln string holds a reference (anything but literal text). */
export function hasRef(s: string): boolean {
  return /(^|[^$])\$\{/.test(s);
}

/** A vmkiln string made only of one reference, e.g. `${var.memory}`. */
export function singleVar(s: string): string | undefined {
  return /^\$\{var\.([A-Za-z_][A-Za-z0-9_-]*)\}$/.exec(s)?.[1];
}

/**
 * The literal text a vmkiln string stands for with the variables' values (an unknown variable or
 * environment variable is an empty string, as Packer's `env` gives).
 */
export function concrete(s: string, vars: Record<string, string>, env: NodeJS.ProcessEnv = {}): string {
  const names = new Set<string>();
  for (const m of s.matchAll(/\$\{var\.([A-Za-z_][A-Za-z0-9_-]*)/g)) names.add(m[1]!);
  const known: Record<string, string> = {};
  for (const n of names) known[n] = vars[n] ?? "";
  return interpolateString(s, { vars: known, env, name: "" }).value;
}

/** The names of the variables a value references. */
export function varsIn(v: Val): string[] {
  const out = new Set<string>();
  const walk = (x: Val) => {
    if (typeof x === "string") for (const m of x.matchAll(/(?<!\$)\$\{var\.([A-Za-z_][A-Za-z0-9_-]*)/g)) out.add(m[1]!);
    else if (Array.isArray(x)) x.forEach(walk);
    else if (isObj(x)) Object.values(x).forEach(walk);
  };
  walk(v);
  return [...out];
}

/** Scalar → vmkiln string; undefined for lists and maps. */
export function asText(v: Val | undefined): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

/**
 * obj[key] = value as an own property, whatever the key: a template key "__proto__" must not set the
 * object's prototype (JSON.parse makes it an own property too).
 */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
