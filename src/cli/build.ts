import { build } from "../build.js";
import { loadTemplate, parseVarArgs } from "../template/load.js";
import { UserError } from "../errors.js";
import { chooseDriver } from "../library.js";
import { driverRegistry } from "./registry.js";
import type { CliIO } from "./io.js";
import { debugStepHook } from "./debug-steps.js";

export interface BuildCommandOptions {
  var?: string[];
  varFile?: string[];
  only?: string;
  force?: boolean;
  onError?: string;
  debug?: boolean;
}

export async function buildCommand(template: string, o: BuildCommandOptions, io: CliIO): Promise<number> {
  const spec = await loadTemplate(template, { vars: parseVarArgs(o.var ?? []), varFiles: o.varFile ?? [], redactor: io.events.redactor, signal: io.signal });
  const { factory } = chooseDriver(spec, driverRegistry, o.only, "--only");
  if (o.onError !== undefined && o.onError !== "cleanup" && o.onError !== "abort") {
    throw new UserError("BAD_OPTION", `--on-error: expected cleanup or abort, got ${o.onError}`);
  }
  const r = await build({
    spec,
    driverFactory: factory,
    events: io.events,
    signal: io.signal,
    options: {
      force: o.force ?? false,
      onError: (o.onError as "cleanup" | "abort" | undefined) ?? "cleanup",
      debug: o.debug ?? false,
      ...(o.debug ? { beforeStep: debugStepHook() } : {}),
      ...(spec.test && driverRegistry.qemu ? { testDriverFactory: driverRegistry.qemu } : {}),
    },
  });
  io.events.emit(
    r.ok
      ? { type: "build-end", ok: true, durationMs: r.durationMs, outputDir: r.outputDir }
      : { type: "build-end", ok: false, durationMs: r.durationMs, error: r.error?.message ?? "failed" },
  );
  if (!r.ok && r.error) throw r.error;
  return 0;
}
