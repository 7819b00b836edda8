// Relative paths in a Packer template are relative to where Packer runs, which for every template we
// modelled is the template's directory (Packer documents the working directory; path.root and
// {{template_dir}} are the template's). vmkiln resolves them from the YAML's directory, so each path
// is rewritten to reach the same file from where the YAML is written.

import path from "node:path";
import type { Report } from "./report.js";
import { hasRef } from "./values.js";

export class PathMapper {
  /** Variables whose value is a relative path a path field starts with: their value is rewritten too. */
  readonly rebased = new Map<string, string>();

  constructor(
    readonly templateDir: string,
    readonly outDir: string,
    /** Variables' values as written (vmkiln text). */
    private readonly vars: Record<string, string> = {},
  ) {}

  /** A local path (vmkiln text) as the YAML must write it. */
  map(p: string, field: string, report: Report): string {
    const trailing = /[\\/]$/.test(p) ? "/" : "";
    const lead = /^\$\{var\.([A-Za-z_][A-Za-z0-9_-]*)\}/.exec(p);
    if (lead) {
      const name = lead[1]!;
      const value = this.vars[name];
      const moved = path.resolve(this.templateDir) !== path.resolve(this.outDir);
      if (value !== undefined && value !== "" && !hasRef(value) && !path.isAbsolute(value) && !/^[a-z][a-z0-9+.-]*:/i.test(value)) {
        if (moved && !this.rebased.has(name)) {
          this.rebased.set(name, this.map(value, `variables.${name}`, report));
          report.note(`variables.${name}`, `a path (used by ${field}): rewritten from ${value} to ${this.rebased.get(name)} for where the YAML is; a -var given to vmkiln build is read from the YAML's directory`);
        }
      } else if (moved && (value === undefined || hasRef(value)))
        report.note(field, `${p} starts with a variable: vmkiln resolves it from the YAML's directory, not the Packer template's`);
      return p;
    }
    if (/^\$\{/.test(p)) return p;
    if (hasRef(p) && path.isAbsolute(p) && !p.startsWith(this.templateDir)) return p;
    if (path.isAbsolute(p) && !isUnder(p, this.templateDir)) return p;
    const abs = path.resolve(this.templateDir, p);
    let rel = path.relative(this.outDir, abs);
    if (rel === "") rel = ".";
    if (!rel.startsWith(".") && !path.isAbsolute(rel)) rel = `./${rel}`;
    return rel + (trailing && !rel.endsWith("/") ? trailing : "");
  }
}

function isUnder(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

export const isHttpUrl = (s: string) => /^https?:\/\//i.test(s);
