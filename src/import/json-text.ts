// JSON.parse with the line of every value: Packer JSON templates get errors and findings that name
// the file and line (`builders[2]` at line 40), which JSON.parse cannot give. Strict JSON, as
// Packer's own decoder (encoding/json) takes it.

import { setOwn } from "./values.js";

export interface PositionedJson {
  value: unknown;
  /** Line (1-based) of the value at each path, keyed like `builders[0].type`. */
  lines: Map<string, number>;
}

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
  }
}

export function parseJsonWithLines(text: string): PositionedJson {
  let i = 0;
  const lines = new Map<string, number>();
  const lineStarts = [0];
  for (let k = 0; k < text.length; k++) if (text[k] === "\n") lineStarts.push(k + 1);
  const pos = (at: number) => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: at - lineStarts[lo]! + 1 };
  };
  const fail = (msg: string, at = i): never => {
    const p = pos(Math.min(at, text.length));
    throw new JsonSyntaxError(msg, p.line, p.column);
  };
  const ws = () => {
    while (i < text.length && " \t\r\n".includes(text[i]!)) i++;
  };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    let out = "";
    for (;;) {
      if (i >= text.length) fail("unterminated string", start);
      const c = text[i]!;
      if (c === '"') {
        i++;
        return out;
      }
      if (c === "\\") {
        const e = text[i + 1];
        const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
        if (e !== undefined && simple[e] !== undefined) {
          out += simple[e];
          i += 2;
        } else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else fail("invalid escape in string");
        continue;
      }
      if (c.charCodeAt(0) < 0x20) fail("control character in string (write \\n for a newline)");
      out += c;
      i++;
    }
  };
  const value = (path: string): unknown => {
    ws();
    lines.set(path, pos(i).line);
    const c = text[i];
    if (c === "{") {
      i++;
      const obj: Record<string, unknown> = {};
      ws();
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a quoted key");
        const key = str();
        ws();
        if (text[i] !== ":") fail(`expected ":" after key "${key}"`);
        i++;
        const child = path === "" ? key : /^[A-Za-z0-9_-]+$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
        setOwn(obj, key, value(child));
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return obj;
        }
        fail('expected "," or "}"');
      }
    }
    if (c === "[") {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(`${path}[${arr.length}]`));
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return arr;
        }
        fail('expected "," or "]"');
      }
    }
    if (c === '"') return str();
    const lit = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 64));
    if (!lit) fail(c === undefined ? "unexpected end of input" : `unexpected ${JSON.stringify(c)}`);
    i += lit![0].length;
    return JSON.parse(lit![0]) as unknown;
  };
  const v = value("");
  ws();
  if (i < text.length) fail("unexpected text after the JSON value");
  return { value: v, lines };
}
