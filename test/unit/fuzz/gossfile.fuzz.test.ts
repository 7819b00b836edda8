// Fuzz target: the gossfile reader (src/goss/load.ts: the text/template subset of template.ts, the YAML,
// every resource's attributes, includes) and the matchers (src/goss/matchers.ts). Inputs: mutations of
// real gossfiles (the repo's fixtures and the appliance example), gossfiles built from the format's
// own pieces, and random JSON values as matchers and as system values. Properties:
//   - reading a gossfile returns one or throws a UserError (exit 2, message names the file), never
//     anything else, and quickly (nothing loops or blows up);
//   - every matcher vmkiln accepts compiles for both kinds of system value, and matching any value
//     returns a boolean or throws MatchError (the check fails with an error), never anything else;
//   - a failure description is always available for a value that did not match.
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { loadGossfile } from "../../../src/goss/load.js";
import { compileFor, MatchError, Reader } from "../../../src/goss/matchers.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";
import { REPO } from "../../helpers/cli.js";
import { mutatedText } from "./mutate.js";

const RUNS = 300;
const dir = mkdtempSync(join(tmpdir(), "vmkiln-fuzz-goss-"));
const stats = { cases: 0, loaded: 0, rejected: 0, slowestMs: 0, matchers: 0, matcherRejected: 0, matches: 0 };
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  console.info(
    `fuzz gossfile: ${stats.cases} gossfiles (${stats.loaded} loaded, ${stats.rejected} rejected as UserError), slowest ${stats.slowestMs.toFixed(1)} ms; ` +
      `${stats.matchers} matchers (${stats.matcherRejected} rejected), ${stats.matches} matches`,
  );
});

const CORPUS = [
  "test/fixtures/goss/main.yaml",
  "test/fixtures/goss/templated.yaml",
  "test/fixtures/goss/include/a.yaml",
  "fixtures/examples/appliance/goss.yaml",
].map((p) => readFileSync(join(REPO, p), "utf8"));

const VARS = { greeting: "hi", sysctl: { "net.ipv4.ip_forward": "1" }, users: ["a", "b"], n: 3, m: { k: [1, 2] } };

const RESOURCE_TYPES = ["file", "package", "service", "command", "port", "user", "group", "kernel-param", "process", "mount", "http", "addr", "dns", "interface", "matching", "gossfile", "bogus"];
const KEYS = ["exists", "mode", "owner", "contents", "installed", "versions", "enabled", "running", "exit-status", "stdout", "stderr", "listening", "ip", "value", "status", "body", "headers", "reachable", "resolvable", "addrs", "mtu", "skip", "title", "timeout", "retry_count", "retry_delay", "file", "content", "matches", "unknown-key"];
const MATCHER_KEYS = ["equal", "have-prefix", "have-suffix", "match-regexp", "contain-substring", "have-len", "have-patterns", "have-key", "contain-element", "contain-elements", "not", "consist-of", "and", "or", "gt", "ge", "lt", "le", "semver-constraint", "nope"];

/** A value a matcher may be written as: scalars, lists, matcher mappings (nested). */
const matcherValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.oneof(fc.boolean(), fc.integer({ min: -5, max: 70000 }), fc.double({ noNaN: false }), fc.string({ maxLength: 8 }), fc.constantFrom("/^a.*$/", "!/x/", "/[/", "\\/", "", "0644", null)),
    fc.array(tie("v"), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom(...MATCHER_KEYS), tie("v"), { maxKeys: 2 }),
  ),
})).v;

/** A gossfile as a JS value, dumped as JSON (valid YAML), with template bits spliced into strings. */
const gossDoc = fc
  .dictionary(
    fc.constantFrom(...RESOURCE_TYPES),
    fc.dictionary(fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom("tcp:22", "/etc/passwd", "ssh", "http://127.0.0.1/", "{{ .Vars.greeting }}")), fc.dictionary(fc.constantFrom(...KEYS), matcherValue, { maxKeys: 4 }), { maxKeys: 3 }),
    { maxKeys: 4 },
  )
  .map((d) => JSON.stringify(d, null, 1));

const TEMPLATE_BITS = ["{{", "}}", "{{-", "-}}", "{{ .Vars.users }}", "{{ range .Vars.users }}", "{{ end }}", "{{ if .Env.X }}", "{{ else }}", "{{ $x := .Vars.n }}", "{{ $x }}", "{{ $ }}", "{{ index .Vars.m \"k\" 1 }}", "{{ len .Vars.users }}", "{{ printf \"%s\" 1 }}", "{{ /* c */ }}", "{{ with .Vars.m }}{{ .k }}{{ end }}", "{{ regexMatch \"(a+)+$\" .Vars.greeting }}", "{{ .Vars.nope.deeper }}", "{{ mkSlice 1 2 }}", "{{ toUpper \"x\" }}"];
const templated = fc.tuple(fc.constantFrom(...CORPUS), fc.array(fc.tuple(fc.nat(), fc.constantFrom(...TEMPLATE_BITS)), { minLength: 1, maxLength: 4 })).map(([base, bits]) => {
  let t = base;
  for (const [at, bit] of bits) {
    const i = at % (t.length + 1);
    t = t.slice(0, i) + bit + t.slice(i);
  }
  return t;
});

const gossText = fc.oneof(fc.constantFrom(...CORPUS).chain((c) => mutatedText(c)), gossDoc, templated, fc.string({ maxLength: 200 }));

describe("fuzz: gossfile reading", () => {
  it(
    "returns a gossfile or throws a UserError naming the file, quickly",
    () => {
      let n = 0;
      fc.assert(
        fc.property(gossText, (text) => {
          const file = join(dir, `g${n++ % 4}.yaml`);
          writeFileSync(file, text);
          stats.cases++;
          const t0 = performance.now();
          try {
            const g = loadGossfile(file, { Vars: VARS, Env: { X: "1" } });
            // What loading accepts must compile (compiling is the other half of exit-2 checking).
            for (const r of g.resources) for (const e of r.expect) compileFor(e.value, e.prop.kind === "reader", `${r.file}: ${r.def.type}.${r.id}.${e.prop.key}`);
            stats.loaded++;
          } catch (err) {
            if (!(err instanceof UserError)) throw err;
            expect(err.exitCode).toBe(2);
            expect(err.message.startsWith(file) || err.message.includes(dir)).toBe(true);
            stats.rejected++;
          }
          const ms = performance.now() - t0;
          stats.slowestMs = Math.max(stats.slowestMs, ms);
          expect(ms).toBeLessThan(5000); // generous: the unit tier shares the machine with TCG guests
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeoutMs(RUNS, 40),
  );
});

describe("fuzz: matchers", () => {
  const systemValue: fc.Arbitrary<unknown> = fc.oneof(fc.boolean(), fc.integer(), fc.string({ maxLength: 20 }), fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.integer()), { maxLength: 4 }), fc.constant(null), fc.string({ maxLength: 60 }).map((s) => new Reader(s)));
  it(
    "compile or throw UserError; match gives a boolean or MatchError; a miss has a failure description",
    () => {
      fc.assert(
        fc.property(matcherValue, fc.boolean(), systemValue, (expected, reader, actual) => {
          stats.matchers++;
          let m;
          try {
            m = compileFor(expected, reader, "fuzz.yaml: file./x.exists");
          } catch (err) {
            if (!(err instanceof UserError)) throw err;
            expect(err.message.startsWith("fuzz.yaml: file./x.exists")).toBe(true);
            stats.matcherRejected++;
            return;
          }
          try {
            const ok = m.match(actual);
            expect(typeof ok).toBe("boolean");
            stats.matches++;
            if (!ok) expect(typeof m.failure(actual).message).toBe("string");
          } catch (err) {
            if (!(err instanceof MatchError)) throw err;
          }
        }),
        fuzzParams(RUNS * 3),
      );
    },
    fuzzTimeoutMs(RUNS * 3),
  );
});
