// Fuzz targets for `vmkiln import`'s own parsers: the positioned JSON reader must agree with
// JSON.parse, and the two expression evaluators must fail only with EvalError (reported as "not
// mapped") and keep literal text literal in vmkiln's syntax.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Generated } from "../../../src/import/generated.js";
import { EvalError, evalGoTemplate } from "../../../src/import/go-template.js";
import { evalTemplate, type HclScope } from "../../../src/import/hcl-expr.js";
import { JsonSyntaxError, parseJsonWithLines } from "../../../src/import/json-text.js";
import { concrete } from "../../../src/import/values.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";

const RUNS = 400;
const goScope = () => ({ vars: new Map([["a", "x"]]), templateDir: "/t", cwd: "/c", generated: new Generated(new Date(0)) });
const hclScope = (): HclScope => ({
  vars: new Map([["a", "x"]]), local: () => "l", pathRoot: "/t", pathCwd: "/c", generated: new Generated(new Date(0)), note: () => undefined,
});
/** Strings rich in the characters the parsers care about. */
const tricky = fc.string({ unit: fc.constantFrom("{", "}", "$", "%", "`", '"', "\\", " ", ".", "a", "u", "s", "e", "r", "v", "(", ")", "|", "-", "~", "\n", "[", "]", ",", "=", "<", ">"), maxLength: 40 });

describe("fuzz: import parsers", () => {
  it("parseJsonWithLines agrees with JSON.parse on valid JSON", () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        expect(parseJsonWithLines(text).value).toEqual(JSON.parse(text));
      }),
      fuzzParams(RUNS),
    );
  }, fuzzTimeoutMs(RUNS));

  it("parseJsonWithLines accepts exactly what JSON.parse accepts", () => {
    fc.assert(
      fc.property(fc.oneof(tricky, fc.json().map((j) => j.slice(0, Math.max(0, j.length - 1)))), (text) => {
        let ours: unknown;
        let theirs: unknown;
        let oursOk = true;
        let theirsOk = true;
        try {
          ours = parseJsonWithLines(text).value;
        } catch (err) {
          expect(err).toBeInstanceOf(JsonSyntaxError);
          oursOk = false;
        }
        try {
          theirs = JSON.parse(text);
        } catch {
          theirsOk = false;
        }
        expect(oursOk).toBe(theirsOk);
        if (oursOk) expect(ours).toEqual(theirs);
      }),
      fuzzParams(RUNS),
    );
  }, fuzzTimeoutMs(RUNS));

  it("Go templates: only EvalError; text without {{ stays the same literal text", () => {
    fc.assert(
      fc.property(tricky, (s) => {
        try {
          const out = evalGoTemplate(s, goScope());
          if (!s.includes("{{")) expect(concrete(out, {})).toBe(s);
        } catch (err) {
          expect(err).toBeInstanceOf(EvalError);
        }
      }),
      fuzzParams(RUNS),
    );
  }, fuzzTimeoutMs(RUNS));

  it("HCL templates: only EvalError; text without ${ or %{ stays the same literal text", () => {
    fc.assert(
      fc.property(tricky, (s) => {
        try {
          const out = evalTemplate(s, hclScope());
          if (!s.includes("${") && !s.includes("%{") && typeof out === "string") expect(concrete(out, {})).toBe(s);
        } catch (err) {
          expect(err).toBeInstanceOf(EvalError);
        }
      }),
      fuzzParams(RUNS),
    );
  }, fuzzTimeoutMs(RUNS));
});
