// output.ova.sign → the signer the OVA writers take (ova-sign.ts). Loaded when the OVA is written, so
// a wrong passphrase or a certificate that is not the key's fails the export with the field named.
import { readSmallFile } from "../util/small-file.js";
import { loadSigner, type OvaSigner } from "../artifact/ova-sign.js";
import { UserError } from "../errors.js";
import type { BuildContext } from "../pipeline/context.js";

// Loaded once per build: the prepare step loads it first (a wrong passphrase or a certificate that is
// not the key's fails before the VM boots), the OVA writers take the same signer.
const loaded = new WeakMap<BuildContext, Promise<OvaSigner | undefined>>();

export function ovaSigner(ctx: BuildContext): Promise<OvaSigner | undefined> {
  let p = loaded.get(ctx);
  if (!p) {
    p = load(ctx);
    loaded.set(ctx, p);
    p.catch(() => loaded.delete(ctx));
  }
  return p;
}

async function load(ctx: BuildContext): Promise<OvaSigner | undefined> {
  const s = ctx.spec.output.ova.sign;
  if (!s) return undefined;
  let passphrase: string | undefined;
  if (s.passphraseFile) {
    passphrase = (await readSmallFile(s.passphraseFile, "output.ova.sign.passphrase_file", "SIGN_PASSPHRASE")).replace(/\r?\n$/, "");
    ctx.events.addSecret(passphrase);
  }
  const signer = await loadSigner({ keyFile: s.keyFile, certificateFile: s.certificateFile, passphrase, field: "output.ova.sign" });
  ctx.events.info(`signing the OVA as ${signer.certificate.subject.split("\n").join(", ")}`, "export");
  return signer;
}
