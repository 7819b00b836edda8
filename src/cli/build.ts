import { build } from "../build.js";
import { parseVarArgs } from "../template/load.js";
import { UserError } from "../errors.js";
import { chooseDriver } from "../library.js";
import { loadBuild } from "../layers/load.js";
import { driverRegistry } from "./registry.js";
import type { CliIO } from "./io.js";
import { debugStepHook } from "./debug-steps.js";
import type { BuildOptions } from "../pipeline/context.js";

export interface BuildCommandOptions {
  var?: string[];
  varFile?: string[];
  only?: string;
  force?: boolean;
  onError?: string;
  debug?: boolean;
  offline?: boolean;
  /** commander's --no-cache: false when given. */
  cache?: boolean;
}

export async function buildCommand(template: string, o: BuildCommandOptions, io: CliIO): Promise<number> {
  const loaded = await loadBuild(template, { vars: parseVarArgs(o.var ?? []), varFiles: o.varFile ?? [], redactor: io.events.redactor, signal: io.signal });
  const spec = loaded.kind === "plain" ? loaded.spec : loaded.plan.stages[loaded.plan.final]!.spec;
  const { name, factory } = chooseDriver(spec, driverRegistry, o.only, "--only");
  if (o.onError !== undefined && o.onError !== "cleanup" && o.onError !== "abort") {
    throw new UserError("BAD_OPTION", `--on-error: expected cleanup or abort, got ${o.onError}`);
  }
  const options: BuildOptions = {
    force: o.force ?? false,
    onError: (o.onError as "cleanup" | "abort" | undefined) ?? "cleanup",
    debug: o.debug ?? false,
    ...(o.offline ? { offline: true } : {}),
    ...(o.debug ? { beforeStep: debugStepHook() } : {}),
  };
  let r;
  if (loaded.kind === "layered") {
    // Every stage's driver is the one chosen for the last stage (stages share the drivers section).
    const { buildLayered } = await import("../layers/build.js");
    r = await buildLayered({ plan: loaded.plan, driverName: name, driverFactory: factory, events: io.events, signal: io.signal, options, noCache: o.cache === false });
  } else {
    r = await build({ spec, driverFactory: factory, events: io.events, signal: io.signal, options });
  }
  io.events.emit(
    r.ok
      ? { type: "build-end", ok: true, durationMs: r.durationMs, outputDir: r.outputDir }
      : { type: "build-end", ok: false, durationMs: r.durationMs, error: r.error?.message ?? "failed" },
  );
  if (!r.ok && r.error) throw r.error;
  return 0;
}
