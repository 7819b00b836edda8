// `test.goss_binary`: run goss itself in the guest instead of vmkiln's evaluation (for what vmkiln
// does not evaluate: Sprig functions, semver/gjson/xml matchers, dns servers). The binary, the
// gossfile and the vars file are uploaded to a temporary directory, `goss validate --format json`
// runs as root, and its JSON (goss outputs/json.go Json.Output: {"results": [TestResult…],
// "summary": {…}}, each result with resource-type, resource-id, property, result 0 pass / 1 fail /
// 2 skip, err, matcher-result {actual, expected, message, missing-elements}) becomes vmkiln's results.
// Only the gossfile named is uploaded: render includes into one file first (`goss render`).
import { basename } from "node:path";
import { BuildError } from "../errors.js";
import type { EventBus } from "../log/events.js";
import type { CheckResult } from "../check/results.js";
import type { Communicator } from "../ssh/communicator.js";
import { shq } from "../ssh/session.js";

export interface GossBinaryOptions {
  ssh: Communicator;
  binary: string;
  gossfile: string;
  varsFile?: string | undefined;
  retryTimeoutMs: number;
  sleepMs: number;
  signal: AbortSignal;
  events: EventBus;
}

interface GossJsonResult {
  "resource-type"?: string;
  "resource-id"?: string;
  property?: string;
  title?: string;
  result?: number;
  skipped?: boolean;
  successful?: boolean;
  err?: string | null;
  duration?: number;
  "matcher-result"?: { actual?: unknown; expected?: unknown; message?: string; "missing-elements"?: unknown };
}

/** goss's JSON output → results. Throws when it is not goss's JSON. */
export function parseGossJson(text: string, suite: string): CheckResult[] {
  let j: { results?: GossJsonResult[] };
  try {
    j = JSON.parse(text) as typeof j;
  } catch {
    throw new BuildError("GOSS_OUTPUT", `goss printed no JSON: ${text.slice(0, 200)}`);
  }
  if (!j || !Array.isArray(j.results)) throw new BuildError("GOSS_OUTPUT", "goss's JSON has no results list");
  return j.results.map((r) => {
    const m = r["matcher-result"] ?? {};
    // resource/validate.go: SUCCESS 0, FAIL 1, SKIP 2.
    const outcome = r.result === 2 || r.skipped ? "skip" : r.result === 0 ? "pass" : "fail";
    const missing = m["missing-elements"];
    return {
      suite,
      resourceType: r["resource-type"] ?? "?",
      resourceId: r["resource-id"] ?? "?",
      property: r.property ?? "?",
      ...(r.title ? { title: r.title } : {}),
      outcome,
      expected: m.expected,
      found: m.actual,
      ...(outcome === "fail" && m.message ? { matcher: m.message } : {}),
      ...(Array.isArray(missing) && missing.length ? { missing } : {}),
      ...(r.err ? { error: r.err } : {}),
      ...(outcome === "skip" ? { reason: "skipped by goss" } : {}),
      durationMs: Math.round((r.duration ?? 0) / 1e6),
    } satisfies CheckResult;
  });
}

/** A Go duration for goss's flags. */
function goDuration(ms: number): string {
  return `${Math.max(0, Math.round(ms))}ms`;
}

export async function runGossBinary(o: GossBinaryOptions): Promise<CheckResult[]> {
  const dir = (await o.ssh.capture("mktemp -d /tmp/vmkiln-goss.XXXXXX", { signal: o.signal, timeoutMs: 60_000 })).trim();
  if (!dir.startsWith("/tmp/vmkiln-goss.")) throw new BuildError("GOSS_UPLOAD", `mktemp in the guest printed ${JSON.stringify(dir)}`);
  try {
    await o.ssh.upload(o.binary, `${dir}/goss`, { signal: o.signal, mode: 0o755 });
    await o.ssh.upload(o.gossfile, `${dir}/goss.yaml`, { signal: o.signal, mode: 0o644 });
    if (o.varsFile) await o.ssh.upload(o.varsFile, `${dir}/vars.yaml`, { signal: o.signal, mode: 0o644 });
    const flags = [`--gossfile ${shq(`${dir}/goss.yaml`)}`, ...(o.varsFile ? [`--vars ${shq(`${dir}/vars.yaml`)}`] : [])];
    const retry = o.retryTimeoutMs > 0 ? ` --retry-timeout ${goDuration(o.retryTimeoutMs)} --sleep ${goDuration(o.sleepMs)}` : "";
    const cmd = `cd ${shq(dir)} && sudo -n ./goss ${flags.join(" ")} validate --format json${retry}`;
    o.events.info(`running ${basename(o.binary)} in the guest: goss validate --format json (${o.gossfile})`, "goss");
    const out: string[] = [];
    const err: string[] = [];
    const r = await o.ssh.exec(cmd, { signal: o.signal, timeoutMs: o.retryTimeoutMs + 30 * 60_000, onLine: (s, l) => (s === "stdout" ? out : err).push(l) });
    // goss validate exits 0 when everything passed, 1 when a check failed; anything else is goss failing.
    if (r.exitCode !== 0 && r.exitCode !== 1) {
      throw new BuildError("GOSS_FAILED", `goss exited with ${r.exitCode ?? r.signal ?? "a dropped connection"}: ${err.slice(-3).join(" | ") || out.slice(-1).join("")}`);
    }
    return parseGossJson(out.join("\n"), o.gossfile);
  } finally {
    await o.ssh.exec(`rm -rf ${shq(dir)}`, { signal: new AbortController().signal, timeoutMs: 60_000 }).catch(() => undefined);
  }
}
