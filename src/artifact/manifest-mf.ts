// The OVF manifest (.mf): read every spelling seen in the wild, write the one spelling every importer
// accepts (ova.md "Manifest"): `SHA256(<basename>)= <lowercase hex>\n`. `SHA256 (x) = y`
// (sha256sum --tag, VirtualBox) was rejected by ESXi (home-assistant/operating-system 826),
// `SHA2-256(...)` by vCenter 8, SHA1 by vSphere 6.5-8; ovftool writes `SHA1(x) = y`.

export type MfAlgorithm = "sha1" | "sha256" | "sha384" | "sha512";

export interface MfEntry {
  /** Node crypto name of the digest. */
  algorithm: MfAlgorithm;
  /** The algorithm as spelled in the file (SHA1, SHA256, SHA2-256, ...). */
  spelled: string;
  file: string;
  digest: string;
  /** True when the line is exactly the canonical `SHA256(name)= hex` form. */
  canonical: boolean;
  line: number;
}

export interface ParsedManifest {
  entries: MfEntry[];
  /** Lines that are not digest lines (1-based line number and text). */
  bad: Array<{ line: number; text: string }>;
  /** The file used CRLF or lacked the final newline (not canonical). */
  nonCanonicalNewlines: boolean;
}

const LINE = /^\s*(SHA-?1|SHA-?256|SHA2-256|SHA-?384|SHA2-384|SHA-?512|SHA2-512)\s*\((.*)\)\s*=\s*([0-9a-fA-F]+)\s*$/i;
const HEX_LENGTH: Record<MfAlgorithm, number> = { sha1: 40, sha256: 64, sha384: 96, sha512: 128 };

export function parseManifest(text: string): ParsedManifest {
  const entries: MfEntry[] = [];
  const bad: Array<{ line: number; text: string }> = [];
  const lines = text.split("\n");
  const nonCanonicalNewlines = text.includes("\r") || (text.length > 0 && !text.endsWith("\n"));
  lines.forEach((raw, i) => {
    const lineText = raw.replace(/\r$/, "");
    if (lineText.trim() === "") return;
    const m = LINE.exec(lineText);
    const algorithm = m ? algorithmOf(m[1]!) : undefined;
    if (!m || !algorithm || m[3]!.length !== HEX_LENGTH[algorithm]) {
      bad.push({ line: i + 1, text: lineText });
      return;
    }
    const file = m[2]!;
    const digest = m[3]!.toLowerCase();
    entries.push({
      algorithm,
      spelled: m[1]!,
      file,
      digest,
      canonical: lineText === canonicalLine(file, digest) && m[3] === digest,
      line: i + 1,
    });
  });
  return { entries, bad, nonCanonicalNewlines };
}

export function canonicalLine(file: string, sha256: string): string {
  return `SHA256(${file})= ${sha256.toLowerCase()}`;
}

/** The manifest text we write: one canonical line per file, in the order given, `\n` endings. */
export function formatManifest(files: ReadonlyArray<{ name: string; sha256: string }>): string {
  return files.map((f) => canonicalLine(f.name, f.sha256) + "\n").join("");
}

function algorithmOf(spelled: string): MfAlgorithm | undefined {
  const s = spelled.toUpperCase().replace("SHA2-", "SHA").replace("SHA-", "SHA");
  switch (s) {
    case "SHA1":
      return "sha1";
    case "SHA256":
      return "sha256";
    case "SHA384":
      return "sha384";
    case "SHA512":
      return "sha512";
    default:
      return undefined;
  }
}
