import { loadTemplate, parseVarArgs } from "../template/load.js";
import { templateJsonSchema } from "../template/schema.js";
import type { CliIO } from "./io.js";

export async function validateCommand(template: string, o: { var?: string[]; varFile?: string[]; json?: boolean }, io: CliIO): Promise<number> {
  const spec = await loadTemplate(template, { vars: parseVarArgs(o.var ?? []), varFiles: o.varFile ?? [], redactor: io.events.redactor });
  if (o.json) io.out(JSON.stringify({ ok: true, name: spec.name }));
  else io.out(`${template}: ok (${spec.name}: ${Object.keys(spec.drivers).join(", ")} → ${spec.output.formats.join(", ")})`);
  return 0;
}

export async function inspectCommand(template: string, o: { var?: string[]; varFile?: string[] }, io: CliIO): Promise<number> {
  const spec = await loadTemplate(template, { vars: parseVarArgs(o.var ?? []), varFiles: o.varFile ?? [], redactor: io.events.redactor });
  // Secret-named fields are masked whole; every other string through the registered secrets.
  io.out(JSON.stringify(io.events.redactor.value(spec, { byKey: true }), null, 2));
  return 0;
}

export function schemaCommand(io: CliIO): number {
  io.out(JSON.stringify(templateJsonSchema(), null, 2));
  return 0;
}
