// The written template: YAML in vmkiln's section order, with a header that says where it came from
// and lists every Packer field that was not mapped (and why), so the file itself is honest about
// what differs from the Packer build.

import YAML from "yaml";
import type { Finding } from "./model.js";
import type { ImportedTemplate } from "./convert.js";

const ORDER = ["name", "variables", "source", "drivers", "ssh", "cloud_init", "boot", "http", "install_media", "install", "provision", "generalize", "shutdown", "output"];

export function formatFinding(f: Finding, lineOf: (p: string) => number | undefined): string {
  const own = lineOf(f.path);
  let where = own ? `${f.path} (line ${own})` : f.path;
  if (!own) {
    // The nearest enclosing block whose line is known (HCL keeps block lines only).
    for (let p = f.path; p.includes("."); ) {
      p = p.replace(/(\.[^.]+|\[\d+\])$/, "");
      const l = lineOf(p);
      if (l) {
        where = `${f.path} (in the block at line ${l})`;
        break;
      }
    }
  }
  return f.kind === "not-mapped" ? `${where}: ${f.why}` : `${where}: ${f.text}`;
}

export function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const k = JSON.stringify(f);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function renderYaml(t: ImportedTemplate, opts: { from: string; description?: string | undefined; global: Finding[]; lineOf: (p: string) => number | undefined }): string {
  const ordered: Record<string, unknown> = {};
  for (const k of ORDER) if (t.doc[k] !== undefined) ordered[k] = t.doc[k];
  for (const [k, v] of Object.entries(t.doc)) if (!(k in ordered)) ordered[k] = v;
  // No anchors/aliases: a reader sees each provisioner's settings in full.
  const doc = new YAML.Document(ordered, { aliasDuplicateObjects: false });
  const findings = dedupe([...opts.global, ...t.findings]);
  const unmapped = findings.filter((f) => f.kind === "not-mapped");
  const notes = findings.filter((f) => f.kind === "note");
  const lines = [
    ` Imported from ${opts.from} (${t.sources.join(", ")}) by vmkiln import.`,
    ...(opts.description ? [` ${opts.description.replace(/\s+/g, " ").trim()}`] : []),
    " generalize: false builds what Packer built (Packer does not generalize images); set it to true",
    " for vmkiln's cloud-init clean, empty machine-id, no host keys, build user removed, logs, fstrim.",
  ];
  if (unmapped.length > 0) {
    lines.push("", ` Not mapped (${unmapped.length}): the build differs from Packer's here.`);
    for (const f of unmapped) lines.push(`   - ${formatFinding(f, opts.lineOf)}`);
  }
  if (notes.length > 0) {
    lines.push("", " Notes:");
    for (const f of notes) lines.push(`   - ${formatFinding(f, opts.lineOf)}`);
  }
  doc.commentBefore = lines.map((l) => l.replace(/\n/g, " ")).join("\n");
  const vars = doc.get("variables", true) as YAML.YAMLMap | undefined;
  if (vars && YAML.isMap(vars)) {
    for (const pair of vars.items) {
      const key = pair.key as YAML.Scalar;
      const c = t.variableComments.get(String(key.value));
      if (c) key.commentBefore = ` ${c}`;
    }
  }
  return doc.toString({ lineWidth: 0 });
}
