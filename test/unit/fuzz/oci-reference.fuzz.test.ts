// Fuzz: oci:// references and WWW-Authenticate challenges are parsed from user input and from any
// server: they never throw, terminate, and what parses round-trips through its display form.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseChallenges } from "../../../src/publish/challenge.js";
import { parseOciReference } from "../../../src/publish/reference.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";

const piece = fc.constantFrom("oci://", "/", ":", "@", "sha256:", "a", "Z", "0", ".", "_", "__", "-", "..", "[", "]", "::1", "5000", "99999", " ", "%2F", "é", "a".repeat(64));

describe("fuzz: oci references", () => {
  it("never throws; a parsed reference re-parses from its display form to itself", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.array(piece, { maxLength: 12 }).map((a) => a.join(""))), (s) => {
        const r = parseOciReference(s);
        if (typeof r === "string") return;
        const again = parseOciReference(`oci://${r.display}`);
        expect(again).toEqual(r);
        expect(r.repository).toMatch(/^[a-z0-9]/);
      }),
      fuzzParams(3000),
    );
  }, fuzzTimeoutMs(3000));
});

const chPiece = fc.constantFrom("Bearer", "Basic", " ", ",", "=", '"', '\\"', "realm", "service", "scope", "https://a/t", "repository:x:pull", "\t", "é", "==");

describe("fuzz: WWW-Authenticate", () => {
  it("never throws and finds the schemes a well-formed header names", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.array(chPiece, { maxLength: 20 }).map((a) => a.join(""))), (s) => {
        const r = parseChallenges(s);
        for (const c of r) expect(c.scheme).toBe(c.scheme.toLowerCase());
      }),
      fuzzParams(3000),
    );
    fc.assert(
      fc.property(fc.webUrl(), fc.stringMatching(/^[a-z0-9.-]{1,20}$/), fc.string({ maxLength: 30 }), (realm, service, scope) => {
        const esc = scope.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
        const [c] = parseChallenges(`Bearer realm="${realm}",service="${service}",scope="${esc}"`);
        expect(c).toEqual({ scheme: "bearer", params: { realm, service, scope } });
      }),
      fuzzParams(1000),
    );
  }, fuzzTimeoutMs(4000));
});
