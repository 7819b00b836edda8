// Template loading: parse (YAML/JSON) → interpolate → schema + cross-field rules → normalize.
// Every problem from every stage is collected and thrown as one TemplateError.

import path from "node:path";
import { passwordValues, Redactor } from "../log/redact.js";
import { TemplateError, UserError, throwIfAborted, type Problem } from "../errors.js";
import { deliverPendingSignals } from "../util/abort.js";
import { interpolateString, interpolateTree } from "./interpolate.js";
import { errorMap, issuesToProblems } from "./issues.js";
import { normalize } from "./normalize.js";
import { InputError, parseText, readInput, readInputSync } from "./parse.js";
import { didYouMean, documentOrder, formatPath, type PathSegment } from "./paths.js";
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
  /**
   * Checked after each long synchronous stage (parsing the template, the var-files): an interrupt
   * that arrived meanwhile stops the load with an AbortError instead of a result.
   */
  signal?: AbortSignal;
  /**
   * Receives every secret the template declares (sensitive variables, password fields) as soon as
   * it is known, so what the caller prints later is masked too. The loader's own problems are masked
   * with it (or with a private one) before they are thrown.
   */
  redactor?: Redactor;
}

export async function loadTemplate(file: string, opts: LoadOptions = {}): Promise<BuildSpec> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readInput(abs, opts.signal);
  } catch (err) {
    throw inputError(err, file, "TEMPLATE");
  }
  const parsed = parseText(text, abs);
  await interruptionPoint(opts.signal);
  if ("problem" in parsed) throw new TemplateError(file, [parsed.problem]);
  // Var-files are read here, asynchronously, so a pipe that never delivers can be interrupted.
  const varFileTexts = new Map<string, string>();
  for (const f of opts.varFiles ?? []) {
    try {
      varFileTexts.set(f, await readInput(path.resolve(f), opts.signal));
    } catch (err) {
      throw inputError(err, f, "VAR_FILE");
    }
  }
  let spec: BuildSpec;
  try {
    spec = buildSpec(parsed.value, { ...opts, baseDir: path.dirname(abs), templatePath: abs, display: file, varFileTexts });
  } catch (err) {
    await interruptionPoint(opts.signal); // interrupted while var-files were read: that wins
    throw err;
  }
  await interruptionPoint(opts.signal);
  return spec;
}

/** Parsing blocks the event loop; an interrupt that came meanwhile is seen here (src/util/abort.ts). */
async function interruptionPoint(signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return;
  await deliverPendingSignals();
  throwIfAborted(signal);
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
    // The argument is not echoed: a value typed without its "NAME=" is most likely the secret itself.
    if (key === "") throw new UserError("INVALID_VAR", `-var: expected NAME=VALUE, got ${eq < 0 ? 'no "="' : "an empty NAME"}`);
    out[key] = item.slice(eq + 1);
  }
  return out;
}

interface BuildOptions extends LoadOptions {
  baseDir: string;
  templatePath: string;
  /** How the file is named in error messages. */
  display: string;
  /** Var-files already read (loadTemplate reads them asynchronously); others are read here. */
  varFileTexts?: Map<string, string>;
}

function buildSpec(raw: unknown, opts: BuildOptions): BuildSpec {
  const env = opts.env ?? process.env;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new TemplateError(opts.display, [{ path: "", message: "expected a mapping at the top level" }]);
  const doc = raw as Record<string, unknown>;
  const interpolationProblems: Problem[] = [];

  // Template variables may read the environment only; files and -var are taken literally.
  const declared = interpolateVariables(doc.variables, env, interpolationProblems);
  const vars: Record<string, string> = { ...declared.values };
  for (const f of opts.varFiles ?? []) Object.assign(vars, readVarFile(f, opts.varFileTexts?.get(f)));
  Object.assign(vars, opts.vars ?? {});
  // Sensitive values are registered before anything could quote them (a problem, a log line).
  const redactor = opts.redactor ?? new Redactor();
  const sensitive = sensitiveVariables(doc.sensitive_variables, declared, vars, interpolationProblems);
  redactor.addAll(sensitive.map((n) => vars[n]));

  // The name is resolved first so `${name}` works everywhere else.
  let name: string | undefined;
  if (typeof doc.name === "string") {
    const r = interpolateString(doc.name, { vars, env });
    for (const message of r.errors) interpolationProblems.push({ path: "name", message });
    name = r.value;
  }
  const tree: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (key === "variables" || key === "sensitive_variables") tree[key] = value;
    else if (key === "name") tree[key] = name ?? value;
    else tree[key] = interpolateTree(value, { vars, env, name, deferAt: isRenderedLater }, [key], interpolationProblems);
  }

  redactor.addAll(passwordValues(tree));
  const vsphere = isRec(tree.drivers) ? tree.drivers.vsphere : undefined;
  if (isRec(vsphere) && vsphere.password === undefined) redactor.add(env.VSPHERE_PASSWORD); // the driver's fallback

  const result = templateSchema.safeParse(tree, { error: errorMap });
  const warnings: Problem[] = [];
  const warn = (at: PathSegment[], message: string, code: string) => warnings.push({ path: formatPath(at), message, code });
  const later = [...(result.success ? [] : issuesToProblems(result.error.issues)), ...checkRules(tree, { baseDir: opts.baseDir, env, warn })];
  // A field whose interpolation failed also fails its type or file check; report only the cause.
  const failed = new Set(interpolationProblems.map((p) => p.path));
  const order = documentOrder(doc);
  const problems = dedupeProblems([...interpolationProblems, ...later.filter((p) => !failed.has(p.path))]).sort(
    (a, b) => order(a.path) - order(b.path),
  );
  // A problem may quote a value (`must be from 4 MiB to 24 TiB (got "…")`) that is a secret.
  const masked = (list: Problem[]) => list.map((p) => ({ ...p, message: redactor.text(p.message) }));
  const warned = masked(warnings.sort((a, b) => order(a.path) - order(b.path)));
  if (problems.length > 0 || !result.success) throw new TemplateError(opts.display, masked(problems), warned);
  const spec = normalize(result.data, { baseDir: opts.baseDir, templatePath: opts.templatePath, variables: vars, env, sensitiveVariables: sensitive });
  const rendering = renderProblems(spec, env); // answer files (kickstart, preseed) render with placeholders
  if (rendering.length > 0) throw new TemplateError(opts.display, masked(rendering), warned);
  // Valid but most likely a mistake: validate prints them, a build logs them before its first step.
  spec.warnings = warned;
  return spec;
}

/** Fields rendered again at build time, when `${http.ip}` and friends are known (see interpolate.ts). */
export function isRenderedLater(path: readonly (string | number)[]): boolean {
  const [top, field] = path;
  return (top === "boot" && field === "command") || ((top === "http" || top === "install_media") && field === "content");
}

interface DeclaredVariables {
  /** Defaults, interpolated (`${env.X}` only). */
  values: Record<string, string>;
  /** Every declared name, with or without a default. */
  names: string[];
  /** Names declared `{ sensitive: true }`. */
  sensitive: string[];
}

const isScalar = (v: unknown): v is string | number | boolean => typeof v === "string" || typeof v === "number" || typeof v === "boolean";

function interpolateVariables(value: unknown, env: NodeJS.ProcessEnv, problems: Problem[]): DeclaredVariables {
  const out: DeclaredVariables = { values: {}, names: [], sensitive: [] };
  if (!isRec(value)) return out; // the schema reports it
  for (const [k, v] of Object.entries(value)) {
    out.names.push(k);
    // Packer HCL2's block form: { default, sensitive, description }.
    const block = isRec(v) ? v : undefined;
    if (block && (block.sensitive === true || block.sensitive === "true")) out.sensitive.push(k);
    const given = block ? block.default : v;
    if (!isScalar(given)) continue;
    const path = block ? `variables.${k}.default` : `variables.${k}`;
    const r = interpolateString(String(given), { vars: {}, env, allowVars: false });
    for (const message of r.errors) problems.push({ path, message });
    out.values[k] = r.value;
  }
  return out;
}

/** Names marked sensitive in either form; a listed name that is neither declared nor set is a problem (a typo would leak). */
function sensitiveVariables(list: unknown, declared: DeclaredVariables, vars: Record<string, string>, problems: Problem[]): string[] {
  const names = new Set(declared.sensitive);
  if (Array.isArray(list)) {
    list.forEach((name, i) => {
      if (typeof name !== "string") return; // the schema reports it
      if (!declared.names.includes(name) && !Object.hasOwn(vars, name)) {
        const known = [...new Set([...declared.names, ...Object.keys(vars)])];
        const hint = didYouMean(name, known);
        problems.push({
          path: `sensitive_variables[${i}]`,
          message: `no variable "${name}" is declared or set${hint ? ` (did you mean "${hint}"?)` : known.length > 0 ? ` (variables: ${known.join(", ")})` : ""}`,
        });
      }
      names.add(name);
    });
  }
  return [...names];
}

function readVarFile(file: string, given: string | undefined): Record<string, string> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = given ?? readInputSync(abs);
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
    else problems.push({ path: formatPath([k]), message: "expected a string, number or boolean" }); // `""` is a key too
  }
  if (problems.length > 0) throw new TemplateError(file, problems);
  return out;
}

const isRec = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

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
