// `vmkiln pack-ova <file.ovf|dir>`: turns an existing OVF + files (VBoxManage export, a vSphere export,
// an old build) into an OVA importers accept: OVF first, canonical SHA256 manifest second, files in
// References order (ova.md "Tar", "Manifest").
//
// Reading each disk once: when the existing manifest already has a SHA-256 for a file, that digest
// goes into the new .mf and is checked while the file streams into the OVA (writeOva), so the file is
// read once; a mismatch deletes the partial OVA. Only files the manifest covers with SHA-1 (VirtualBox
// OVF 1.0, ovftool) or not at all need a first pass to compute SHA-256 before packing; that pass also
// checks the old digest.
//
// The descriptor is edited only where importers would otherwise fail, with targeted text edits so the
// rest stays byte-for-byte as the exporter wrote it: File ovf:size is added or corrected (gardenlinux
// PR 2323), and a VirtualSystemType vSphere rejects (VirtualBox's `virtualbox-2.2`) becomes vmx-NN.
// Any certificate (.cert) is dropped: it signed the old manifest.
//
// Reading and writing only what it should: every file it reads is in the OVF's directory (a symlink
// that leads out of it is refused), the descriptor and manifest are size-capped, and the OVA never
// replaces one of its own inputs (same path or same inode) nor, without --force, any existing file.
import { createHash } from "node:crypto";
import { lstat, readFile, readdir, realpath, stat } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { UserError, throwIfAborted } from "../errors.js";
import { progressReporter, type EventBus } from "../log/events.js";
import { digestFile } from "./digest.js";
import { type Finding } from "./findings.js";
import { parseManifest, type MfAlgorithm, type MfEntry } from "./manifest-mf.js";
import { DEFAULT_VMX_VERSION } from "./ovf.js";
import { parseOvf, type ParsedOvf } from "./ovf-parse.js";
import { badHref, checkOvfRules } from "./ovf-rules.js";
import { DigestMismatchError, writeOva, type OvaDisk } from "./ova.js";
import { MAX_MF_BYTES, MAX_OVF_BYTES } from "./ovf-limits.js";
import { checkMemberName } from "./tar-header.js";
import { findSingleOvf } from "./verify-ova.js";
import { DestinationExistsError } from "../util/atomic.js";

export interface PackOvaOptions {
  out?: string;
  events: EventBus;
  signal: AbortSignal;
  /** Hardware family written when the descriptor's VirtualSystemType is not vmx-NN. */
  vmxVersion?: number;
  /** Replace an existing output file (`--force`); the inputs themselves are never replaced. */
  force?: boolean;
}

export interface PackOvaResult {
  path: string;
  size: number;
  sha256: string;
  durationMs: number;
  members: string[];
  /** What was changed in the descriptor (human-readable). */
  fixes: string[];
  /** Rule findings left in the descriptor (not fixed automatically). */
  warnings: Finding[];
}

export async function packOva(input: string, opts: PackOvaOptions): Promise<PackOvaResult> {
  const { events, signal } = opts;
  const started = Date.now();
  throwIfAborted(signal);
  const st = await stat(input).catch((err: NodeJS.ErrnoException) => {
    throw new UserError("PACK_INPUT", `${input}: ${err.code === "ENOENT" ? "no such file or directory" : err.message}`, { cause: err });
  });
  if (!st.isDirectory() && !/\.ovf$/i.test(input)) {
    throw new UserError("PACK_INPUT", `${input}: expected an .ovf file or a directory holding one`);
  }
  const dir = st.isDirectory() ? input : dirname(input);
  const dirReal = await realpath(dir);
  const ovfName = st.isDirectory() ? await findSingleOvf(dir) : basename(input);
  const ovfPath = join(dir, ovfName);
  // Found in a directory, the descriptor obeys the directory rule; named on the command line, it is
  // the user's choice.
  const ovfReal = st.isDirectory() ? await inside(dirReal, ovfPath, ovfName) : await realpath(ovfPath);
  const ovfBytes = await readCapped(ovfReal, ovfPath, MAX_OVF_BYTES, "PACK_INPUT");
  if (ovfBytes.length === 0) throw new UserError("PACK_INPUT", `${ovfPath}: the OVF descriptor is empty`);
  const ovfText = ovfBytes.toString("utf8");
  const ovf = await parseOvf(ovfText).catch((err: unknown) => {
    throw err instanceof UserError ? new UserError(err.code, `${ovfPath}: ${err.message}`, { cause: err }) : err;
  });

  // References: every href is a bare name that exists beside the descriptor.
  const problems: string[] = [];
  const files: Array<{ href: string; path: string; size: number; declared?: number }> = [];
  for (const f of ovf.files) {
    const bad = badHref(f.href) ?? (f.href ? checkMemberName(f.href) : "is empty");
    if (bad) {
      problems.push(`File ${f.id}: href ${JSON.stringify(f.href)} ${bad}`);
      continue;
    }
    const real = await inside(dirReal, join(dir, f.href), f.href).catch((err: unknown) => {
      if (err instanceof UserError) problems.push(err.message);
      else throw err;
      return undefined;
    });
    if (real === undefined) continue;
    const s = await stat(real).catch(() => undefined);
    if (!s?.isFile()) problems.push(`referenced file ${f.href} is missing`);
    else files.push({ href: f.href, path: real, size: s.size, ...(f.size !== undefined ? { declared: f.size } : {}) });
  }
  if (problems.length) throw new UserError("PACK_REFERENCES", `${ovfPath}: ${problems.join("; ")}`);

  const out = resolve(opts.out ?? join(dir, ovfName.replace(/\.ovf$/i, "") + ".ova"));
  // The manifest is an input too (read below): -o tiny.mf --force would replace it.
  const mfInput = join(dir, ovfName.replace(/\.ovf$/i, "") + ".mf");
  await checkOutput(out, opts.out !== undefined, [ovfReal, mfInput, ...files.map((f) => f.path)], opts.force ?? false);

  // The existing manifest, in any spelling.
  const mfName = ovfName.replace(/\.ovf$/i, "") + ".mf";
  const mfPath = join(dir, mfName);
  const mfText = (await lstat(mfPath).then(() => true, () => false))
    ? (await readCapped(await inside(dirReal, mfPath, mfName), mfPath, MAX_MF_BYTES, "MF_SYNTAX")).toString("utf8")
    : undefined;
  const entries = new Map<string, MfEntry[]>();
  if (mfText !== undefined) {
    const mf = parseManifest(mfText);
    if (mf.bad.length) throw new UserError("MF_SYNTAX", `${mfName} line ${mf.bad[0]!.line}: not a digest line: ${JSON.stringify(mf.bad[0]!.text)}`);
    for (const e of mf.entries) entries.set(e.file, [...(entries.get(e.file) ?? []), e]);
    for (const e of entries.get(ovfName) ?? []) {
      const actual = createHash(e.algorithm).update(ovfBytes).digest("hex");
      if (actual !== e.digest) throw new UserError("MF_DIGEST_MISMATCH", `${ovfName}: ${e.spelled} is ${actual}, ${mfName} says ${e.digest}`);
    }
  } else {
    events.warn(`${mfName} not found: packing without checking the files against a manifest`);
  }
  await warnAboutCertificates(dir, ovfName, events);

  // SHA-256 for each file: taken from the manifest (checked while packing) or computed now.
  const disks: OvaDisk[] = [];
  const vouched = new Set<string>();
  for (const f of files) {
    const known = entries.get(f.href) ?? [];
    const sha = known.find((e) => e.algorithm === "sha256");
    if (sha) {
      disks.push({ name: f.href, path: f.path, sha256: sha.digest, size: f.size });
      vouched.add(f.href);
      continue;
    }
    const algorithms: MfAlgorithm[] = ["sha256", ...known.map((e) => e.algorithm)];
    const progress = progressReporter(events, `hash ${f.href}`, f.size);
    const d = await digestFile(f.path, algorithms, { signal, onBytes: (n) => progress.add(n) }).finally(() => progress.end());
    for (const e of known) {
      if (d.digests[e.algorithm] !== e.digest) {
        throw new UserError("MF_DIGEST_MISMATCH", `${f.href}: ${e.spelled} is ${d.digests[e.algorithm]}, ${mfName} says ${e.digest}`);
      }
    }
    if (known.length) vouched.add(f.href);
    disks.push({ name: f.href, path: f.path, sha256: d.digests["sha256"]!, size: d.size, identity: d.identity });
  }

  // Descriptor fixes.
  const fixes: string[] = [];
  let text = ovfText;
  for (const f of files) {
    if (f.declared === f.size) continue;
    if (f.declared !== undefined && !vouched.has(f.href)) {
      throw new UserError(
        "OVF_FILE_SIZE",
        `${f.href}: ovf:size=${f.declared} but the file has ${f.size} bytes, and no manifest digest shows the file is complete`,
      );
    }
    text = setFileSize(text, ovf, f.href, f.size);
    fixes.push(f.declared === undefined ? `added ovf:size=${f.size} to ${f.href}` : `corrected ${f.href} ovf:size ${f.declared} → ${f.size}`);
  }
  const vmx = `vmx-${String(opts.vmxVersion ?? DEFAULT_VMX_VERSION).padStart(2, "0")}`;
  text = text.replace(/(<(?:[\w.-]+:)?VirtualSystemType\s*>)([^<]*)(<\/(?:[\w.-]+:)?VirtualSystemType\s*>)/g, (all, open: string, value: string, close: string) => {
    const tokens = value.trim().split(/\s+/).filter(Boolean);
    if (tokens.length && tokens.every((t) => /^vmx-\d{2,}$/.test(t))) return all;
    fixes.push(`VirtualSystemType ${value.trim() || "(empty)"} → ${vmx} (vSphere accepts only vmx-NN)`);
    return `${open}${vmx}${close}`;
  });
  for (const fix of fixes) events.info(`pack-ova: ${fix}`);

  const fixed = await parseOvf(text);
  const warnings = checkOvfRules(fixed, { fileSizes: new Map(files.map((f) => [f.href, f.size])), member: ovfName });
  for (const w of warnings) events.warn(`pack-ova: ${w.code}: ${w.message}`);

  try {
    const r = await writeOva({ out, ovfName, ovfXml: text, disks, events, signal, replace: opts.force ?? false });
    return { path: r.path, size: r.size, sha256: r.sha256, durationMs: Date.now() - started, members: r.members, fixes, warnings };
  } catch (err) {
    if (err instanceof DigestMismatchError) {
      throw new UserError("MF_DIGEST_MISMATCH", `${err.member}: SHA-256 is ${err.actual}, ${mfName} says ${err.expected}`, { cause: err });
    }
    if (err instanceof DestinationExistsError) {
      throw new UserError("PACK_OUTPUT_EXISTS", `${outputLabel(opts.out !== undefined)} ${err.dest}: appeared while packing; not replaced`, { cause: err });
    }
    throw err;
  }
}

/**
 * The real path of `path` (a file the OVF's directory should hold), refusing a symlink that leads
 * out of `dirReal`: pack-ova must not put /etc/shadow into an OVA because an export dir said so.
 */
async function inside(dirReal: string, path: string, name: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && (await lstat(path).then((s) => s.isSymbolicLink(), () => false))) {
      throw new UserError("PACK_REFERENCES", `${name} is a dangling symbolic link`);
    }
    return path; // missing: the caller reports it
  }
  const rel = relative(dirReal, real);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || rel.startsWith(sep)) {
    throw new UserError("PACK_REFERENCES", `${name} is a symbolic link to ${real}, outside the OVF's directory ${dirReal}; refusing to read it`);
  }
  return real;
}

async function readCapped(real: string, shown: string, max: number, code: string): Promise<Buffer> {
  const s = await stat(real).catch((err: NodeJS.ErrnoException) => {
    throw new UserError(code, `${shown}: ${err.code === "ENOENT" ? "no such file" : err.message}`, { cause: err });
  });
  if (!s.isFile()) throw new UserError(code, `${shown}: not a regular file`);
  if (s.size > max) throw new UserError(code, `${shown}: ${s.size} bytes, larger than the ${max}-byte limit for this file`);
  return readFile(real);
}

function outputLabel(explicit: boolean): string {
  return explicit ? "-o" : "output";
}

/**
 * The OVA (and its .sha256) may go where asked only if that is not one of the inputs, by path or by
 * inode (a hard link or a symlink to the disk is still the disk), is not a directory, sits in an
 * existing directory, and, without --force, does not exist yet.
 */
async function checkOutput(out: string, explicit: boolean, inputs: string[], force: boolean): Promise<void> {
  const label = outputLabel(explicit);
  const parent = await stat(dirname(out)).catch(() => undefined);
  if (!parent) throw new UserError("PACK_OUTPUT", `${label} ${out}: directory ${dirname(out)} does not exist`);
  if (!parent.isDirectory()) throw new UserError("PACK_OUTPUT", `${label} ${out}: ${dirname(out)} is not a directory`);
  const ids = new Set<string>();
  for (const p of inputs) {
    const s = await stat(p).catch(() => undefined);
    if (s) ids.add(`${s.dev}:${s.ino}`);
  }
  const realInputs = new Set(inputs.map((p) => resolve(p)));
  for (const target of [out, `${out}.sha256`]) {
    const real = await realpath(target).catch(() => resolve(target));
    const s = await stat(target).catch(() => undefined);
    if (realInputs.has(real) || (s && ids.has(`${s.dev}:${s.ino}`))) {
      throw new UserError("PACK_OUTPUT_IS_INPUT", `${label} ${target} is one of the files being packed; choose another output`);
    }
    const l = await lstat(target).catch(() => undefined);
    if (!l) continue;
    if (s?.isDirectory()) throw new UserError("PACK_OUTPUT", `${label} ${target} is a directory; give the OVA's file name`);
    if (!force) throw new UserError("PACK_OUTPUT_EXISTS", `${label} ${target} already exists`, { hint: "pass --force to replace it" });
  }
}

/** Sets (or adds) the size attribute on the <File> element whose href is `href`. */
export function setFileSize(xml: string, ovf: ParsedOvf, href: string, size: number): string {
  const prefix = Object.entries(ovf.namespaces).find(([p, uri]) => p !== "" && uri === ovf.envelopeUri)?.[0];
  const sizeAttr = prefix ? `${prefix}:size` : "size";
  let done = false;
  const out = xml.replace(/<(?:[\w.-]+:)?File\b([^>]*?)(\/?)>/g, (tag, attrs: string, slash: string) => {
    const h = /(?:^|\s)(?:[\w.-]+:)?href\s*=\s*(["'])(.*?)\1/.exec(attrs);
    if (done || !h || unescapeXml(h[2]!) !== href) return tag;
    done = true;
    const sizeRe = /(\s(?:[\w.-]+:)?size\s*=\s*)(["'])(.*?)\2/;
    if (sizeRe.test(attrs)) return tag.replace(sizeRe, `$1"${size}"`);
    return tag.replace(/\s*\/?>$/, ` ${sizeAttr}="${size}"${slash ? "/" : ""}>`);
  });
  if (!done) throw new UserError("OVF_FILE", `could not find the File element for ${href} to set its size`);
  return out;
}

function unescapeXml(s: string): string {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, "&");
}

async function warnAboutCertificates(dir: string, ovfName: string, events: EventBus): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) {
    if (/\.cert$/i.test(n) && n.startsWith(ovfName.replace(/\.ovf$/i, ""))) {
      events.warn(`pack-ova: dropping ${n}: it signs the old manifest, which is rewritten`);
    }
  }
}
