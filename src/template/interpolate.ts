// `${var.NAME}`, `${env.NAME}`, `${env.NAME:-default}` and `${name}` inside template strings.
// Interpolation runs on the raw tree before the schema, so a variable can feed any field (numbers
// included: the schema accepts numeric strings). Keys are never interpolated.

import type { Problem } from "../errors.js";
import { formatPath, type PathSegment } from "./paths.js";

export interface InterpolationScope {
  vars: Record<string, string>;
  env: NodeJS.ProcessEnv;
  /** The template's name for `${name}`; undefined while the name itself is being resolved. */
  name?: string | undefined;
  /** Whether `${var.X}` is allowed (false inside `variables`, which may only read the environment). */
  allowVars?: boolean;
  /** More values by their full dotted name (`http.ip`, `ssh.public_key`), for render-time scopes. */
  values?: Readonly<Record<string, string>>;
  /**
   * Fields rendered again later with values only known at build time (boot commands and HTTP content
   * see `${http.ip}` once the server listens): there `${http.…}` / `${ssh.…}` and the `$${` escape are
   * left as written for that later stage, so an escape is not undone a pass early.
   */
  deferAt?: (path: PathSegment[]) => boolean;
  /** Set by interpolateTree inside a deferAt field. */
  defer?: boolean;
}

/** References left for the build-time stage inside deferred fields. */
const DEFERRED_REF = /^(?:http|ssh)\.[A-Za-z_][A-Za-z0-9_]*$/;

export type InterpolationResult = { value: string; errors: string[] };

const REF = /^(?:(var|env)\.([A-Za-z_][A-Za-z0-9_-]*)|(name))(?::-(.*))?$/s;

/** Replaces references in one string; `$${` is a literal `${`. Errors are collected, not thrown. */
export function interpolateString(text: string, scope: InterpolationScope): InterpolationResult {
  const errors: string[] = [];
  let out = "";
  let i = 0;
  while (i < text.length) {
    const at = text.indexOf("${", i);
    if (at < 0) {
      out += text.slice(i);
      break;
    }
    if (at > 0 && text[at - 1] === "$" && scope.defer) {
      out += text.slice(i, at + 2); // keep `$${` for the later stage, which unescapes it
      i = at + 2;
      continue;
    }
    if (at > 0 && text[at - 1] === "$") {
      // `$${` escapes: drop one `$`, keep `${` literally and skip past it.
      out += text.slice(i, at - 1) + "${";
      i = at + 2;
      continue;
    }
    out += text.slice(i, at);
    const end = text.indexOf("}", at + 2);
    if (end < 0) {
      errors.push(`unterminated "\${" (write "$\${" for a literal "\${")`);
      out += text.slice(at);
      break;
    }
    const expr = text.slice(at + 2, end).trim();
    if (scope.defer && DEFERRED_REF.test(expr)) {
      out += text.slice(at, end + 1);
      i = end + 1;
      continue;
    }
    out += resolveRef(expr, scope, errors) ?? text.slice(at, end + 1);
    i = end + 1;
  }
  return { value: out, errors };
}

function resolveRef(expr: string, scope: InterpolationScope, errors: string[]): string | undefined {
  if (scope.values && Object.hasOwn(scope.values, expr)) return scope.values[expr];
  const m = REF.exec(expr);
  if (!m) {
    const more = scope.values ? Object.keys(scope.values) : scope.defer ? ["http.ip", "http.port", "http.url", "ssh.public_key"] : [];
    const names = ["var.NAME", "env.NAME", "name", ...more];
    errors.push(`unknown reference "\${${expr}}" (use ${names.slice(0, -1).join(", ")} or ${names[names.length - 1]})`);
    return undefined;
  }
  const [, kind, key, isName, fallback] = m;
  if (isName) {
    if (scope.name === undefined) {
      if (fallback !== undefined) return fallback;
      errors.push(`\${name} cannot be used here`);
      return undefined;
    }
    return scope.name;
  }
  if (kind === "var") {
    if (scope.allowVars === false) {
      errors.push(`variables cannot reference other variables (\${var.${key}})`);
      return undefined;
    }
    const v = Object.hasOwn(scope.vars, key!) ? scope.vars[key!] : undefined;
    if (v !== undefined) return v;
    if (fallback !== undefined) return fallback;
    errors.push(`undefined variable var.${key}`);
    return undefined;
  }
  // Shell semantics for `:-`: the default applies when the variable is unset *or empty*.
  const v = scope.env[key!];
  if (v !== undefined && (v !== "" || fallback === undefined)) return v;
  if (fallback !== undefined) return fallback;
  errors.push(`environment variable ${key} is not set`);
  return undefined;
}

/** Interpolates every string in a JSON-like tree, reporting problems at their field paths. */
export function interpolateTree(
  node: unknown,
  scope: InterpolationScope,
  path: PathSegment[],
  problems: Problem[],
): unknown {
  if (typeof node === "string") {
    const r = interpolateString(node, scope.deferAt?.(path) ? { ...scope, defer: true } : scope);
    for (const message of r.errors) problems.push({ path: formatPath(path), message });
    return r.value;
  }
  if (Array.isArray(node)) return node.map((item, i) => interpolateTree(item, scope, [...path, i], problems));
  if (node !== null && typeof node === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = interpolateTree(v, scope, [...path, k], problems);
    return out;
  }
  return node;
}
