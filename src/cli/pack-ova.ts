// `vmkiln pack-ova <file.ovf|dir> [-o out.ova]`: 0 on success; problems with the input throw
// UserError (exit 2), printed by the CLI entry.
import { packOva } from "../artifact/pack-ova.js";
import { UserError } from "../errors.js";
import type { CliIO } from "./io.js";

export async function packOvaCommand(input: string, opts: { output?: string; force?: boolean; json?: boolean }, io: CliIO): Promise<number> {
  if (opts.output !== undefined && opts.output.trim() === "") throw new UserError("PACK_OUTPUT", "-o: the output file name is empty");
  const r = await packOva(input, { events: io.events, signal: io.signal, force: opts.force ?? false, ...(opts.output !== undefined ? { out: opts.output } : {}) });
  if (opts.json) {
    io.out(JSON.stringify(r));
    return 0;
  }
  for (const fix of r.fixes) io.out(`fixed: ${fix}`);
  for (const w of r.warnings) io.err(`warning: ${w.code}: ${w.message}`);
  io.out(`${r.path}: ${r.size} bytes, sha256 ${r.sha256} (${r.members.join(", ")}) in ${(r.durationMs / 1000).toFixed(1)} s`);
  return 0;
}
