// A read Packer template → vmkiln templates, one per source. Not merged into one template with
// several drivers: Packer's builders write different artifacts (qemu a qcow2, VirtualBox an OVF) and
// install differently, and a vmkiln template has one output and one install section for all its
// drivers, so a merged template would build something else than Packer did.

import { concrete, isObj, varsIn, type Val } from "./values.js";
import { importError, MAPPED_BUILDERS } from "./errors.js";
import type { Finding, PackerBuild, PackerSource, PackerTemplate } from "./model.js";
import { PathMapper } from "./paths.js";
import { mapPostProcessor } from "./post-processors.js";
import { mapProvisioner, type Entry } from "./provisioners.js";
import { Body, Report } from "./report.js";
import { sensitiveNames, sensitiveVariable } from "./sensitive.js";
import type { BuilderCtx, BuilderResult, Doc } from "./builders/common.js";
import { mapQemu } from "./builders/qemu.js";
import { mapVirtualbox } from "./builders/virtualbox.js";
import { mapVsphere } from "./builders/vsphere.js";

export interface ImportedTemplate {
  name: string;
  /** The Packer sources it came from (their `only` names). */
  sources: string[];
  doc: Doc;
  /** Comments above variables, by name. */
  variableComments: Map<string, string>;
  findings: Finding[];
}

export interface ConvertOptions {
  only?: string | undefined;
  outDir: string;
}

export interface ConvertResult {
  templates: ImportedTemplate[];
  /** Findings not tied to one output (top-level blocks, builders vmkiln has no driver for). */
  findings: Finding[];
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export function convert(tpl: PackerTemplate, opts: ConvertOptions): ConvertResult {
  const global: Finding[] = [...tpl.findings];
  const current: Record<string, string> = {};
  for (const v of tpl.variables) if (typeof v.value === "string" || typeof v.value === "number" || typeof v.value === "boolean") current[v.name] = concrete(String(v.value), {}, process.env);
  for (const [k, g] of tpl.generated) current[k] = g.value;
  const rawVars: Record<string, string> = {};
  for (const v of tpl.variables) if (typeof v.value === "string" || typeof v.value === "number" || typeof v.value === "boolean") rawVars[v.name] = String(v.value);
  const paths = new PathMapper(tpl.dir, opts.outDir, rawVars);

  const all = tpl.builds.flatMap((b) => b.sources.map((s) => ({ build: b, source: s })));
  const selected = opts.only === undefined ? all : all.filter(({ source }) => matches(source, opts.only!));
  if (opts.only !== undefined && selected.length === 0)
    throw importError(tpl.display, undefined, `--only ${opts.only}: no such source (have ${all.map((x) => x.source.name).join(", ")})`);
  const out: ImportedTemplate[] = [];
  for (const { build, source } of selected) {
    if (!MAPPED_BUILDERS.has(source.type)) {
      global.push({ kind: "not-mapped", path: source.path, why: `${source.type}: vmkiln has no driver for it (builds qemu, virtualbox, vsphere)` });
      continue;
    }
    out.push(convertSource(tpl, build, source, paths, current, rawVars));
  }
  if (out.length === 0) {
    const first = selected[0]?.source;
    throw importError(tpl.display, first?.origin.line, `no source vmkiln can build (${selected.map((x) => `${x.source.name}: ${x.source.type}`).join(", ")})`);
  }
  return { templates: out, findings: global };
}

function matches(s: PackerSource, only: string): boolean {
  const o = only.replace(/^source\./, "");
  return s.name === o || s.shortName === o || s.type === o;
}

/** Packer's `only`/`except` on a provisioner or post-processor, by builder name or `type.name`. */
function appliesTo(body: Record<string, Val>, s: PackerSource): boolean {
  const names = (v: Val | undefined) => (Array.isArray(v) ? v.map((x) => String(x).replace(/^source\./, "")) : undefined);
  const only = names(body.only);
  const except = names(body.except);
  const hit = (list: string[]) => list.includes(s.name) || list.includes(s.shortName);
  if (only && !hit(only)) return false;
  if (except && hit(except)) return false;
  return true;
}

function convertSource(tpl: PackerTemplate, build: PackerBuild, source: PackerSource, paths: PathMapper, vars: Record<string, string>, rawVars: Record<string, string>): ImportedTemplate {
  const report = new Report();
  for (const f of source.findings) report.findings.push(f);
  const body = new Body(source.body, source.path, report);
  const ctx: BuilderCtx = { source, body, report, paths, vars, rawVars };
  let mapped: BuilderResult;
  switch (source.type) {
    case "qemu":
      mapped = mapQemu(ctx);
      break;
    case "virtualbox-iso":
      mapped = mapVirtualbox(ctx, "iso");
      break;
    case "virtualbox-ovf":
      mapped = mapVirtualbox(ctx, "ovf");
      break;
    case "vsphere-iso":
      mapped = mapVsphere(ctx, "iso");
      break;
    default:
      mapped = mapVsphere(ctx, "clone");
  }
  body.rest(`not a ${source.type} setting vmkiln has`);

  const sshUser = isObj(mapped.doc.ssh) ? (mapped.doc.ssh.username as string | undefined) : undefined;
  const provision: Entry[] = [];
  for (const p of build.provisioners) {
    if (!appliesTo(p.body, source)) continue;
    const override = isObj(p.body.override) && isObj(p.body.override[source.shortName]) ? (p.body.override[source.shortName] as Record<string, Val>) : undefined;
    if (override) report.note(`${p.path}.override`, `the ${source.shortName} override is applied`);
    provision.push(...mapProvisioner(p, override, { report, paths, vars, sshUser }));
  }
  const formats = new Set<string>();
  for (const pp of build.postProcessors) {
    if (!appliesTo(pp.body, source)) continue;
    for (const f of mapPostProcessor(pp, report, vars).formats) formats.add(f);
  }
  const output = isObj(mapped.doc.output) ? { ...mapped.doc.output } : {};
  if (formats.has("ova")) {
    const list = Array.isArray(output.formats) ? (output.formats as string[]) : [];
    if (mapped.driver === "vsphere" && mapped.driverBody.after !== "export") report.notMapped(`${build.path || "post-processors"}`, "an OVA needs after: export on vSphere");
    else if (!list.includes("ova")) output.formats = [...list, "ova"];
  }

  // Leftover Packer build values in fields vmkiln does not render them in.
  const lateOk = new Set(["boot", "http"]);
  for (const [k, v] of Object.entries(mapped.doc)) {
    if (lateOk.has(k)) continue;
    if (JSON.stringify(v ?? null).includes("{{")) report.note(k, "holds a Packer build value ({{ … }}) that vmkiln does not fill in here");
  }

  const name = sanitizeName(source.shortName);
  const doc: Doc = { name };
  const used = new Set(varsIn([mapped.doc as Val, provision as unknown as Val, output as Val, mapped.driverBody as Val]));
  const { variables, comments } = variablesFor(tpl, report, used, paths.rebased);
  if (Object.keys(variables).length > 0) doc.variables = variables;
  const secret = sensitiveNames(tpl, variables, used);
  if (secret.length > 0) doc.sensitive_variables = secret;
  for (const key of ["source"]) if (mapped.doc[key] !== undefined) doc[key] = mapped.doc[key];
  doc.drivers = { [mapped.driver]: mapped.driverBody };
  for (const key of ["ssh", "boot", "http", "install_media", "install"]) if (mapped.doc[key] !== undefined && !(isObj(mapped.doc[key]) && Object.keys(mapped.doc[key] as object).length === 0)) doc[key] = mapped.doc[key];
  if (provision.length > 0) doc.provision = provision;
  // Packer does not generalize: build what Packer built (see the YAML's header).
  doc.generalize = false;
  if (mapped.doc.shutdown !== undefined) doc.shutdown = mapped.doc.shutdown;
  if (Object.keys(output).length > 0) doc.output = output;

  // Variables a field needs that have no value: vmkiln build must be given them.
  for (const v of varsIn(doc as Val)) {
    const pv = tpl.variables.find((x) => x.name === v);
    if (pv && (pv.value === undefined || pv.value === null)) report.note(`variables.${v}`, `required (no default in the Packer template): pass -var ${v}=… to vmkiln validate and build`);
    else if (!pv && mapped.required?.includes(v) && !tpl.generated.has(v)) report.note(`variables.${v}`, `required (new, see above): pass -var ${v}=… to vmkiln validate and build`);
  }
  return { name, sources: [source.name], doc, variableComments: comments, findings: report.findings };
}

function variablesFor(tpl: PackerTemplate, report: Report, used: Set<string>, rebased: Map<string, string>): { variables: Record<string, string>; comments: Map<string, string> } {
  const variables: Record<string, string> = {};
  const comments = new Map<string, string>();
  for (const v of tpl.variables) {
    if (!VAR_NAME.test(v.name)) {
      report.notMapped(`variables.${v.name}`, "not a vmkiln variable name (letters, digits, _ and -)");
      continue;
    }
    if (v.value === undefined || v.value === null) continue;
    if (typeof v.value === "object") continue; // lists and maps are written where they are used
    if (v.sensitive) {
      const d = sensitiveVariable(v);
      comments.set(v.name, d.comment);
      report.note(`variables.${v.name}`, d.comment);
      if (!d.writeValue) continue;
    }
    variables[v.name] = rebased.get(v.name) ?? String(v.value);
  }
  for (const [k, g] of tpl.generated) {
    if (!used.has(k)) continue; // only inlined (in a variable's value, or computed with)
    variables[k] = g.value;
    const text = `${g.why}: fixed at import time; pass -var ${k}=… at build time for a new value`;
    comments.set(k, text);
    report.note(`variables.${k}`, text);
  }
  return { variables, comments };
}

function sanitizeName(s: string): string {
  const n = s.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "");
  return n === "" ? "imported" : n;
}
