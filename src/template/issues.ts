// Turns zod issues into short problems with template field paths. Zod's own wording ("Invalid input:
// expected string, received number") is replaced: schema.ts sets messages where the field knows best,
// and `errorMap` covers the generic codes.

import type * as z from "zod";
import type { Problem } from "../errors.js";
import { didYouMean, formatPath } from "./paths.js";
import { IMPLEMENTED_DRIVERS, KNOWN_DRIVERS, PROVISIONER_TYPES, templateSchema } from "./schema.js";

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
  record: "a mapping",
};

/** Per-parse error map; schema-level messages take precedence over it. */
export const errorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case "invalid_type":
      return iss.input === undefined ? "required" : `expected ${TYPE_NAMES[iss.expected] ?? iss.expected}`;
    case "invalid_value":
      return iss.values.length === 1 ? `must be ${String(iss.values[0])}` : `must be one of ${iss.values.map(String).join(", ")}`;
    case "too_small":
      if (iss.origin === "string") return Number(iss.minimum) <= 1 ? "must not be empty" : `must be at least ${iss.minimum} characters`;
      if (iss.origin === "array" || iss.origin === "set")
        return `must have at least ${iss.minimum} item${Number(iss.minimum) === 1 ? "" : "s"}`;
      return `must be ${iss.inclusive ? "at least" : "greater than"} ${iss.minimum}`;
    case "too_big":
      if (iss.origin === "string") return `must be at most ${iss.maximum} characters`;
      if (iss.origin === "array" || iss.origin === "set") return `must have at most ${iss.maximum} items`;
      return `must be ${iss.inclusive ? "at most" : "less than"} ${iss.maximum}`;
    case "invalid_format":
      return "has an invalid format";
    case "invalid_key":
      return "invalid name";
    case "not_multiple_of":
      return `must be a multiple of ${iss.divisor}`;
    default:
      return "is invalid";
  }
};

export function issuesToProblems(issues: readonly z.core.$ZodIssue[], base: PropertyKey[] = []): Problem[] {
  const out: Problem[] = [];
  for (const iss of issues) {
    const path = [...base, ...iss.path];
    if (iss.code === "unrecognized_keys") {
      for (const key of iss.keys) out.push({ path: formatPath([...path, key]), message: unknownKeyMessage(path, key), code: "UNKNOWN_FIELD" });
    } else if (iss.code === "invalid_union") {
      // Zod reports a union failure as one opaque issue. When only one branch got past the type check
      // (e.g. `generalize` given a mapping), that branch's issues are the ones the user needs.
      const relevant = iss.errors.filter((branch) => !branch.every((b) => b.code === "invalid_type" && b.path.length === 0));
      if (relevant.length === 1) out.push(...issuesToProblems(relevant[0]!, path));
      else out.push({ path: formatPath(path), message: iss.message });
    } else if (iss.code === "invalid_key" && iss.origin === "record") {
      out.push({ path: formatPath(path), message: "invalid name (use letters, digits and '_', not starting with a digit)" });
    } else {
      out.push(iss.message === "required" ? { path: formatPath(path), message: iss.message, code: "REQUIRED" } : { path: formatPath(path), message: iss.message });
    }
  }
  return out;
}

function unknownKeyMessage(parent: PropertyKey[], key: string): string {
  const where = formatPath(parent);
  if (where === "drivers") {
    if ((KNOWN_DRIVERS as readonly string[]).includes(key)) return `driver "${key}" is not available yet (available: ${IMPLEMENTED_DRIVERS.join(", ")})`;
    return `unknown driver "${key}" (known drivers: ${KNOWN_DRIVERS.join(", ")}; available now: ${IMPLEMENTED_DRIVERS.join(", ")})`;
  }
  if (/^provision\[\d+\]$/.test(where)) {
    const hint = didYouMean(key, PROVISIONER_TYPES);
    return `unknown provisioner type "${key}"${hint ? ` (did you mean "${hint}"?)` : ""}; known: ${PROVISIONER_TYPES.join(", ")}`;
  }
  const hint = didYouMean(key, knownKeysAt(parent));
  return hint ? `unknown field (did you mean "${hint}"?)` : "unknown field";
}

// Field names for did-you-mean come from the schema itself, so they never drift from it.
interface Def {
  type: string;
  shape?: Record<string, { _zod: { def: Def } }>;
  innerType?: { _zod: { def: Def } };
  element?: { _zod: { def: Def } };
  options?: Array<{ _zod: { def: Def } }>;
  in?: { _zod: { def: Def } };
  valueType?: { _zod: { def: Def } };
}

function knownKeysAt(path: PropertyKey[]): string[] {
  let defs: Def[] = [(templateSchema as unknown as { _zod: { def: Def } })._zod.def];
  for (const seg of [...path, undefined]) {
    // Unwrap optional/nullable/default/pipe/union down to objects, arrays and records.
    const expanded: Def[] = [];
    const queue = [...defs];
    while (queue.length) {
      const d = queue.pop()!;
      if (d.innerType) queue.push(d.innerType._zod.def);
      else if (d.type === "pipe" && d.in) queue.push(d.in._zod.def);
      else if (d.type === "union" && d.options) queue.push(...d.options.map((o) => o._zod.def));
      else expanded.push(d);
    }
    if (seg === undefined) return expanded.flatMap((d) => (d.type === "object" && d.shape ? Object.keys(d.shape) : []));
    defs = expanded.flatMap((d) => {
      if (typeof seg === "number") return d.element ? [d.element._zod.def] : [];
      if (d.type === "object" && d.shape?.[String(seg)]) return [d.shape[String(seg)]!._zod.def];
      if (d.type === "record" && d.valueType) return [d.valueType._zod.def];
      return [];
    });
  }
  return [];
}
