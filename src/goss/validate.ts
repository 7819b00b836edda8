// Evaluating a gossfile against a booted guest: the facts come from one run of the probe program
// (probe-script.ts) over SSH, the comparison happens here with goss's matchers (matchers.ts), in the
// order and with the skip rules of goss's Validate methods (resource/<type>.go; resource.go
// shouldSkip: when the first property fails or is false, the rest are skipped). Retries follow goss:
// per resource `retry_count`/`retry_delay` (command, package, dns: resource/retry.go runWithRetry)
// and, for the whole file, `goss validate --retry-timeout D --sleep S` (cmd/goss validate: run all
// checks again every S until they all pass or D has passed).
import { BuildError, asAbortError } from "../errors.js";
import type { Communicator } from "../ssh/communicator.js";
import { shq } from "../ssh/session.js";
import { sleep } from "../util/abort.js";
import type { CheckResult } from "../check/results.js";
import type { Gossfile, MatchingCheck } from "./load.js";
import { compileFor, compileMatcher, MatchError, Reader, type Matcher } from "./matchers.js";
import { PROBE_SCRIPT } from "./probe-script.js";
import type { GossResource } from "./resources.js";

export interface ProbeRequest {
  kind: string;
  args: Record<string, unknown>;
}

export type Facts = Record<string, unknown> & { error?: string; _ms?: number };

/** Runs probes in the guest: one SSH exec, as root (goss is run as root to read every file). */
export type ProbeRunner = (reqs: ProbeRequest[], signal: AbortSignal) => Promise<Facts[]>;

export function sshProbeRunner(ssh: Communicator, opts: { sudo: boolean }): ProbeRunner {
  return async (reqs, signal) => {
    if (reqs.length === 0) return [];
    const cmd = `${opts.sudo ? "sudo -n " : ""}python3 -c ${shq(PROBE_SCRIPT)}`;
    const out: string[] = [];
    const err: string[] = [];
    // Commands may run up to their own timeout each (goss default 10 s); allow for all of them.
    const budget = reqs.reduce((n, r) => n + (typeof r.args.timeout === "number" ? r.args.timeout : 10_000), 0) + 60_000;
    const r = await ssh.exec(cmd, {
      signal,
      stdin: JSON.stringify(reqs),
      timeoutMs: budget,
      onLine: (s, line) => (s === "stdout" ? out : err).push(line),
    });
    if (r.exitCode !== 0) {
      const missing = r.exitCode === 127 || err.some((l) => /python3: (command )?not found/.test(l));
      throw new BuildError(
        "GOSS_PROBE",
        missing
          ? "the guest has no python3: vmkiln's goss checks run a Python 3 probe (every cloud-init image has it); use test.goss_binary to run goss itself"
          : `the goss probe failed in the guest (exit ${r.exitCode ?? r.signal ?? "lost connection"}): ${err.slice(-3).join(" | ")}`,
      );
    }
    try {
      return JSON.parse(out.join("\n")) as Facts[];
    } catch {
      throw new BuildError("GOSS_PROBE", `the goss probe printed no JSON: ${out.join("\n").slice(0, 200)}`);
    }
  };
}

/** The probe a resource needs (what goss's system.New<Type> reads). */
export function probeFor(r: GossResource): ProbeRequest {
  const o = r.options;
  const id = (o[r.def.idKey] as string | undefined) ?? r.id;
  switch (r.def.type) {
    case "file":
      return { kind: "file", args: { path: id, want: r.expect.map((e) => e.prop.key) } };
    case "package":
    case "service":
    case "user":
    case "group":
    case "kernel-param":
    case "interface":
      return { kind: r.def.type, args: { name: id } };
    case "process":
      return { kind: "process", args: { comm: id } };
    case "port":
      return { kind: "port", args: { port: id } };
    case "mount":
      return { kind: "mount", args: { mountpoint: id } };
    case "addr":
      // resource/addr.go Validate: timeout defaults to 500 ms.
      return { kind: "addr", args: { address: id, timeout: (o.timeout as number | undefined) || 500, local: o["local-address"] ?? "" } };
    case "dns":
      // resource/dns.go: timeout defaults to 500 ms.
      return { kind: "dns", args: { host: id, timeout: (o.timeout as number | undefined) || 500 } };
    case "http":
      // resource/http.go Validate: timeout defaults to 5000 ms.
      return { kind: "http", args: { ...o, url: id, timeout: (o.timeout as number | undefined) || 5000 } };
    case "command":
      // resource/command.go Validate: timeout defaults to 10000 ms.
      return { kind: "command", args: { exec: id, timeout: (o.timeout as number | undefined) || 10_000 } };
    default:
      throw new BuildError("INTERNAL", `no probe for ${r.def.type}`);
  }
}

/** The system value of one property from the probe's facts (a Reader for line-oriented ones). */
function factValue(facts: Facts, key: string, reader: boolean): { value?: unknown; error?: string } {
  if (facts.error !== undefined) return { error: facts.error };
  const err = facts[`${key}_error`];
  if (typeof err === "string") return { error: err };
  if (!(key in facts)) return { error: `no value for ${key}` };
  const v = facts[key];
  return { value: reader && typeof v === "string" ? new Reader(v) : v };
}

function shownValue(v: unknown): unknown {
  return v instanceof Reader ? v.text : v;
}

/** One property checked: goss resource/validate.go ValidateGomegaValue. */
function checkProperty(suite: string, r: GossResource, key: string, property: string, expected: unknown, m: Matcher, facts: Facts, reader: boolean, skip: string | undefined): CheckResult {
  const base = { suite, resourceType: r.def.title, resourceId: r.id, property, title: r.title, durationMs: facts._ms ?? 0 };
  if (skip) return { ...base, outcome: "skip", reason: skip, expected: m.json };
  const got = factValue(facts, key, reader);
  if (got.error !== undefined) return { ...base, outcome: "fail", expected: m.json, error: got.error };
  try {
    if (m.match(got.value)) return { ...base, outcome: "pass", expected: m.json, found: shownValue(got.value) };
    const f = m.failure(got.value);
    return {
      ...base,
      outcome: "fail",
      expected: f.expected,
      found: shownValue(f.untransformedValue ?? f.actual),
      matcher: f.message,
      missing: f.missingElements,
    };
  } catch (err) {
    if (err instanceof MatchError) return { ...base, outcome: "fail", expected: expected, found: shownValue(got.value), error: err.message };
    throw err;
  }
}

export function evaluateResource(suite: string, r: GossResource, facts: Facts): CheckResult[] {
  const out: CheckResult[] = [];
  let skip: string | undefined = r.skip ? "skip: true" : undefined;
  for (const [i, e] of r.expect.entries()) {
    const m = compileFor(e.value, e.prop.kind === "reader", `${r.file}: ${r.def.type}.${r.id}.${e.prop.key}`);
    const res = checkProperty(suite, r, e.prop.fact ?? e.prop.key, e.prop.property, e.value, m, facts, e.prop.kind === "reader", skip);
    out.push(res);
    // resource.go shouldSkip: the gate property (exists, installed, listening, status…) failed or is false.
    if (i === 0 && r.def.gate === e.prop.key && !skip && (res.outcome !== "pass" || res.found === false)) {
      skip = `${e.prop.property} is ${res.error !== undefined ? "unknown" : shownResult(res.found)}`;
    }
  }
  return out;
}

function shownResult(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

/** goss `matching`: content from the gossfile itself, no guest needed. */
export function evaluateMatching(suite: string, c: MatchingCheck): CheckResult {
  const started = performance.now();
  const base = { suite, resourceType: "Matching", resourceId: c.id, property: "matches", title: c.title };
  const m = compileMatcher(c.matches, `${c.file}: matching.${c.id}.matches`);
  if (c.skip) return { ...base, outcome: "skip", reason: "skip: true", expected: m.json, durationMs: 0 };
  const durationMs = () => Math.round(performance.now() - started);
  try {
    if (m.match(c.content)) return { ...base, outcome: "pass", expected: m.json, found: c.content, durationMs: durationMs() };
    const f = m.failure(c.content);
    return { ...base, outcome: "fail", expected: f.expected, found: f.untransformedValue ?? f.actual, matcher: f.message, missing: f.missingElements, durationMs: durationMs() };
  } catch (err) {
    if (err instanceof MatchError) return { ...base, outcome: "fail", expected: m.json, found: c.content, error: err.message, durationMs: durationMs() };
    throw err;
  }
}

export interface ValidateOptions {
  suite: string;
  probe: ProbeRunner;
  signal: AbortSignal;
  /** goss validate --retry-timeout (0: one attempt). */
  retryTimeoutMs: number;
  /** goss validate --sleep (default 1 s). */
  sleepMs: number;
  /** Called before each whole-file retry. */
  onRetry?: (attempt: number, failed: number) => void;
}

export async function validateGossfile(g: Gossfile, o: ValidateOptions): Promise<CheckResult[]> {
  // Compile every matcher once up front: a syntax error is exit 2 before anything runs.
  for (const r of g.resources) for (const e of r.expect) compileFor(e.value, e.prop.kind === "reader", `${r.file}: ${r.def.type}.${r.id}.${e.prop.key}`);
  for (const c of g.matching) compileMatcher(c.matches, `${c.file}: matching.${c.id}.matches`);
  const deadline = Date.now() + o.retryTimeoutMs;
  for (let attempt = 1; ; attempt++) {
    const results = await validateOnce(g, o);
    const failed = results.filter((r) => r.outcome === "fail").length;
    if (failed === 0 || Date.now() + o.sleepMs > deadline) return results;
    o.onRetry?.(attempt, failed);
    await sleep(o.sleepMs, o.signal).catch((err: unknown) => {
      throw asAbortError(err);
    });
  }
}

async function validateOnce(g: Gossfile, o: ValidateOptions): Promise<CheckResult[]> {
  const live = g.resources.filter((r) => !r.skip);
  const facts = await o.probe(live.map(probeFor), o.signal);
  const byResource = new Map<GossResource, CheckResult[]>();
  live.forEach((r, i) => byResource.set(r, evaluateResource(o.suite, r, facts[i] ?? { error: "the probe returned no facts" })));
  // resource/retry.go runWithRetry: retry_count more attempts, retry_delay before each.
  for (const r of live) {
    const count = (r.options.retry_count as number | undefined) ?? 0;
    const delay = (r.options.retry_delay as number | undefined) ?? 0;
    for (let n = 0; n < count && byResource.get(r)!.some((x) => x.outcome === "fail"); n++) {
      if (delay > 0) await sleep(delay, o.signal);
      const [f] = await o.probe([probeFor(r)], o.signal);
      byResource.set(r, evaluateResource(o.suite, r, f ?? { error: "the probe returned no facts" }));
    }
  }
  const out: CheckResult[] = [];
  for (const r of g.resources) out.push(...(r.skip ? evaluateResource(o.suite, r, {}) : byResource.get(r)!));
  for (const c of g.matching) out.push(evaluateMatching(o.suite, c));
  return out;
}
