// Value substitution in boot commands, done before key parsing (as Packer interpolates its
// template before parsing keys, so a value may itself contain `<enter>`).
//
// Two spellings: Packer's Go-template `{{ .HTTPIP }}` / `{{.HTTPPort}}` / `{{ .Name }}` so
// templates migrate unchanged (and `{{ .HTTPPrefix }}`, ours), and vmkiln's `${http.ip}` /
// `${http.port}` / `${http.prefix}` / `${http.url}` / `${name}`. `$${` types a literal `${`.
import { UserError } from "../errors.js";
import { prefixAfterPort } from "../http/prefix.js";

/**
 * Values by canonical name: `http.ip`, `http.port`, `http.url`, `name`, plus any other name a
 * caller wants to offer (looked up verbatim). `http.url` defaults to `http://IP:PORT`.
 */
export type BootCommandValues = Readonly<Record<string, string | number | undefined>>;

/** Packer's template field → our canonical name. */
const PACKER_ALIASES: Readonly<Record<string, string>> = {
  HTTPIP: "http.ip",
  HTTPPort: "http.port",
  HTTPPrefix: "http.prefix",
  Name: "name",
};

const PATTERN = /\$\$\{|\$\{([^}]*)\}|\{\{(.*?)\}\}/g;
const PACKER_FIELD = /^\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*$/;

function lookup(values: BootCommandValues, name: string): string | undefined {
  const v = values[name];
  if (v !== undefined) return String(v);
  if (name === "http.url") {
    const ip = values["http.ip"];
    const port = values["http.port"];
    if (ip !== undefined && port !== undefined) return `http://${ip}:${port}${values["http.prefix"] ?? ""}`;
  }
  return undefined;
}

function knownNames(values: BootCommandValues): string[] {
  const names = Object.keys(values).filter((k) => values[k] !== undefined);
  if (lookup(values, "http.url") !== undefined && !names.includes("http.url")) names.push("http.url");
  return names.sort();
}

/**
 * Replaces every value reference in `text`. `where` names the text in errors
 * (e.g. `boot_command[2]`). Throws a UserError naming an unknown value and its column.
 */
export function substituteValues(text: string, values: BootCommandValues, where: string): string {
  // A URL built from the port gets the HTTP server's path prefix after it (src/http/prefix.ts).
  const prefix = values["http.prefix"];
  return prefixAfterPort(text, prefix === undefined ? "" : String(prefix)).replace(PATTERN, (match: string, ours: string | undefined, packer: string | undefined, offset: number) => {
    if (match === "$${") return "${";
    let name: string;
    let spelled: string;
    if (ours !== undefined) {
      name = ours.trim();
      spelled = match;
    } else {
      const field = PACKER_FIELD.exec(packer ?? "");
      if (!field) {
        throw new UserError(
          "BOOT_COMMAND_VALUE",
          `${where}, column ${offset + 1}: unsupported template expression ${match}`,
          { hint: "boot commands support {{ .HTTPIP }}, {{ .HTTPPort }}, {{ .HTTPPrefix }}, {{ .Name }} and ${http.ip}, ${http.port}, ${http.prefix}, ${http.url}, ${name}" },
        );
      }
      name = PACKER_ALIASES[field[1]!] ?? field[1]!;
      spelled = match;
    }
    const value = lookup(values, name);
    if (value === undefined) {
      const known = knownNames(values);
      throw new UserError(
        "BOOT_COMMAND_VALUE",
        `${where}, column ${offset + 1}: unknown value ${spelled} ("${name}")`,
        { hint: known.length > 0 ? `known values here: ${known.join(", ")}` : "no values are available to this boot command" },
      );
    }
    return value;
  });
}
