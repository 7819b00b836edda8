// `vmkiln import <packer template>`: writes the vmkiln template(s) and reports every Packer field that
// was not mapped. Exit 0 (with warnings); --strict: exit 2 and write nothing if anything was not mapped.

import { access, mkdir } from "node:fs/promises";
import path from "node:path";
import { UserError } from "../errors.js";
import { importPacker } from "../import/index.js";
import { parseImportVars } from "../import/var-files.js";
import { formatFinding } from "../import/write-yaml.js";
import { writeFileAtomic } from "../util/atomic.js";
import type { CliIO } from "./io.js";

export interface ImportCliOptions {
  var?: string[];
  varFile?: string[];
  output?: string;
  only?: string;
  strict?: boolean;
  force?: boolean;
  json?: boolean;
}

export async function importCommand(template: string, o: ImportCliOptions, io: CliIO): Promise<number> {
  const result = await importPacker(template, { vars: parseImportVars(o.var ?? []), varFiles: o.varFile ?? [], output: o.output ?? "vmkiln.yaml", only: o.only });
  const lineOf = result.packer.lineOf;
  const unmapped = result.findings.filter((f) => f.kind === "not-mapped");
  if (o.strict && unmapped.length > 0) {
    for (const f of unmapped) io.err(`not mapped: ${formatFinding(f, lineOf)}`);
    throw new UserError("IMPORT_STRICT", `${template}: ${unmapped.length} Packer field${unmapped.length === 1 ? "" : "s"} not mapped (--strict); nothing written`);
  }
  // vmkiln never overwrites what it did not create: an existing file needs --force.
  if (!o.force) {
    for (const f of result.files) {
      const exists = await access(f.path).then(() => true, () => false);
      if (exists) throw new UserError("IMPORT_EXISTS", `${path.relative(process.cwd(), f.path) || f.path}: already exists (use --force to replace it)`);
    }
  }
  for (const f of result.files) {
    await mkdir(path.dirname(f.path), { recursive: true });
    await writeFileAtomic(f.path, f.yaml);
  }
  if (o.json) {
    io.out(JSON.stringify({
      files: result.files.map((f) => ({ path: f.path, name: f.template.name, sources: f.template.sources, drivers: Object.keys(f.template.doc.drivers as object) })),
      not_mapped: unmapped.map((f) => ({ path: f.path, why: f.why, line: lineOf(f.path) })),
      notes: result.findings.filter((f) => f.kind === "note").map((f) => ({ path: f.path, text: f.text })),
    }));
    return 0;
  }
  for (const f of result.files)
    io.out(`wrote ${path.relative(process.cwd(), f.path) || f.path} (${f.template.name}: ${Object.keys(f.template.doc.drivers as object).join(", ")} from ${f.template.sources.join(", ")})`);
  for (const f of result.findings) {
    if (f.kind === "not-mapped") io.err(`not mapped: ${formatFinding(f, lineOf)}`);
    else io.err(`note: ${formatFinding(f, lineOf)}`);
  }
  if (unmapped.length > 0) io.err(`${unmapped.length} field${unmapped.length === 1 ? "" : "s"} not mapped (listed in the YAML's header too); --strict makes this an error`);
  return 0;
}
