// Template loading: parse (YAML/JSON) → interpolate → schema + cross-field rules → normalize.
// Every problem from every stage is collected and thrown as one TemplateError.

import path from "node:path";
import { TemplateError, UserError, type Problem } from "../errors.js";
import { interpolateString, interpolateTree } from "./interpolate.js";
import { errorMap, issuesToProblems } from "./issues.js";
import { normalize } from "./normalize.js";
import { InputError, parseText, readInput, readInputSync } from "./parse.js";
import { documentOrder } from "./paths.js";
import { renderProblems } from "./install-rules.js";
import { checkRules } from "./rules.js";
import { templateSchema } from "./schema.js";
import type { BuildSpec } from "./spec.js";

export interface LoadOptions {
  /** `-var k=v` values, highest precedence. */
  vars?: Record<string, string>;
  /** `-var-file` paths (YAML or JSON maps), applied in order; relative to the working directory. */
  varFiles?: string[];
  /** Environment for `${env.X}`; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

export async function loadTemplate(file: string, opts: LoadOptions = {}): Promise<BuildSpec> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readInput(abs);
  } catch (err) {
    throw inputError(err, file, "TEMPLATE");
  }
  const parsed = parseText(text, abs);
  if ("problem" in parsed) throw new TemplateError(file, [parsed.problem]);
  return buildSpec(parsed.value, { ...opts, baseDir: path.dirname(abs), templatePath: abs, display: file });
}

/** Builds a spec from an already-parsed template object (library users, tests). */
export function specFromObject(raw: unknown, opts: LoadOptions & { baseDir: string; file?: string }): BuildSpec {
  const baseDir = path.resolve(opts.baseDir);
  const templatePath = opts.file === undefined ? "<inline>" : path.resolve(baseDir, opts.file);
  return buildSpec(raw, { ...opts, baseDir, templatePath, display: opts.file ?? "<inline>" });
}

/** Parses `-var` arguments (`NAME=VALUE`; the value may contain "="), later ones winning. */
export function parseVarArgs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf("=");
    const key = eq < 0 ? "" : item.slice(0, eq).trim();
    if (key === "") throw new UserError("INVALID_VAR", `-var ${JSON.stringify(item)}: expected NAME=VALUE`);
    out[key] = item.slice(eq + 1);
  }
  return out;
}

interface BuildOptions extends LoadOptions {
  baseDir: string;
  templatePath: string;
  /** How the file is named in error messages. */
  display: string;
}

function buildSpec(raw: unknown, opts: BuildOptions): BuildSpec {
  const env = opts.env ?? process.env;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new TemplateError(opts.display, [{ path: "", message: "expected a mapping at the top level" }]);
  const doc = raw as Record<string, unknown>;
  const interpolationProblems: Problem[] = [];

  // Template variables may read the environment only; files and -var are taken literally.
  const declared = interpolateVariables(doc.variables, env, interpolationProblems);
  const vars: Record<string, string> = { ...declared };
  for (const f of opts.varFiles ?? []) Object.assign(vars, readVarFile(f));
  Object.assign(vars, opts.vars ?? {});

  // The name is resolved first so `${name}` works everywhere else.
  let name: string | undefined;
  if (typeof doc.name === "string") {
    const r = interpolateString(doc.name, { vars, env });
    for (const message of r.errors) interpolationProblems.push({ path: "name", message });
    name = r.value;
  }
  const tree: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (key === "variables") tree[key] = value;
    else if (key === "name") tree[key] = name ?? value;
    else tree[key] = interpolateTree(value, { vars, env, name, deferAt: isRenderedLater }, [key], interpolationProblems);
  }

  const result = templateSchema.safeParse(tree, { error: errorMap });
  const later = [...(result.success ? [] : issuesToProblems(result.error.issues)), ...checkRules(tree, { baseDir: opts.baseDir, env })];
  // A field whose interpolation failed also fails its type or file check; report only the cause.
  const failed = new Set(interpolationProblems.map((p) => p.path));
  const order = documentOrder(doc);
  const problems = dedupeProblems([...interpolationProblems, ...later.filter((p) => !failed.has(p.path))]).sort(
    (a, b) => order(a.path) - order(b.path),
  );
  if (problems.length > 0 || !result.success) throw new TemplateError(opts.display, problems);
  const spec = normalize(result.data, { baseDir: opts.baseDir, templatePath: opts.templatePath, variables: vars, env });
  const rendering = renderProblems(spec, env); // answer files (kickstart, preseed) render with placeholders
  if (rendering.length > 0) throw new TemplateError(opts.display, rendering);
  return spec;
}

/** Fields rendered again at build time, when `${http.ip}` and friends are known (see interpolate.ts). */
export function isRenderedLater(path: readonly (string | number)[]): boolean {
  const [top, field] = path;
  return (top === "boot" && field === "command") || ((top === "http" || top === "install_media") && field === "content");
}

function interpolateVariables(value: unknown, env: NodeJS.ProcessEnv, problems: Problem[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (value === null || typeof value !== "object" || Array.isArray(value)) return out; // the schema reports it
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") continue;
    const r = interpolateString(String(v), { vars: {}, env, allowVars: false });
    for (const message of r.errors) problems.push({ path: `variables.${k}`, message });
    out[k] = r.value;
  }
  return out;
}

function readVarFile(file: string): Record<string, string> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = readInputSync(abs);
  } catch (err) {
    throw inputError(err, file, "VAR_FILE");
  }
  const parsed = parseText(text, abs);
  if ("problem" in parsed) throw new TemplateError(file, [parsed.problem]);
  const value = parsed.value;
  if (value === null || value === undefined) return {}; // an empty file sets nothing
  if (typeof value !== "object" || Array.isArray(value))
    throw new TemplateError(file, [{ path: "", message: "a var file must be a mapping of names to values" }]);
  const out: Record<string, string> = {};
  const problems: Problem[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") out[k] = String(v);
    else problems.push({ path: k, message: "expected a string, number or boolean" });
  }
  if (problems.length > 0) throw new TemplateError(file, problems);
  return out;
}

function inputError(err: unknown, file: string, what: "TEMPLATE" | "VAR_FILE"): UserError {
  if (err instanceof InputError) return new UserError(`${what}_${err.code}`, `${file}: ${err.message}`, { cause: err });
  throw err;
}

function dedupeProblems(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\0${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
