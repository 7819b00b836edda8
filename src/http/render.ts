// Rendering of installer files (http.content, install_media.content) with build variables, once
// the values only known at build time exist: `${http.ip}`, `${http.port}`, `${http.url}`,
// `${http.prefix}`, `${ssh.public_key}`, besides `${var.X}`, `${env.X}` and `${name}`. Packer's
// `{{ .HTTPIP }}`, `{{ .HTTPPort }}` and `{{ .Name }}` work too (and `{{ .HTTPPrefix }}`, ours) so
// migrated kickstarts render unchanged; any other
// `{{ … }}` (Jinja in an autoinstall file, say) is left alone. `$${` is a literal `${`.
import { readFile } from "node:fs/promises";
import { UserError } from "../errors.js";
import { interpolateString } from "../template/interpolate.js";
import { prefixAfterPort } from "./prefix.js";
import type { RenderedText } from "../template/spec.js";

export interface RenderScope {
  variables: Record<string, string>;
  env: NodeJS.ProcessEnv;
  name: string;
  /** Dotted names: http.ip, http.port, http.url, http.prefix, ssh.public_key. */
  values: Record<string, string>;
}

const PACKER_FIELDS: Readonly<Record<string, string>> = { HTTPIP: "http.ip", HTTPPort: "http.port", HTTPPrefix: "http.prefix", Name: "name" };

/** Renders one text; `where` names it in errors (`http.content["/ks.cfg"]`, a file path). */
export function renderText(text: string, scope: RenderScope, where: string): string {
  // A URL built from the port gets the server's path prefix after it (src/http/prefix.ts).
  const withPacker = prefixAfterPort(text, scope.values["http.prefix"] ?? "").replace(/\{\{\s*\.([A-Za-z]+)\s*\}\}/g, (m: string, field: string) => {
    const key = PACKER_FIELDS[field];
    if (key === undefined) return m;
    return key === "name" ? scope.name : (scope.values[key] ?? m);
  });
  const r = interpolateString(withPacker, { vars: scope.variables, env: scope.env, name: scope.name, values: scope.values });
  if (r.errors.length > 0) throw new UserError("RENDER_FAILED", `${where}: ${r.errors.join("; ")}`);
  return r.value;
}

/** Reads (for `{ file }`) and renders an entry of a content map. */
export async function renderEntry(entry: RenderedText, scope: RenderScope, where: string): Promise<string> {
  if ("text" in entry) return renderText(entry.text, scope, where);
  let text: string;
  try {
    text = await readFile(entry.file, "utf8");
  } catch (err) {
    throw new UserError("FILE_NOT_FOUND", `${where}: cannot read ${entry.file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`, { cause: err });
  }
  return renderText(text, scope, `${where} (${entry.file})`);
}
