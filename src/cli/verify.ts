// `vmkiln verify <file.ova|dir>`: 0 clean, 1 findings; unreadable input throws a UserError (exit 2),
// printed by the CLI entry like every other error (docs/architecture.md "Errors and exit codes").
import { readSmallFile } from "../util/small-file.js";
import { verifyOva } from "../artifact/verify-ova.js";
import { UserError } from "../errors.js";
import type { CliIO } from "./io.js";

export async function verifyCommand(target: string, opts: { json?: boolean; caFile?: string }, io: CliIO): Promise<number> {
  let trustedPem: string | undefined;
  if (opts.caFile !== undefined) {
    trustedPem = await readSmallFile(opts.caFile, "--ca-file", "VERIFY_CA_FILE");
    if (!trustedPem.includes("-----BEGIN CERTIFICATE-----")) throw new UserError("VERIFY_CA_FILE", `--ca-file: ${opts.caFile} holds no PEM certificate`);
  }
  const r = await verifyOva(target, { signal: io.signal, trustedPem });
  if (opts.json) {
    io.out(JSON.stringify(r));
  } else {
    for (const f of r.findings) io.out(`${f.code}: ${f.member ? `${f.member}: ` : ""}${f.message}`);
    if (r.signer) {
      const s = r.signer;
      const trust = s.trusted === undefined ? (s.selfSigned ? ", self-signed" : "") : s.trusted ? ", chains to the given CA" : ", NOT from the given CA";
      io.out(`signed by ${s.subject} (issuer ${s.issuer}${trust}; valid ${s.validFrom} to ${s.validTo}; sha256 fingerprint ${s.fingerprint256})`);
    }
    const what = r.kind === "ova" ? `${r.members.length} members` : `${r.members.length} files`;
    io.out(
      r.ok
        ? `${target}: OK (${what}${r.sha256 ? `, sha256 ${r.sha256}` : ""}${r.signer ? ", signature verified" : ""})`
        : `${target}: ${r.findings.length} finding${r.findings.length === 1 ? "" : "s"} (${what})`,
    );
  }
  return r.ok ? 0 : 1;
}
