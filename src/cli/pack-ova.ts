// `vmkiln pack-ova <file.ovf|dir> [-o out.ova] [--sign key.pem --cert cert.pem]`: 0 on success;
// problems with the input throw UserError (exit 2), printed by the CLI entry.
import { readSmallFile } from "../util/small-file.js";
import { packOva } from "../artifact/pack-ova.js";
import { loadSigner, type OvaSigner } from "../artifact/ova-sign.js";
import { UserError } from "../errors.js";
import type { CliIO } from "./io.js";

export interface PackOvaCliOptions {
  output?: string;
  force?: boolean;
  json?: boolean;
  sign?: string;
  cert?: string;
  passphraseFile?: string;
}

export async function packOvaCommand(input: string, opts: PackOvaCliOptions, io: CliIO): Promise<number> {
  if (opts.output !== undefined && opts.output.trim() === "") throw new UserError("PACK_OUTPUT", "-o: the output file name is empty");
  const sign = await signerFromFlags(opts);
  const r = await packOva(input, { events: io.events, signal: io.signal, force: opts.force ?? false, ...(opts.output !== undefined ? { out: opts.output } : {}), sign });
  if (opts.json) {
    io.out(JSON.stringify(r));
    return 0;
  }
  for (const fix of r.fixes) io.out(`fixed: ${fix}`);
  for (const w of r.warnings) io.err(`warning: ${w.code}: ${w.message}`);
  io.out(`${r.path}: ${r.size} bytes, sha256 ${r.sha256} (${r.members.join(", ")}) in ${(r.durationMs / 1000).toFixed(1)} s`);
  if (sign) io.out(`signed by ${sign.certificate.subject.split("\n").join(", ")}`);
  return 0;
}

async function signerFromFlags(o: PackOvaCliOptions): Promise<OvaSigner | undefined> {
  if (o.sign === undefined && o.cert === undefined) return undefined;
  if (!o.sign || !o.cert) throw new UserError("SIGN_FLAGS", "--sign <key.pem> and --cert <certificate.pem> go together");
  let passphrase: string | undefined;
  if (o.passphraseFile) {
    passphrase = (await readSmallFile(o.passphraseFile, "--passphrase-file", "SIGN_PASSPHRASE")).replace(/\r?\n$/, "");
  }
  return loadSigner({ keyFile: o.sign, certificateFile: o.cert, passphrase, field: "--sign" });
}
