// The library's entry points (exported from src/index.ts): what the CLI does, without a terminal.
// They never write to stdout or stderr and never exit the process: progress goes to the caller's
// `onEvent`, results are return values, failures are thrown VmkilnErrors (docs/architecture.md
// "Using vmkiln as a library").
import { build as runBuild, type BuildResult } from "./build.js";
import { driverGc, driverRegistry } from "./cli/registry.js";
import { BuildError, UserError } from "./errors.js";
import { EventBus, type BuildEvent } from "./log/events.js";
import { packOva as packOvaFiles, type PackOvaResult } from "./artifact/pack-ova.js";
import { verifyOva as verifyOvaFile, type VerifyResult } from "./artifact/verify-ova.js";
import type { DriverFactory, DriverGc } from "./pipeline/driver.js";
import type { BuildSpec, DriverName } from "./template/spec.js";
import { buildLayered, type LayeredBuildResult } from "./layers/build.js";
import type { LayeredPlan } from "./layers/load.js";

export type { BuildResult, PackOvaResult, VerifyResult };

/** Every event a build, a pack or a verify emits, stamped with its ISO time. */
export type TimedBuildEvent = BuildEvent & { time: string };
export type EventCallback = (event: TimedBuildEvent) => void;

/**
 * Driver factories by the template's driver names. `builtinDrivers()` gives the ones this package
 * ships; spread your own over it to add or replace one (see `buildImage`'s `drivers`).
 */
export type DriverRegistry = Partial<Record<DriverName, DriverFactory>>;

/** The drivers vmkiln ships (qemu, virtualbox, vsphere): a fresh object, safe to extend. */
export function builtinDrivers(): DriverRegistry {
  return { ...driverRegistry };
}

/** How `vmkiln gc` removes the `remote` journal entries each shipped driver leaves. */
export function builtinDriverGc(): Partial<Record<string, DriverGc>> {
  return { ...driverGc };
}

export interface BuildImageOptions {
  /** Called with every event, in order (log lines, step start/end, progress, artifacts, cleanup). */
  onEvent?: EventCallback;
  /** Aborting it stops the build and undoes what it created; the promise rejects with AbortError. */
  signal?: AbortSignal;
  /** Which of the template's drivers to build with; default: the first one it configures. */
  only?: DriverName;
  /** Driver factories to use instead of the shipped ones (`{ ...builtinDrivers(), qemu: mine }`);
   *  default: `builtinDrivers()`. */
  drivers?: DriverRegistry;
  /** Replace an existing, non-empty output directory. */
  force?: boolean;
  /** On failure: undo everything (default) or keep it for inspection ("abort"; `vmkiln gc` later). */
  onError?: "cleanup" | "abort";
  /** Emit debug events (the caller's onEvent decides what to show). */
  debug?: boolean;
}

/** The factory for the driver a build uses: `only`, else the template's first; a UserError otherwise.
 *  `option` names `only` in the message (the CLI's is `--only`). */
export function chooseDriver(spec: BuildSpec, registry: DriverRegistry, only?: string, option = "only"): { name: DriverName; factory: DriverFactory } {
  const configured = Object.keys(spec.drivers) as DriverName[];
  const chosen = only ?? configured[0];
  if (!chosen || !configured.includes(chosen as DriverName)) {
    throw new UserError("DRIVER_NOT_CONFIGURED", `${option} ${only}: the template configures ${configured.join(", ") || "no driver"}`);
  }
  const factory = registry[chosen as DriverName];
  if (!factory) throw new UserError("DRIVER_UNAVAILABLE", `driver ${chosen} is not available in this version`);
  return { name: chosen as DriverName, factory };
}

/**
 * Builds the image a loaded template describes (`loadTemplate`/`specFromObject`). Resolves with the
 * artifacts on success; rejects with the build's VmkilnError (UserError, BuildError, AbortError)
 * after everything it created has been undone.
 */
export async function buildImage(spec: BuildSpec, opts: BuildImageOptions = {}): Promise<BuildResult> {
  const { factory } = chooseDriver(spec, opts.drivers ?? driverRegistry, opts.only);
  const onError = opts.onError ?? "cleanup";
  if (onError !== "cleanup" && onError !== "abort") throw new UserError("BAD_OPTION", `onError: expected cleanup or abort, got ${String(onError)}`);
  const events = busFor(opts.onEvent);
  const r = await runBuild({
    spec,
    driverFactory: factory,
    events,
    signal: opts.signal ?? new AbortController().signal,
    options: { force: opts.force ?? false, onError, debug: opts.debug ?? false },
  });
  return finished(events, r);
}

export interface BuildLayeredImageOptions extends BuildImageOptions {
  /** The cache root (stage entries under <cacheDir>/stages); default: $VMKILN_CACHE_DIR, else ~/.cache/vmkiln. */
  cacheDir?: string;
  /** Build every stage again and replace its cache entry (`--no-cache`). */
  noCache?: boolean;
  /** Refuse every network access; a source missing from the cache is an error naming it (`--offline`). */
  offline?: boolean;
}

/**
 * Builds a layered template (`loadBuild` → `kind: "layered"`): each stage is looked up in the stage
 * cache and built only when missing or stale, the last one into its output.directory (`vmkiln build`
 * on a template with from: or stages:). Resolves with the result, which lists per stage whether it
 * was a cache hit; rejects like buildImage.
 */
export async function buildLayeredImage(plan: LayeredPlan, opts: BuildLayeredImageOptions = {}): Promise<LayeredBuildResult> {
  const final = plan.stages[plan.final];
  if (!final) throw new UserError("BAD_OPTION", "plan: it has no last stage (pass what loadBuild returned as `plan`)");
  const { name, factory } = chooseDriver(final.spec, opts.drivers ?? driverRegistry, opts.only);
  const onError = opts.onError ?? "cleanup";
  if (onError !== "cleanup" && onError !== "abort") throw new UserError("BAD_OPTION", `onError: expected cleanup or abort, got ${String(onError)}`);
  const events = busFor(opts.onEvent);
  const r = await buildLayered({
    plan,
    driverName: name,
    driverFactory: factory,
    events,
    signal: opts.signal ?? new AbortController().signal,
    options: { force: opts.force ?? false, onError, debug: opts.debug ?? false, ...(opts.offline ? { offline: true } : {}) },
    ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}),
    ...(opts.noCache ? { noCache: true } : {}),
  });
  return finished(events, r);
}

export interface PackOvaOptions {
  /** The OVA to write; default: next to the descriptor, named after it. */
  out?: string;
  signal?: AbortSignal;
  onEvent?: EventCallback;
  /** Hardware family written when the descriptor's VirtualSystemType is not vmx-NN. */
  vmxVersion?: number;
}

/** Packs an OVF (a file, or a directory holding one) and its files into an OVA (`vmkiln pack-ova`). */
export function packOva(input: string, opts: PackOvaOptions = {}): Promise<PackOvaResult> {
  return packOvaFiles(input, {
    events: busFor(opts.onEvent),
    signal: opts.signal ?? new AbortController().signal,
    ...(opts.out !== undefined ? { out: opts.out } : {}),
    ...(opts.vmxVersion !== undefined ? { vmxVersion: opts.vmxVersion } : {}),
  });
}

/** Checks an OVA (or an OVF directory) against the import rules (`vmkiln verify`): `ok` is false
 *  when there are findings; unreadable input rejects with a UserError. */
export function verifyOva(target: string, opts: { signal?: AbortSignal } = {}): Promise<VerifyResult> {
  return verifyOvaFile(target, { signal: opts.signal ?? new AbortController().signal });
}

function busFor(onEvent: EventCallback | undefined): EventBus {
  const bus = new EventBus();
  if (onEvent) bus.subscribe(onEvent);
  return bus;
}

/** Reports a build's end on its bus, then returns its result or throws its typed error. */
function finished<T extends { ok: boolean; durationMs: number; outputDir: string; buildId: string; error?: Error | undefined }>(events: EventBus, r: T): T {
  events.emit(
    r.ok
      ? { type: "build-end", ok: true, durationMs: r.durationMs, outputDir: r.outputDir }
      : { type: "build-end", ok: false, durationMs: r.durationMs, error: r.error?.message ?? "failed" },
  );
  if (!r.ok) throw r.error ?? new BuildError("BUILD_FAILED", `build ${r.buildId} failed`);
  return r;
}
