// `vmkiln verify <file.ova|dir>`: 0 clean, 1 findings; unreadable input throws a UserError (exit 2),
// printed by the CLI entry like every other error (docs/architecture.md "Errors and exit codes").
import { verifyOva } from "../artifact/verify-ova.js";
import type { CliIO } from "./io.js";

export async function verifyCommand(target: string, opts: { json?: boolean }, io: CliIO): Promise<number> {
  const r = await verifyOva(target, { signal: io.signal });
  if (opts.json) {
    io.out(JSON.stringify(r));
  } else {
    for (const f of r.findings) io.out(`${f.code}: ${f.member ? `${f.member}: ` : ""}${f.message}`);
    const what = r.kind === "ova" ? `${r.members.length} members` : `${r.members.length} files`;
    io.out(
      r.ok
        ? `${target}: OK (${what}${r.sha256 ? `, sha256 ${r.sha256}` : ""})`
        : `${target}: ${r.findings.length} finding${r.findings.length === 1 ? "" : "s"} (${what})`,
    );
  }
  return r.ok ? 0 : 1;
}
