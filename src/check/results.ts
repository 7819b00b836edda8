// What `vmkiln test` reports: one result per checked property, from the built-in first-boot checks
// and from gossfiles alike. Shapes follow goss's TestResult (resource/validate.go: resource-type,
// resource-id, property, result, matcher-result, err), so the JSON reads like `goss validate -f json`.

export type Outcome = "pass" | "fail" | "skip";

export interface CheckResult {
  /** "first-boot" for vmkiln's built-in checks, else the gossfile's path. */
  suite: string;
  /** goss's ResourceType ("File", "Port"…) or "FirstBoot". */
  resourceType: string;
  resourceId: string;
  property: string;
  title?: string | undefined;
  outcome: Outcome;
  /** What the check expected, as goss prints it (a value or a matcher). */
  expected?: unknown;
  /** What it found in the guest. */
  found?: unknown;
  /** goss's matcher words ("to equal", "to have patterns"…), for failures. */
  matcher?: string | undefined;
  missing?: unknown[] | undefined;
  /** The value could not be read or compared (goss's `err`). */
  error?: string | undefined;
  /** Why a check was skipped (skip: true, an earlier property failed, not applicable…). */
  reason?: string | undefined;
  durationMs: number;
}

export interface Summary {
  total: number;
  passed: number;
  failed: number;
  skipped: number;
  durationMs: number;
}

export function summarize(results: CheckResult[], durationMs: number): Summary {
  const failed = results.filter((r) => r.outcome === "fail").length;
  const skipped = results.filter((r) => r.outcome === "skip").length;
  return { total: results.length, passed: results.length - failed - skipped, failed, skipped, durationMs };
}

const MAX_SHOWN = 240;

/** A value in a one-line message: JSON, cut in the middle when long (the JSON output keeps it whole). */
export function shown(v: unknown): string {
  const s = v === undefined ? "nothing" : JSON.stringify(v) ?? String(v);
  return s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN - 40)}…(${s.length} chars)…${s.slice(-30)}` : s;
}

/** The line a result prints as: the resource, the property, what was expected and what was found. */
export function resultLine(r: CheckResult): string {
  const head = `${r.resourceType}: ${r.resourceId}: ${r.property}`;
  if (r.outcome === "skip") return `${head}: skipped${r.reason ? ` (${r.reason})` : ""}`;
  if (r.error !== undefined) return `${head}: error: ${r.error}`;
  if (r.outcome === "pass") return `${head}: ok${r.found !== undefined && typeof r.found !== "object" ? `: ${shown(r.found)}` : ""}`;
  const expected = r.matcher ? `${r.matcher} ${shown(r.expected)}` : shown(r.expected);
  const missing = r.missing && r.missing.length ? ` (missing: ${shown(r.missing)})` : "";
  return `${head}: expected ${expected}${missing}, found ${shown(r.found)}`;
}

/** `Count: N, Failed: N, Skipped: N, Duration: 1.234s`, as goss's summary line. */
export function summaryLine(s: Summary): string {
  return `Count: ${s.total}, Failed: ${s.failed}, Skipped: ${s.skipped}, Duration: ${(s.durationMs / 1000).toFixed(3)}s`;
}

const xmlEscape = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!)
    // XML 1.0 cannot carry most control characters, even escaped.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);

/**
 * JUnit XML as CI systems read it (the Ant/Surefire schema Jenkins and GitLab take): one testsuite
 * per suite (first-boot, each gossfile) of the artifact, one testcase per result, a <failure> with
 * the result's line, <skipped/> with the reason.
 */
export function junitXml(runs: Array<{ artifact: string; results: CheckResult[]; durationMs: number }>, timestamp = new Date()): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const all = runs.flatMap((r) => r.results);
  const total = summarize(all, runs.reduce((n, r) => n + r.durationMs, 0));
  lines.push(`<testsuites name="vmkiln test" tests="${total.total}" failures="${total.failed}" skipped="${total.skipped}" errors="0" time="${(total.durationMs / 1000).toFixed(3)}">`);
  for (const run of runs) {
    const suites = [...new Set(run.results.map((r) => r.suite))];
    for (const suite of suites) {
      const rs = run.results.filter((r) => r.suite === suite);
      const s = summarize(rs, rs.reduce((n, r) => n + r.durationMs, 0));
      const name = `${run.artifact}: ${suite}`;
      lines.push(
        `  <testsuite name="${xmlEscape(name)}" tests="${s.total}" failures="${s.failed}" skipped="${s.skipped}" errors="0" time="${(s.durationMs / 1000).toFixed(3)}" timestamp="${timestamp.toISOString().slice(0, 19)}">`,
      );
      for (const r of rs) {
        const cls = `${r.resourceType}.${r.resourceId}`;
        const open = `    <testcase classname="${xmlEscape(cls)}" name="${xmlEscape(`${r.resourceType}: ${r.resourceId}: ${r.property}`)}" time="${(r.durationMs / 1000).toFixed(3)}"`;
        if (r.outcome === "pass") lines.push(`${open}/>`);
        else if (r.outcome === "skip") lines.push(`${open}><skipped message="${xmlEscape(r.reason ?? "skipped")}"/></testcase>`);
        else {
          const line = resultLine(r);
          lines.push(`${open}><failure message="${xmlEscape(line)}" type="${r.error !== undefined ? "error" : "mismatch"}">${xmlEscape(line)}</failure></testcase>`);
        }
      }
      lines.push("  </testsuite>");
    }
  }
  lines.push("</testsuites>");
  return lines.join("\n") + "\n";
}
