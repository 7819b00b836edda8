// Checks shared by verify (OVA or directory) once the descriptor, the manifest and each file's size
// and digests are known: manifest spelling and digests (ova.md "Manifest"), descriptor rules
// (ovf-rules.ts), References against the files.
import { finding, type Finding } from "./findings.js";
import { parseManifest, type MfAlgorithm } from "./manifest-mf.js";
import { checkOvfRules } from "./ovf-rules.js";
import { parseOvf, type ParsedOvf } from "./ovf-parse.js";
import { VmkilnError } from "../errors.js";

export interface PackageFile {
  name: string;
  size: number;
  /** Digests by algorithm, for every algorithm that could be computed. */
  digests: Partial<Record<MfAlgorithm, string>>;
}

export interface PackageInput {
  ovfName: string;
  ovfText: string;
  mfName?: string;
  mfText?: string;
  /** Every file of the package except the .mf (the OVF included). */
  files: PackageFile[];
}

export async function checkPackage(p: PackageInput): Promise<{ findings: Finding[]; ovf?: ParsedOvf }> {
  const findings: Finding[] = [];
  const byName = new Map(p.files.map((f) => [f.name, f]));
  let ovf: ParsedOvf | undefined;
  try {
    ovf = await parseOvf(p.ovfText);
  } catch (err) {
    const code = err instanceof VmkilnError ? err.code : "OVF_MALFORMED";
    findings.push(finding(code, err instanceof Error ? err.message : String(err), p.ovfName));
  }
  if (ovf) {
    const sizes = new Map(p.files.filter((f) => f.name !== p.ovfName).map((f) => [f.name, f.size]));
    findings.push(...checkOvfRules(ovf, { fileSizes: sizes, member: p.ovfName }));
    const referenced = new Set(ovf.files.map((f) => f.href));
    for (const f of p.files) {
      if (f.name !== p.ovfName && !referenced.has(f.name) && !/\.cert$/i.test(f.name)) {
        findings.push(finding("MEMBER_UNREFERENCED", `${f.name} is not referenced by the OVF`, f.name));
      }
    }
  }

  if (p.mfText === undefined || p.mfName === undefined) {
    findings.push(finding("MF_MISSING", "no manifest (.mf): importers cannot check the files"));
    return ovf ? { findings, ovf } : { findings };
  }
  const mf = parseManifest(p.mfText);
  const mfName = p.mfName;
  for (const b of mf.bad) findings.push(finding("MF_SYNTAX", `line ${b.line} is not a digest line: ${JSON.stringify(b.text)}`, mfName));
  if (mf.nonCanonicalNewlines) findings.push(finding("MF_SPELLING", "manifest must use \\n line endings and end with a newline", mfName));
  const listed = new Set<string>();
  for (const e of mf.entries) {
    if (listed.has(e.file)) findings.push(finding("MF_DUPLICATE", `${e.file} is listed twice`, mfName));
    listed.add(e.file);
    // SHA1 (vSphere 6.5-8) and the SHA2-256 spelling (vCenter 8) are rejected even when the digest is right.
    if (e.spelled !== "SHA256") {
      findings.push(finding("MF_ALGORITHM", `line ${e.line}: ${e.spelled} for ${e.file} (vSphere accepts only SHA256(name)= hex)`, mfName));
    } else if (!e.canonical) {
      findings.push(finding("MF_SPELLING", `line ${e.line}: write "SHA256(${e.file})= <hex>" (ESXi rejects other spellings)`, mfName));
    }
    const f = byName.get(e.file);
    if (!f) {
      findings.push(finding("MF_ENTRY_EXTRA", `manifest lists ${e.file}, which is not in the package`, mfName));
      continue;
    }
    const actual = f.digests[e.algorithm];
    if (actual === undefined) {
      findings.push(finding("MF_UNVERIFIED", `${e.file}: its ${e.spelled} digest could not be checked (manifest after the file)`, e.file));
    } else if (actual !== e.digest) {
      findings.push(finding("MF_DIGEST_MISMATCH", `${e.file}: ${e.spelled} is ${actual}, manifest says ${e.digest}`, e.file));
    }
  }
  for (const f of p.files) {
    if (!listed.has(f.name) && !/\.cert$/i.test(f.name)) findings.push(finding("MF_ENTRY_MISSING", `${f.name} is not in the manifest`, f.name));
  }
  return ovf ? { findings, ovf } : { findings };
}
