// goss's matchers, from its documentation (docs/gossfile.md "Matchers") and source (goss-org/goss):
// how a YAML value becomes a matcher is resource/gomega.go matcherToGomegaMatcher; the transforms
// (to-string, to-numeric, to-array) are matchers/type_conversion.go; line patterns for file
// contents, command output and HTTP bodies are matchers/have_patterns.go HavePatternsMatcher. The
// failure messages ("to equal", "to be numerically >", "to have patterns" …) are the ones those
// matchers' FailureResult methods give, so a result reads as goss's would.
import { isDeepStrictEqual } from "node:util";
import { UserError } from "../errors.js";

export interface MatcherResult {
  actual: unknown;
  /** goss's words: "to equal", "to contain element matching", "to be numerically >"… */
  message: string;
  expected: unknown;
  missingElements?: unknown[];
  foundElements?: unknown[];
  /** The transforms applied to the system's value before matching (goss "transform-chain"). */
  transformChain?: string[];
  untransformedValue?: unknown;
}

export interface Matcher {
  /** true/false, or throws MatchError when the value cannot be compared (goss: the test's err). */
  match(actual: unknown): boolean;
  /** Why the last match failed. */
  failure(actual: unknown): MatcherResult;
  /** The matcher as goss prints it in "expected" (its YAML form). */
  readonly json: unknown;
}

/** A syntax error in a gossfile's matcher: exit 2 naming where. */
export class GossSyntaxError extends UserError {
  constructor(where: string, message: string) {
    super("GOSS_SYNTAX", `${where}: ${message}`);
  }
}

/** A value the matcher cannot take (goss reports it as the test's error; the test fails). */
export class MatchError extends Error {}

/** Line-oriented system values (file contents, command output, HTTP body): goss's io.Reader. */
export class Reader {
  constructor(readonly text: string) {}
}

/** Matcher names vmkiln implements (resource/gomega.go matcherToGomegaMatcher, minus gjson/xml/semver). */
export const MATCHER_NAMES = [
  "equal", "have-prefix", "have-suffix", "match-regexp", "contain-substring", "have-len", "have-patterns", "have-key",
  "contain-element", "contain-elements", "not", "consist-of", "and", "or", "gt", "ge", "lt", "le",
] as const;
const UNSUPPORTED_MATCHERS: Record<string, string> = {
  "semver-constraint": "semver ranges",
  gjson: "gjson paths",
  xml: "XPath",
};


// ---- transforms (matchers/type_conversion.go) -------------------------------------------------

type Transform = { name: string; fn: (v: unknown) => unknown };

/** ToString.Transform: arrays joined with "\n", anything else printed. */
export const toStringT: Transform = {
  name: "to-string",
  fn: (v) => (Array.isArray(v) ? v.map((x) => fmtV(x)).join("\n") : v instanceof Reader ? v.text : fmtV(v)),
};
/** ToNumeric.Transform: numbers stay; strings (and string arrays, joined) parse as a float. */
export const toNumericT: Transform = {
  name: "to-numeric",
  fn: (v) => {
    if (typeof v === "number") return v;
    let s: string | undefined;
    if (typeof v === "string") s = v;
    else if (v instanceof Reader) s = v.text;
    else if (Array.isArray(v) && v.every((x) => typeof x === "string")) s = v.join("\n");
    if (s === undefined) throw new MatchError(`Expected numeric, Got: ${JSON.stringify(v)}`);
    const t = s.trim();
    // strconv.ParseFloat: a whole decimal/float literal, nothing else.
    if (!/^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/.test(t) && !/^[+-]?(?:inf|infinity)$/i.test(t)) {
      throw new MatchError(`strconv.ParseFloat: parsing ${JSON.stringify(t)}: invalid syntax`);
    }
    return Number(/inf/i.test(t) ? (t.startsWith("-") ? -Infinity : Infinity) : t);
  },
};
/** ToArray.Transform: a string is split on "\n"; anything else stays. */
export const toArrayT: Transform = {
  name: "to-array",
  fn: (v) => (typeof v === "string" ? v.split("\n") : v instanceof Reader ? v.text.split("\n") : v),
};

function fmtV(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === null || v === undefined) return "<nil>";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function withTransform(t: Transform, inner: Matcher): Matcher {
  let last: unknown;
  let changed = false;
  return {
    json: inner.json,
    match(actual) {
      last = t.fn(actual);
      changed = !isDeepStrictEqual(last, actual);
      return inner.match(last);
    },
    failure(actual) {
      const r = inner.failure(last);
      if (changed) {
        r.transformChain = [t.name, ...(r.transformChain ?? [])];
        r.untransformedValue = actual instanceof Reader ? actual.text : actual;
      }
      return r;
    },
  };
}

// ---- basic matchers ---------------------------------------------------------------------------

function simple(json: unknown, message: string, expected: unknown, test: (a: unknown) => boolean): Matcher {
  return { json, match: test, failure: (actual) => ({ actual, message, expected }) };
}

const equal = (x: unknown): Matcher => simple({ equal: x }, "to equal", x, (a) => isDeepStrictEqual(a, x));

const OPS: Record<string, [string, (a: number, b: number) => boolean]> = {
  eq: ["==", (a, b) => a === b],
  gt: [">", (a, b) => a > b],
  ge: [">=", (a, b) => a >= b],
  lt: ["<", (a, b) => a < b],
  le: ["<=", (a, b) => a <= b],
};

/** matchers/be_numerically_matcher.go (message "to be numerically <op>"). */
function beNumerically(op: string, x: unknown, where: string): Matcher {
  if (typeof x !== "number") throw new GossSyntaxError(where, `${op}: expected a number, got ${JSON.stringify(x)}`);
  const [sym, fn] = OPS[op]!;
  return {
    json: op === "eq" ? x : { [op]: x },
    match(a) {
      if (typeof a !== "number") throw new MatchError(`Expected a number, got ${JSON.stringify(a)}`);
      return fn(a, x);
    },
    failure: (actual) => ({ actual, message: `to be numerically ${sym}`, expected: x }),
  };
}

function strMatcher(name: string, message: string, x: string, test: (s: string) => boolean): Matcher {
  return withTransform(toStringT, {
    json: { [name]: x },
    match(a) {
      if (typeof a !== "string") throw new MatchError(`${name} expects a string, got ${JSON.stringify(a)}`);
      return test(a);
    },
    failure: (actual) => ({ actual, message, expected: x }),
  });
}

/** Go's RE2 syntax mostly reads the same in JavaScript; (?i)-style leading flags are translated. */
export function goRegexp(src: string, where: string): RegExp {
  let flags = "";
  const m = /^\(\?([imsU]+)\)/.exec(src);
  if (m) {
    if (m[1]!.includes("U")) throw new GossSyntaxError(where, `regexp flag U is not supported`);
    flags = m[1]!.replace(/[^ims]/g, "");
    src = src.slice(m[0].length);
  }
  try {
    return new RegExp(src, flags);
  } catch (err) {
    throw new GossSyntaxError(where, `invalid regular expression ${JSON.stringify(src)}: ${(err as Error).message}`);
  }
}

// ---- collections --------------------------------------------------------------------------------

function asList(a: unknown, who: string): unknown[] {
  if (Array.isArray(a)) return a;
  if (a && typeof a === "object" && !(a instanceof Reader)) return Object.values(a);
  throw new MatchError(`${who} matcher expects an array/slice/map. Got: ${JSON.stringify(a instanceof Reader ? a.text : a)}`);
}

/** Each matcher gets its own element (gomega's ContainElements/ConsistOf use a bipartite match). */
function bipartite(ms: Matcher[], els: unknown[]): { matched: number; missing: Matcher[] } {
  const owner = new Array<number>(els.length).fill(-1);
  const can = ms.map((m) => els.map((e) => safeMatch(m, e)));
  const tryAssign = (mi: number, seen: boolean[]): boolean => {
    for (let ei = 0; ei < els.length; ei++) {
      if (!can[mi]![ei] || seen[ei]) continue;
      seen[ei] = true;
      if (owner[ei] === -1 || tryAssign(owner[ei]!, seen)) {
        owner[ei] = mi;
        return true;
      }
    }
    return false;
  };
  const missing: Matcher[] = [];
  let matched = 0;
  ms.forEach((_, mi) => {
    if (tryAssign(mi, new Array<boolean>(els.length).fill(false))) matched++;
    else missing.push(ms[mi]!);
  });
  return { matched, missing };
}

function safeMatch(m: Matcher, v: unknown): boolean {
  try {
    return m.match(v);
  } catch {
    return false;
  }
}

function containElements(ms: Matcher[]): Matcher {
  let missing: Matcher[] = [];
  return {
    json: ms.map((m) => m.json),
    match(a) {
      missing = bipartite(ms, asList(a, "ContainElements")).missing;
      return missing.length === 0;
    },
    failure: (actual) => ({
      actual,
      message: "to contain elements matching",
      expected: ms.map((m) => m.json),
      missingElements: missing.map((m) => m.json),
      foundElements: ms.filter((m) => !missing.includes(m)).map((m) => m.json),
    }),
  };
}

function containElement(m: Matcher): Matcher {
  return withTransform(toArrayT, {
    json: { "contain-element": m.json },
    match: (a) => asList(a, "ContainElement").some((e) => safeMatch(m, e)),
    failure: (actual) => ({ actual, message: "to contain element matching", expected: m.json }),
  });
}

function consistOf(ms: Matcher[]): Matcher {
  let missing: Matcher[] = [];
  let extra: unknown[] = [];
  return {
    json: { "consist-of": ms.map((m) => m.json) },
    match(a) {
      const els = asList(a, "ConsistOf");
      const r = bipartite(ms, els);
      missing = r.missing;
      extra = [];
      if (els.length !== ms.length || missing.length) {
        // What no matcher claims: elements beyond those matched.
        extra = els.filter((e) => !ms.some((m) => safeMatch(m, e)));
        return false;
      }
      return true;
    },
    failure: (actual) => ({
      actual,
      message: "to consist of",
      expected: ms.map((m) => m.json),
      missingElements: missing.map((m) => m.json),
      ...(extra.length ? { foundElements: extra } : {}),
    }),
  };
}

function haveLen(n: number): Matcher {
  return simple({ "have-len": n }, "to have length", n, (a) => {
    if (typeof a === "string" || Array.isArray(a)) return a.length === n;
    if (a && typeof a === "object" && !(a instanceof Reader)) return Object.keys(a).length === n;
    throw new MatchError(`HaveLen matcher expects a string/array/map. Got: ${JSON.stringify(a)}`);
  });
}

function haveKey(m: Matcher): Matcher {
  return {
    json: { "have-key": m.json },
    match(a) {
      if (!a || typeof a !== "object" || Array.isArray(a)) throw new MatchError(`HaveKey matcher expects a map. Got: ${JSON.stringify(a)}`);
      return Object.keys(a).some((k) => safeMatch(m, k));
    },
    failure: (actual) => ({ actual, message: "to have key matching", expected: m.json }),
  };
}

function not(m: Matcher): Matcher {
  return {
    json: { not: m.json },
    match: (a) => !m.match(a),
    failure: (actual) => {
      const r = m.failure(actual);
      return { ...r, actual: r.actual, message: r.message.startsWith("to ") ? "not " + r.message : "not " + r.message };
    },
  };
}

function and(ms: Matcher[]): Matcher {
  let firstFailed: Matcher | undefined;
  return {
    json: ms.length === 1 ? ms[0]!.json : { and: ms.map((m) => m.json) },
    match(a) {
      firstFailed = undefined;
      for (const m of ms) {
        if (!m.match(a)) {
          firstFailed = m;
          return false;
        }
      }
      return true;
    },
    // matchers/and.go AndMatcher.FailureResult: the first matcher that failed.
    failure: (actual) => firstFailed?.failure(actual) ?? { actual, message: "to satisfy all of these matchers", expected: ms.map((m) => m.json) },
  };
}

function or(ms: Matcher[]): Matcher {
  return {
    json: { or: ms.map((m) => m.json) },
    match: (a) => ms.some((m) => safeMatch(m, a)),
    failure: (actual) => ({ actual, message: "to satisfy at least one of these matchers", expected: ms.map((m) => m.json) }),
  };
}

// ---- patterns (matchers/have_patterns.go) -------------------------------------------------------

interface Pattern {
  pattern: string;
  inverse: boolean;
  test(line: string): boolean;
}

/** isRegexPattern: "/re/" or "!/re/", with optional i/m/s flags after the closing slash. */
function isRegexPattern(s: string): boolean {
  const core = s.startsWith("!") ? s.slice(1) : s;
  if (!core.startsWith("/")) return false;
  const closing = core.slice(1).lastIndexOf("/");
  if (closing < 0) return false;
  return /^[ims]*$/.test(core.slice(1).slice(closing + 1));
}

export function compilePattern(s: string, where: string): Pattern {
  if (isRegexPattern(s)) {
    const inverse = s.startsWith("!");
    let clean = inverse ? s.slice(1) : s;
    if (clean[0] === "\\" || clean[0] === "/") clean = clean.slice(1);
    const idx = clean.lastIndexOf("/");
    let flags = "";
    if (idx >= 0) {
      flags = clean.slice(idx + 1);
      clean = clean.slice(0, idx);
    }
    const re = goRegexp(flags ? `(?${flags})${clean}` : clean, where);
    return { pattern: s, inverse, test: (l) => re.test(l) };
  }
  // newStringPattern: a leading "!" inverts; every leading \, / and ! is stripped from the text.
  const inverse = s.startsWith("!");
  const clean = s.replace(/^[\\/!]+/, "");
  return { pattern: s, inverse, test: (l) => l.includes(clean) };
}

export function havePatterns(list: unknown, where: string): Matcher {
  if (!Array.isArray(list)) throw new GossSyntaxError(where, "have-patterns expects an array of patterns");
  const pats = list.map((p, i) => {
    if (typeof p !== "string") throw new GossSyntaxError(`${where}[${i}]`, `a pattern must be a string, got ${JSON.stringify(p)}`);
    return compilePattern(p, `${where}[${i}]`);
  });
  let missing: string[] = [];
  let found: string[] = [];
  return {
    json: list,
    match(a) {
      let text: string;
      if (a instanceof Reader) text = a.text;
      else if (typeof a === "string") text = a;
      else if (Array.isArray(a) && a.every((x) => typeof x === "string")) text = a.join("\n");
      else throw new MatchError(`Incorrect type ${typeof a}`);
      let notfound = [...pats];
      const hit: Pattern[] = [];
      // HavePatternsMatcher.Match: each line is tried against every pattern not settled yet; a
      // plain pattern that matches is found, an inverse one that matches is settled as failed.
      if (notfound.length) {
        const lines = text.split("\n");
        if (lines.length && lines[lines.length - 1] === "") lines.pop(); // bufio.Scanner: no empty last token
        for (const line of lines) {
          notfound = notfound.filter((p) => {
            if (p.test(line)) {
              if (!p.inverse) hit.push(p);
              return false;
            }
            return true;
          });
          if (!notfound.length) break;
        }
      }
      for (const p of notfound) if (p.inverse || p.pattern === "") hit.push(p);
      found = hit.map((p) => p.pattern);
      missing = pats.filter((p) => !hit.includes(p)).map((p) => p.pattern);
      return missing.length === 0;
    },
    failure: (actual) => ({
      actual: actual instanceof Reader ? actual.text : actual,
      message: "to have patterns",
      expected: list,
      missingElements: missing,
      foundElements: found,
    }),
  };
}

// ---- YAML → matcher (resource/gomega.go matcherToGomegaMatcher) ---------------------------------

export function compileMatcher(expected: unknown, where: string): Matcher {
  if (typeof expected === "string") return withTransform(toStringT, equal(expected));
  if (typeof expected === "number") return withTransform(toNumericT, beNumerically("eq", expected, where));
  if (typeof expected === "boolean") return equal(expected);
  if (Array.isArray(expected)) return containElements(expected.map((e, i) => compileMatcher(e, `${where}[${i}]`)));
  if (expected === null || expected === undefined) throw new GossSyntaxError(where, "Missing required attribute (a matcher, not null)");
  if (typeof expected !== "object") throw new GossSyntaxError(where, `unexpected matcher ${JSON.stringify(expected)}`);
  const keys = Object.keys(expected);
  if (keys.length !== 1) {
    throw new GossSyntaxError(where, keys.length === 0 ? "an empty mapping is not a matcher" : `only one matcher is allowed at a nesting level; found ${keys.map((k) => JSON.stringify(k)).join(", ")}`);
  }
  const name = keys[0]!;
  const value = (expected as Record<string, unknown>)[name];
  const at = `${where}.${name}`;
  const str = (): string => {
    if (typeof value !== "string") throw new GossSyntaxError(at, `expected a string value, got ${JSON.stringify(value)}`);
    return value;
  };
  const list = (): Matcher[] => {
    if (!Array.isArray(value)) throw new GossSyntaxError(at, `expected an array, got ${JSON.stringify(value)}`);
    return value.map((v, i) => compileMatcher(v, `${at}[${i}]`));
  };
  switch (name) {
    case "equal":
      return equal(value);
    case "have-prefix": {
      const x = str();
      return strMatcher(name, "to have prefix", x, (s) => s.startsWith(x));
    }
    case "have-suffix": {
      const x = str();
      return strMatcher(name, "to have suffix", x, (s) => s.endsWith(x));
    }
    case "match-regexp": {
      const re = goRegexp(str(), at);
      return strMatcher(name, "to match regular expression", str(), (s) => re.test(s));
    }
    case "contain-substring": {
      const x = str();
      return strMatcher(name, "to contain substring", x, (s) => s.includes(x));
    }
    case "have-len":
      if (typeof value !== "number" || !Number.isInteger(value)) throw new GossSyntaxError(at, `expected a whole number, got ${JSON.stringify(value)}`);
      return haveLen(value);
    case "have-patterns":
      return withTransform(toStringT, havePatterns(value, at));
    case "have-key":
      return haveKey(compileMatcher(value, at));
    case "contain-element":
      if (!(typeof value === "string" || typeof value === "number" || (value && typeof value === "object" && !Array.isArray(value)))) {
        throw new GossSyntaxError(at, `expected a matcher, string or number, got ${JSON.stringify(value)}`);
      }
      return containElement(compileMatcher(value, at));
    case "contain-elements":
      return withTransform(toArrayT, containElements(list()));
    case "not":
      return not(compileMatcher(value, at));
    case "consist-of":
      return consistOf(list());
    case "and":
      return and(list());
    case "or":
      return or(list());
    case "gt":
    case "ge":
    case "lt":
    case "le":
      return withTransform(toNumericT, beNumerically(name, value, at));
    default:
      if (UNSUPPORTED_MATCHERS[name]) throw new GossSyntaxError(at, `the ${name} matcher (${UNSUPPORTED_MATCHERS[name]}) is not supported by vmkiln; use goss itself through test.goss_binary`);
      throw new GossSyntaxError(at, `unknown matcher ${JSON.stringify(name)} (known: ${MATCHER_NAMES.join(", ")})`);
  }
}

/** goss resource/validate.go ValidateValue: a line-oriented value against a list is a pattern match; otherwise the whole text. */
export function compileFor(expected: unknown, readerValue: boolean, where: string): Matcher {
  if (readerValue && Array.isArray(expected)) return havePatterns(expected, where);
  const m = compileMatcher(expected, where);
  if (!readerValue) return m;
  const text = (a: unknown) => (a instanceof Reader ? a.text : a);
  return { json: m.json, match: (a) => m.match(text(a)), failure: (a) => m.failure(text(a)) };
}
