// Fuzz targets of the generalize operations' parsers: the /etc/hosts filter (run for real with awk,
// against a model of what it must do) and the report collector (never throws, consumes exactly the
// report lines and what operations print).
import { spawnSync } from "node:child_process";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HOSTS_FILTER_AWK, planOperations, REPORT_MARK, ReportCollector } from "../../../src/provision/generalize.js";
import type { GeneralizeSpec } from "../../../src/template/spec.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";

// Names that collide in interesting ways: prefixes, dots, numbers awk could compare as numbers.
const NAMES = ["node", "node.localdomain", "node1", "localhost", "ip6-localhost", "1", "1.0", "01", "a-b", "NODE"];
const name = fc.constantFrom(...NAMES);
const space = fc.constantFrom(" ", "\t", "  ", " \t");
const entry = fc.record({
  addr: fc.constantFrom("127.0.0.1", "127.0.1.1", "::1", "10.0.0.5"),
  names: fc.array(fc.tuple(space, name), { minLength: 0, maxLength: 4 }),
  comment: fc.option(fc.constantFrom("# note", "#x node", "# node.localdomain"), { nil: undefined }),
  lead: fc.constantFrom("", " "),
});
const line = fc.oneof(
  entry.map((e) => e.lead + e.addr + e.names.map(([s, n]) => s + n).join("") + (e.comment ? " " + e.comment : "")),
  fc.constantFrom("", "# comment node", "   ", "\t# indented"),
);

/** What the filter must produce for one line. */
function model(l: string, hn: string, fq: string): string | undefined {
  if (/^[\t ]*(#|$)/.test(l)) return l;
  const f = l.trim().split(/[\t ]+/);
  const out = [f[0]!];
  let kept = 0;
  let dropped = false;
  for (let i = 1; i < f.length; i++) {
    if (f[i]!.startsWith("#")) {
      out.push(...f.slice(i));
      break;
    }
    if (f[i] === hn || f[i] === fq) dropped = true;
    else {
      out.push(f[i]!);
      kept++;
    }
  }
  if (!dropped) return l;
  return kept > 0 ? out.join(" ") : undefined;
}

describe("fuzz: /etc/hosts filter", () => {
  const RUNS = 60;
  it("removes exactly the two names, keeps every other line byte for byte", () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), name, name, (lines, hn, fq) => {
        const input = lines.map((l) => l + "\n").join("");
        const r = spawnSync("awk", ["-v", `hn=${hn}`, "-v", `fq=${fq}`, HOSTS_FILTER_AWK], { input, encoding: "utf8" });
        const want = lines.map((l) => model(l, hn, fq)).filter((l) => l !== undefined);
        const wantText = want.length ? want.join("\n") + "\n" : "";
        expect(r.stdout).toBe(wantText);
        expect(r.status).toBe(wantText === input ? 1 : 0); // 0: something changed
        expect(r.stderr).toBe("");
      }),
      fuzzParams(RUNS),
    );
  }, fuzzTimeoutMs(RUNS, 200));
});

describe("fuzz: ReportCollector", () => {
  const ALL = { cloudInit: true, keepDefaultUser: false, buildUser: true, passwdBackups: true, network: true, hostname: true, dhcp: true, machineId: true, randomSeed: true, sshHostKeys: true, tmp: true, shellHistory: true, packageCache: true, logs: true, trim: true } satisfies GeneralizeSpec;
  const RUNS = 300;
  const ops = fc.constantFrom("build_user", "tmp", "logs", "nope", "", "trim");
  const text = fc.oneof(fc.constantFrom("begin", "ok", "failed 1", "- removed /x", "-", "- "), fc.string({ maxLength: 12 }));
  const reportLine = fc.tuple(ops, text).map(([o, t]) => `${REPORT_MARK} ${o}${t ? " " + t : ""}`);
  const anyLine = fc.oneof(reportLine, fc.string({ maxLength: 20 }), fc.constant(REPORT_MARK));
  it("never throws; report lines are always consumed; one report per operation, in order", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom("stdout", "stderr") as fc.Arbitrary<"stdout" | "stderr">, anyLine), { maxLength: 30 }), (feed) => {
        const c = new ReportCollector(planOperations(ALL));
        for (const [stream, l] of feed) {
          const consumed = c.line(stream, l);
          if (l.startsWith(REPORT_MARK + " ")) expect(consumed).toBe(true);
          if (stream === "stderr" && !l.startsWith(REPORT_MARK + " ")) expect(consumed).toBe(false);
        }
        const list = c.list();
        expect(list.map((r) => r.operation)).toEqual(planOperations(ALL).map((p) => p.name));
        for (const r of list) expect(["done", "off", "skipped", "failed"]).toContain(r.status);
      }),
      fuzzParams(RUNS),
    );
  });
});
