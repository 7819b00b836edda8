// Layered templates (issue 17): `from:` another template by path, or `stages:` named in one template.
// Each stage becomes an ordinary BuildSpec (the plain loader validates it), so a stage is built by the
// unchanged pipeline; only its source is replaced, at build time, by the disk of the stage before it.
//
//   from: ../base/vmkiln.yaml        # the base template's last stage is this template's first source
//   stages:                          # or: named stages, each from the one before (or `from: <stage>`)
//     - name: base
//       provision: [...]
//       generalize: false            # optional; earlier stages default to false (deferred to the last)
//     - name: node
//       provision: [...]
//
// A stage's problems are reported at their place in the file (`stages[1].provision[0].shell.script`).
import { realpath, stat } from "node:fs/promises";
import path from "node:path";
import { TemplateError, UserError, type Problem } from "../errors.js";
import { loadTemplateText, specFromObject, type LoadOptions } from "../template/load.js";
import { InputError, parseText, readInput } from "../template/parse.js";
import type { BuildSpec } from "../template/spec.js";
import { STAGE_NAME_PATTERN } from "../template/schema.js";

export interface StagePlan {
  /** "base", or "<template name>/<stage>" for a stage of a `from:` template. */
  label: string;
  stage: string;
  templatePath: string;
  /** The stage as a complete spec. A stage with a parent has a placeholder source until built. */
  spec: BuildSpec;
  /** Index (in LayeredPlan.stages) of the stage whose disk is this stage's source. */
  parent: number | undefined;
  /** Whether generalize was asked for in this stage (explicitly, or as the last stage). */
  generalizes: boolean;
}

export interface LayeredPlan {
  stages: StagePlan[];
  /** Index of the stage whose outputs go to output.directory (the template's last stage). */
  final: number;
}

export type LoadedBuild = { kind: "plain"; spec: BuildSpec } | { kind: "layered"; plan: LayeredPlan };

const STAGE_KEYS = new Set(["name", "from", "provision", "generalize"]);
/** Sections that drive an installer: they belong to the first stage only. */
const INSTALL_SECTIONS = ["boot", "install", "install_media"];
/** Deeper than any real chain; stops a runaway (a generated chain, a loop through symlinks). */
const MAX_DEPTH = 32;

/** Loads a template; a template with `from:` or `stages:` becomes a plan of stages. */
export async function loadBuild(file: string, opts: LoadOptions = {}): Promise<LoadedBuild> {
  const abs = path.resolve(file);
  const text = await readText(abs, file, opts);
  const parsed = parseText(text, abs);
  // Not layered (or not even parseable): the plain loader, on the same text, says everything.
  if ("problem" in parsed || !isLayeredDoc(parsed.value)) return { kind: "plain", spec: await loadTemplateText(file, text, opts) };
  const doc = parsed.value;
  const stages: StagePlan[] = [];
  await addTemplate(abs, file, doc, opts, stages, [], true);
  const plan = { stages, final: stages.length - 1 };
  warnUnbuilt(plan);
  return { kind: "layered", plan };
}

/**
 * Only the last stage and what it is built on are built (src/layers/build.ts walks that chain): a
 * stage off that chain would be skipped without a word. Said as a warning on the last stage's spec.
 */
function warnUnbuilt(plan: LayeredPlan): void {
  const used = new Set<number>();
  for (let i: number | undefined = plan.final; i !== undefined && !used.has(i); i = plan.stages[i]!.parent) used.add(i);
  const unbuilt = plan.stages.filter((_, i) => !used.has(i));
  if (unbuilt.length === 0) return;
  const final = plan.stages[plan.final]!.spec;
  final.warnings = [
    ...(final.warnings ?? []),
    ...unbuilt.map(
      (s): Problem => ({
        path: "stages",
        message: `stage ${s.label} is never built: the last stage is not built on it (a later stage needs from: ${s.stage})`,
        code: "STAGE_UNBUILT",
      }),
    ),
  ];
}

export function isLayeredDoc(doc: unknown): boolean {
  return isRec(doc) && (Object.hasOwn(doc, "stages") || Object.hasOwn(doc, "from"));
}

async function readText(abs: string, display: string, opts: LoadOptions): Promise<string> {
  try {
    return await readInput(abs, opts.signal);
  } catch (err) {
    if (err instanceof InputError) throw new UserError(`TEMPLATE_${err.code}`, `${display}: ${err.message}`, { cause: err });
    throw err;
  }
}

async function readDoc(abs: string, display: string, opts: LoadOptions): Promise<unknown> {
  const parsed = parseText(await readText(abs, display, opts), abs);
  if ("problem" in parsed) throw new TemplateError(display, [parsed.problem]);
  return parsed.value;
}

interface RawStage {
  name: string;
  from: string | undefined;
  provision: unknown;
  generalize: unknown;
  hasGeneralize: boolean;
}

/** Appends the stages of `abs` (its `from:` chain first) to `out`. */
async function addTemplate(abs: string, display: string, doc: unknown, opts: LoadOptions, out: StagePlan[], chain: string[], outermost: boolean): Promise<void> {
  if (!isRec(doc)) throw new TemplateError(display, [{ path: "", message: "expected a mapping at the top level" }]);
  const problems: Problem[] = [];
  const dir = path.dirname(abs);

  // from: another template, built first.
  let fromPath: string | undefined;
  if (Object.hasOwn(doc, "from")) {
    const f = doc.from;
    if (typeof f !== "string" || f.trim() === "") problems.push({ path: "from", message: "expected the path of another template (a string)" });
    else {
      fromPath = path.resolve(dir, f);
      // Followed through symlinks, and compared by real path: a link to a template in the chain is
      // that template (a cycle), not a new one.
      const st = await stat(fromPath).catch(() => undefined);
      const real = await realpath(fromPath).catch(() => fromPath!);
      const seen = [...chain, await realpath(abs).catch(() => abs)];
      if (seen.includes(real)) {
        problems.push({ path: "from", message: `cycle: ${[...seen.slice(seen.indexOf(real)), real].map((p) => path.relative(dir, p) || path.basename(p)).join(" → ")}` });
        fromPath = undefined;
      } else if (!st) {
        problems.push({ path: "from", message: `no such file: ${fromPath}` });
        fromPath = undefined;
      } else if (st.isDirectory()) {
        problems.push({ path: "from", message: `${fromPath} is a directory; name the template file` });
        fromPath = undefined;
      } else if (!st.isFile()) {
        // A FIFO or device would block or never end; a template is a file.
        problems.push({ path: "from", message: `${fromPath} is not a regular file` });
        fromPath = undefined;
      } else if (seen.length >= MAX_DEPTH) {
        problems.push({ path: "from", message: `more than ${MAX_DEPTH} templates in the from: chain` });
        fromPath = undefined;
      }
    }
    if (Object.hasOwn(doc, "source")) problems.push({ path: "source", message: "a template built from another (from:) takes its source from it; remove source or from" });
  }

  // stages: named, each from the one before or a named earlier one.
  const stages: RawStage[] = [];
  if (Object.hasOwn(doc, "stages")) {
    const list = doc.stages;
    if (!Array.isArray(list) || list.length === 0) problems.push({ path: "stages", message: "expected a non-empty list of stages" });
    else {
      if (Object.hasOwn(doc, "provision")) problems.push({ path: "provision", message: "with stages, each stage has its own provision list; move it into a stage" });
      list.forEach((s, i) => {
        const at = `stages[${i}]`;
        if (!isRec(s)) {
          problems.push({ path: at, message: "expected a mapping (name, provision, generalize, from)" });
          return;
        }
        for (const k of Object.keys(s)) if (!STAGE_KEYS.has(k)) problems.push({ path: `${at}.${k}`, message: `unknown field (a stage has: ${[...STAGE_KEYS].join(", ")})` });
        let name = `#${i}`;
        if (typeof s.name !== "string") problems.push({ path: `${at}.name`, message: s.name === undefined ? "required" : "expected a string" });
        else if (!STAGE_NAME_PATTERN.test(s.name)) problems.push({ path: `${at}.name`, message: "letters, digits, '.', '_' and '-' only, starting with a letter or digit (at most 63)" });
        else if (stages.some((o) => o.name === s.name)) problems.push({ path: `${at}.name`, message: `a stage named "${s.name}" comes before this one` });
        else name = s.name;
        let from: string | undefined;
        if (s.from !== undefined) {
          if (typeof s.from !== "string") problems.push({ path: `${at}.from`, message: "expected the name of an earlier stage" });
          else if (!stages.some((o) => o.name === s.from)) {
            const known = stages.map((o) => o.name);
            problems.push({ path: `${at}.from`, message: `no stage "${s.from}" before this one${known.length ? ` (earlier stages: ${known.join(", ")})` : " (it is the first stage)"}` });
          } else from = s.from;
        }
        stages.push({ name, from, provision: s.provision ?? [], generalize: s.generalize, hasGeneralize: Object.hasOwn(s, "generalize") });
      });
    }
  } else {
    stages.push({ name: "main", from: undefined, provision: doc.provision ?? [], generalize: doc.generalize, hasGeneralize: false });
  }
  if (problems.length > 0) throw new TemplateError(display, problems);

  if (fromPath) {
    const baseDisplay = path.relative(process.cwd(), fromPath) || fromPath;
    let baseDoc: unknown;
    try {
      baseDoc = await readDoc(fromPath, baseDisplay, opts);
    } catch (err) {
      // Unreadable or too large: the child's from: names it. The base's own problems name the base.
      if (err instanceof UserError && !(err instanceof TemplateError)) throw new TemplateError(display, [{ path: "from", message: err.message }]);
      throw err;
    }
    await addTemplate(fromPath, baseDisplay, baseDoc, opts, out, [...chain, await realpath(abs).catch(() => abs)], false);
  }
  const baseLast = fromPath ? out.length - 1 : undefined;
  const first = out.length;
  const hasStages = Object.hasOwn(doc, "stages");
  const all: Problem[] = [];
  const warnings: Problem[] = [];
  stages.forEach((s, i) => {
    const last = i === stages.length - 1;
    const derived = i > 0 || fromPath !== undefined;
    const raw: Record<string, unknown> = { ...doc };
    delete raw.stages;
    delete raw.from;
    raw.provision = s.provision;
    // Generalize once, in the last stage of the build being run; an earlier stage only when asked.
    const generalizes = s.hasGeneralize ? s.generalize !== false : last && outermost;
    if (s.hasGeneralize) raw.generalize = s.generalize;
    else if (!(last && outermost)) raw.generalize = false;
    if (derived) for (const k of INSTALL_SECTIONS) delete raw[k];
    const remap = (p: Problem): Problem => {
      const inStage = /^provision(\[|\.|$)/.test(p.path) || (s.hasGeneralize && /^generalize(\[|\.|$)/.test(p.path));
      return hasStages && inStage ? { ...p, path: `stages[${i}].${p.path}` } : p;
    };
    try {
      const spec = derived ? derivedSpec(raw, { ...opts, baseDir: dir, file: abs }) : specFromObject(raw, { ...opts, baseDir: dir, file: abs });
      const ws = (spec.warnings ?? []).filter((w) => !(derived && w.path.startsWith("source"))).map(remap);
      spec.warnings = ws;
      warnings.push(...ws);
      const parent = s.from !== undefined ? first + stages.findIndex((o) => o.name === s.from) : i > 0 ? out.length - 1 : baseLast;
      const label = !hasStages ? spec.name : outermost ? s.name : `${spec.name}/${s.name}`;
      out.push({ label, stage: s.name, templatePath: abs, spec, parent, generalizes });
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      all.push(...err.problems.map(remap));
      warnings.push(...err.warnings.map(remap));
    }
  });
  if (all.length > 0) throw new TemplateError(display, dedupe(all), dedupe(warnings));
  // Logged once, by the template's last stage, not once per stage.
  for (const s of out.slice(first, -1)) s.spec.warnings = [];
  out[out.length - 1]!.spec.warnings = dedupe(warnings);
}

/**
 * A derived stage's source is replaced at build time by what its parent hands over: a disk file (QEMU,
 * VirtualBox) or a clone of a kept VM (vSphere, src/pipeline/driver.ts StageHandoff). Until then it
 * gets a placeholder the configured drivers accept, tried in that order; a problem about the
 * placeholder itself is never the user's, so only the other problems are reported.
 */
const PLACEHOLDERS = (file: string): Array<Record<string, unknown>> => [{ cloud_image: { path: file, checksum: "none", format: "qcow2" } }, { clone: { template: "vmkiln-stage" } }];

function derivedSpec(raw: Record<string, unknown>, opts: LoadOptions & { baseDir: string; file: string }): BuildSpec {
  // A placeholder's problem: on source itself, or a driver refusing that kind of source.
  const aboutPlaceholder = (p: Problem) => /^source(\.|\[|$)/.test(p.path) || (/^drivers\./.test(p.path) && /source\.(clone|cloud_image)/.test(p.message));
  let own: Problem[] | undefined;
  let warnings: Problem[] = [];
  for (const source of PLACEHOLDERS(opts.file)) {
    try {
      return specFromObject({ ...raw, source }, opts);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      const mine = err.problems.filter((p) => !aboutPlaceholder(p));
      if (mine.length > 0 && own === undefined) {
        own = mine;
        warnings = err.warnings;
      }
    }
  }
  throw new TemplateError(
    opts.file,
    own ?? [{ path: "drivers", message: "a stage built on another takes the source its drivers hand over (a disk file, or a kept VM to clone), and these drivers take different kinds; give a layered template drivers of one kind" }],
    warnings,
  );
}

function dedupe(list: Problem[]): Problem[] {
  const seen = new Set<string>();
  return list.filter((p) => {
    const k = `${p.path}\0${p.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const isRec = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
