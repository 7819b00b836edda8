// A stage's cache key (issue 17): the digest of everything that decides what the stage produces.
//   - the source's digest (for a derived stage: the parent stage's disk);
//   - the normalized stage spec, variables resolved, for the chosen driver only, with paths under the
//     template's directory made relative (a moved checkout keeps its cache) and the output directory
//     left out (where the result is copied to does not change it);
//   - the content of every local file the stage reads (scripts, uploads, playbooks with their roles,
//     group_vars and host_vars, http and install-media files, var files given as @file);
//   - vmkiln's version.
// Secrets (sensitive variables, passwords) go into the digest but never into the entry's manifest:
// that gets the spec with them masked (src/log/redact.ts).
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readFile, readdir, readlink } from "node:fs/promises";
import path from "node:path";
import { VMKILN_VERSION } from "../artifact/manifest.js";
import { UserError, throwIfAborted } from "../errors.js";
import { Redactor, specSecrets } from "../log/redact.js";
import { localInputs } from "../steps/output-guard.js";
import type { BuildSpec, DriverName } from "../template/spec.js";

/** Bumped when the key's recipe changes: old entries then simply stop matching. */
export const KEY_RECIPE = 2;
/** A directory input larger than this is not a provisioning input but a mistake (a home dir). */
const MAX_TREE_ENTRIES = 100_000;

export interface StageInput {
  what: string;
  /** Relative to the template directory when inside it. */
  path: string;
  sha256: string;
}

export interface StageKey {
  key: string;
  /** The spec as digested, secrets masked: for the entry's manifest and `cache ls`. */
  shownSpec: unknown;
  inputs: StageInput[];
}

/** Inputs the key does not hash as files: the source has its own digest; the template is the spec. */
const NOT_HASHED = new Set(["the template", "the template's directory", "vmkiln's cache", "the source image", "the checksum file"]);

export async function stageKey(spec: BuildSpec, driver: DriverName, sourceDigest: string, signal: AbortSignal): Promise<StageKey> {
  const rel = (p: string) => relativeTo(spec.templateDir, p);
  const inputs: StageInput[] = [];
  for (const i of stageInputs(spec)) {
    throwIfAborted(signal);
    inputs.push({ what: i.what, path: rel(i.path), sha256: await hashTree(i.path, i.what, signal, i.optional) });
  }
  const canonical = canonicalSpec(spec, driver, await renderedLater(spec, signal));
  const material = stableJson({ recipe: KEY_RECIPE, vmkiln: VMKILN_VERSION, driver, source: sourceDigest, spec: canonical, inputs });
  const key = createHash("sha256").update(material).digest("hex");
  const redactor = new Redactor();
  redactor.addAll(specSecrets(spec));
  return { key, shownSpec: redactor.value(canonical, { byKey: true }), inputs };
}

/** The local files and directories a stage reads, beyond the template itself. */
export function stageInputs(spec: BuildSpec): Array<{ what: string; path: string; optional?: boolean }> {
  const out: Array<{ what: string; path: string; optional?: boolean }> = localInputs(spec).filter((i) => !NOT_HASHED.has(i.what));
  // ansible-playbook also reads the roles and variables beside the playbook.
  for (const [i, p] of spec.provision.entries()) {
    if (p.type !== "ansible") continue;
    const dir = path.dirname(p.playbook);
    for (const sub of ["roles", "group_vars", "host_vars"]) out.push({ what: `provision[${i}].ansible ${sub}`, path: path.join(dir, sub), optional: true });
  }
  return out;
}

/**
 * The text rendered at build time with the variables again (the boot command, http and install-media
 * content, inline or from a file), or undefined when there is none. Files that cannot be read count
 * as empty here: the stage's own render reports them.
 */
export async function renderedLater(spec: BuildSpec, signal: AbortSignal): Promise<string | undefined> {
  if (spec.http === undefined && spec.install === undefined) return undefined;
  const entries = [...Object.values(spec.http?.content ?? {}), ...Object.values(spec.install?.media?.content ?? {})];
  const parts = [...(spec.install?.boot?.command ?? [])];
  for (const e of entries) {
    throwIfAborted(signal);
    if ("text" in e) parts.push(e.text);
    else parts.push(await readFile(e.file, { encoding: "utf8", signal }).catch(() => ""));
  }
  return parts.join("\n");
}

/**
 * The spec as it decides the stage's result: no locations of the template or the output. Variables
 * are resolved into the fields already; only text rendered at build time reads them again, so a
 * variable is in the key when `later` (that text) names it, and never otherwise: `-var
 * output_dir=…` is not a rebuild. Named is a plain substring test, which can only err towards a
 * rebuild. `later` undefined (not known): every variable counts when the spec renders anything.
 */
export function canonicalSpec(spec: BuildSpec, driver: DriverName, later?: string): unknown {
  const { templatePath: _t, templateDir, warnings: _w, source, drivers, output, variables, ...rest } = spec;
  const { directory: _d, ...out } = output;
  // The source is identified by its digest; only a clone or a content-library item has none.
  const src: Record<string, unknown> = { kind: source.kind, format: source.format, linked: source.linked, library: source.library };
  if (source.kind === "clone" || source.library) src.location = source.location;
  const rendersLater = spec.http !== undefined || spec.install !== undefined;
  const read = rendersLater ? (later === undefined ? variables : Object.fromEntries(Object.entries(variables).filter(([k]) => later.includes(k)))) : undefined;
  const shaped = { ...rest, ...(read ? { variables: read } : {}), source: src, driver: drivers[driver], output: out };
  return relativize(shaped, templateDir);
}

function relativize(v: unknown, dir: string): unknown {
  if (typeof v === "string") return v === dir || v.startsWith(dir + path.sep) ? `<template-dir>${v.slice(dir.length)}` : v;
  if (Array.isArray(v)) return v.map((x) => relativize(x, dir));
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, relativize(x, dir)]));
  return v;
}

function relativeTo(dir: string, p: string): string {
  const r = path.relative(dir, p);
  return r.startsWith("..") || path.isAbsolute(r) ? p : r === "" ? "." : r;
}

/** JSON with object keys sorted, undefined dropped: the same spec always gives the same bytes. */
export function stableJson(v: unknown): string {
  if (v === undefined) return "null";
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? "null" : stableJson(x))).join(",")}]`;
  const keys = Object.keys(v as object)
    .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(",")}}`;
}

/**
 * sha256 over a file, or over a directory's sorted entries (relative name, kind, content; a symlink by
 * its target text, never followed: what the upload sends is what is hashed). Absent optional inputs
 * hash to "absent"; an absent required one is the stage's own error to report, not the key's.
 */
export async function hashTree(root: string, what: string, signal: AbortSignal, optional = false): Promise<string> {
  const st = await lstat(root).catch(() => undefined);
  if (!st) {
    if (optional) return "absent";
    throw new UserError("STAGE_INPUT_MISSING", `${what}: ${root} does not exist`);
  }
  const h = createHash("sha256");
  let count = 0;
  const walk = async (abs: string, rel: string): Promise<void> => {
    throwIfAborted(signal);
    if (++count > MAX_TREE_ENTRIES) throw new UserError("STAGE_INPUT_TOO_LARGE", `${what}: ${root} has more than ${MAX_TREE_ENTRIES} entries`);
    const s = await lstat(abs);
    if (s.isSymbolicLink()) h.update(`L\0${rel}\0${await readlink(abs)}\0`);
    else if (s.isDirectory()) {
      h.update(`D\0${rel}\0`);
      const names = (await readdir(abs)).sort();
      for (const n of names) await walk(path.join(abs, n), rel === "" ? n : `${rel}/${n}`);
    } else if (s.isFile()) {
      h.update(`F\0${rel}\0${s.size}\0${(s.mode & 0o111) !== 0 ? "x" : "-"}\0`);
      for await (const chunk of createReadStream(abs, { signal })) h.update(chunk as Buffer);
    } else h.update(`O\0${rel}\0`);
  };
  await walk(root, "");
  return h.digest("hex");
}
