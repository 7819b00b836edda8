// -var and -var-file values for the import: they become the values the written template's
// `variables` hold. JSON var files (Packer 1.x) and HCL ones (*.pkrvars.hcl) are both read.

import { readFile } from "node:fs/promises";
import path from "node:path";
import { importError } from "./errors.js";
import { JsonSyntaxError, parseJsonWithLines } from "./json-text.js";
import { parseHclFile } from "./hcl-parse.js";
import { setOwn } from "./values.js";

/** Raw values by name: JSON values as they are, HCL values as hcl2json gives them (expressions as `${…}`). */
export interface VarFileValues {
  file: string;
  format: "json" | "hcl";
  values: Record<string, unknown>;
}

export async function readVarFile(file: string): Promise<VarFileValues> {
  let text: string;
  try {
    text = await readFile(path.resolve(file), "utf8");
  } catch (err) {
    throw importError(file, undefined, `cannot read var file: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  if (file.endsWith(".json") || /^\s*\{/.test(text)) {
    try {
      const { value, lines } = parseJsonWithLines(text);
      if (value === null || typeof value !== "object" || Array.isArray(value)) throw importError(file, 1, "a var file must be a JSON object of names to values");
      for (const [k, v] of Object.entries(value)) {
        if (v !== null && typeof v === "object") throw importError(file, lines.get(k), `${k}: expected a string, number or boolean`);
      }
      return { file, format: "json", values: value as Record<string, unknown> };
    } catch (err) {
      if (err instanceof JsonSyntaxError) throw importError(file, err.line, `JSON syntax error: ${err.message}`, err.column);
      throw err;
    }
  }
  return { file, format: "hcl", values: await parseHclFile(file, text) };
}

/** Parses `-var` arguments (`NAME=VALUE`, the value may contain "="); later ones win. */
export function parseImportVars(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf("=");
    const key = eq < 0 ? "" : item.slice(0, eq).trim();
    if (key === "") throw importError("-var", undefined, `${JSON.stringify(item)}: expected NAME=VALUE`);
    setOwn(out, key, item.slice(eq + 1));
  }
  return out;
}
