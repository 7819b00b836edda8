import { TemplateError, VmkilnError, formatProblem, type Problem } from "../errors.js";
import { preflightOutput } from "../steps/output-guard.js";
import { loadTemplate, parseVarArgs } from "../template/load.js";
import { templateJsonSchema } from "../template/schema.js";
import type { CliIO } from "./io.js";

/** One problem or warning in `validate --json`. */
export interface JsonProblem {
  path: string;
  message: string;
  code: string;
}

/** `validate --json`'s one object (README "Using it"). */
export interface ValidateJson {
  ok: boolean;
  template: string;
  name?: string;
  drivers?: string[];
  formats?: string[];
  problems: JsonProblem[];
  warnings: JsonProblem[];
}

const asJson = (list: Problem[], fallback: string): JsonProblem[] => list.map((p) => ({ path: p.path, message: p.message, code: p.code ?? fallback }));

export async function validateCommand(template: string, o: { var?: string[]; varFile?: string[]; json?: boolean }, io: CliIO): Promise<number> {
  if (o.json) return validateJson(template, o, io);
  const spec = await loadTemplate(template, { vars: parseVarArgs(o.var ?? []), varFiles: o.varFile ?? [], redactor: io.events.redactor, signal: io.signal });
  await checkOutput(spec);
  io.out(`${template}: ok (${spec.name}: ${Object.keys(spec.drivers).join(", ")} → ${spec.output.formats.join(", ")})`);
  for (const w of spec.warnings ?? []) io.err(`vmkiln: warning: ${formatProblem(w)}`);
  return 0;
}

/**
 * Everything on stdout as one JSON object, also for bad input (exit 2): a file that cannot be read
 * is one problem at path "". An interruption or an internal error is left to the CLI entry.
 */
async function validateJson(template: string, o: { var?: string[]; varFile?: string[] }, io: CliIO): Promise<number> {
  try {
    const spec = await loadTemplate(template, { vars: parseVarArgs(o.var ?? []), varFiles: o.varFile ?? [], redactor: io.events.redactor, signal: io.signal });
    await checkOutput(spec);
    const out: ValidateJson = {
      ok: true,
      template,
      name: spec.name,
      drivers: Object.keys(spec.drivers),
      formats: spec.output.formats,
      problems: [],
      warnings: asJson(spec.warnings ?? [], "WARNING"),
    };
    io.out(JSON.stringify(out));
    return 0;
  } catch (err) {
    if (!(err instanceof VmkilnError) || err.exitCode !== 2) throw err;
    const out: ValidateJson =
      err instanceof TemplateError
        ? { ok: false, template, problems: asJson(err.problems, err.code), warnings: asJson(err.warnings, "WARNING") }
        : { ok: false, template, problems: [{ path: leadingField(err.message), message: err.message, code: err.code }], warnings: [] };
    io.out(JSON.stringify(out));
    return err.exitCode;
  }
}

/** The field a one-line error starts with ("output.directory: …"), or "" when it names none. */
function leadingField(message: string): string {
  return /^([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*|\[\d+\])*): /.exec(message)?.[1] ?? "";
}

/**
 * The build's output checks, so that a template whose output would land on something vmkiln must not
 * replace (a file, `..`, the template's own directory, someone else's directory) fails here and not
 * only when `build` starts. An earlier vmkiln output is fine: `build --force` may replace it.
 */
async function checkOutput(spec: Awaited<ReturnType<typeof loadTemplate>>): Promise<void> {
  await preflightOutput(spec, { force: true });
}

export async function inspectCommand(template: string, o: { var?: string[]; varFile?: string[] }, io: CliIO): Promise<number> {
  const spec = await loadTemplate(template, { vars: parseVarArgs(o.var ?? []), varFiles: o.varFile ?? [], redactor: io.events.redactor, signal: io.signal });
  // Secret-named fields are masked whole; every other string through the registered secrets.
  io.out(JSON.stringify(io.events.redactor.value(spec, { byKey: true }), null, 2));
  return 0;
}

export function schemaCommand(io: CliIO): number {
  io.out(JSON.stringify(templateJsonSchema(), null, 2));
  return 0;
}
