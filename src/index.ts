// vmkiln's public API: the one module `import … from "vmkiln"` reaches (package.json "exports").
// Everything here is deliberate and typed; anything not exported is internal and may change. The
// functions never write to stdout/stderr and never exit the process (docs/architecture.md "Using
// vmkiln as a library").

// Templates: load (YAML/JSON file, or an object) → interpolate → schema → rules → normalize.
// A bad template throws one TemplateError listing every problem with its field path.
export { loadTemplate, specFromObject, type LoadOptions } from "./template/load.js";
export { templateJsonSchema } from "./template/schema.js";
export type {
  BuildSpec,
  DriverName,
  DriversSpec,
  QemuSpec,
  VirtualBoxSpec,
  VsphereSpec,
  SourceSpec,
  SshSpec,
  ProvisionerSpec,
  GeneralizeSpec,
  ShutdownSpec,
  OutputSpec,
  OutputFormat,
  Compression,
  Firmware,
} from "./template/spec.js";

// Layered templates (from:, stages:) and the stage cache: loadBuild gives a plain spec or a plan of
// stages; buildLayeredImage builds a plan, each stage only when its cache entry is missing or stale.
export { loadBuild, type LoadedBuild, type LayeredPlan, type StagePlan } from "./layers/load.js";
export type { LayeredBuildResult, StageOutcome } from "./layers/build.js";

// Builds, OVA packing and checking.
export {
  buildImage,
  buildLayeredImage,
  type BuildLayeredImageOptions,
  builtinDrivers,
  builtinDriverGc,
  packOva,
  verifyOva,
  type BuildImageOptions,
  type BuildResult,
  type DriverRegistry,
  type EventCallback,
  type PackOvaOptions,
  type PackOvaResult,
  type TimedBuildEvent,
  type VerifyResult,
} from "./library.js";
export type { Artifact } from "./pipeline/context.js";
export type { Finding } from "./artifact/findings.js";
export type { VerifyMember } from "./artifact/verify-ova.js";

// Events and the two line formats the CLI prints them in (they write through your function).
export { EventBus, type BuildEvent, type EventSink, type Level } from "./log/events.js";
export { plainReporter, type ReporterOptions } from "./log/reporters/plain.js";
export { jsonReporter } from "./log/reporters/json.js";
// What LoadOptions.redactor takes: pass your own (or an EventBus's `redactor`) to mask the
// template's secrets in what you print; `MASK` is what replaces them.
export { Redactor, MASK } from "./log/redact.js";

// One error family: `exitCode` is what the CLI would exit with (2 bad input, 1 build, 130 abort).
export { VmkilnError, UserError, BuildError, AbortError, TemplateError, formatProblem, type Problem } from "./errors.js";

// The driver contract, for drivers outside this package (README "Using vmkiln as a library").
export type {
  Driver,
  DriverCapabilities,
  DriverFactory,
  DriverFactoryContext,
  DriverGc,
  VmSpec,
  VmHandle,
  ExportRequest,
  DiskFile,
  DiskFormat,
  ApplianceFiles,
  KeyEvent,
  KeptResult,
  StageHandoff,
} from "./pipeline/driver.js";
export type { Journal, JournalEntry } from "./pipeline/journal.js";
export { escalatePowerOff, ASK_GRACE_MS, FORCE_GRACE_MS, type PowerOffPrimitives, type PowerOffOptions } from "./pipeline/power-off.js";
export { sleep, abortable } from "./util/abort.js";

export { VMKILN_VERSION } from "./artifact/manifest.js";
