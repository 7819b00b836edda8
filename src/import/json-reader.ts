// Packer 1.x JSON templates: `variables`, `sensitive-variables`, `builders`, `provisioners`,
// `post-processors` (hashicorp/packer template/parse.go, rawTemplate). Strings go through the Go
// template evaluator; a field it cannot evaluate is left out of the body and reported.

import { readFile } from "node:fs/promises";
import path from "node:path";
import { EvalError, evalGoTemplate, type GoScope } from "./go-template.js";
import type { Generated } from "./generated.js";
import { importError, MAPPED_BUILDERS, OTHER_PACKER_BUILDERS } from "./errors.js";
import { JsonSyntaxError, parseJsonWithLines } from "./json-text.js";
import type { Finding, PackerBlock, PackerSource, PackerTemplate, PackerVariable } from "./model.js";
import { concrete, escapeText, isObj, setOwn, type Val } from "./values.js";
import type { VarFileValues } from "./var-files.js";

export interface ReadOptions {
  display: string;
  cwd: string;
  vars: Record<string, string>;
  varFiles: VarFileValues[];
  generated: Generated;
}

const TOP_KEYS = new Set(["variables", "sensitive-variables", "builders", "provisioners", "post-processors", "description", "min_packer_version"]);

export async function readJsonTemplate(file: string, opts: ReadOptions): Promise<PackerTemplate> {
  const text = await readFile(file, "utf8");
  let parsed;
  try {
    parsed = parseJsonWithLines(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw importError(opts.display, err.line, `JSON syntax error: ${err.message}`, err.column);
    throw err;
  }
  const { value, lines } = parsed;
  if (!isObj(value)) throw importError(opts.display, 1, "a Packer JSON template is an object with builders");
  const doc = value as Record<string, unknown>;
  const dir = path.dirname(file);
  const findings: Finding[] = [];
  for (const k of Object.keys(doc)) {
    if (k.startsWith("_")) continue; // Packer ignores root keys starting with "_" (comments)
    if (!TOP_KEYS.has(k)) throw importError(opts.display, lines.get(k), `unknown top-level key "${k}" (Packer would refuse it)`);
  }
  if (doc.description !== undefined) findings.push({ kind: "note", path: "description", text: "kept as a comment" });
  if (doc.min_packer_version !== undefined) findings.push({ kind: "not-mapped", path: "min_packer_version", why: "no Packer runs the result" });

  // Variables, in order: a default may read the environment and earlier variables (inlined).
  const rawVars = doc.variables ?? {};
  if (!isObj(rawVars)) throw importError(opts.display, lines.get("variables"), "variables: expected an object");
  const sensitive = new Set<string>();
  const sv = doc["sensitive-variables"];
  if (sv !== undefined) {
    if (!Array.isArray(sv) || !sv.every((x) => typeof x === "string")) throw importError(opts.display, lines.get("sensitive-variables"), "sensitive-variables: expected a list of names");
    for (const n of sv as string[]) sensitive.add(n);
  }
  const current = new Map<string, string | undefined>();
  const variables: PackerVariable[] = [];
  const baseScope: Omit<GoScope, "vars"> = { templateDir: dir, cwd: opts.cwd, generated: opts.generated };
  const withSecrets = (): Omit<GoScope, "vars"> => ({ ...baseScope, secrets });
  for (const [name, raw] of Object.entries(rawVars as Record<string, unknown>)) {
    const origin = { file: opts.display, line: lines.get(`variables.${name}`) ?? lines.get(`variables[${JSON.stringify(name)}]`) };
    let value: Val | undefined;
    if (raw === null || raw === undefined) value = undefined;
    else if (typeof raw === "string") {
      try {
        value = evalGoTemplate(raw, { ...baseScope, vars: current, inlineVars: true, note: (text) => findings.push({ kind: "note", path: `variables.${name}`, text }) });
      } catch (err) {
        if (!(err instanceof EvalError)) throw err;
        throw importError(opts.display, origin.line, `variables.${name}: ${err.message}`);
      }
    } else if (typeof raw === "number" || typeof raw === "boolean") value = String(raw);
    else throw importError(opts.display, origin.line, `variables.${name}: a default must be a string`);
    variables.push({ name, value, sensitive: sensitive.has(name), overridden: false, origin });
    current.set(name, value === undefined ? undefined : concrete(String(value), {}, process.env));
  }
  for (const n of sensitive) if (!current.has(n)) findings.push({ kind: "note", path: "sensitive-variables", text: `"${n}" is not a declared variable` });
  applyOverrides(variables, current, opts);
  const secrets = new Set(variables.filter((v) => v.sensitive && v.overridden).map((v) => v.name));

  // Builders.
  const builders = doc.builders;
  if (!Array.isArray(builders) || builders.length === 0) throw importError(opts.display, lines.get("builders") ?? 1, "builders: expected a non-empty list");
  const sources: PackerSource[] = [];
  builders.forEach((b, i) => {
    const p = `builders[${i}]`;
    const line = lines.get(p);
    if (!isObj(b)) throw importError(opts.display, line, `${p}: expected an object`);
    const type = b.type;
    if (typeof type !== "string") throw importError(opts.display, line, `${p}: no "type"`);
    if (!MAPPED_BUILDERS.has(type) && !OTHER_PACKER_BUILDERS.has(type)) throw importError(opts.display, lines.get(`${p}.type`) ?? line, `unknown builder type "${type}" (vmkiln imports ${[...MAPPED_BUILDERS].join(", ")})`);
    const f: Finding[] = [];
    let name = type;
    if (typeof b.name === "string") {
      try {
        name = concrete(evalGoTemplate(b.name, { ...baseScope, vars: current, inlineVars: true }), {}, process.env) || type;
      } catch (err) {
        if (!(err instanceof EvalError)) throw err;
        throw importError(opts.display, lines.get(`${p}.name`) ?? line, `${p}.name: ${err.message}`);
      }
    }
    const { type: _t, name: _n, ...rest } = b;
    const body = evalBody(rest as Record<string, unknown>, p, { ...withSecrets(), vars: current, buildName: name, buildType: type }, f);
    sources.push({ type, name, shortName: name, body, path: p, origin: { file: opts.display, line }, findings: f });
  });

  const blocks = (key: "provisioners" | "post-processors"): PackerBlock[] => {
    const list = doc[key];
    if (list === undefined) return [];
    if (!Array.isArray(list)) throw importError(opts.display, lines.get(key), `${key}: expected a list`);
    const out: PackerBlock[] = [];
    const add = (item: unknown, p: string) => {
      const line = lines.get(p);
      // A post-processor may be just its type ("compress"), or a list of them (a chain).
      const obj = typeof item === "string" ? { type: item } : item;
      if (!isObj(obj) || typeof obj.type !== "string") throw importError(opts.display, line, `${p}: expected an object with a "type"`);
      const f: Finding[] = [];
      const { type, ...rest } = obj as Record<string, unknown>;
      out.push({ type: type as string, body: evalBody(rest, p, { ...withSecrets(), vars: current }, f), path: p, origin: { file: opts.display, line }, findings: f });
    };
    list.forEach((item, i) => {
      if (key === "post-processors" && Array.isArray(item)) item.forEach((x, j) => add(x, `${key}[${i}][${j}]`));
      else add(item, `${key}[${i}]`);
    });
    return out;
  };

  return {
    format: "json",
    display: opts.display,
    dir,
    variables,
    builds: [{ path: "", sources, provisioners: blocks("provisioners"), postProcessors: blocks("post-processors") }],
    generated: opts.generated.vars,
    lineOf: (p) => lines.get(p),
    description: typeof doc.description === "string" ? doc.description : undefined,
    findings,
  };
}

/** -var-file values, then -var, over the defaults (Packer's order). */
function applyOverrides(variables: PackerVariable[], current: Map<string, string | undefined>, opts: ReadOptions): void {
  const set = (name: string, value: string, from: string) => {
    const v = variables.find((x) => x.name === name);
    if (!v) throw importError(from, undefined, `variable "${name}" is not declared in the template`);
    v.value = escapeText(value); // Packer takes -var values literally
    v.overridden = true;
    current.set(name, value);
  };
  for (const vf of opts.varFiles) {
    for (const [k, raw] of Object.entries(vf.values)) {
      if (vf.format !== "json") throw importError(vf.file, undefined, "a JSON template takes JSON var files");
      set(k, raw === null ? "" : String(raw), vf.file);
    }
  }
  for (const [k, v] of Object.entries(opts.vars)) set(k, v, "-var");
}

/** Evaluates every string in a builder/provisioner body; a top-level field that fails is reported and left out. */
function evalBody(raw: Record<string, unknown>, p: string, scope: GoScope, findings: Finding[]): Record<string, Val> {
  const out: Record<string, Val> = {};
  for (const [k, v] of Object.entries(raw)) {
    const fp = `${p}.${k}`;
    try {
      setOwn(out, k, evalTree(v, { ...scope, note: (text) => findings.push({ kind: "note", path: fp, text }) }));
    } catch (err) {
      if (!(err instanceof EvalError)) throw err;
      findings.push({ kind: "not-mapped", path: fp, why: err.message });
    }
  }
  return out;
}

function evalTree(v: unknown, scope: GoScope): Val {
  if (typeof v === "string") return evalGoTemplate(v, scope);
  if (Array.isArray(v)) return v.map((x) => evalTree(x, scope));
  if (isObj(v)) {
    const out: Record<string, Val> = {};
    for (const [k, x] of Object.entries(v)) setOwn(out, k, evalTree(x, scope));
    return out;
  }
  return v as Val;
}
