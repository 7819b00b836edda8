// `vmkiln build a.yaml [b.yaml …]`: one build per template and chosen driver. Several builds run at
// once (--parallel N), each with its own build dir, journal, ports and VM; they share the source
// cache, whose per-entry lock makes one download per digest (source/cache.ts). Every template is
// loaded and checked before the first build starts, so bad input fails with exit 2 and nothing runs.
import { availableParallelism } from "node:os";
import { build, type BuildResult } from "../build.js";
import { parseVarArgs } from "../template/load.js";
import { loadBuild, type LoadedBuild } from "../layers/load.js";
import type { BuildOptions } from "../pipeline/context.js";
import { AbortError, BuildError, UserError, VmkilnError } from "../errors.js";
import type { EventBus } from "../log/events.js";
import type { BuildSpec, DriverName } from "../template/spec.js";
import type { DriverFactory } from "../pipeline/driver.js";
import { driverLoad, driverRegistry } from "./registry.js";
import type { CliIO } from "./io.js";
import { debugStepHook } from "./debug-steps.js";

export interface BuildCommandOptions {
  var?: string[];
  varFile?: string[];
  /** One driver, or a comma-separated list (each is its own build). */
  only?: string;
  force?: boolean;
  onError?: string;
  debug?: boolean;
  /** Builds at once; default: what the machine's cores allow for the chosen accelerators. */
  parallel?: string;
  /** Stop every other build as soon as one fails. */
  failFast?: boolean;
  offline?: boolean;
  /** commander's --no-cache: false when given. */
  cache?: boolean;
}

export interface BuildJob {
  label: string;
  /** The final stage's spec (the template's own for a plain one). */
  spec: BuildSpec;
  /** Set for a layered template (from:, stages:): its stages, built through the stage cache. */
  layered?: Extract<LoadedBuild, { kind: "layered" }>;
  driver: DriverName;
  factory: DriverFactory;
}

export async function buildCommand(templates: string | string[], o: BuildCommandOptions, io: CliIO): Promise<number> {
  const list = typeof templates === "string" ? [templates] : templates;
  if (o.onError !== undefined && o.onError !== "cleanup" && o.onError !== "abort") {
    throw new UserError("BAD_OPTION", `--on-error: expected cleanup or abort, got ${o.onError}`);
  }
  const parallel = o.parallel === undefined ? undefined : parseParallel(o.parallel);
  const jobs = await planJobs(list, o, io);
  if (jobs.length === 1) {
    const r = await runJob(jobs[0]!, io.events, io.signal, o, true);
    if (!r.ok && r.error) throw r.error;
    return 0;
  }
  return runMany(jobs, parallel ?? defaultParallel(jobs), o, io);
}

export function parseParallel(text: string): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UserError("BAD_OPTION", `--parallel: expected a positive whole number of builds, got ${JSON.stringify(text)}`);
  return n;
}

/** Loads every template and resolves its drivers into jobs; refuses two jobs writing the same output. */
export async function planJobs(templates: string[], o: BuildCommandOptions, io?: Pick<CliIO, "events" | "signal">): Promise<BuildJob[]> {
  if (templates.length === 0) throw new UserError("BAD_OPTION", "build: name at least one template");
  const jobs: BuildJob[] = [];
  const vars = parseVarArgs(o.var ?? []);
  for (const template of templates) {
    const loaded = await loadBuild(template, { vars, varFiles: o.varFile ?? [], ...(io ? { redactor: io.events.redactor, signal: io.signal } : {}) });
    const spec = loaded.kind === "plain" ? loaded.spec : loaded.plan.stages[loaded.plan.final]!.spec;
    const layered = loaded.kind === "layered" ? loaded : undefined;
    const configured = Object.keys(spec.drivers) as DriverName[];
    const wanted = o.only === undefined ? configured.slice(0, 1) : [...new Set(o.only.split(",").map((s) => s.trim()))];
    if (wanted.length === 0 || wanted.some((d) => d === "" || !configured.includes(d as DriverName))) {
      throw new UserError("DRIVER_NOT_CONFIGURED", `--only ${o.only}: ${template} configures ${configured.join(", ") || "no driver"}`);
    }
    for (const d of wanted as DriverName[]) {
      const factory = driverRegistry[d];
      if (!factory) throw new UserError("DRIVER_UNAVAILABLE", `driver ${d} is not available in this version`);
      // Several drivers of one template: each build gets <directory>-<driver> (Packer's output-<builder>).
      const own = wanted.length > 1 ? { ...spec, output: { ...spec.output, directory: `${spec.output.directory}-${d}` } } : spec;
      if (layered && wanted.length > 1) throw new UserError("BAD_OPTION", `--only ${o.only}: ${template} is layered; build it with one driver at a time`);
      jobs.push({ label: wanted.length > 1 ? `${spec.name}/${d}` : spec.name, spec: own, driver: d, factory, ...(layered ? { layered } : {}) });
    }
  }
  const seen = new Map<string, string>();
  const labels = new Map<string, number>();
  for (const j of jobs) {
    const other = seen.get(j.spec.output.directory);
    if (other) throw new UserError("OUTPUT_COLLISION", `builds ${other} and ${j.label} both write to ${j.spec.output.directory}`, { hint: "give each template its own output.directory (e.g. -var output_dir=…)" });
    seen.set(j.spec.output.directory, j.label);
    const k = (labels.get(j.label) ?? 0) + 1;
    labels.set(j.label, k);
    if (k > 1) j.label = `${j.label}#${k}`;
  }
  return jobs;
}

/**
 * Builds at once when --parallel is not given. A TCG guest is CPU-bound (one host thread per vCPU
 * stays busy), so emulated builds get cores / vCPUs slots; a hardware-accelerated guest idles much of
 * a build (boot, downloads, SSH round trips), so twice that. Builds that run elsewhere (vSphere) take
 * no local core. The least any job allows wins; never below 1. On this project's 2-core TCG machine
 * with 2-vCPU guests: 1 (two TCG builds at once more than double each other's time).
 */
export function defaultParallel(jobs: BuildJob[], cores = availableParallelism()): number {
  let n = Infinity;
  for (const j of jobs) {
    const load = driverLoad[j.driver]?.(j.spec);
    if (!load || load.vcpus <= 0) continue;
    n = Math.min(n, Math.floor(((load.emulated ? 1 : 2) * cores) / load.vcpus));
  }
  return Math.max(1, Math.min(jobs.length, Number.isFinite(n) ? n : jobs.length));
}

async function runJob(job: BuildJob, events: EventBus, signal: AbortSignal, o: BuildCommandOptions, alone: boolean): Promise<BuildResult> {
  const options: BuildOptions = {
    force: o.force ?? false,
    onError: (o.onError as "cleanup" | "abort" | undefined) ?? "cleanup",
    debug: o.debug ?? false,
    ...(o.offline ? { offline: true } : {}),
    // Pausing before each step reads the terminal: only one build can own it.
    ...(o.debug && alone ? { beforeStep: debugStepHook() } : {}),
    // The template's test: section boots the artifacts with QEMU, whatever built them.
    ...(job.spec.test && driverRegistry.qemu ? { testDriverFactory: driverRegistry.qemu } : {}),
  };
  let r: BuildResult;
  if (job.layered) {
    // Every stage's driver is the one chosen for the last stage (stages share the drivers section).
    const { buildLayered } = await import("../layers/build.js");
    r = await buildLayered({ plan: job.layered.plan, driverName: job.driver, driverFactory: job.factory, events, signal, options, noCache: o.cache === false });
  } else {
    r = await build({ spec: job.spec, driverFactory: job.factory, events, signal, options });
  }
  events.emit(
    r.ok
      ? { type: "build-end", ok: true, durationMs: r.durationMs, outputDir: r.outputDir }
      : { type: "build-end", ok: false, durationMs: r.durationMs, error: r.error?.message ?? "failed" },
  );
  return r;
}

/**
 * Runs the jobs, `parallel` at a time, each on its own event bus tagged with its label (reporters
 * prefix its lines; --json carries "build"). A failure stops only that build unless --fail-fast;
 * Ctrl-C (io.signal) stops all of them, and each undoes what it created.
 */
export async function runMany(jobs: BuildJob[], parallel: number, o: BuildCommandOptions, io: CliIO): Promise<number> {
  const failFast = new AbortController();
  const signal = AbortSignal.any([io.signal, failFast.signal]);
  const results: Array<{ job: BuildJob; result?: BuildResult; error?: VmkilnError }> = jobs.map((job) => ({ job }));
  io.events.info(`${jobs.length} builds, ${parallel} at a time: ${jobs.map((j) => j.label).join(", ")}`);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const slot = results[next++]!;
      if (signal.aborted) continue;
      const bus = io.events.child(slot.job.label);
      try {
        slot.result = await runJob(slot.job, bus, signal, o, false);
        if (!slot.result.ok) slot.error = slot.result.error ?? new BuildError("BUILD_FAILED", "failed");
      } catch (err) {
        slot.error = err instanceof VmkilnError ? err : new BuildError("BUILD_FAILED", err instanceof Error ? err.message : String(err), { cause: err });
        bus.emit({ type: "build-end", ok: false, durationMs: 0, error: slot.error.message });
      }
      if (slot.error && o.failFast && !failFast.signal.aborted) failFast.abort(new AbortError(`stopped: ${slot.job.label} failed (--fail-fast)`));
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, jobs.length) }, worker));

  for (const { job, result, error } of results) {
    if (result?.ok) io.events.info(`${job.label}: done in ${(result.durationMs / 1000).toFixed(0)} s: ${result.outputDir}`);
    else if (error) io.events.warn(`${job.label}: failed: ${error.message}`);
    else io.events.warn(`${job.label}: not started (${signal.aborted ? "stopped" : "skipped"})`);
  }
  if (io.signal.aborted) throw new AbortError(io.signal.reason instanceof Error ? io.signal.reason.message : "interrupted");
  const failed = results.filter((r) => !r.result?.ok);
  if (failed.length === 0) return 0;
  const first = failed.find((r) => r.error)?.error;
  throw new BuildError("BUILDS_FAILED", `${failed.length} of ${jobs.length} builds did not finish: ${failed.map((r) => r.job.label).join(", ")}${first ? ` (first error: ${first.message})` : ""}`);
}
