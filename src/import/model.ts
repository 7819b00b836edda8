// What both readers (Packer JSON, HCL2) produce and the mappers consume: a Packer template with its
// expressions already evaluated into vmkiln's own form (see values.ts), plus where each piece came
// from so errors and findings can name a file and line.

import type { Val } from "./values.js";

export interface Origin {
  file: string;
  line?: number | undefined;
}

/** A Packer variable as vmkiln will keep it. */
export interface PackerVariable {
  name: string;
  /** The value vmkiln writes: the default, or what -var / -var-file gave at import. Undefined: required. */
  value: Val | undefined;
  sensitive: boolean;
  /** Whether the value came from -var / -var-file rather than the template. */
  overridden: boolean;
  origin: Origin;
}

/** One builder (JSON) or source block (HCL), its body evaluated. */
export interface PackerSource {
  /** Packer's builder type: qemu, virtualbox-iso, … */
  type: string;
  /** The name `only`/`except` and `--only` use: JSON `name` (default: the type), HCL `type.name`. */
  name: string;
  /** A short name for the vmkiln template and file names. */
  shortName: string;
  body: Record<string, Val>;
  /** Field path prefix in findings: `builders[0]` or `source.qemu.deb`. */
  path: string;
  origin: Origin;
  /** Fields whose expressions could not be evaluated (already left out of body). */
  findings: Finding[];
}

export interface PackerBlock {
  type: string;
  body: Record<string, Val>;
  path: string;
  origin: Origin;
  findings: Finding[];
}

export interface PackerBuild {
  name?: string | undefined;
  path: string;
  sources: PackerSource[];
  provisioners: PackerBlock[];
  postProcessors: PackerBlock[];
}

export interface PackerTemplate {
  format: "json" | "hcl";
  /** The file or directory as the user named it. */
  display: string;
  /** Directory relative paths in the template are resolved against (Packer runs from here). */
  dir: string;
  variables: PackerVariable[];
  builds: PackerBuild[];
  /** Values vmkiln fixes at import time ({{timestamp}}…), written as variables. */
  generated: Map<string, { value: string; why: string }>;
  /** Line of a finding's path, where the reader knows it. */
  lineOf(path: string): number | undefined;
  /** Packer's `description`, kept as a comment. */
  description?: string | undefined;
  /** Top-level pieces that have no vmkiln equivalent (description, min_packer_version, data sources…). */
  findings: Finding[];
}

export type Finding =
  | { kind: "not-mapped"; path: string; why: string }
  | { kind: "note"; path: string; text: string };
