// Reading and parsing template and var files (YAML, or JSON by extension) into plain JSON-like
// values, with every failure a problem (exit 2) that names the file, line and column.
//
// Bounds, because a template is input from anyone (issue 12): a file is at most MAX_INPUT_BYTES (the
// YAML parser blocks the event loop while it runs — about 1–3 s per MiB of small nodes on this
// project's 2-core CI machine — and no real template comes near it: the examples are a few KiB);
// values nest at most MAX_DEPTH levels (the loader's walkers recurse; a template nests about 8);
// aliases expand at most YAML's default budget (an "alias bomb" stops with a problem, not a crash).
// Syntax problems are our fixed words plus line:col, never an excerpt of the text: in a var-file the
// text around an error is often the secret.

import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { open, stat } from "node:fs/promises";
import path from "node:path";
import YAML, { isAlias, isMap, isScalar, isSeq, LineCounter, type ErrorCode, type Node as YamlNode } from "yaml";
import { AbortError, asAbortError, type Problem } from "../errors.js";
import { checkJson } from "./json.js";
import { formatPath, type PathSegment } from "./paths.js";

export const MAX_INPUT_BYTES = 1024 * 1024;
export const MAX_DEPTH = 64;
/** yaml's own default, stated: alias expansions allowed per document, scaled by the anchor's size. */
const MAX_ALIAS_COUNT = 100;

export type Parsed = { value: unknown } | { problem: Problem };

export class InputError extends Error {
  constructor(
    message: string,
    readonly code: "NOT_FOUND" | "TOO_LARGE",
  ) {
    super(message);
  }
}

const tooLarge = () =>
  new InputError(`larger than ${MAX_INPUT_BYTES / 1024 / 1024} MiB (a template or var-file is a few KiB; put big content in files it names)`, "TOO_LARGE");

/**
 * Reads at most MAX_INPUT_BYTES of a file. Pipes work (`-var-file <(pass show …)`), and a device
 * that never ends (/dev/zero) stops at the limit instead of filling memory.
 *
 * Opening a pipe waits (in libuv's thread pool) until something opens its other end. When `signal`
 * fires meanwhile, that wait is released by opening the write end ourselves, without writing; else
 * the blocked thread kept the process from exiting after Ctrl-C (libuv joins its threads at exit).
 */
export async function readInput(abs: string, signal?: AbortSignal): Promise<string> {
  if (signal?.aborted) throw asAbortError(signal.reason);
  let fh;
  const pipe = signal !== undefined && (await stat(abs).then((s) => s.isFIFO(), () => false));
  let opened = false;
  let retry: NodeJS.Timeout | undefined;
  const release = () => {
    if (opened) return;
    try {
      closeSync(openSync(abs, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: our open has not reached the kernel yet; try again shortly
      retry = setTimeout(release, 50);
    }
  };
  if (pipe) signal.addEventListener("abort", release, { once: true });
  try {
    fh = await open(abs, "r");
  } catch (err) {
    throw new InputError(`cannot read: ${(err as Error).message}`, "NOT_FOUND");
  } finally {
    opened = true;
    clearTimeout(retry);
    if (pipe) signal.removeEventListener("abort", release);
  }
  try {
    if (signal?.aborted) throw asAbortError(signal.reason);
    const st = await fh.stat();
    if (st.isDirectory()) throw new InputError("cannot read: is a directory", "NOT_FOUND");
    if (st.isFile() && st.size > MAX_INPUT_BYTES) throw tooLarge();
    const buf = Buffer.alloc(MAX_INPUT_BYTES + 1);
    let len = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, len, buf.length - len, null);
      if (bytesRead === 0) break;
      len += bytesRead;
      if (len > MAX_INPUT_BYTES) throw tooLarge();
    }
    return buf.toString("utf8", 0, len);
  } catch (err) {
    if (err instanceof InputError || err instanceof AbortError) throw err;
    throw new InputError(`cannot read: ${(err as Error).message}`, "NOT_FOUND");
  } finally {
    await fh.close();
  }
}

/** readInput for the synchronous var-file path (specFromObject is synchronous). */
export function readInputSync(abs: string): string {
  let fd: number;
  try {
    fd = openSync(abs, "r");
  } catch (err) {
    throw new InputError(`cannot read: ${(err as Error).message}`, "NOT_FOUND");
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new InputError("cannot read: is a directory", "NOT_FOUND");
    if (st.isFile() && st.size > MAX_INPUT_BYTES) throw tooLarge();
    const buf = Buffer.alloc(MAX_INPUT_BYTES + 1);
    let len = 0;
    for (;;) {
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
      if (len > MAX_INPUT_BYTES) throw tooLarge();
    }
    return buf.toString("utf8", 0, len);
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`cannot read: ${(err as Error).message}`, "NOT_FOUND");
  } finally {
    closeSync(fd);
  }
}

/** JSON by extension, YAML otherwise (YAML is a superset, so `.yml`, `.yaml` and the rest). */
export function parseText(text: string, file: string): Parsed {
  const parsed = path.extname(file).toLowerCase() === ".json" ? parseJson(text) : parseYaml(text);
  if ("problem" in parsed) return parsed;
  const bad = checkPlain(parsed.value);
  return bad ? { problem: bad } : parsed;
}

function parseJson(input: string): Parsed {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input; // editors on Windows write a BOM
  const bad = checkJson(text, MAX_DEPTH);
  if (bad) return syntax("JSON", lineCol(text, bad.offset), bad.reason);
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return syntax("JSON", undefined, "invalid JSON"); // checkJson accepted it; JSON.parse should too
  }
}

/** Our words for yaml's error codes: its own messages may quote the text (a tag, an escape, a header). */
const YAML_REASONS: Record<ErrorCode, string> = {
  ALIAS_PROPS: "an alias cannot have an anchor or a tag",
  BAD_ALIAS: "an alias must name an anchor defined before it",
  BAD_COLLECTION_TYPE: "this tag does not fit this kind of value",
  BAD_DIRECTIVE: "invalid directive",
  BAD_DQ_ESCAPE: 'invalid escape sequence in a "double-quoted" string',
  BAD_INDENT: "bad indentation",
  BAD_PROP_ORDER: "anchors and tags must come after the indicator",
  BAD_SCALAR_START: "a plain value cannot start with this character (quote the value)",
  BLOCK_AS_IMPLICIT_KEY: "a block collection cannot be a key",
  BLOCK_IN_FLOW: "a block collection cannot be inside [ ] or { }",
  DUPLICATE_KEY: "duplicate key",
  IMPOSSIBLE: "invalid YAML",
  KEY_OVER_1024_CHARS: "a key longer than 1024 characters",
  MISSING_CHAR: "a comma, colon, bracket or quote is missing",
  MULTILINE_IMPLICIT_KEY: "a key must be on one line",
  MULTIPLE_ANCHORS: "a value has more than one anchor",
  MULTIPLE_DOCS: "more than one document (---): a template is one document",
  MULTIPLE_TAGS: "a value has more than one tag",
  NON_STRING_KEY: "a key must be a string",
  RESOURCE_EXHAUSTION: "too many alias expansions (an alias bomb?)",
  TAB_AS_INDENT: "a tab cannot indent YAML; use spaces",
  TAG_RESOLVE_FAILED: "unknown tag",
  UNEXPECTED_TOKEN: "unexpected token",
};

function parseYaml(text: string): Parsed {
  const lineCounter = new LineCounter();
  // uniqueKeys: false because yaml checks duplicates with a scan of the map per key (quadratic: a
  // 640 KiB map took 10 s); duplicateKey() below does it with a Set.
  const nested = `nested more than ${MAX_DEPTH} levels deep`;
  let doc;
  try {
    // logLevel "error": yaml must never write warnings of its own to stderr (--json is read by tools).
    doc = YAML.parseDocument(text, { uniqueKeys: false, lineCounter, logLevel: "error" });
  } catch (err) {
    return syntax("YAML", undefined, err instanceof RangeError ? nested : "invalid YAML");
  }
  const at = (offset: number) => {
    const p = lineCounter.linePos(offset);
    return `${p.line}:${p.col}`;
  };
  const first = doc.errors[0];
  // yaml catches its own stack overflow on deep nesting and reports it as an error at that spot.
  if (first) return syntax("YAML", at(first.pos[0]), /call stack/i.test(first.message) ? nested : (YAML_REASONS[first.code] ?? "invalid YAML"));
  const bad = doc.contents ? badKey(doc.contents) : undefined;
  if (bad?.kind === "collection") return syntax("YAML", at(bad.offset), "a key must be a plain value, not a list or mapping");
  if (bad) return syntax("YAML", at(bad.offset), `duplicate key ${JSON.stringify(bad.key.length > 40 ? bad.key.slice(0, 40) + "…" : bad.key)}`);
  try {
    return { value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) as unknown };
  } catch (err) {
    // yaml throws a ReferenceError for an alias bomb; a RangeError when nesting overflows the stack.
    if (err instanceof RangeError) return syntax("YAML", undefined, nested);
    if (err instanceof ReferenceError || /alias/i.test((err as Error).message)) return syntax("YAML", undefined, YAML_REASONS.RESOURCE_EXHAUSTION);
    return syntax("YAML", undefined, "invalid YAML");
  }
}

/**
 * The first key given twice in one mapping (as JS sees keys: `1` and `"1"` collide), or a list or
 * mapping used as a key (`? [a]: b`), which JS would stringify (and yaml warned about on stderr,
 * under `--json` too; found by fuzzing). Iterative.
 */
function badKey(root: YamlNode): { kind: "duplicate" | "collection"; key: string; offset: number } | undefined {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const k = pair.key;
        if (isScalar(k)) {
          const name = String(k.value);
          if (seen.has(name)) return { kind: "duplicate", key: name, offset: k.range?.[0] ?? 0 };
          seen.add(name);
        } else if (isMap(k) || isSeq(k)) {
          // A block mapping's range starts after its first key; point at that key instead.
          const first = k.items[0];
          const start = isMap(k) && first && isScalar((first as { key?: unknown }).key) ? ((first as { key: { range?: [number] } }).key.range?.[0] ?? 0) : (k.range?.[0] ?? 0);
          return { kind: "collection", key: "", offset: start };
        }
        stack.push(k, pair.value);
      }
    } else if (isSeq(node)) for (const item of node.items) stack.push(item); // not push(...): 200k arguments overflow the stack
    else if (isAlias(node)) continue;
  }
  return undefined;
}

/**
 * Only JSON-like values go on: YAML 1.1 tags (`%YAML 1.1` then !!binary, !!set, !!timestamp) make
 * bytes, sets and dates the schema has no words for; and no value nests deeper than MAX_DEPTH.
 */
function checkPlain(value: unknown): Problem | undefined {
  const stack: Array<[unknown, PathSegment[]]> = [[value, []]];
  while (stack.length > 0) {
    const [v, at] = stack.pop()!;
    if (v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean") continue;
    if (at.length >= MAX_DEPTH) return { path: formatPath(at.slice(0, 8)), message: `nested more than ${MAX_DEPTH} levels deep` };
    if (Array.isArray(v)) v.forEach((item, i) => stack.push([item, [...at, i]]));
    else if (typeof v === "object" && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null))
      for (const [k, item] of Object.entries(v)) stack.push([item, [...at, k]]);
    else return { path: formatPath(at), message: "unsupported value (a string, number, boolean, list or mapping is expected)" };
  }
  return undefined;
}

function syntax(kind: "JSON" | "YAML", where: string | undefined, reason: string): Parsed {
  return { problem: { path: "", message: where ? `${kind} syntax error at line ${where}: ${reason}` : `${kind} syntax error: ${reason}`, code: "TEMPLATE_SYNTAX" } };
}

function lineCol(text: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf("\n"); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    start = i + 1;
  }
  return `${line}:${offset - start + 1}`;
}
