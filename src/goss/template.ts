// goss renders every gossfile with Go's text/template before parsing it (goss docs/gossfile.md
// "Templates": `{{.Vars}}` from --vars, `{{.Env}}`; store.go ReadJSON → parseTemplate). vmkiln
// implements the part of text/template that gossfiles use, written from the text/template package
// documentation (pkg.go.dev/text/template: "Actions", "Arguments", "Pipelines", "Variables",
// "Functions"): `{{ .Vars.x }}`, `{{ .Env.X }}`, `{{- -}}` trimming, comments, `if`/`else if`/
// `else`, `range` (with `$i, $v :=` and `else`), `with`, `$x :=` variables, pipes, and the functions
// listed in FUNCTIONS. Anything else — Sprig's hundred functions, `define`/`template`/`block`,
// `printf` — is refused with exit 2 naming the construct rather than rendered wrongly.
import { UserError } from "../errors.js";

export interface TemplateData {
  Vars: unknown;
  Env: Record<string, string | undefined>;
}

export class GossTemplateError extends UserError {
  constructor(file: string, message: string) {
    super("GOSS_TEMPLATE", `${file}: template: ${message}`);
  }
}

type Tok =
  | { k: "str"; v: string }
  | { k: "num"; v: number }
  | { k: "bool"; v: boolean }
  | { k: "nil" }
  | { k: "field"; v: string[] } // .A.B (empty list: ".")
  | { k: "var"; name: string; fields: string[] } // $x.A
  | { k: "ident"; v: string }
  | { k: "lp" }
  | { k: "rp" }
  | { k: "pipe" }
  | { k: "decl" } // :=
  | { k: "assign" } // =
  | { k: "comma" };

type Node =
  | { t: "text"; v: string }
  | { t: "action"; decl: Decl | undefined; pipe: Cmd[] }
  | { t: "if"; branches: Array<{ decl: Decl | undefined; pipe: Cmd[]; body: Node[] }>; otherwise: Node[] }
  | { t: "range"; vars: string[]; pipe: Cmd[]; body: Node[]; otherwise: Node[] }
  | { t: "with"; decl: Decl | undefined; pipe: Cmd[]; body: Node[]; otherwise: Node[] };

interface Decl {
  names: string[];
  op: "decl" | "assign";
}
/** One command of a pipeline: its operands (the first may name a function). */
type Cmd = Arg[];
type Arg = Tok | { k: "sub"; pipe: Cmd[] };

// What `{{ … }}` tags an action starts with.
type Action = { kind: "expr"; decl: Decl | undefined; pipe: Cmd[] } | { kind: "if" | "elseif" | "with" | "range"; decl: Decl | undefined; pipe: Cmd[] } | { kind: "else" } | { kind: "end" };

/** Go's text/template truth (pkg text/template "if": false, 0, nil, empty string/array/map). */
export function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

/** Prints a value as Go's fmt %v would for the types YAML/JSON vars hold. */
export function goPrint(v: unknown): string {
  if (v === undefined) return "<no value>";
  if (v === null) return "<nil>";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(goPrint).join(" ")}]`;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `map[${Object.keys(o).sort().map((k) => `${k}:${goPrint(o[k])}`).join(" ")}]`;
  }
  return String(v);
}

/** vmkiln's bound on a rendered gossfile (goss has none): a nested `range` cannot eat the memory. */
export const MAX_RENDERED = 16 * 1024 * 1024;

export function renderGossTemplate(text: string, data: TemplateData, file: string): string {
  if (!text.includes("{{")) return text;
  const fail = (m: string): never => {
    throw new GossTemplateError(file, m);
  };
  const tooLarge = () => fail(`the rendered gossfile is larger than ${MAX_RENDERED} characters (a range over too much?)`);
  const nodes = parse(text, fail);
  let out = "";
  // `$` is the data given to the template; the tokenizer names it "".
  const scopes: Array<Map<string, unknown>> = [new Map([["", data]])];
  const lookupVar = (name: string): unknown => {
    for (let i = scopes.length - 1; i >= 0; i--) if (scopes[i]!.has(name)) return scopes[i]!.get(name);
    return fail(`undefined variable "$${name}"`);
  };
  const setVar = (d: Decl, values: unknown[]) => {
    d.names.forEach((n, i) => {
      if (d.op === "decl") scopes[scopes.length - 1]!.set(n, values[i]);
      else {
        for (let s = scopes.length - 1; s >= 0; s--) {
          if (scopes[s]!.has(n)) {
            scopes[s]!.set(n, values[i]);
            return;
          }
        }
        fail(`undefined variable "$${n}"`);
      }
    });
  };
  const exec = (list: Node[], dot: unknown): void => {
    for (const n of list) {
      switch (n.t) {
        case "text":
          out += n.v;
          if (out.length > MAX_RENDERED) tooLarge();
          break;
        case "action": {
          const v = evalPipe(n.pipe, dot);
          if (n.decl) setVar(n.decl, [v]);
          else out += goPrint(v);
          if (out.length > MAX_RENDERED) tooLarge();
          break;
        }
        case "if": {
          scopes.push(new Map());
          try {
            let done = false;
            for (const b of n.branches) {
              const v = evalPipe(b.pipe, dot);
              if (b.decl) setVar(b.decl, [v]);
              if (truthy(v)) {
                exec(b.body, dot);
                done = true;
                break;
              }
            }
            if (!done) exec(n.otherwise, dot);
          } finally {
            scopes.pop();
          }
          break;
        }
        case "with": {
          scopes.push(new Map());
          try {
            const v = evalPipe(n.pipe, dot);
            if (n.decl) setVar(n.decl, [v]);
            if (truthy(v)) exec(n.body, v);
            else exec(n.otherwise, dot);
          } finally {
            scopes.pop();
          }
          break;
        }
        case "range": {
          const v = evalPipe(n.pipe, dot);
          let items: Array<[unknown, unknown]>;
          if (Array.isArray(v)) items = v.map((x, i) => [i, x]);
          else if (v && typeof v === "object") items = Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]);
          else if (typeof v === "number" && Number.isInteger(v)) items = Array.from({ length: Math.max(0, v) }, (_, i) => [i, i]);
          else if (v === undefined || v === null) items = [];
          else return fail(`range can't iterate over ${goPrint(v)}`);
          if (items.length === 0) {
            exec(n.otherwise, dot);
            break;
          }
          for (const [k, x] of items) {
            scopes.push(new Map());
            try {
              if (n.vars.length === 1) scopes[scopes.length - 1]!.set(n.vars[0]!, x);
              if (n.vars.length === 2) {
                scopes[scopes.length - 1]!.set(n.vars[0]!, k);
                scopes[scopes.length - 1]!.set(n.vars[1]!, x);
              }
              exec(n.body, x);
            } finally {
              scopes.pop();
            }
          }
          break;
        }
      }
    }
  };
  const field = (base: unknown, names: string[]): unknown => {
    let v = base;
    for (const name of names) {
      if (v === undefined || v === null) return fail(`nil pointer evaluating .${name}`);
      if (typeof v !== "object" || Array.isArray(v)) return fail(`can't evaluate field ${name} in ${goPrint(v)}`);
      v = (v as Record<string, unknown>)[name];
    }
    return v;
  };
  const evalArg = (a: Arg, dot: unknown): unknown => {
    switch (a.k) {
      case "str":
      case "num":
      case "bool":
        return a.v;
      case "nil":
        return null;
      case "field":
        return field(dot, a.v);
      case "var":
        return field(lookupVar(a.name), a.fields);
      case "sub":
        return evalPipe(a.pipe, dot);
      case "ident":
        return callFunction(a.v, [], fail);
      default:
        return fail(`unexpected ${a.k} in an operand`);
    }
  };
  const evalPipe = (pipe: Cmd[], dot: unknown): unknown => {
    let prev: unknown;
    let havePrev = false;
    for (const cmd of pipe) {
      const head = cmd[0];
      if (!head) return fail("empty command");
      let v: unknown;
      if (head.k === "ident") {
        const args = cmd.slice(1).map((a) => evalArg(a, dot));
        if (havePrev) args.push(prev);
        v = callFunction(head.v, args, fail);
      } else {
        if (cmd.length > 1) return fail(`can't give arguments to a non-function ${describeTok(head)}`);
        if (havePrev) return fail(`can't pipe into a non-function ${describeTok(head)}`);
        v = evalArg(head, dot);
      }
      prev = v;
      havePrev = true;
    }
    return prev;
  };
  exec(nodes, data);
  return out;
}

function describeTok(t: Arg): string {
  if (t.k === "field") return "." + t.v.join(".");
  if (t.k === "var") return "$" + t.name;
  return t.k;
}

/** The functions vmkiln evaluates: Go's built-ins that gossfiles use, and goss's own. */
export const FUNCTIONS = ["eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "len", "index", "getEnv", "mkSlice", "toUpper", "toLower", "upper", "lower", "regexMatch"];

function callFunction(name: string, args: unknown[], fail: (m: string) => never): unknown {
  const want = (n: number) => {
    if (args.length !== n) fail(`wrong number of args for ${name}: want ${n} got ${args.length}`);
  };
  const cmp = (a: unknown, b: unknown): number => {
    if (typeof a === "number" && typeof b === "number") return a - b;
    if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0;
    return fail(`${name}: incompatible types for comparison (${goPrint(a)}, ${goPrint(b)})`);
  };
  switch (name) {
    case "eq":
      // Go: eq arg1 arg2 arg3 … is arg1==arg2 || arg1==arg3 …
      if (args.length < 2) fail("eq: missing argument for comparison");
      return args.slice(1).some((b) => JSON.stringify(args[0]) === JSON.stringify(b));
    case "ne":
      want(2);
      return JSON.stringify(args[0]) !== JSON.stringify(args[1]);
    case "lt":
      want(2);
      return cmp(args[0], args[1]) < 0;
    case "le":
      want(2);
      return cmp(args[0], args[1]) <= 0;
    case "gt":
      want(2);
      return cmp(args[0], args[1]) > 0;
    case "ge":
      want(2);
      return cmp(args[0], args[1]) >= 0;
    case "and": {
      if (args.length === 0) fail("and: wrong number of args");
      for (const a of args) if (!truthy(a)) return a;
      return args[args.length - 1];
    }
    case "or": {
      if (args.length === 0) fail("or: wrong number of args");
      for (const a of args) if (truthy(a)) return a;
      return args[args.length - 1];
    }
    case "not":
      want(1);
      return !truthy(args[0]);
    case "len": {
      want(1);
      const v = args[0];
      if (typeof v === "string" || Array.isArray(v)) return v.length;
      if (v && typeof v === "object") return Object.keys(v).length;
      return fail(`len of ${goPrint(v)}`);
    }
    case "index": {
      if (args.length < 1) fail("index: no arguments");
      let v = args[0];
      for (const k of args.slice(1)) {
        if (Array.isArray(v) && typeof k === "number") v = v[k];
        else if (v && typeof v === "object" && !Array.isArray(v)) v = (v as Record<string, unknown>)[String(k)];
        else if (v === undefined || v === null) return fail(`index of untyped nil`);
        else return fail(`can't index item of type ${goPrint(v)}`);
      }
      return v;
    }
    case "getEnv": {
      // goss template.go funcMap getEnv: the variable, or the default (or "") when unset.
      if (args.length < 1 || args.length > 2) fail("getEnv: want the variable name and an optional default");
      const v = process.env[String(args[0])];
      return v === undefined || v === "" ? (args[1] ?? "") : v;
    }
    case "mkSlice":
      return args;
    case "toUpper":
    case "upper":
      want(1);
      return String(args[0]).toUpperCase();
    case "toLower":
    case "lower":
      want(1);
      return String(args[0]).toLowerCase();
    case "regexMatch": {
      // goss: `{{ .Env.OS | regexMatch "[Cc]ent(OS|os)" }}`: the piped value is the last argument.
      want(2);
      try {
        return new RegExp(String(args[0])).test(String(args[1]));
      } catch (err) {
        return fail(`regexMatch: ${(err as Error).message}`);
      }
    }
    default:
      return fail(`function "${name}" is not supported by vmkiln (it supports ${FUNCTIONS.join(", ")}); use goss itself through test.goss_binary for Sprig functions`);
  }
}

// ---- parsing ----------------------------------------------------------------------------------

function parse(text: string, fail: (m: string) => never): Node[] {
  // Split into text and actions, applying `{{-`/`-}}` trimming (text/template "Text and spaces":
  // the marker needs a space after/before it, and trims all adjacent white space).
  const pieces: Array<{ text: string } | { action: string; line: number }> = [];
  let i = 0;
  let trimNext = false;
  while (i < text.length) {
    const at = text.indexOf("{{", i);
    let chunk = at < 0 ? text.slice(i) : text.slice(i, at);
    if (trimNext) chunk = chunk.replace(/^\s+/, "");
    trimNext = false;
    if (at < 0) {
      pieces.push({ text: chunk });
      break;
    }
    let start = at + 2;
    if (text[start] === "-" && /\s/.test(text[start + 1] ?? "")) {
      chunk = chunk.replace(/\s+$/, "");
      start += 2;
    }
    pieces.push({ text: chunk });
    const line = text.slice(0, at).split("\n").length;
    // Find the closing }} outside string literals.
    let j = start;
    let quote: string | undefined;
    for (; j < text.length; j++) {
      const c = text[j]!;
      if (quote) {
        if (c === "\\" && quote === '"') j++;
        else if (c === quote) quote = undefined;
        continue;
      }
      if (c === '"' || c === "`") quote = c;
      else if (text.startsWith("}}", j)) break;
    }
    if (j >= text.length) fail(`line ${line}: unclosed action`);
    const end = j;
    let body = text.slice(start, end);
    if (/\s-$/.test(body)) {
      body = body.slice(0, -2);
      trimNext = true;
    }
    pieces.push({ action: body.trim(), line });
    i = end + 2;
  }

  let pos = 0;
  const parseList = (stopAt: Array<Action["kind"]>): { nodes: Node[]; stop: Action | undefined; line: number } => {
    const nodes: Node[] = [];
    while (pos < pieces.length) {
      const p = pieces[pos++]!;
      if ("text" in p) {
        if (p.text) nodes.push({ t: "text", v: p.text });
        continue;
      }
      if (p.action.startsWith("/*")) {
        if (!p.action.endsWith("*/")) fail(`line ${p.line}: unclosed comment`);
        continue;
      }
      const a = parseAction(p.action, p.line, fail);
      if (stopAt.includes(a.kind)) return { nodes, stop: a, line: p.line };
      if (a.kind === "else" || a.kind === "elseif" || a.kind === "end") fail(`line ${p.line}: unexpected {{${a.kind === "elseif" ? "else if" : a.kind}}}`);
      if (a.kind === "expr") nodes.push({ t: "action", decl: a.decl, pipe: a.pipe });
      else if (a.kind === "if") {
        const branches = [{ decl: a.decl, pipe: a.pipe, body: [] as Node[] }];
        let otherwise: Node[] = [];
        for (;;) {
          const r = parseList(["else", "elseif", "end"]);
          if (!r.stop) fail(`line ${p.line}: {{if}} without {{end}}`);
          const stop = r.stop!;
          branches[branches.length - 1]!.body = r.nodes;
          if (stop.kind === "end") break;
          if (stop.kind === "elseif") {
            branches.push({ decl: stop.decl, pipe: stop.pipe, body: [] });
            continue;
          }
          const rest = parseList(["end"]);
          if (!rest.stop) fail(`line ${p.line}: {{if}} without {{end}}`);
          otherwise = rest.nodes;
          break;
        }
        nodes.push({ t: "if", branches, otherwise });
      } else if (a.kind === "range" || a.kind === "with") {
        const r = parseList(["else", "end"]);
        if (!r.stop) fail(`line ${p.line}: {{${a.kind}}} without {{end}}`);
        let otherwise: Node[] = [];
        if (r.stop!.kind === "else") {
          const rest = parseList(["end"]);
          if (!rest.stop) fail(`line ${p.line}: {{${a.kind}}} without {{end}}`);
          otherwise = rest.nodes;
        }
        if (a.kind === "range") {
          if (a.decl && a.decl.op !== "decl") fail(`line ${p.line}: range declares its variables with :=`);
          if (a.decl && a.decl.names.length > 2) fail(`line ${p.line}: range declares at most two variables`);
          nodes.push({ t: "range", vars: a.decl?.names ?? [], pipe: a.pipe, body: r.nodes, otherwise });
        } else nodes.push({ t: "with", decl: a.decl, pipe: a.pipe, body: r.nodes, otherwise });
      }
    }
    return { nodes, stop: undefined, line: 0 };
  };
  const r = parseList([]);
  return r.nodes;
}

const UNSUPPORTED_KEYWORDS = ["define", "template", "block", "break", "continue"];

function parseAction(src: string, line: number, fail: (m: string) => never): Action {
  const toks = tokenize(src, line, fail);
  const first = toks[0];
  const at = (m: string): never => fail(`line ${line}: ${m}`);
  if (!first) return at("empty action");
  if (first.k === "ident") {
    if (first.v === "end") {
      if (toks.length > 1) at("unexpected tokens after end");
      return { kind: "end" };
    }
    if (first.v === "else") {
      if (toks.length === 1) return { kind: "else" };
      const second = toks[1];
      if (second?.k === "ident" && second.v === "if") return { kind: "elseif", ...pipeline(toks.slice(2), at) };
      return at(`{{else ${second && second.k === "ident" ? second.v : "…"}}} is not supported by vmkiln`);
    }
    if (first.v === "if" || first.v === "range" || first.v === "with") {
      if (toks.length === 1) at(`missing value for ${first.v}`);
      return { kind: first.v, ...pipeline(toks.slice(1), at) };
    }
    if (UNSUPPORTED_KEYWORDS.includes(first.v)) at(`{{${first.v}}} is not supported by vmkiln; use goss itself through test.goss_binary`);
  }
  return { kind: "expr", ...pipeline(toks, at) };
}

function pipeline(toks: Tok[], at: (m: string) => never): { decl: Decl | undefined; pipe: Cmd[] } {
  let decl: Decl | undefined;
  // `$x :=` / `$k, $v :=` / `$x =`
  const declAt = toks.findIndex((t) => t.k === "decl" || t.k === "assign");
  if (declAt >= 0) {
    const names: string[] = [];
    for (let i = 0; i < declAt; i++) {
      const t = toks[i]!;
      if (t.k === "var" && t.fields.length === 0) names.push(t.name);
      else if (t.k !== "comma") at("only variables may be declared");
    }
    if (names.length === 0) at("missing variable before :=");
    decl = { names, op: toks[declAt]!.k === "decl" ? "decl" : "assign" };
    toks = toks.slice(declAt + 1);
  }
  const pipe: Cmd[] = [];
  let cmd: Cmd = [];
  let i = 0;
  const operand = (): Arg => {
    const t = toks[i++]!;
    if (t.k === "lp") {
      // Parenthesized pipeline.
      let depth = 1;
      const start = i;
      while (i < toks.length && depth > 0) {
        if (toks[i]!.k === "lp") depth++;
        if (toks[i]!.k === "rp") depth--;
        i++;
      }
      if (depth !== 0) at("unclosed left paren");
      return { k: "sub", pipe: pipeline(toks.slice(start, i - 1), at).pipe };
    }
    if (t.k === "rp") at("unexpected right paren");
    if (t.k === "decl" || t.k === "assign" || t.k === "comma") at(`unexpected ${t.k === "comma" ? "," : ":="}`);
    return t;
  };
  while (i < toks.length) {
    if (toks[i]!.k === "pipe") {
      if (cmd.length === 0) at("missing command before |");
      pipe.push(cmd);
      cmd = [];
      i++;
      continue;
    }
    cmd.push(operand());
  }
  if (cmd.length === 0) at("missing command");
  pipe.push(cmd);
  return { decl, pipe };
}

function tokenize(src: string, line: number, fail: (m: string) => never): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const at = (m: string): never => fail(`line ${line}: ${m}`);
  const ident = /[A-Za-z_][A-Za-z0-9_]*/y;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "(") (out.push({ k: "lp" }), i++);
    else if (c === ")") (out.push({ k: "rp" }), i++);
    else if (c === "|") (out.push({ k: "pipe" }), i++);
    else if (c === ",") (out.push({ k: "comma" }), i++);
    else if (src.startsWith(":=", i)) (out.push({ k: "decl" }), (i += 2));
    else if (c === "=") (out.push({ k: "assign" }), i++);
    else if (c === '"') {
      let j = i + 1;
      let s = "";
      for (; j < src.length && src[j] !== '"'; j++) {
        if (src[j] === "\\") {
          const e = src[++j];
          const map: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", '"': '"', "'": "'" };
          if (e === undefined || map[e] === undefined) at(`unsupported escape \\${e ?? ""} in a string`);
          s += map[e!];
        } else s += src[j];
      }
      if (j >= src.length) at("unterminated quoted string");
      out.push({ k: "str", v: s });
      i = j + 1;
    } else if (c === "`") {
      const j = src.indexOf("`", i + 1);
      if (j < 0) at("unterminated raw quoted string");
      out.push({ k: "str", v: src.slice(i + 1, j) });
      i = j + 1;
    } else if (c === "." || c === "$") {
      // .A.B, ., $x, $x.A, $
      let j = i + 1;
      let name = "";
      if (c === "$") {
        ident.lastIndex = j;
        const m = ident.exec(src);
        if (m) {
          name = m[0];
          j += name.length;
        }
      }
      const fields: string[] = [];
      let first = c === ".";
      while (j <= src.length) {
        if (!first) {
          if (src[j] !== ".") break;
          j++;
        }
        first = false;
        ident.lastIndex = j;
        const m = ident.exec(src);
        if (!m) {
          if (c === "." && fields.length === 0) break; // bare "."
          at(`bad field name after "." in ${src}`);
        }
        fields.push(m![0]);
        j += m![0].length;
      }
      if (c === "$") out.push({ k: "var", name, fields });
      else out.push({ k: "field", v: fields });
      i = j;
    } else if (/[0-9-]/.test(c)) {
      const m = /-?(?:0x[0-9a-fA-F]+|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)/y;
      m.lastIndex = i;
      const r = m.exec(src);
      if (!r) at(`unexpected "${c}"`);
      out.push({ k: "num", v: Number(r![0]) });
      i += r![0].length;
    } else if (c === "'") {
      at("character constants are not supported by vmkiln");
    } else {
      ident.lastIndex = i;
      const m = ident.exec(src);
      if (!m) at(`unexpected "${c}" in action`);
      const w = m![0];
      if (w === "true" || w === "false") out.push({ k: "bool", v: w === "true" });
      else if (w === "nil") out.push({ k: "nil" });
      else out.push({ k: "ident", v: w });
      i += w.length;
    }
  }
  return out;
}
