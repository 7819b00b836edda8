// Packer JSON's Go-template strings (`{{user \`x\`}}`, `{{env \`X\`}}`, `{{timestamp}}`…) into
// vmkiln text. The functions are Packer's (hashicorp/packer-plugin-sdk template/interpolate/funcs.go,
// FuncGens). A user variable stays a reference (`${var.x}`); build-time values Packer fills in later
// (`{{ .HTTPIP }}`, `{{ .Path }}`, `{{ build \`Host\` }}`) are kept as written for the field's mapper.

import { escapeText } from "./values.js";
import type { Generated } from "./generated.js";

export class EvalError extends Error {}

export interface GoScope {
  /** Declared user variables with their current values (for functions that need the text). */
  vars: Map<string, string | undefined>;
  templateDir: string;
  cwd: string;
  buildName?: string | undefined;
  buildType?: string | undefined;
  generated: Generated;
  /** In `variables`: a reference must be replaced by its value (vmkiln variables read only the environment). */
  inlineVars?: boolean | undefined;
  note?: ((text: string) => void) | undefined;
  /** Sensitive variables whose value came from -var/-var-file: never computed into the template. */
  secrets?: Set<string> | undefined;
}

type Tok = { k: "str" | "num" | "ident" | "field" | "lp" | "rp" | "pipe"; v: string };

/** A value inside an action: vmkiln text, plus whether it can be used in arithmetic on text. */
type V = string;

export function evalGoTemplate(s: string, scope: GoScope): string {
  let out = "";
  let i = 0;
  while (i < s.length) {
    const at = s.indexOf("{{", i);
    if (at < 0) {
      out += escapeText(s.slice(i));
      break;
    }
    const end = s.indexOf("}}", at + 2);
    if (end < 0) throw new EvalError(`unterminated "{{" in ${JSON.stringify(s)}`);
    let lead = s.slice(i, at);
    let body = s.slice(at + 2, end);
    let next = end + 2;
    // {{- and -}} trim the surrounding white space (text/template).
    if (body.startsWith("-")) {
      body = body.slice(1);
      lead = lead.replace(/\s+$/, "");
    }
    if (body.endsWith("-")) {
      body = body.slice(0, -1);
      while (next < s.length && /\s/.test(s[next]!)) next++;
    }
    out += escapeText(lead);
    out += action(body, s.slice(at, end + 2), scope);
    i = next;
  }
  return out;
}

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) i++;
    else if (c === "`") {
      const end = src.indexOf("`", i + 1);
      if (end < 0) throw new EvalError("unterminated raw string");
      toks.push({ k: "str", v: src.slice(i + 1, end) });
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === "\\" ? 2 : 1;
      if (j >= src.length) throw new EvalError("unterminated string");
      toks.push({ k: "str", v: JSON.parse(src.slice(i, j + 1)) as string });
      i = j + 1;
    } else if (c === "(") toks.push({ k: "lp", v: c }), i++;
    else if (c === ")") toks.push({ k: "rp", v: c }), i++;
    else if (c === "|") toks.push({ k: "pipe", v: c }), i++;
    else {
      const m = /^(\.[A-Za-z_][A-Za-z0-9_.]*|\.|-?\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*)/.exec(src.slice(i));
      if (!m) throw new EvalError(`unexpected ${JSON.stringify(c)}`);
      const v = m[1]!;
      toks.push({ k: v.startsWith(".") ? "field" : /^-?\d/.test(v) ? "num" : "ident", v });
      i += v.length;
    }
  }
  return toks;
}

/** Build-time values Packer fills in after the template is read: kept as written. */
const LATER_FIELDS = /^\.(HTTPIP|HTTPPort|Name|Path|Vars|Host|Port|User|Password|SSHPrivateKey|WinRMPassword|Command|Address|OutputDir|ID|PackerRunUUID|PackerHTTPAddr|PackerHTTPIP|PackerHTTPPort|SourceAMIName|BuildRegion|ConnType|Provisioner|ProvisionerID|Username|Version|Provider|BuildName|ArtifactId|HTTPAddr|WinRMUser)$/;

function action(body: string, raw: string, scope: GoScope): string {
  const toks = tokenize(body);
  if (toks.length === 1 && toks[0]!.k === "field") {
    if (LATER_FIELDS.test(toks[0]!.v)) return raw.split("${").join("$${");
    throw new EvalError(`unknown build value ${toks[0]!.v}`);
  }
  if (toks[0]?.k === "ident" && toks[0].v === "build") return raw.split("${").join("$${"); // {{ build `Host` }}: shell-local
  let pos = 0;
  const pipeline = (): V => {
    let v = command();
    while (toks[pos]?.k === "pipe") {
      pos++;
      v = command(v);
    }
    return v;
  };
  const operand = (): V => {
    const t = toks[pos++];
    if (!t) throw new EvalError("missing argument");
    if (t.k === "str") return escapeText(t.v);
    if (t.k === "num") return t.v;
    if (t.k === "lp") {
      const v = pipeline();
      if (toks[pos++]?.k !== "rp") throw new EvalError('missing ")"');
      return v;
    }
    if (t.k === "ident") return call(t.v, [], scope);
    throw new EvalError(`unexpected ${t.v}`);
  };
  const command = (piped?: V): V => {
    const t = toks[pos++];
    if (!t) throw new EvalError("empty action");
    if (t.k !== "ident") {
      pos--;
      if (piped !== undefined) throw new EvalError("a pipeline must end in a function");
      return operand();
    }
    const args: V[] = [];
    while (pos < toks.length && toks[pos]!.k !== "pipe" && toks[pos]!.k !== "rp") args.push(operand());
    if (piped !== undefined) args.push(piped);
    return call(t.v, args, scope);
  };
  const v = pipeline();
  if (pos !== toks.length) throw new EvalError(`unexpected ${toks[pos]!.v} in {{${body}}}`);
  return v;
}

function call(name: string, args: V[], scope: GoScope): V {
  const arity = (n: number) => {
    if (args.length !== n) throw new EvalError(`${name} takes ${n} argument${n === 1 ? "" : "s"}, got ${args.length}`);
  };
  const lit = (v: V) => literal(v, scope, name);
  switch (name) {
    case "user": {
      arity(1);
      const key = lit(args[0]!);
      if (!scope.vars.has(key)) throw new EvalError(`user variable "${key}" is not declared in "variables"`);
      if (scope.inlineVars) {
        scope.note?.(`{{user \`${key}\`}} inlined: a vmkiln variable reads only the environment, not other variables`);
        return escapeText(scope.vars.get(key) ?? "");
      }
      return "${var." + key + "}";
    }
    case "env": {
      arity(1);
      const key = lit(args[0]!);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new EvalError(`environment variable name "${key}" is not one vmkiln can read`);
      return "${env." + key + ":-}"; // Packer's env is empty when unset
    }
    case "timestamp":
      arity(0);
      return ref(scope.generated.timestamp(), scope);
    case "isotime":
      if (args.length > 1) throw new EvalError("isotime takes at most one argument");
      return ref(scope.generated.isotime(args[0] === undefined ? undefined : lit(args[0])), scope);
    case "uuid":
      arity(0);
      return ref(scope.generated.uuid(), scope);
    case "template_dir":
      arity(0);
      return escapeText(scope.templateDir);
    case "pwd":
      arity(0);
      return escapeText(scope.cwd);
    case "build_name":
      arity(0);
      return scope.buildName === undefined ? "${name}" : escapeText(scope.buildName);
    case "build_type":
      arity(0);
      if (scope.buildType === undefined) throw new EvalError("build_type is only known inside a builder");
      return escapeText(scope.buildType);
    case "lower":
      arity(1);
      return escapeText(lit(args[0]!).toLowerCase());
    case "upper":
      arity(1);
      return escapeText(lit(args[0]!).toUpperCase());
    case "split": {
      arity(3);
      const parts = lit(args[0]!).split(lit(args[1]!));
      const n = Number(lit(args[2]!));
      if (!Number.isInteger(n) || n < 0 || n >= parts.length) throw new EvalError(`split: index ${args[2]} out of range`);
      return escapeText(parts[n]!);
    }
    case "replace": {
      // Go's strings.Replace(s, old, new, n) as Packer exposes it: replace old new n s.
      arity(4);
      const [o, nw, n, s] = args.map(lit) as [string, string, string, string];
      let count = Number(n);
      let out = s;
      if (count < 0) return escapeText(s.split(o).join(nw));
      let from = 0;
      while (count-- > 0) {
        const at = out.indexOf(o, from);
        if (at < 0) break;
        out = out.slice(0, at) + nw + out.slice(at + o.length);
        from = at + nw.length;
      }
      return escapeText(out);
    }
    case "replace_all": {
      arity(3);
      const [o, nw, s] = args.map(lit) as [string, string, string];
      return escapeText(s.split(o).join(nw));
    }
    case "clean_resource_name":
    case "clean_image_name":
    case "clean_ami_name":
      arity(1);
      return escapeText(lit(args[0]!).replace(/[^A-Za-z0-9_.-]/g, "-"));
    default:
      throw new EvalError(`{{${name}}} has no vmkiln equivalent`);
  }
}

function ref(varName: string, scope: GoScope): V {
  if (scope.inlineVars) {
    const g = scope.generated.vars.get(varName)!;
    scope.note?.(`${g.why} inlined as ${g.value} (import time)`);
    return escapeText(g.value);
  }
  return "${var." + varName + "}";
}

/** A function argument's text: references are replaced by the variables' current values. */
function literal(v: V, scope: GoScope, fn: string): string {
  let used = false;
  const out = v.replace(/\$\$\{|\$\{var\.([A-Za-z_][A-Za-z0-9_-]*)\}|\$\{env\.([A-Za-z_][A-Za-z0-9_]*):-\}|\$\{name\}/g, (m, vn?: string, en?: string) => {
    if (m === "$${") return "${";
    used = true;
    if (vn !== undefined && scope.secrets?.has(vn)) throw new EvalError(`user variable "${vn}" is sensitive: its value is not computed into the template`);
    if (vn !== undefined) return scope.vars.get(vn) ?? scope.generated.vars.get(vn)?.value ?? "";
    if (en !== undefined) return process.env[en] ?? "";
    return scope.buildName ?? "";
  });
  if (used) scope.note?.(`${fn}(…) applied at import time to the variables' current values: vmkiln templates cannot call it at build time`);
  return out;
}
