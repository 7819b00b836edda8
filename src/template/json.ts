// A strict JSON checker run before JSON.parse, for what JSON.parse cannot say: where a syntax error
// is (V8 names a position for some errors and for others quotes the text around it, which in a
// var-file is the secret), which key is given twice (JSON.parse keeps the last one silently), and
// how deep the document nests (the loader's walkers recurse). Iterative, so no input overflows the
// stack; reasons are fixed words, never the input's text.

export interface JsonProblem {
  /** UTF-16 offset into the text. */
  offset: number;
  reason: string;
}

type Frame = { kind: "object"; keys: Set<string> } | { kind: "array" };

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;

/** Undefined when `text` is one valid JSON value with unique keys, nested at most `maxDepth` deep. */
export function checkJson(text: string, maxDepth: number): JsonProblem | undefined {
  const n = text.length;
  const stack: Frame[] = [];
  let i = 0;
  const fail = (reason: string, at = i): JsonProblem => ({ offset: Math.min(at, n), reason: at >= n ? "unexpected end of file" : reason });
  const ws = () => {
    for (; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    }
  };
  const string = (): JsonProblem | undefined => {
    const start = i;
    for (i++; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return undefined;
      }
      if (c < 0x20) return fail("control character in a string (write it as an escape such as \\n)");
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === "u") {
          if (!HEX4.test(text.slice(i + 2, i + 6))) return fail("invalid \\u escape in a string");
          i += 5;
        } else if (e !== undefined && `"\\/bfnrt`.includes(e)) i++;
        else return fail("invalid escape in a string");
      }
    }
    return fail("unterminated string", start);
  };
  const key = (frame: { keys: Set<string> }): JsonProblem | undefined => {
    ws();
    if (text[i] !== '"') return fail("expected a key in double quotes");
    const start = i;
    const bad = string();
    if (bad) return bad;
    const name = JSON.parse(text.slice(start, i)) as string;
    if (frame.keys.has(name)) return fail(`duplicate key ${JSON.stringify(name.length > 40 ? name.slice(0, 40) + "…" : name)}`, start);
    frame.keys.add(name);
    ws();
    if (text[i] !== ":") return fail("expected ':' after a key");
    i++;
    return undefined;
  };

  for (;;) {
    // A value starts here.
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      if (stack.length >= maxDepth) return fail(`nested more than ${maxDepth} levels deep`);
      i++;
      ws();
      if (c === "{") {
        const frame = { kind: "object" as const, keys: new Set<string>() };
        stack.push(frame);
        if (text[i] === "}") {
          i++;
          stack.pop();
        } else {
          const bad = key(frame);
          if (bad) return bad;
          continue;
        }
      } else {
        stack.push({ kind: "array" });
        if (text[i] === "]") {
          i++;
          stack.pop();
        } else continue;
      }
    } else if (c === '"') {
      const bad = string();
      if (bad) return bad;
    } else if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) return fail("invalid number");
      i += m[0].length;
    } else if (text.startsWith("true", i)) i += 4;
    else if (text.startsWith("false", i)) i += 5;
    else if (text.startsWith("null", i)) i += 4;
    else return fail("expected a value");

    // A value ended: close what it ends, or move to the next value.
    for (;;) {
      ws();
      const top = stack[stack.length - 1];
      if (top === undefined) return i < n ? fail("unexpected content after the value") : undefined;
      const d = text[i];
      if (d === ",") {
        i++;
        if (top.kind === "object") {
          const bad = key(top);
          if (bad) return bad;
        }
        break;
      }
      if ((top.kind === "object" && d === "}") || (top.kind === "array" && d === "]")) {
        i++;
        stack.pop();
        continue;
      }
      return fail(top.kind === "object" ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
}
