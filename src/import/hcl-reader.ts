// Packer HCL2 templates: one *.pkr.hcl file or a directory of them (Packer reads every *.pkr.hcl in
// lexical order and the *.auto.pkrvars.hcl beside them: hashicorp/packer hcl2template/parser.go).
// Blocks: variable / variables / locals / local / source / build (sources, source overrides,
// provisioner, post-processor(s)); data sources have no vmkiln equivalent.

import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { EvalError } from "./go-template.js";
import type { Generated } from "./generated.js";
import { importError, MAPPED_BUILDERS, OTHER_PACKER_BUILDERS } from "./errors.js";
import { scanBlocks, type BlockHeader } from "./hcl-blocks.js";
import { evalExpr, evalTemplate, type HclScope } from "./hcl-expr.js";
import { parseHclFile } from "./hcl-parse.js";
import type { Finding, PackerBlock, PackerBuild, PackerSource, PackerTemplate, PackerVariable } from "./model.js";
import { isObj, setOwn, type Val } from "./values.js";
import { readVarFile, type VarFileValues } from "./var-files.js";

export interface HclReadOptions {
  display: string;
  cwd: string;
  vars: Record<string, string>;
  varFiles: VarFileValues[];
  generated: Generated;
}

type Raw = Record<string, unknown>;
interface ParsedFile {
  display: string;
  doc: Raw;
  headers: BlockHeader[];
}

const asList = (v: unknown): Raw[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter(isObj) as Raw[];

export async function readHclTemplate(target: string, opts: HclReadOptions): Promise<PackerTemplate> {
  const st = await stat(target);
  const dir = st.isDirectory() ? target : path.dirname(target);
  let files: string[];
  let autoVarFiles: string[] = [];
  if (st.isDirectory()) {
    const names = (await readdir(target)).sort();
    files = names.filter((n) => n.endsWith(".pkr.hcl")).map((n) => path.join(target, n));
    autoVarFiles = names.filter((n) => n.endsWith(".auto.pkrvars.hcl")).map((n) => path.join(target, n));
    if (names.some((n) => n.endsWith(".pkr.json"))) throw importError(opts.display, undefined, "*.pkr.json (HCL's JSON syntax) is not supported: convert it to *.pkr.hcl");
    if (files.length === 0) throw importError(opts.display, undefined, "no *.pkr.hcl files in this directory");
  } else files = [target];
  const shown = (f: string) => (st.isDirectory() ? path.join(opts.display, path.basename(f)) : opts.display);
  const parsed: ParsedFile[] = [];
  for (const f of files) {
    const text = await readFile(f, "utf8");
    parsed.push({ display: shown(f), doc: await parseHclFile(shown(f), text), headers: scanBlocks(text) });
  }
  const varFiles = [...(await Promise.all(autoVarFiles.map((f) => readVarFile(f)))), ...opts.varFiles];
  const findings: Finding[] = [];
  const lines = new Map<string, number>();
  const header = (pf: ParsedFile, type: string, ...labels: string[]) => pf.headers.find((h) => h.depth === 0 && h.type === type && labels.every((l, i) => h.labels[i] === l))?.line;

  // ---- variables
  const variables: PackerVariable[] = [];
  const values = new Map<string, Val | undefined>();
  const types = new Map<string, string>();
  const constScope = (): HclScope => ({
    vars: new Map(), local: () => { throw new EvalError("a variable's default cannot use locals"); }, pathRoot: dir, pathCwd: opts.cwd,
    generated: opts.generated, inlineVars: true, note: () => undefined,
  });
  const constant = (raw: unknown, where: string, pf: string, line: number | undefined): Val => {
    try {
      return evalRaw(raw, constScope());
    } catch (err) {
      if (err instanceof EvalError) throw importError(pf, line, `${where}: ${err.message}`);
      throw err;
    }
  };
  for (const pf of parsed) {
    const vblocks = pf.doc.variable;
    if (isObj(vblocks)) {
      for (const [name, list] of Object.entries(vblocks)) {
        const body = asList(list)[0] ?? {};
        const line = header(pf, "variable", name);
        lines.set(`variable.${name}`, line ?? 0);
        if (variables.some((v) => v.name === name)) throw importError(pf.display, line, `variable "${name}" is declared twice`);
        const value = Object.hasOwn(body, "default") ? constant(body.default, `variable "${name}" default`, pf.display, line) : undefined;
        if (typeof body.type === "string") types.set(name, body.type);
        variables.push({ name, value, sensitive: body.sensitive === true, overridden: false, origin: { file: pf.display, line } });
        values.set(name, value);
        for (const k of Object.keys(body)) if (!["default", "type", "sensitive", "description", "validation", "nullable"].includes(k))
          findings.push({ kind: "not-mapped", path: `variable.${name}.${k}`, why: "not a variable setting vmkiln knows" });
        if (body.validation !== undefined) findings.push({ kind: "not-mapped", path: `variable.${name}.validation`, why: "vmkiln variables have no validation rules; the fields that use it are checked by vmkiln validate" });
      }
    }
    for (const block of asList(pf.doc.variables)) {
      for (const [name, raw] of Object.entries(block)) {
        const line = header(pf, "variables");
        variables.push({ name, value: constant(raw, `variables.${name}`, pf.display, line), sensitive: false, overridden: false, origin: { file: pf.display, line } });
        values.set(name, variables[variables.length - 1]!.value);
      }
    }
  }
  const setVar = (name: string, raw: unknown, from: string, fromHcl: boolean) => {
    const v = variables.find((x) => x.name === name);
    if (!v) throw importError(from, undefined, `variable "${name}" is not declared in the template`);
    const complex = /^\$\{\s*(list|map|set|object|tuple)\b/.test(types.get(name) ?? "");
    let value: Val;
    if (fromHcl) value = constant(raw, name, from, undefined);
    else if (complex && typeof raw === "string") {
      try {
        value = evalExpr(raw, constScope());
      } catch (err) {
        throw importError(from, undefined, `${name}: ${(err as Error).message}`);
      }
    } else value = raw === null ? null : typeof raw === "string" ? raw.split("${").join("$${") : String(raw);
    v.value = value;
    v.overridden = true;
    values.set(name, value);
  };
  for (const vf of varFiles) for (const [k, raw] of Object.entries(vf.values)) setVar(k, raw, vf.file, vf.format === "hcl");
  for (const [k, raw] of Object.entries(opts.vars)) setVar(k, raw, "-var", false);
  const secrets = new Set(variables.filter((v) => v.sensitive && v.overridden).map((v) => v.name));

  // ---- locals: evaluated on use (vmkiln has none: they are expanded in place)
  const rawLocals = new Map<string, { raw: unknown; file: string; line: number | undefined }>();
  for (const pf of parsed) {
    for (const block of asList(pf.doc.locals)) for (const [k, raw] of Object.entries(block)) rawLocals.set(k, { raw, file: pf.display, line: header(pf, "locals") });
    const single = pf.doc.local;
    if (isObj(single)) for (const [k, list] of Object.entries(single)) rawLocals.set(k, { raw: asList(list)[0]?.expression, file: pf.display, line: header(pf, "local", k) });
  }
  const localCache = new Map<string, Val>();
  const inProgress = new Set<string>();
  const scope = (extra: Partial<HclScope> & { note: (t: string) => void }): HclScope => {
    const s: HclScope = {
      vars: values,
      local: (name) => {
        if (localCache.has(name)) return localCache.get(name)!;
        const l = rawLocals.get(name);
        if (!l) throw new EvalError(`undeclared local.${name}`);
        if (inProgress.has(name)) throw new EvalError(`local.${name} refers to itself`);
        inProgress.add(name);
        try {
          // Evaluated without source.* / build.*: a local is the same for every source.
          const v = evalRaw(l.raw, { ...s, source: undefined, bindings: undefined });
          localCache.set(name, v);
          return v;
        } finally {
          inProgress.delete(name);
        }
      },
      pathRoot: dir,
      pathCwd: opts.cwd,
      generated: opts.generated,
      secrets,
      ...extra,
    };
    return s;
  };

  for (const pf of parsed) {
    if (pf.doc.data !== undefined) for (const [type, byName] of Object.entries(pf.doc.data as Raw)) for (const name of Object.keys(byName as Raw))
      findings.push({ kind: "not-mapped", path: `data.${type}.${name}`, why: "data sources have no vmkiln equivalent (fields that read them are reported too)" });
    if (pf.doc.packer !== undefined) findings.push({ kind: "note", path: "packer", text: "required_plugins / required_version: not needed by vmkiln" });
    for (const k of Object.keys(pf.doc)) if (!["variable", "variables", "locals", "local", "source", "build", "data", "packer", "hcp_packer_registry"].includes(k))
      findings.push({ kind: "not-mapped", path: k, why: "not a Packer top-level block vmkiln knows" });
  }

  // ---- sources
  const sourceDefs = new Map<string, { type: string; name: string; raw: Raw; file: string; line: number | undefined }>();
  for (const pf of parsed) {
    if (!isObj(pf.doc.source)) continue;
    for (const [type, byName] of Object.entries(pf.doc.source)) {
      for (const [name, list] of Object.entries(byName as Raw)) {
        const line = header(pf, "source", type, name);
        if (!MAPPED_BUILDERS.has(type) && !OTHER_PACKER_BUILDERS.has(type))
          throw importError(pf.display, line, `unknown builder type "${type}" (vmkiln imports ${[...MAPPED_BUILDERS].join(", ")})`);
        sourceDefs.set(`${type}.${name}`, { type, name, raw: asList(list)[0] ?? {}, file: pf.display, line });
      }
    }
  }

  // ---- builds
  const builds: PackerBuild[] = [];
  const used = new Set<string>();
  for (const pf of parsed) {
    const buildHeaders = pf.headers.map((h, i) => ({ h, i })).filter((x) => x.h.depth === 0 && x.h.type === "build");
    asList(pf.doc.build).forEach((b, bi) => {
      const bh = buildHeaders[bi];
      const buildName = typeof b.name === "string" ? b.name : undefined;
      const bpath = `build${buildName ? `.${buildName}` : `[${builds.length}]`}`;
      const children = bh ? pf.headers.map((h, i) => ({ h, i })).filter((x) => x.h.parent === bh.i) : [];
      const sources: PackerSource[] = [];
      const addSource = (ref: string, override: Raw | undefined, line: number | undefined) => {
        const key = ref.replace(/^source\./, "");
        const def = sourceDefs.get(key);
        if (!def) throw importError(pf.display, line ?? bh?.h.line, `build refers to source "${ref}", which is not defined`);
        used.add(key);
        const { name: renamed, ...overrides } = override ?? {};
        const name = typeof renamed === "string" ? renamed : def.name;
        const f: Finding[] = [];
        const p = `source.${def.type}.${name}`;
        const body = evalBody({ ...def.raw, ...overrides }, p, (note) => scope({ note, source: { name, type: def.type }, buildName }), f);
        sources.push({ type: def.type, name: `${def.type}.${name}`, shortName: name, body, path: p, origin: { file: def.file, line: def.line }, findings: f });
        lines.set(p, def.line ?? 0);
      };
      for (const ref of Array.isArray(b.sources) ? b.sources : []) if (typeof ref === "string") addSource(ref, undefined, bh?.h.line);
      if (isObj(b.source)) {
        for (const [ref, list] of Object.entries(b.source)) {
          const line = children.find((c) => c.h.type === "source" && c.h.labels[0] === ref)?.h.line;
          for (const o of asList(list)) addSource(ref, o, line);
        }
      }
      // Provisioners and post-processors in file order (see hcl-blocks.ts).
      const provisioners: PackerBlock[] = [];
      const postProcessors: PackerBlock[] = [];
      const counters = new Map<string, number>();
      const take = (group: unknown, type: string, counterKey: string): Raw | undefined => {
        const n = counters.get(counterKey) ?? 0;
        counters.set(counterKey, n + 1);
        return isObj(group) ? asList((group as Raw)[type])[n] : undefined;
      };
      const block = (raw: Raw, type: string, p: string, line: number | undefined): PackerBlock => {
        const f: Finding[] = [];
        if (line !== undefined) lines.set(p, line);
        return { type, body: evalBody(raw, p, (note) => scope({ note, buildName }), f), path: p, origin: { file: pf.display, line }, findings: f };
      };
      let chain = 0;
      for (const c of children) {
        if (c.h.type === "provisioner") {
          const raw = take(b.provisioner, c.h.labels[0]!, `p:${c.h.labels[0]}`);
          if (raw) provisioners.push(block(raw, c.h.labels[0]!, `${bpath}.provisioner[${provisioners.length}](${c.h.labels[0]})`, c.h.line));
        } else if (c.h.type === "post-processor") {
          const raw = take(b["post-processor"], c.h.labels[0]!, `pp:${c.h.labels[0]}`);
          if (raw) postProcessors.push(block(raw, c.h.labels[0]!, `${bpath}.post-processor(${c.h.labels[0]})`, c.h.line));
        } else if (c.h.type === "post-processors") {
          const group = asList(b["post-processors"])[chain++];
          const inner = pf.headers.map((h, i) => ({ h, i })).filter((x) => x.h.parent === c.i && x.h.type === "post-processor");
          const innerCounters = new Map<string, number>();
          for (const ic of inner) {
            const t = ic.h.labels[0]!;
            const n = innerCounters.get(t) ?? 0;
            innerCounters.set(t, n + 1);
            const raw = isObj(group?.["post-processor"]) ? asList((group["post-processor"] as Raw)[t])[n] : undefined;
            if (raw) postProcessors.push(block(raw, t, `${bpath}.post-processors[${chain - 1}](${t})`, ic.h.line));
          }
        } else if (c.h.type === "error-cleanup-provisioner") {
          findings.push({ kind: "not-mapped", path: `${bpath}.error-cleanup-provisioner`, why: "vmkiln undoes a failed build itself; it runs no provisioner on failure" });
        } else if (c.h.type === "hcp_packer_registry") {
          findings.push({ kind: "not-mapped", path: `${bpath}.hcp_packer_registry`, why: "HCP Packer has no vmkiln equivalent" });
        }
      }
      if (isObj(b.dynamic)) for (const label of Object.keys(b.dynamic))
        findings.push({ kind: "not-mapped", path: `${bpath}.dynamic.${label}`, why: label === "hcp_packer_registry" ? "HCP Packer has no vmkiln equivalent" : "not a build block vmkiln knows" });
      for (const k of Object.keys(b)) if (!["name", "sources", "source", "provisioner", "post-processor", "post-processors", "error-cleanup-provisioner", "hcp_packer_registry", "description", "dynamic"].includes(k))
        findings.push({ kind: "not-mapped", path: `${bpath}.${k}`, why: "not a build setting vmkiln knows" });
      builds.push({ name: buildName, path: bpath, sources, provisioners, postProcessors });
    });
  }
  for (const [key, def] of sourceDefs) if (!used.has(key)) findings.push({ kind: "note", path: `source.${key}`, text: `defined in ${def.file} but used by no build, so not imported` });
  if (builds.length === 0) throw importError(opts.display, undefined, "no build block: nothing to import");

  const description = parsed.flatMap((pf) => asList(pf.doc.build)).map((b) => b.description).find((d): d is string => typeof d === "string");
  return { format: "hcl", display: opts.display, dir, variables, builds, generated: opts.generated.vars, lineOf: (p) => lines.get(p) || undefined, findings, description };
}

/** Evaluates a body; a top-level field that fails is reported and left out. `dynamic` blocks are expanded. */
function evalBody(raw: Raw, p: string, scopeFor: (note: (t: string) => void) => HclScope, findings: Finding[]): Record<string, Val> {
  const out: Record<string, Val> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === "dynamic") continue;
    const fp = `${p}.${k}`;
    try {
      setOwn(out, k, evalRaw(v, scopeFor((text) => findings.push({ kind: "note", path: fp, text }))));
    } catch (err) {
      if (!(err instanceof EvalError)) throw err;
      findings.push({ kind: "not-mapped", path: fp, why: err.message });
    }
  }
  if (isObj(raw.dynamic)) {
    for (const [label, list] of Object.entries(raw.dynamic)) {
      const fp = `${p}.dynamic.${label}`;
      try {
        const blocks = expandDynamic(label, asList(list)[0] ?? {}, scopeFor((text) => findings.push({ kind: "note", path: fp, text })));
        const prev = out[label];
        out[label] = [...(Array.isArray(prev) ? prev : prev === undefined ? [] : [prev]), ...blocks];
      } catch (err) {
        if (!(err instanceof EvalError)) throw err;
        findings.push({ kind: "not-mapped", path: fp, why: `dynamic block: ${err.message}` });
      }
    }
  }
  return out;
}

/** A `dynamic "x" { for_each = …; iterator = y; content { … } }` block with a for_each known at import. */
function expandDynamic(label: string, spec: Raw, scope: HclScope): Val[] {
  const forEach = evalRaw(spec.for_each, scope);
  const iterator = typeof spec.iterator === "string" ? evalRaw(spec.iterator, scope) : label;
  if (typeof iterator !== "string") throw new EvalError("iterator must be a name");
  const entries: Array<[Val, Val]> = Array.isArray(forEach) ? forEach.map((v, i) => [i, v]) : isObj(forEach) ? Object.entries(forEach) : [];
  if (!Array.isArray(forEach) && !isObj(forEach)) throw new EvalError("for_each must be a list or map known at import");
  const content = asList(spec.content)[0];
  if (!content) throw new EvalError("no content block");
  return entries.map(([key, value]) => evalRaw(content, { ...scope, bindings: { ...scope.bindings, [iterator]: { key, value } } }));
}

function evalRaw(v: unknown, scope: HclScope): Val {
  if (typeof v === "string") return evalTemplate(v, scope);
  if (Array.isArray(v)) return v.map((x) => evalRaw(x, scope));
  if (isObj(v)) {
    const out: Record<string, Val> = {};
    for (const [k, x] of Object.entries(v)) setOwn(out, k, evalRaw(x, scope));
    return out;
  }
  return v as Val;
}
