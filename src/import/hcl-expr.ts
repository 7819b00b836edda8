// HCL2 expressions as the HCL parser (@cdktn/hcl2json) leaves them: every attribute that is not a
// plain literal arrives as template text, `${var.x}-${local.y}`. This evaluates that text into vmkiln
// form (values.ts): `var.x` stays a reference when the variable is a single value, `local.x` is
// expanded (vmkiln has no locals), `path.root` is the template's directory, and the functions Packer
// templates commonly call are applied (Packer's function list: hashicorp/packer hcl2template/functions.go).
// Anything else — template directives, for/splat expressions, unknown functions — is an EvalError
// naming the expression, which the caller reports as "not mapped" at the field's path.

import { readFileSync } from "node:fs";
import path from "node:path";
import { EvalError } from "./go-template.js";
import type { Generated } from "./generated.js";
import { escapeText, hasRef, isObj, setOwn, type Val } from "./values.js";

export interface HclScope {
  /** Variables: a scalar stays `${var.x}`; a list or map is expanded to its value. */
  vars: Map<string, Val | undefined>;
  local(name: string): Val;
  pathRoot: string;
  pathCwd: string;
  source?: { name: string; type: string } | undefined;
  buildName?: string | undefined;
  /** Iterators of `dynamic` blocks and for-expression symbols. */
  bindings?: Record<string, Val> | undefined;
  generated: Generated;
  /** Whether a variable reference must be replaced by its value (inside a variable's own default). */
  inlineVars?: boolean | undefined;
  note(text: string): void;
  /** Sensitive variables whose value came from -var/-var-file: never computed into the template. */
  secrets?: Set<string> | undefined;
}

// ---------------------------------------------------------------- templates

/** Evaluates template text (a quoted string's contents, or what hcl2json gives for an attribute). */
export function evalTemplate(src: string, scope: HclScope, rawEscapes = false): Val {
  const parts: Array<{ lit: string } | { expr: string }> = [];
  let lit = "";
  let i = 0;
  while (i < src.length) {
    if (src.startsWith("$${", i)) {
      lit += "${";
      i += 3;
    } else if (src.startsWith("%%{", i)) {
      lit += "%{";
      i += 3;
    } else if (src.startsWith("${", i)) {
      const end = matchBrace(src, i + 1);
      if (lit !== "") parts.push({ lit });
      lit = "";
      let expr = src.slice(i + 2, end);
      if (expr.startsWith("~")) {
        expr = expr.slice(1);
        const prev = parts[parts.length - 1];
        if (prev && "lit" in prev) prev.lit = prev.lit.replace(/\s+$/, "");
      }
      let strip = false;
      if (expr.endsWith("~")) {
        expr = expr.slice(0, -1);
        strip = true;
      }
      parts.push({ expr });
      i = end + 1;
      if (strip) while (i < src.length && /\s/.test(src[i]!)) i++;
    } else if (src.startsWith("%{", i)) {
      throw new EvalError(`template directive "${src.slice(i, Math.min(src.length, matchBrace(src, i + 1) + 1))}" (%{ if }/%{ for }) has no vmkiln equivalent`);
    } else if (rawEscapes && src[i] === "\\") {
      const e = src[i + 1];
      const simple: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\" };
      if (e !== undefined && simple[e] !== undefined) {
        lit += simple[e];
        i += 2;
      } else if (e === "u" || e === "U") {
        const n = e === "u" ? 4 : 8;
        lit += String.fromCodePoint(parseInt(src.slice(i + 2, i + 2 + n), 16));
        i += 2 + n;
      } else {
        lit += src[i];
        i++;
      }
    } else {
      lit += src[i];
      i++;
    }
  }
  if (lit !== "") parts.push({ lit });
  if (parts.length === 1 && "expr" in parts[0]!) return evalExpr(parts[0].expr, scope);
  let out = "";
  for (const p of parts) out += "lit" in p ? escapeText(p.lit) : toText(evalExpr(p.expr, scope), p.expr);
  return out;
}

function toText(v: Val, expr: string): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v === null) return "";
  throw new EvalError(`\${${expr}} is a ${Array.isArray(v) ? "list" : "map"}, not text`);
}

/** Index of the "}" that closes the "{" at `open`, skipping strings and nested braces. */
function matchBrace(src: string, open: number): number {
  let depth = 0;
  let i = open;
  while (i < src.length) {
    const c = src[i]!;
    if (c === "{") depth++;
    else if (c === "}") {
      depth--;
      if (depth === 0) return i;
    } else if (c === '"') {
      i++;
      while (i < src.length && src[i] !== '"') {
        if (src[i] === "\\") i++;
        else if (src.startsWith("${", i)) i = matchBrace(src, i + 1);
        i++;
      }
    }
    i++;
  }
  throw new EvalError(`unterminated "\${" in ${JSON.stringify(src)}`);
}

// ---------------------------------------------------------------- expressions

type Node =
  | { t: "lit"; v: Val }
  | { t: "tmpl"; src: string }
  | { t: "ref"; root: string; steps: Array<{ attr: string } | { index: Node }> }
  | { t: "call"; name: string; args: Node[]; expand: boolean }
  | { t: "tuple"; items: Node[] }
  | { t: "object"; items: Array<[Node, Node]> }
  | { t: "cond"; c: Node; a: Node; b: Node }
  | { t: "bin"; op: string; a: Node; b: Node }
  | { t: "un"; op: string; a: Node }
  | { t: "index"; of: Node; steps: Array<{ attr: string } | { index: Node }> };

type Tok = { k: "num" | "str" | "id" | "op" | "heredoc"; v: string };

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "#" || src.startsWith("//", i)) {
      while (i < src.length && src[i] !== "\n") i++;
      continue;
    }
    if (src.startsWith("/*", i)) {
      const end = src.indexOf("*/", i + 2);
      i = end < 0 ? src.length : end + 2;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') {
        if (src[j] === "\\") j++;
        else if (src.startsWith("${", j) || src.startsWith("%{", j)) j = matchBrace(src, j + 1);
        j++;
      }
      if (j >= src.length) throw new EvalError("unterminated string");
      toks.push({ k: "str", v: src.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    const hd = /^<<(-?)([A-Za-z_][A-Za-z0-9_]*)\r?\n/.exec(src.slice(i));
    if (hd) {
      const bodyStart = i + hd[0].length;
      const endRe = new RegExp(`^[ \\t]*${hd[2]}[ \\t]*$`, "m");
      const rest = src.slice(bodyStart);
      const m = endRe.exec(rest);
      if (!m) throw new EvalError("unterminated heredoc");
      let body = rest.slice(0, m.index);
      if (hd[1] === "-") {
        const lines = body.split("\n");
        const indent = Math.min(...lines.filter((l) => l.trim() !== "").map((l) => /^[ \t]*/.exec(l)![0].length));
        body = lines.map((l) => l.slice(Number.isFinite(indent) ? indent : 0)).join("\n");
      }
      toks.push({ k: "heredoc", v: body });
      i = bodyStart + m.index + m[0].length;
      continue;
    }
    const num = /^\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(src.slice(i));
    if (num) {
      toks.push({ k: "num", v: num[0] });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i));
    if (id) {
      toks.push({ k: "id", v: id[0] });
      i += id[0].length;
      continue;
    }
    const op = /^(?:==|!=|<=|>=|&&|\|\||=>|\.\.\.|::|[-+*/%<>!?:=.,()[\]{}])/.exec(src.slice(i));
    if (!op) throw new EvalError(`unexpected ${JSON.stringify(c)}`);
    toks.push({ k: "op", v: op[0] });
    i += op[0].length;
  }
  return toks;
}

const BINARY: Record<string, number> = { "||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, ">": 4, "<=": 4, ">=": 4, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6 };

function parse(src: string): Node {
  const toks = tokenize(src);
  let pos = 0;
  const peek = (v?: string) => (v === undefined ? toks[pos] : toks[pos]?.k === "op" && toks[pos]!.v === v ? toks[pos] : undefined);
  const expect = (v: string) => {
    if (!peek(v)) throw new EvalError(`expected "${v}" in ${src.trim()}`);
    pos++;
  };
  const expr = (): Node => {
    const c = binary(0);
    if (peek("?")) {
      pos++;
      const a = expr();
      expect(":");
      const b = expr();
      return { t: "cond", c, a, b };
    }
    return c;
  };
  const binary = (min: number): Node => {
    let left = unary();
    for (;;) {
      const t = toks[pos];
      const prec = t?.k === "op" ? BINARY[t.v] : undefined;
      if (prec === undefined || prec <= min) return left;
      pos++;
      left = { t: "bin", op: t!.v, a: left, b: binary(prec) };
    }
  };
  const unary = (): Node => {
    if (peek("!") || peek("-")) {
      const op = toks[pos++]!.v;
      return { t: "un", op, a: unary() };
    }
    return postfix(primary());
  };
  const postfix = (n: Node): Node => {
    const steps: Array<{ attr: string } | { index: Node }> = [];
    for (;;) {
      if (peek(".")) {
        pos++;
        const t = toks[pos++];
        if (t?.k === "id" || t?.k === "num") steps.push({ attr: t.v });
        else if (t?.k === "op" && t.v === "*") throw new EvalError("splat expressions (.*) have no vmkiln equivalent");
        else throw new EvalError(`expected an attribute name after "." in ${src.trim()}`);
      } else if (peek("[")) {
        pos++;
        if (peek("*")) throw new EvalError("splat expressions ([*]) have no vmkiln equivalent");
        steps.push({ index: expr() });
        expect("]");
      } else break;
    }
    if (steps.length === 0) return n;
    if (n.t === "ref") return { ...n, steps: [...n.steps, ...steps] };
    return { t: "index", of: n, steps };
  };
  const primary = (): Node => {
    const t = toks[pos++];
    if (!t) throw new EvalError(`incomplete expression ${src.trim()}`);
    if (t.k === "num") return { t: "lit", v: Number(t.v) };
    if (t.k === "str") return { t: "tmpl", src: t.v };
    if (t.k === "heredoc") return { t: "tmpl", src: t.v };
    if (t.k === "id") {
      if (t.v === "true" || t.v === "false") return { t: "lit", v: t.v === "true" };
      if (t.v === "null") return { t: "lit", v: null };
      if (peek("(")) {
        pos++;
        const args: Node[] = [];
        let expand = false;
        while (!peek(")")) {
          args.push(expr());
          if (peek("...")) {
            pos++;
            expand = true;
          }
          if (peek(",")) pos++;
          else break;
        }
        expect(")");
        return { t: "call", name: t.v, args, expand };
      }
      if (peek("::")) throw new EvalError(`provider functions (${t.v}::…) have no vmkiln equivalent`);
      return { t: "ref", root: t.v, steps: [] };
    }
    if (t.v === "(") {
      const e = expr();
      expect(")");
      return e;
    }
    if (t.v === "[") {
      if (toks[pos]?.k === "id" && toks[pos]!.v === "for") throw new EvalError("for expressions have no vmkiln equivalent");
      const items: Node[] = [];
      while (!peek("]")) {
        items.push(expr());
        if (peek(",")) pos++;
        else break;
      }
      expect("]");
      return { t: "tuple", items };
    }
    if (t.v === "{") {
      if (toks[pos]?.k === "id" && toks[pos]!.v === "for") throw new EvalError("for expressions have no vmkiln equivalent");
      const items: Array<[Node, Node]> = [];
      while (!peek("}")) {
        // A bare identifier key is the key's name, not a variable (HCL object constructor rules).
        const key: Node = toks[pos]?.k === "id" && (toks[pos + 1]?.v === "=" || toks[pos + 1]?.v === ":") ? { t: "lit", v: toks[pos++]!.v } : expr();
        if (peek("=") || peek(":")) pos++;
        else throw new EvalError(`expected "=" in object ${src.trim()}`);
        items.push([key, expr()]);
        if (peek(",")) pos++;
      }
      expect("}");
      return { t: "object", items };
    }
    throw new EvalError(`unexpected "${t.v}" in ${src.trim()}`);
  };
  const n = expr();
  if (pos !== toks.length) throw new EvalError(`unexpected "${toks[pos]!.v}" in ${src.trim()}`);
  return n;
}

export function evalExpr(src: string, scope: HclScope): Val {
  return evaluate(parse(src), scope, src.trim());
}

function evaluate(n: Node, scope: HclScope, src: string): Val {
  switch (n.t) {
    case "lit":
      return n.v;
    case "tmpl":
      return evalTemplate(n.src, scope, true);
    case "tuple":
      return n.items.map((x) => evaluate(x, scope, src));
    case "object": {
      const out: Record<string, Val> = {};
      for (const [k, v] of n.items) setOwn(out, plain(evaluate(k, scope, src), scope, "an object key"), evaluate(v, scope, src));
      return out;
    }
    case "cond": {
      const c = evaluate(n.c, scope, src);
      return truthy(c, scope) ? evaluate(n.a, scope, src) : evaluate(n.b, scope, src);
    }
    case "un": {
      const a = evaluate(n.a, scope, src);
      return n.op === "!" ? !truthy(a, scope) : -num(a, scope);
    }
    case "bin":
      return binop(n.op, evaluate(n.a, scope, src), evaluate(n.b, scope, src), scope);
    case "ref":
      return traverse(root(n.root, n.steps, scope), n.root === "var" || n.root === "local" || n.root === "path" || n.root === "source" || n.root === "build" ? n.steps.slice(1) : n.steps, scope, src);
    case "index":
      return traverse(evaluate(n.of, scope, src), n.steps, scope, src);
    case "call":
      return callFn(n.name, n.args.map((a) => evaluate(a, scope, src)), n.expand, scope);
  }
}

function root(name: string, steps: Array<{ attr: string } | { index: Node }>, scope: HclScope): Val {
  const first = steps[0];
  const attr = first && "attr" in first ? first.attr : undefined;
  if (scope.bindings && Object.hasOwn(scope.bindings, name)) return scope.bindings[name]!;
  switch (name) {
    case "var": {
      if (attr === undefined) throw new EvalError("var needs a name: var.NAME");
      if (!scope.vars.has(attr)) throw new EvalError(`undeclared variable var.${attr}`);
      const v = scope.vars.get(attr);
      // A variable without a value stays a reference: vmkiln build is given it with -var, as Packer is.
      if (v === undefined && !scope.inlineVars) return "${var." + attr + "}";
      if (v === undefined) throw new EvalError(`var.${attr} has no value (pass -var ${attr}=… to the import)`);
      if (scope.inlineVars || Array.isArray(v) || isObj(v) || v === null) {
        if (Array.isArray(v) || isObj(v)) scope.note(`var.${attr} is a ${Array.isArray(v) ? "list" : "map"}: vmkiln variables are single values, so its value is written in place`);
        return v;
      }
      return "${var." + attr + "}";
    }
    case "local":
      if (attr === undefined) throw new EvalError("local needs a name: local.NAME");
      return scope.local(attr);
    case "path":
      if (attr === "root") return escapeText(scope.pathRoot);
      if (attr === "cwd") return escapeText(scope.pathCwd);
      throw new EvalError(`path.${attr} is not a Packer path value`);
    case "source":
      if (!scope.source) throw new EvalError("source.* is only known inside a build");
      if (attr === "name") return escapeText(scope.source.name);
      if (attr === "type") return escapeText(scope.source.type);
      throw new EvalError(`source.${attr} is not known`);
    case "build":
      if (attr === "name" && scope.buildName !== undefined) return escapeText(scope.buildName);
      throw new EvalError(`build.${attr} is only known while Packer builds (no vmkiln equivalent)`);
    case "packer":
      throw new EvalError("packer.version has no vmkiln equivalent");
    default:
      throw new EvalError(`unknown name "${name}" (data sources and other references have no vmkiln equivalent)`);
  }
}

function traverse(v: Val, steps: Array<{ attr: string } | { index: Node }>, scope: HclScope, src: string): Val {
  let cur = v;
  for (const s of steps) {
    const key = "attr" in s ? s.attr : evaluate(s.index, scope, src);
    if (Array.isArray(cur)) {
      const i = num(key, scope);
      if (!Number.isInteger(i) || i < 0 || i >= cur.length) throw new EvalError(`index ${i} out of range in ${src}`);
      cur = cur[i]!;
    } else if (isObj(cur)) {
      const k = plain(key, scope, "a key");
      if (!Object.hasOwn(cur, k)) throw new EvalError(`no key "${k}" in ${src}`);
      cur = cur[k]!;
    } else throw new EvalError(`cannot index a single value in ${src}`);
  }
  return cur;
}

/** The literal text of a value; a reference is replaced by the variable's current value (with a note). */
function plain(v: Val, scope: HclScope, what: string): string {
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (typeof v !== "string") throw new EvalError(`expected text for ${what}`);
  if (!hasRef(v)) return v.replaceAll("$${", "${");
  const names: string[] = [];
  const out = v.replace(/\$\$\{|\$\{var\.([A-Za-z_][A-Za-z0-9_-]*)\}/g, (m, name?: string) => {
    if (m === "$${") return "${";
    if (scope.secrets?.has(name!)) throw new EvalError(`var.${name} is sensitive: its value is not computed into the template`);
    const value = scope.vars.has(name!) ? scope.vars.get(name!) : scope.generated.vars.get(name!)?.value;
    if (value === undefined) throw new EvalError(`var.${name} has no value, and vmkiln cannot compute with it at build time (pass -var ${name}=… to the import)`);
    names.push(name!);
    if (value === undefined || typeof value === "object") return "";
    return String(value).replaceAll("$${", "${");
  });
  scope.note(`var.${names.join(", var.")} used in ${what} or a function: vmkiln cannot compute it at build time, so the current value is written in place`);
  return out;
}

function num(v: Val, scope: HclScope): number {
  if (typeof v === "number") return v;
  const t = plain(v, scope, "a number");
  const n = Number(t);
  if (t.trim() === "" || !Number.isFinite(n)) throw new EvalError(`"${t}" is not a number`);
  return n;
}

function truthy(v: Val, scope: HclScope): boolean {
  if (typeof v === "boolean") return v;
  const t = plain(v, scope, "a condition");
  if (t === "true" || t === "false") return t === "true";
  throw new EvalError(`"${t}" is not true or false`);
}

function binop(op: string, a: Val, b: Val, scope: HclScope): Val {
  switch (op) {
    case "+": return num(a, scope) + num(b, scope);
    case "-": return num(a, scope) - num(b, scope);
    case "*": return num(a, scope) * num(b, scope);
    case "/": return num(a, scope) / num(b, scope);
    case "%": return num(a, scope) % num(b, scope);
    case "&&": return truthy(a, scope) && truthy(b, scope);
    case "||": return truthy(a, scope) || truthy(b, scope);
    case "==": return JSON.stringify(comparable(a, scope)) === JSON.stringify(comparable(b, scope));
    case "!=": return JSON.stringify(comparable(a, scope)) !== JSON.stringify(comparable(b, scope));
    case "<": return num(a, scope) < num(b, scope);
    case ">": return num(a, scope) > num(b, scope);
    case "<=": return num(a, scope) <= num(b, scope);
    case ">=": return num(a, scope) >= num(b, scope);
  }
  throw new EvalError(`operator ${op}`);
}

/** HCL converts for ==: a variable's text "true" equals true, "8000" equals 8000. */
function comparable(v: Val, scope: HclScope): Val {
  if (typeof v !== "string") return v;
  const t = plain(v, scope, "a comparison");
  if (t === "true" || t === "false") return t === "true";
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  return t;
}

const text = (v: Val, scope: HclScope) => plain(v, scope, "a function argument");
const list = (v: Val, fn: string): Val[] => {
  if (!Array.isArray(v)) throw new EvalError(`${fn}: expected a list`);
  return v;
};

function callFn(name: string, rawArgs: Val[], expand: boolean, scope: HclScope): Val {
  const args = expand ? [...rawArgs.slice(0, -1), ...list(rawArgs[rawArgs.length - 1] ?? [], name)] : rawArgs;
  const n = (k: number) => {
    if (args.length !== k) throw new EvalError(`${name}() takes ${k} argument${k === 1 ? "" : "s"}`);
  };
  const a = (i: number) => args[i]!;
  switch (name) {
    case "timestamp":
      n(0);
      return ref(scope.generated.hclTimestamp(), scope);
    case "formatdate": {
      n(2);
      const spec = text(a(0), scope);
      if (a(1) !== "${var." + scope.generated.hclTimestamp() + "}" && !(scope.inlineVars && a(1) === scope.generated.vars.get("timestamp_rfc3339")?.value))
        throw new EvalError("formatdate() is supported on timestamp() only");
      return ref(scope.generated.formatdate(spec), scope);
    }
    case "env": {
      // Packer allows env() in variable defaults only; its value is read when vmkiln builds.
      n(1);
      const name = text(a(0), scope);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new EvalError(`env("${name}"): not a name vmkiln can read`);
      return "${env." + name + ":-}";
    }
    case "legacy_isotime":
      n(1);
      return ref(scope.generated.isotime(text(a(0), scope)), scope);
    case "regex_replace": {
      n(3);
      const re = text(a(1), scope);
      try {
        return escapeText(text(a(0), scope).replace(new RegExp(re, "g"), text(a(2), scope).replace(/\$\{(\d+)\}/g, "$$$1")));
      } catch {
        throw new EvalError(`regex_replace: ${re} is not a pattern vmkiln can apply`);
      }
    }
    case "uuidv4":
      n(0);
      return ref(scope.generated.uuid(), scope);
    case "join": {
      n(2);
      const sep = a(0);
      const items = list(a(1), name);
      // Kept symbolic: join of texts is their concatenation, references included.
      return items.map((x, i) => (i === 0 ? "" : textKeep(sep)) + textKeep(x)).join("");
    }
    case "concat":
      return args.flatMap((x) => list(x, name));
    case "flatten": {
      n(1);
      const flat = (x: Val): Val[] => (Array.isArray(x) ? x.flatMap(flat) : [x]);
      return flat(a(0));
    }
    case "compact":
      n(1);
      return list(a(0), name).filter((x) => x !== "" && x !== null);
    case "distinct": {
      n(1);
      const seen = new Set<string>();
      return list(a(0), name).filter((x) => !seen.has(JSON.stringify(x)) && !!seen.add(JSON.stringify(x)));
    }
    case "length": {
      n(1);
      const v = a(0);
      return Array.isArray(v) ? v.length : isObj(v) ? Object.keys(v).length : text(v, scope).length;
    }
    case "element": {
      n(2);
      const l = list(a(0), name);
      return l[num(a(1), scope) % l.length]!;
    }
    case "lookup": {
      if (args.length < 2 || args.length > 3) throw new EvalError("lookup() takes 2 or 3 arguments");
      const m = a(0);
      if (!isObj(m)) throw new EvalError("lookup: expected a map");
      const k = text(a(1), scope);
      if (Object.hasOwn(m, k)) return m[k]!;
      if (args.length === 3) return a(2);
      throw new EvalError(`lookup: no key "${k}"`);
    }
    case "merge":
      return Object.assign({}, ...args.map((x) => {
        if (!isObj(x)) throw new EvalError("merge: expected maps");
        return x;
      })) as Val;
    case "keys":
      n(1);
      if (!isObj(a(0))) throw new EvalError("keys: expected a map");
      return Object.keys(a(0) as object).sort();
    case "values":
      n(1);
      if (!isObj(a(0))) throw new EvalError("values: expected a map");
      return Object.keys(a(0) as object).sort().map((k) => (a(0) as Record<string, Val>)[k]!);
    case "contains":
      n(2);
      return list(a(0), name).some((x) => JSON.stringify(x) === JSON.stringify(a(1)));
    case "coalesce":
      for (const x of args) if (x !== null && x !== "") return x;
      throw new EvalError("coalesce: no non-empty argument");
    case "upper":
      n(1);
      return escapeText(text(a(0), scope).toUpperCase());
    case "lower":
      n(1);
      return escapeText(text(a(0), scope).toLowerCase());
    case "title":
      n(1);
      return escapeText(text(a(0), scope).replace(/\b\w/g, (c) => c.toUpperCase()));
    case "trimspace":
      n(1);
      return escapeText(text(a(0), scope).trim());
    case "chomp":
      n(1);
      return escapeText(text(a(0), scope).replace(/(\r?\n)+$/, ""));
    case "trimprefix": {
      n(2);
      const s = text(a(0), scope);
      const p = text(a(1), scope);
      return escapeText(s.startsWith(p) ? s.slice(p.length) : s);
    }
    case "trimsuffix": {
      n(2);
      const s = text(a(0), scope);
      const p = text(a(1), scope);
      return escapeText(p !== "" && s.endsWith(p) ? s.slice(0, -p.length) : s);
    }
    case "replace": {
      n(3);
      const s = text(a(0), scope);
      const o = text(a(1), scope);
      if (/^\/.*\/$/.test(o)) throw new EvalError("replace() with a regular expression is not supported");
      return escapeText(s.split(o).join(text(a(2), scope)));
    }
    case "split": {
      n(2);
      return text(a(1), scope).split(text(a(0), scope)).map(escapeText);
    }
    case "substr": {
      n(3);
      const s = text(a(0), scope);
      const off = num(a(1), scope);
      const len = num(a(2), scope);
      return escapeText(len < 0 ? s.slice(off) : s.slice(off, off + len));
    }
    case "format": {
      if (args.length < 1) throw new EvalError("format() takes a format");
      const f = text(a(0), scope);
      let k = 1;
      const out = f.replace(/%(%|[sdvq])/g, (m, c: string) => {
        if (c === "%") return "%";
        const v = args[k++];
        if (v === undefined) throw new EvalError("format: too few arguments");
        return c === "q" ? JSON.stringify(text(v, scope)) : text(v, scope);
      });
      return escapeText(out);
    }
    case "tostring":
      n(1);
      return typeof a(0) === "string" ? a(0) : escapeText(text(a(0), scope));
    case "tonumber":
      n(1);
      return num(a(0), scope);
    case "tobool":
      n(1);
      return truthy(a(0), scope);
    case "tolist":
    case "toset":
      n(1);
      return list(a(0), name);
    case "tomap":
      n(1);
      if (!isObj(a(0))) throw new EvalError("tomap: expected a map");
      return a(0);
    case "min":
      return Math.min(...args.map((x) => num(x, scope)));
    case "max":
      return Math.max(...args.map((x) => num(x, scope)));
    case "abs":
      n(1);
      return Math.abs(num(a(0), scope));
    case "ceil":
      n(1);
      return Math.ceil(num(a(0), scope));
    case "floor":
      n(1);
      return Math.floor(num(a(0), scope));
    case "abspath":
      n(1);
      return escapeText(path.resolve(scope.pathCwd, text(a(0), scope)));
    case "basename":
      n(1);
      return escapeText(path.basename(text(a(0), scope)));
    case "dirname":
      n(1);
      return escapeText(path.dirname(text(a(0), scope)));
    case "pathexpand":
      n(1);
      return a(0);
    case "file": {
      n(1);
      const p = path.resolve(scope.pathCwd, text(a(0), scope));
      scope.note(`file("${path.relative(scope.pathRoot, p) || p}") read at import time; its text is written in place`);
      return escapeText(readText(p));
    }
    case "templatefile": {
      n(2);
      const p = path.resolve(scope.pathCwd, text(a(0), scope));
      const bindings = a(1);
      if (!isObj(bindings)) throw new EvalError("templatefile: expected a map of variables");
      scope.note(`templatefile("${path.relative(scope.pathRoot, p) || p}") rendered at import time; its text is written in place`);
      return evalTemplate(readText(p), { ...scope, bindings: { ...scope.bindings, ...bindings }, vars: scope.vars }, false);
    }
    default:
      throw new EvalError(`function ${name}() has no vmkiln equivalent`);
  }
}

function textKeep(v: Val): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw new EvalError("join: expected a list of text");
}

function readText(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch (err) {
    throw new EvalError(`cannot read ${p}: ${(err as Error).message}`);
  }
}

function ref(name: string, scope: HclScope): Val {
  if (scope.inlineVars) return escapeText(scope.generated.vars.get(name)!.value);
  return "${var." + name + "}";
}
