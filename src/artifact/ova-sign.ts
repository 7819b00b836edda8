// Signed OVAs: the OVF certificate file (`<name>.cert`), as DSP0243 (OVF 2.0, "Package" / "Signing")
// lays it out and VMware's ovftool writes and checks it (`ovftool --privateKey`): the manifest's
// digest signed with the publisher's private key, written as one `ALG(<manifest name>)= <hex signature>`
// line, followed by the publisher's X.509 certificate in PEM. The signature is an ordinary
// RSA PKCS#1 v1.5 (or ECDSA) signature over SHA-256 of the .mf bytes, so
// `openssl dgst -sha256 -verify pub.pem -signature sig.bin name.mf` checks it independently.
//
// The member sits right after the manifest (ova.md "Tar": descriptor, manifest, certificate, then
// the disks), and it is not listed in the manifest (a file cannot vouch for the file that signs it).
import { X509Certificate, createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { readSmallFile } from "../util/small-file.js";
import { UserError } from "../errors.js";
import { finding, type Finding } from "./findings.js";

export interface OvaSigner {
  /** The private key (never logged, never written anywhere but into memory). */
  key: KeyObject;
  /** PEM of the signing certificate (the first certificate of the file) and any chain after it. */
  certificatePem: string;
  certificate: X509Certificate;
}

export interface SignerFiles {
  /** PEM private key (PKCS#8 or PKCS#1, encrypted or not). */
  keyFile: string;
  /** PEM certificate (chain) whose first certificate matches the key. */
  certificateFile: string;
  /** Passphrase of an encrypted key. */
  passphrase?: string | undefined;
  /** Field name for messages (output.ova.sign, --sign-key). */
  field?: string;
}

/** Where an encrypted key's passphrase comes from when the caller gives none. */
export const PASSPHRASE_ENV = "VMKILN_OVA_KEY_PASSPHRASE";

/** Loads and checks a key + certificate pair: the certificate's public key must be the key's. */
export async function loadSigner(f: SignerFiles): Promise<OvaSigner> {
  const field = f.field ?? "sign";
  const keyPem = await readSmallFile(f.keyFile, `${field}.key`, "SIGN_KEY");
  const certPem = await readSmallFile(f.certificateFile, `${field}.certificate`, "SIGN_CERT");
  const passphrase = f.passphrase ?? process.env[PASSPHRASE_ENV];
  let key: KeyObject;
  try {
    key = createPrivateKey(passphrase === undefined ? { key: keyPem, format: "pem" } : { key: keyPem, format: "pem", passphrase });
  } catch (err) {
    // OpenSSL's message names neither the passphrase nor the key; it is safe to pass on.
    const encrypted = /ENCRYPTED/.test(keyPem);
    const why = encrypted
      ? passphrase === undefined
        ? `the key is encrypted: set ${PASSPHRASE_ENV} (or pass the passphrase file)`
        : "the key is encrypted and the passphrase does not open it"
      : `not a PEM private key (${(err as Error).message})`;
    throw new UserError("SIGN_KEY", `${field}.key: ${f.keyFile}: ${why}`);
  }
  if (key.type !== "private") throw new UserError("SIGN_KEY", `${field}.key: ${f.keyFile} is not a private key`);
  const first = firstCertificatePem(certPem);
  if (!first) throw new UserError("SIGN_CERT", `${field}.certificate: ${f.certificateFile} holds no PEM certificate`);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(first);
  } catch (err) {
    throw new UserError("SIGN_CERT", `${field}.certificate: ${f.certificateFile}: ${(err as Error).message}`);
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new UserError("SIGN_MISMATCH", `${field}: the certificate in ${f.certificateFile} is not for the key in ${f.keyFile}`);
  }
  const now = Date.now();
  if (Date.parse(certificate.validTo) < now) {
    throw new UserError("SIGN_CERT", `${field}.certificate: ${f.certificateFile} expired on ${certificate.validTo}`);
  }
  return { key, certificatePem: certificatesOnly(certPem), certificate };
}

/** The `.cert` member's text: the signature line, then the certificate(s) in PEM. */
export function certificateFileText(signer: OvaSigner, mfName: string, mf: Buffer): string {
  const signature = cryptoSign("sha256", mf, signer.key).toString("hex");
  return `SHA256(${mfName})= ${signature}\n${signer.certificatePem}`;
}

export function certName(ovfName: string): string {
  return ovfName.replace(/\.ovf$/i, "") + ".cert";
}

export interface SignerInfo {
  subject: string;
  issuer: string;
  /** SHA-256 fingerprint of the certificate, colon-separated hex (as openssl x509 -fingerprint prints). */
  fingerprint256: string;
  validFrom: string;
  validTo: string;
  selfSigned: boolean;
  /** Whether the certificate chains to a CA the caller gave (undefined: no CA was given). */
  trusted?: boolean;
}

export interface CheckSignatureInput {
  mfName: string | undefined;
  mf: Buffer | undefined;
  certName: string;
  cert: Buffer;
  /** PEM CA certificates to check the signer against (verify --ca-file). */
  trustedPem?: string | undefined;
  now?: number;
}

const SIG_LINE = /^\s*(SHA-?1|SHA-?256|SHA-?384|SHA-?512)\s*\(([^)]*)\)\s*=\s*([0-9a-fA-F]+)\s*$/i;

/** Checks a `.cert` member against the manifest bytes: findings, and who signed when it verifies. */
export function checkSignature(p: CheckSignatureInput): { findings: Finding[]; signer?: SignerInfo } {
  const findings: Finding[] = [];
  const text = p.cert.toString("utf8");
  const lineEnd = text.indexOf("\n");
  const first = (lineEnd < 0 ? text : text.slice(0, lineEnd)).replace(/\r$/, "");
  const m = SIG_LINE.exec(first);
  if (!m) {
    findings.push(finding("CERT_SYNTAX", `first line is not "SHA256(<manifest>)= <hex signature>"`, p.certName));
    return { findings };
  }
  const algorithm = m[1]!.toLowerCase().replace("-", "");
  const signed = m[2]!;
  const signature = Buffer.from(m[3]!, "hex");
  const pem = firstCertificatePem(text);
  if (!pem) {
    findings.push(finding("CERT_MISSING", "no PEM certificate after the signature line", p.certName));
    return { findings };
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    findings.push(finding("CERT_MALFORMED", `the certificate does not parse: ${(err as Error).message}`, p.certName));
    return { findings };
  }
  const signer: SignerInfo = {
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    fingerprint256: cert.fingerprint256,
    validFrom: cert.validFrom,
    validTo: cert.validTo,
    selfSigned: cert.checkIssued(cert) && safeVerify(cert, cert.publicKey),
  };
  if (p.mf === undefined || p.mfName === undefined) {
    findings.push(finding("CERT_NO_MANIFEST", "a certificate without a manifest signs nothing", p.certName));
    return { findings, signer };
  }
  if (signed !== p.mfName) findings.push(finding("CERT_TARGET", `signs ${signed}, not the manifest ${p.mfName}`, p.certName));
  if (algorithm !== "sha256") findings.push(finding("CERT_ALGORITHM", `${m[1]} signature (vmkiln checks SHA256 signatures only)`, p.certName));
  else {
    let ok = false;
    try {
      ok = cryptoVerify("sha256", p.mf, createPublicKey(cert.publicKey.export({ format: "pem", type: "spki" })), signature);
    } catch {
      ok = false;
    }
    if (!ok) findings.push(finding("SIGNATURE_INVALID", `the signature over ${p.mfName} does not verify with the certificate of ${signer.subject}: the manifest changed after signing, or the signature is not this certificate's`, p.certName));
  }
  const now = p.now ?? Date.now();
  if (Date.parse(cert.validTo) < now) findings.push(finding("CERT_EXPIRED", `the certificate expired on ${cert.validTo}`, p.certName));
  if (Date.parse(cert.validFrom) > now) findings.push(finding("CERT_NOT_YET_VALID", `the certificate is valid only from ${cert.validFrom}`, p.certName));
  if (p.trustedPem !== undefined) {
    signer.trusted = chainsTo(cert, splitCertificates(text).slice(1), splitCertificates(p.trustedPem));
    if (!signer.trusted) findings.push(finding("CERT_UNTRUSTED", `${signer.subject} does not chain to a certificate of the given CA file`, p.certName));
  }
  return { findings, signer };
}

function chainsTo(leaf: X509Certificate, intermediatesPem: string[], rootsPem: string[]): boolean {
  const parse = (pems: string[]) =>
    pems.flatMap((p) => {
      try {
        return [new X509Certificate(p)];
      } catch {
        return [];
      }
    });
  const roots = parse(rootsPem);
  const intermediates = parse(intermediatesPem);
  let current = leaf;
  for (let depth = 0; depth < 8; depth++) {
    if (roots.some((r) => r.fingerprint256 === current.fingerprint256)) return true;
    const root = roots.find((r) => current.checkIssued(r) && safeVerify(current, r.publicKey));
    if (root) return true;
    const next = intermediates.find((c) => c.fingerprint256 !== current.fingerprint256 && current.checkIssued(c) && safeVerify(current, c.publicKey));
    if (!next) return false;
    current = next;
  }
  return false;
}

function safeVerify(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.verify(key);
  } catch {
    return false;
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function splitCertificates(text: string): string[] {
  return [...text.matchAll(PEM_CERT)].map((m) => m[0]);
}

function firstCertificatePem(text: string): string | undefined {
  return splitCertificates(text)[0];
}

/** Only the certificates of a PEM file (no private key that may share the file), one newline each. */
function certificatesOnly(text: string): string {
  return splitCertificates(text)
    .map((c) => c + "\n")
    .join("");
}

function oneLine(dn: string): string {
  return dn.split("\n").filter(Boolean).join(", ");
}
