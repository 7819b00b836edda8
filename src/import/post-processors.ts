// Packer post-processors → what vmkiln writes itself: manifest (hashicorp/packer
// post-processor/manifest) → manifest.json, checksum (post-processor/checksum) → SHA256SUMS, a
// shell-local step that packs an OVA (kubernetes-sigs/image-builder's image-build-ova.py style) →
// output.formats: ova. Everything else is reported.

import type { PackerBlock } from "./model.js";
import { Body, type Report } from "./report.js";
import { concrete } from "./values.js";

export interface PostResult {
  /** Output formats to add. */
  formats: string[];
}

const OVA_STEP = /\bova\b|\.ova\b|ovftool|image-build-ova/i;

export function mapPostProcessor(block: PackerBlock, report: Report, vars: Record<string, string>): PostResult {
  const b = new Body(block.body, block.path, report);
  for (const f of block.findings) report.findings.push(f);
  const result: PostResult = { formats: [] };
  b.same("only");
  b.same("except");
  b.same("name");
  b.same("keep_input_artifact", "vmkiln keeps every artifact it writes");
  switch (block.type) {
    case "manifest":
      report.note(block.path, "vmkiln writes manifest.json beside the artifacts (artifacts, digests, source, durations)");
      b.notMapped("output", "vmkiln's manifest is output.directory/manifest.json");
      b.notMapped("custom_data", "vmkiln's manifest has no custom data");
      b.same("strip_path");
      b.same("strip_time");
      break;
    case "checksum": {
      const types = b.list("checksum_types") ?? ["md5"];
      const kept = types.filter((t) => concrete(t, vars).toLowerCase() === "sha256");
      if (kept.length > 0) report.note(block.path, "vmkiln writes SHA256SUMS (sha256sum -c format) beside the artifacts");
      const other = types.filter((t) => concrete(t, vars).toLowerCase() !== "sha256");
      if (other.length > 0) report.notMapped(b.at("checksum_types"), `vmkiln writes SHA-256 sums only; ${other.join(", ")} not written`);
      b.notMapped("output", "vmkiln's sums are output.directory/SHA256SUMS");
      break;
    }
    case "shell-local": {
      const inline = b.list("inline") ?? [];
      const command = b.text("command");
      const script = b.text("script");
      const scripts = b.list("scripts") ?? [];
      const all = [...inline, ...(command ? [command] : []), ...(script ? [script] : []), ...scripts].map((x) => concrete(x, vars));
      if (all.length > 0 && all.every((x) => OVA_STEP.test(x))) {
        result.formats.push("ova");
        report.note(block.path, `${all.join("; ")}: packs an OVA; vmkiln writes one itself (output.formats: ova, vSphere-safe, with a SHA256 manifest)`);
      } else report.notMapped(block.path, "a shell-local post-processor runs after the artifact exists: run it after vmkiln build (the artifacts are in output.directory)");
      for (const k of Object.keys(block.body)) b.same(k);
      break;
    }
    default:
      report.notMapped(block.path, `post-processor "${block.type}" has no vmkiln equivalent`);
      for (const k of Object.keys(block.body)) b.same(k);
  }
  b.rest(`not a ${block.type} setting vmkiln knows`);
  return result;
}
