// Building a layered template (issue 17): each stage on the way to the last one is looked up in the
// stage cache by its key and built only on a miss, by the ordinary pipeline, into a private directory
// that becomes the entry. A derived stage's source is its parent's disk: on QEMU that qcow2 is the
// read-only backing file of the stage's overlay (diskMode overlay), and the stage's export flattens
// it, so every entry stands alone. A driver whose factory carries a StageHandoff (vSphere) keeps an
// earlier stage's VM on the hypervisor instead (a template), the entry records it, and the next
// stage is built from it (a clone); a hit on such an entry is trusted only once the driver has found
// it there still (docs/architecture.md "Layered builds and the stage cache"). The last stage's entry
// holds the whole output (artifacts, SHA256SUMS, manifest.json), and the output directory is always a
// byte copy of it: a rebuild that hits writes exactly the bytes the first build wrote, manifest.json
// included (its build_id, created and step timings are those of the build that made the entry).
import { createHash } from "node:crypto";
import { constants } from "node:fs";
import { chmod, copyFile, mkdir, readFile, rm, utimes } from "node:fs/promises";
import { dirname, join } from "node:path";
import { build, newBuildId, type BuildRequest, type BuildResult } from "../build.js";
import { VMKILN_VERSION } from "../artifact/manifest.js";
import { BuildError, UserError, VmkilnError, asAbortError, throwIfAborted } from "../errors.js";
import { EventBus } from "../log/events.js";
import type { Artifact, BuildOptions } from "../pipeline/context.js";
import type { DriverFactory, StageHandoff } from "../pipeline/driver.js";
import { withLock } from "../source/cache.js";
import { resolveSource } from "../source/fetch.js";
import { preflightPublish, push } from "../publish/push.js";
import { offlinePublish } from "../steps/prepare.js";
import { stagingDirFor } from "../steps/export.js";
import { MANIFEST_JSON, preflightOutput, replaceOutput } from "../steps/output-guard.js";
import type { BuildSpec, DriverName } from "../template/spec.js";
import { parseSize } from "../template/duration.js";
import { stableJson, stageKey } from "./key.js";
import type { LayeredPlan, StagePlan } from "./load.js";
import { commitStage, lockPath, lookupStage, makeTmp, pruneStages, removeStaleTmp, stageDirs, type Hit, type StageDirs } from "./store.js";

export interface LayeredBuildRequest {
  plan: LayeredPlan;
  driverName: DriverName;
  driverFactory: DriverFactory;
  events: EventBus;
  signal: AbortSignal;
  options: BuildOptions;
  /** Cache root (replaces $VMKILN_CACHE_DIR). */
  cacheDir?: string;
  /** Build every stage again (and replace its entry). */
  noCache?: boolean;
  /** The build of one stage; tests replace it to exercise the cache without a VM. */
  runBuild?: (req: BuildRequest) => Promise<BuildResult>;
  /** The registry push of output.publish after a cache hit (src/publish/push.ts); tests replace it. */
  push?: typeof push;
}

/** What a stage's disk is handed to the next stage as, in order of preference. */
const STAGE_DISK_FORMATS = ["qcow2", "vmdk"] as const;

export interface StageOutcome {
  label: string;
  key: string;
  hit: boolean;
}

export interface LayeredBuildResult extends BuildResult {
  stages: StageOutcome[];
}

export async function buildLayered(req: LayeredBuildRequest): Promise<LayeredBuildResult> {
  const startedAt = Date.now();
  const buildId = newBuildId();
  const { plan, events, signal } = req;
  const final = plan.stages[plan.final]!;
  const dirs = stageDirs(req.cacheDir);
  const outcomes: StageOutcome[] = [];
  const out = final.spec.output.directory;
  const fail = (error: VmkilnError): LayeredBuildResult => ({ ok: false, error, artifacts: [], outputDir: out, durationMs: Date.now() - startedAt, buildId, stages: outcomes });

  try {
    // The output directory is checked before any stage runs: a refusal costs nothing.
    await preflightOutput(final.spec, { force: req.options.force });
    // A full cache hit runs no stage, so no stage's prepare step would say it (src/steps/prepare.ts).
    if (req.options.offline && final.spec.output.publish.length > 0) throw offlinePublish();
    // Registry credentials and CA files, as the prepare step checks them (no network here).
    for (const p of final.spec.output.publish) await preflightPublish(p, signal);
    await removeStaleTmp(dirs);
    const chain: number[] = [];
    for (let i: number | undefined = plan.final; i !== undefined; i = plan.stages[i]!.parent) chain.unshift(i);
    const hits = new Map<number, Hit>();
    for (const i of chain) {
      const st = plan.stages[i]!;
      const parent = st.parent === undefined ? undefined : hits.get(st.parent)!;
      const hit = await stage(req, dirs, st, parent, i === plan.final, outcomes);
      hits.set(i, hit);
    }
    const finalHit = hits.get(plan.final)!;
    const artifacts = await materialize(finalHit, out, buildId, signal);
    for (const a of artifacts) events.emit({ type: "artifact", name: a.name, path: a.path, size: a.size, sha256: a.sha256 });
    if (outcomes.at(-1)?.hit) await afterFinalHit(final.spec, out, req);
    await capSize(dirs, new Set(outcomes.map((o) => o.key)), events);
    return { ok: true, artifacts, outputDir: out, durationMs: Date.now() - startedAt, buildId, stages: outcomes };
  } catch (err) {
    if (signal.aborted) return fail(asAbortError(signal.reason));
    if (err instanceof VmkilnError) return fail(err);
    throw err;
  }
}

/** One stage: its key, then a hit, or a build under the key's lock (a concurrent build waits, then hits). */
async function stage(req: LayeredBuildRequest, dirs: StageDirs, st: StagePlan, parent: Hit | undefined, isFinal: boolean, outcomes: StageOutcome[]): Promise<Hit> {
  const { events, signal } = req;
  const handoff = req.driverFactory.stageHandoff;
  const from = parent ? parentSource(parent, st, handoff) : undefined;
  const spec: BuildSpec = onlyFinal(from ? from.spec : st.spec, isFinal);
  const digest = from ? from.digest : await sourceDigest(spec, req);
  const { key, shownSpec, inputs } = await stageKey(spec, req.driverName, digest, signal);
  const note = (hit: boolean) => {
    outcomes.push({ label: st.label, key, hit });
    events.info(`stage ${st.label}: ${hit ? "cache hit" : "built"} (key ${key.slice(0, 16)}…)`, "cache");
  };
  // A hit is trusted when its files verify (lookupStage) and, for a result the hypervisor keeps, when
  // the driver finds it there still, the one recorded; anything else is built again and replaces it.
  let stale = false;
  const usable = async (warn: boolean): Promise<Hit | undefined> => {
    if (req.noCache) return undefined;
    const hit = await lookupStage(dirs, key, signal, warn ? (why) => events.warn(`stage ${st.label}: cache entry ${key.slice(0, 16)}… not used: ${why}`, "cache") : undefined);
    if (!hit?.entry.kept) return hit;
    // Checking it means asking the hypervisor, over the network.
    if (req.options.offline) throw new UserError("OFFLINE_NETWORK", `--offline: stage ${st.label} is kept on ${hit.entry.kept.driver} (${hit.entry.kept.location}), which is reached over the network`);
    const why = handoff ? await handoff.verifyKept(spec, hit.entry.kept, events, signal) : `the ${req.driverName} driver cannot use a kept ${hit.entry.kept.driver} result`;
    if (why === undefined) return hit;
    if (warn) events.warn(`stage ${st.label}: cache entry ${key.slice(0, 16)}… not used: ${why}`, "cache");
    stale = true;
    return undefined;
  };
  const first = await usable(true);
  if (first) {
    note(true);
    return first;
  }
  await mkdir(dirs.stages, { recursive: true });
  return withLock(lockPath(dirs, key), { signal, onWait: (h) => events.info(`stage ${st.label}: waiting for pid ${h.pid}, which is building it`, "cache") }, async () => {
    const hit = await usable(false);
    if (hit) {
      note(true);
      return hit;
    }
    events.info(`stage ${st.label}: building (key ${key.slice(0, 16)}…)`, "cache");
    const tmp = await makeTmp(dirs, key);
    let r: BuildResult | undefined;
    try {
      const files = join(tmp, "files");
      if (!isFinal && handoff) {
        // The driver keeps the stage's VM (vSphere: as a template) for the next stage to clone.
        const keepSpec = handoff.keepSpec({ ...spec, output: { ...spec.output, directory: files, basename: "disk" } });
        r = await (req.runBuild ?? build)({ spec: keepSpec, driverFactory: req.driverFactory, events, signal, options: { ...req.options, force: false, outputInCache: true } });
        if (r.ok && !r.kept) throw new BuildError("STAGE_NOT_KEPT", `stage ${st.label}: the ${req.driverName} driver did not keep the stage's VM, which the next stage is built from`);
      } else {
        // A stage hands its disk to the next as qcow2, or as a VMDK when the driver cannot export
        // qcow2 (VirtualBox); the driver's own plan says which it can (FORMAT_UNSUPPORTED before
        // anything starts).
        for (const format of isFinal ? [undefined] : STAGE_DISK_FORMATS) {
          const stageSpec: BuildSpec = format
            ? { ...spec, output: { ...spec.output, directory: files, formats: [format], compression: "none", basename: "disk" } }
            : { ...spec, output: { ...spec.output, directory: files } };
          try {
            r = await (req.runBuild ?? build)({ spec: stageSpec, driverFactory: req.driverFactory, events, signal, options: { ...req.options, force: false, outputInCache: true } });
            break;
          } catch (err) {
            if (!(format && err instanceof UserError && err.code === "FORMAT_UNSUPPORTED")) throw err;
            if (format === STAGE_DISK_FORMATS.at(-1)) {
              throw new UserError("STAGES_UNSUPPORTED", `stages: the ${req.driverName} driver cannot export a stage's disk (${STAGE_DISK_FORMATS.join(" or ")}), which the next stage is built from`);
            }
          }
        }
      }
      if (!r!.ok) throw r!.error ?? new UserError("STAGE_FAILED", `stage ${st.label} failed`);
      const diskArtifact = r!.kept ? undefined : r!.artifacts.find((a) => a.format === "qcow2" || a.format === "vmdk");
      const committed = await commitStage(
        dirs,
        tmp,
        {
          schema: 1,
          key,
          stage: st.label,
          template: st.templatePath,
          driver: req.driverName,
          vmkiln_version: VMKILN_VERSION,
          created: new Date().toISOString(),
          ...(parent ? { parent: parent.entry.key } : {}),
          source: { digest, location: events.redactor.text(parent ? `stage ${parent.entry.stage}` : spec.source.location) },
          inputs,
          spec: shownSpec,
          ...(diskArtifact ? { disk: diskArtifact.name } : {}),
          ...(!isFinal && r!.kept ? { kept: r!.kept } : {}),
        },
        signal,
        // Built because the entry there must not be used: ours replaces it.
        { replace: req.noCache === true || stale },
      );
      if (r!.kept && !isFinal) events.info(`stage ${st.label}: kept ${r!.kept.location} for the next stage`, "cache");
      note(false);
      return committed;
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      // The VM was kept but no entry records it (Ctrl-C or a failure after the build): never
      // deleted behind the user's back, but said, since no later build will use it.
      if (r?.kept && !isFinal) events.warn(`stage ${st.label}: ${r.kept.location} was kept but is not in the stage cache; remove it if you do not need it`, "cache");
      throw err;
    }
  });
}

/**
 * Stages share the template's output section and test:, which are about the result: only the last
 * stage pushes (output.publish) and boots its artifacts (test:). An earlier stage would push its
 * intermediate disk under the final tag, or fail on a test format it does not export; and neither
 * belongs in its key (a new tag must not rebuild the base).
 */
function onlyFinal(spec: BuildSpec, isFinal: boolean): BuildSpec {
  if (isFinal || (spec.output.publish.length === 0 && spec.test === undefined)) return spec;
  const { test: _test, ...rest } = spec;
  return { ...rest, output: { ...spec.output, publish: [] } };
}

/**
 * What the parent stage hands this one: its kept result through the driver (the next stage's source
 * is a clone of it, and what identifies it is the source digest), or its disk file.
 */
function parentSource(parent: Hit, st: StagePlan, handoff: StageHandoff | undefined): { spec: BuildSpec; digest: string } {
  const kept = parent.entry.kept;
  if (kept) {
    if (!handoff) throw new UserError("STAGE_NO_DISK", `stage ${st.label}: the stage it is built from (${parent.entry.stage}) is a kept ${kept.driver} result, which this driver cannot build from`);
    return { spec: handoff.fromKept(st.spec, kept), digest: `kept:${createHash("sha256").update(stableJson(kept)).digest("hex")}` };
  }
  const disk = diskOf(parent, st);
  return {
    spec: { ...st.spec, source: { kind: "cloud-image", location: disk.path, checksum: { kind: "sha256", hex: disk.sha256 }, format: disk.format } },
    digest: `sha256:${disk.sha256}`,
  };
}

function diskOf(parent: Hit, st: StagePlan): { path: string; sha256: string; format: "qcow2" | "vmdk" } {
  const name = parent.entry.disk;
  const f = name ? parent.entry.files.find((x) => x.name === name) : undefined;
  if (!f) throw new UserError("STAGE_NO_DISK", `stage ${st.label}: the stage it is built from (${parent.entry.stage}) has no disk in its cache entry`);
  return { path: join(parent.dir, "files", f.name), sha256: f.sha256, format: f.name.endsWith(".vmdk") ? "vmdk" : "qcow2" };
}

/**
 * The first stage's source digest without touching the network when the template pins it: a sha256
 * or sha512 checksum is the digest (the bytes are checked against it whenever they are fetched). A
 * local file is hashed (memoized by its identity); an unpinned URL must be fetched, which --offline
 * refuses naming it.
 */
async function sourceDigest(spec: BuildSpec, req: LayeredBuildRequest): Promise<string> {
  const src = spec.source;
  if (src.kind === "clone" || src.library) return `${src.kind}:${src.location}`;
  if (src.checksum.kind === "sha256" || src.checksum.kind === "sha512") return `${src.checksum.kind}:${src.checksum.hex.toLowerCase()}`;
  // Its warnings (no checksum) come from the stage's own fetch step when the stage is built; here
  // only the progress of hashing shows.
  const quiet = new EventBus();
  quiet.subscribe(({ time: _t, ...e }) => {
    if (e.type === "progress" || e.type === "progress-end") req.events.emit(e);
  });
  const r = await resolveSource(src, { events: quiet, signal: req.signal, ...(req.cacheDir ? { cacheDir: req.cacheDir } : {}), ...(req.options.offline ? { offline: true } : {}) });
  return `sha256:${r.sha256}`;
}

/** Copies the final entry's files into a staging dir beside the output, then hands it over. */
async function materialize(hit: Hit, out: string, buildId: string, signal: AbortSignal): Promise<Artifact[]> {
  const staging = stagingDirFor(out, buildId);
  await mkdir(dirname(out), { recursive: true });
  await mkdir(staging, { mode: 0o755 });
  try {
    // manifest.json last, so no artifact is newer than it; each artifact then gets back the
    // modification time manifest.json records, or the output guard would take the copies for files
    // changed since the build (src/steps/output-guard.ts, ownedOutput).
    const files = [...hit.entry.files].sort((a, b) => Number(a.name === MANIFEST_JSON) - Number(b.name === MANIFEST_JSON));
    for (const f of files) {
      throwIfAborted(signal);
      const to = join(staging, f.name);
      await mkdir(dirname(to), { recursive: true });
      // A reflink where the file system has them, a copy otherwise; never a hard link (the user
      // may boot the output in place, which must not change the cache).
      await copyFile(join(hit.dir, "files", f.name), to, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
      await chmod(to, 0o644);
    }
    await restoreMtimes(staging);
    await replaceOutput(staging, out, buildId);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  const manifest = hit.entry.files.find((f) => f.name === MANIFEST_JSON);
  const listed = new Set<string>();
  if (manifest) {
    try {
      const m = JSON.parse(await readFile(join(out, MANIFEST_JSON), "utf8")) as { artifacts?: Array<{ name: string; format: string }> };
      for (const a of m.artifacts ?? []) listed.add(`${a.name}\0${a.format}`);
    } catch {
      /* artifacts are still listed below */
    }
  }
  const formats = new Map([...listed].map((k) => k.split("\0") as [string, string]));
  return hit.entry.files
    .filter((f) => formats.has(f.name))
    .map((f) => ({ name: f.name, path: join(out, f.name), size: f.size, sha256: f.sha256, format: formats.get(f.name)! }));
}

/** Sets each artifact manifest.json lists with an `mtime_ns` back to that time (to about 0.25 µs). */
async function restoreMtimes(staging: string): Promise<void> {
  let m: { artifacts?: Array<{ name?: unknown; mtime_ns?: unknown }> };
  try {
    m = JSON.parse(await readFile(join(staging, MANIFEST_JSON), "utf8")) as typeof m;
  } catch {
    return; // no manifest (a stage's entry may have none): nothing recorded to restore
  }
  for (const a of m.artifacts ?? []) {
    if (typeof a.name !== "string" || typeof a.mtime_ns !== "string" || !/^\d{1,30}$/.test(a.mtime_ns) || a.name.includes("/")) continue;
    const seconds = Number(BigInt(a.mtime_ns) / 1000n) / 1e6;
    await utimes(join(staging, a.name), seconds, seconds).catch(() => undefined);
  }
}

/**
 * What the last stage's own build would have done after its export, when that build was a cache
 * hit and did not run:
 *   - output.publish: pushed from the copied artifacts (the same bytes, so the same digests); a
 *     requested push is never skipped because the image did not change. manifest.json then records
 *     the new push (published[].pushed_at), the only byte that differs from the entry's copy.
 *   - test: not run again, and said so: the entry exists only because its build's test passed, on
 *     these bytes with these checks (the test section and its gossfiles are part of the key);
 *     --no-cache builds and tests it again.
 */
async function afterFinalHit(spec: BuildSpec, out: string, req: LayeredBuildRequest): Promise<void> {
  const { events, signal } = req;
  if (spec.test) {
    let recorded: { ok?: unknown } | undefined;
    try {
      recorded = (JSON.parse(await readFile(join(out, MANIFEST_JSON), "utf8")) as { test?: { ok?: unknown } }).test;
    } catch {
      recorded = undefined;
    }
    events.info(
      recorded?.ok === true
        ? "test: not run again: the last stage is a cache hit, and its artifacts are the bytes that passed the test when it was built (manifest.json \"test\"); --no-cache builds and tests it again"
        : "test: not run again: the last stage is a cache hit, but its entry records no passed test; run vmkiln test on the output, or build with --no-cache",
      "cache",
    );
  }
  if (spec.output.publish.length > 0) events.info(`publish: the last stage is a cache hit; pushing its artifacts from ${out}`, "cache");
  for (const p of spec.output.publish) {
    const r = await (req.push ?? push)({ artifact: out, to: p.to, layout: p.layout, caFile: p.caFile, insecure: p.insecure, events, signal });
    events.info(`published ${r.pinned} (${p.layout})`, "publish");
  }
}

/** $VMKILN_CACHE_MAX_SIZE (e.g. 50G): least recently used stage entries go after a build, never its own. */
async function capSize(dirs: StageDirs, protect: Set<string>, events: EventBus): Promise<void> {
  const cap = process.env.VMKILN_CACHE_MAX_SIZE;
  if (!cap) return;
  let maxBytes: number;
  try {
    maxBytes = parseSize(cap);
  } catch {
    events.warn(`VMKILN_CACHE_MAX_SIZE=${cap}: not a size (e.g. 50G); the stage cache is not capped`, "cache");
    return;
  }
  const r = await pruneStages(dirs, { maxBytes, protect });
  for (const e of r.removed) events.info(`stage cache over ${cap}: removed ${e.entry.stage} (${e.key.slice(0, 16)}…)`, "cache");
  if (r.short) events.warn(`VMKILN_CACHE_MAX_SIZE=${cap}: ${r.short}`, "cache");
}
