// Fuzz target: VBoxManage's `--machinereadable` parser (drivers/virtualbox/machinereadable.ts).
// Records are written the way VBoxManage writes them (VBoxManageInfo.cpp,
// outputMachineReadableString: `"` and `\` escaped by a backslash in names and values, the name
// quoted when it holds `=` or the caller asks, values quoted, LF or CRLF line ends; numbers bare in
// older versions) and must parse back to the same map, whatever the text of names and values
// (quotes, backslashes, `=`, newlines in a value such as a VM description). Random text never makes
// the parser throw or take more than linear time.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseMachineReadable } from "../../../drivers/virtualbox/machinereadable.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";

const esc = (s: string) => s.replace(/[\\"]/g, (c) => `\\${c}`);

/** One record as VBoxManage prints it. */
function record(name: string, value: string | number, quoteName: boolean, eol: string): string {
  const n = quoteName || name.includes("=") ? `"${esc(name)}"` : esc(name);
  return typeof value === "number" ? `${n}=${value}${eol}` : `${n}="${esc(value)}"${eol}`;
}

const text = (o: { newlines: boolean }) =>
  fc.string({ unit: fc.oneof(fc.constantFrom('"', "\\", "=", " ", "\r", ...(o.newlines ? ["\n"] : [])), fc.string({ unit: "binary", minLength: 1, maxLength: 1 }), fc.constantFrom("é", "☃")), maxLength: 24 });

const name = text({ newlines: false }).filter((s) => s.length > 0 && !/[\r\n]/.test(s)); // names never hold a line break
const value = fc.oneof(text({ newlines: true }), fc.nat({ max: 1e9 }));

describe("fuzz: VBoxManage --machinereadable", () => {
  const runs = 3000;
  it(
    "records written as VBoxManage writes them parse back to the same map",
    () => {
      let cases = 0;
      fc.assert(
        fc.property(fc.array(fc.tuple(name, value, fc.boolean()), { maxLength: 12 }), fc.constantFrom("\n", "\r\n"), (recs, eol) => {
          cases++;
          const out = recs.map(([n, v, q]) => record(n, v, q, eol)).join("");
          const want = new Map<string, string>();
          for (const [n, v] of recs) want.set(n, String(v));
          expect(parseMachineReadable(out)).toEqual(want);
        }),
        fuzzParams(runs),
      );
      console.log(`fuzz machinereadable round trip: ${cases} cases`);
    },
    fuzzTimeoutMs(runs),
  );

  it(
    "lines that are not records (no `=`, no quote) are skipped and change nothing",
    () => {
      let cases = 0;
      const junk = fc.string({ maxLength: 30 }).map((s) => s.replace(/[="\n]/g, ""));
      fc.assert(
        fc.property(fc.array(fc.tuple(name, value, fc.boolean(), junk), { maxLength: 10 }), (recs) => {
          cases++;
          const out = recs.map(([n, v, q, j]) => `${j}\n${record(n, v, q, "\n")}`).join("");
          const want = new Map<string, string>();
          for (const [n, v] of recs) want.set(n, String(v));
          expect(parseMachineReadable(out)).toEqual(want);
        }),
        fuzzParams(runs),
      );
      console.log(`fuzz machinereadable junk lines: ${cases} cases`);
    },
    fuzzTimeoutMs(runs),
  );

  it(
    "any text: no throw, every key and value a string",
    () => {
      let cases = 0;
      fc.assert(
        fc.property(fc.string({ unit: fc.oneof(fc.constantFrom('"', "\\", "=", "\n", "\r\n"), fc.string({ unit: "binary", minLength: 1, maxLength: 1 })), maxLength: 200 }), (t) => {
          cases++;
          for (const [k, v] of parseMachineReadable(t)) {
            expect(typeof k).toBe("string");
            expect(typeof v).toBe("string");
          }
        }),
        fuzzParams(runs),
      );
      console.log(`fuzz machinereadable random text: ${cases} cases`);
    },
    fuzzTimeoutMs(runs),
  );

  it("200 000 lines that open a quote and never close it: linear time", () => {
    const t = 'k="\\\n'.repeat(200_000);
    const t0 = performance.now();
    parseMachineReadable(t);
    expect(performance.now() - t0).toBeLessThan(3000);
  });
});
