// `vmkiln import`: a Packer template (JSON, an HCL2 file or a directory of *.pkr.hcl) → vmkiln
// template(s) and a report of everything that was not mapped.


import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { convert, type ImportedTemplate } from "./convert.js";
import { importError } from "./errors.js";
import { Generated } from "./generated.js";
import { readHclTemplate } from "./hcl-reader.js";
import { readJsonTemplate } from "./json-reader.js";
import type { Finding, PackerTemplate } from "./model.js";
import { readVarFile } from "./var-files.js";
import { dedupe, renderYaml } from "./write-yaml.js";

export interface ImportOptions {
  vars?: Record<string, string>;
  varFiles?: string[];
  /** Where the YAML goes (its directory anchors relative paths); several sources add their name. */
  output: string;
  only?: string | undefined;
  cwd?: string;
  /** Fixed "now" for generated values (tests). */
  now?: Date;
}

export interface ImportFile {
  path: string;
  yaml: string;
  template: ImportedTemplate;
  findings: Finding[];
}

export interface ImportResult {
  files: ImportFile[];
  packer: PackerTemplate;
  /** Every finding, all files together, without repeats. */
  findings: Finding[];
}

export async function importPacker(target: string, opts: ImportOptions): Promise<ImportResult> {
  const cwd = opts.cwd ?? process.cwd();
  const abs = path.resolve(cwd, target);
  let isDir: boolean;
  try {
    isDir = (await stat(abs)).isDirectory();
  } catch (err) {
    throw importError(target, undefined, `cannot read: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file or directory" : (err as Error).message}`);
  }
  const varFiles = await Promise.all((opts.varFiles ?? []).map((f) => readVarFile(path.resolve(cwd, f)).then((v) => ({ ...v, file: f }))));
  const generated = new Generated(opts.now ?? new Date());
  const common = { display: target, cwd, vars: opts.vars ?? {}, varFiles, generated };
  let tpl: PackerTemplate;
  if (isDir || /\.hcl$/i.test(abs)) tpl = await readHclTemplate(abs, common);
  else if (/\.json$/i.test(abs)) tpl = await readJsonTemplate(abs, common);
  else {
    // No telling extension: JSON if it looks like JSON, else HCL; each parser names the line.
    const head = (await readFile(abs, "utf8")).trimStart();
    tpl = head.startsWith("{") ? await readJsonTemplate(abs, common) : await readHclTemplate(abs, common);
  }
  // -o naming a directory (existing, or written with a trailing "/") means vmkiln.yaml inside it.
  let output = path.resolve(cwd, opts.output);
  if (/[\\/]$/.test(opts.output) || (await stat(output).then((st) => st.isDirectory(), () => false))) output = path.join(output, "vmkiln.yaml");
  const { templates, findings } = convert(tpl, { only: opts.only, outDir: path.dirname(output) });
  const files: ImportFile[] = templates.map((t) => {
    const file = templates.length === 1 ? output : output.replace(/(\.ya?ml)?$/i, (ext) => `.${t.name}${ext || ".yaml"}`);
    return {
      path: file,
      template: t,
      findings: dedupe([...findings, ...t.findings]),
      yaml: renderYaml(t, { from: path.relative(path.dirname(file), abs) || path.basename(abs), description: tpl.description, global: findings, lineOf: tpl.lineOf }),
    };
  });
  // Never write over the Packer template or a var file, --force or not.
  const inputs = new Set([abs, ...(opts.varFiles ?? []).map((f) => path.resolve(cwd, f))]);
  for (const f of files) if (inputs.has(f.path)) throw importError(f.path, undefined, "is an input of this import; choose another -o");
  const names = new Set(files.map((f) => f.path));
  if (names.size !== files.length) throw importError(target, undefined, "two sources would write the same file: use --only");
  return { files, packer: tpl, findings: dedupe(files.flatMap((f) => f.findings)) };
}

