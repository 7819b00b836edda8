// Cross-field rules the schema can't express: exactly-one-of, local files exist, driver capabilities.
// They read the interpolated raw tree defensively (a field of the wrong type is skipped: the schema
// already reports it), so a template with schema errors still gets these problems in the same report.

import { statSync, type Stats } from "node:fs";
import type { Problem } from "../errors.js";
import type { DriverName, OutputFormat } from "./spec.js";
import { checkInstall } from "./install-rules.js";
import { checkVsphere } from "./vsphere-rules.js";
import { formatPath, type PathSegment } from "./paths.js";
import { isUrl, resolveLocalPath } from "./normalize.js";
import { OUTPUT_FORMATS, PROVISIONER_TYPES, SOURCE_KINDS } from "./schema.js";

/**
 * What each driver can export. Kept here (not imported from drivers/) because src/ never imports a
 * concrete driver; the runtime Driver.capabilities must agree with this table.
 */
export const DRIVER_EXPORTS: Record<DriverName, readonly OutputFormat[]> = {
  qemu: ["qcow2", "raw", "vmdk", "ovf", "ova"],
  virtualbox: ["ovf", "ova", "vmdk"],
  vsphere: ["ovf", "ova"],
};

export interface RuleContext {
  baseDir: string;
  /** For driver settings with an environment fallback (VSPHERE_USERNAME…); default process.env. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Told about what is valid but most likely a mistake (an unknown `<key>` in a boot command). */
  warn?: ((path: PathSegment[], message: string, code: string) => void) | undefined;
}

type Rec = Record<string, unknown>;
const isRec = (v: unknown): v is Rec => v !== null && typeof v === "object" && !Array.isArray(v);
const nonEmptyString = (v: unknown): v is string => typeof v === "string" && v !== "";

export function checkRules(raw: unknown, ctx: RuleContext): Problem[] {
  const problems: Problem[] = [];
  if (!isRec(raw)) return problems;
  const add = (path: PathSegment[], message: string) => problems.push({ path: formatPath(path), message });

  checkSource(raw.source, ctx, add);
  if (isRec(raw.drivers) && Object.keys(raw.drivers).length === 0) add(["drivers"], "at least one driver is required (available: qemu, virtualbox, vsphere)");
  if (isRec(raw.ssh) && nonEmptyString(raw.ssh.private_key_file))
    expectFile(ctx, raw.ssh.private_key_file, ["ssh", "private_key_file"], add);
  if (Array.isArray(raw.provision)) raw.provision.forEach((item, i) => checkProvisioner(item, i, ctx, add));
  checkOutputFormats(raw, add);
  checkInstall(raw, ctx, add);
  checkVsphere(raw, ctx, add);
  return problems;
}

type Add = (path: PathSegment[], message: string) => void;

function exactlyOne(obj: Rec, keys: readonly string[], path: PathSegment[], add: Add): string | undefined {
  const present = keys.filter((k) => obj[k] !== undefined);
  if (present.length === 1) return present[0];
  if (present.length === 0) add(path, `one of ${keys.join(" or ")} is required`);
  else add(path, `only one of ${present.join(" or ")} may be given`);
  return undefined;
}

function checkSource(source: unknown, ctx: RuleContext, add: Add): void {
  if (!isRec(source)) return;
  const kind = exactlyOne(source, SOURCE_KINDS, ["source"], add);
  if (kind === undefined || kind === "clone") return;
  const s = source[kind];
  if (!isRec(s)) return;
  // An ISO may also come from a vSphere content library (vsphere-rules.ts checks that side).
  const where = exactlyOne(s, kind === "iso" ? ["path", "url", "content_library"] : ["path", "url"], ["source", kind], add);
  if (where === "path" && nonEmptyString(s.path)) expectFile(ctx, s.path, ["source", kind, "path"], add);
  if (kind === "iso" && (where === "path" || where === "url") && s.checksum === undefined) add(["source", kind, "checksum"], "required");
  // A local SHA256SUMS file must exist too; a URL one is checked when it is fetched.
  if (typeof s.checksum === "string" && s.checksum.trim().startsWith("file:")) {
    const loc = s.checksum.trim().slice(5).trim();
    if (loc !== "" && !isUrl(loc)) expectFile(ctx, loc, ["source", kind, "checksum"], add);
  }
}

function checkProvisioner(item: unknown, i: number, ctx: RuleContext, add: Add): void {
  if (!isRec(item)) return;
  const keys = Object.keys(item);
  if (keys.length === 0) {
    add(["provision", i], `expected one provisioner type (${PROVISIONER_TYPES.join(", ")})`);
    return;
  }
  if (keys.length > 1) {
    add(["provision", i], `one provisioner per list item (found ${keys.join(", ")})`);
    return;
  }
  const body = item[keys[0]!];
  if (!isRec(body)) return;
  if (keys[0] === "shell") {
    const which = exactlyOne(body, ["inline", "script"], ["provision", i, "shell"], add);
    if (which === "script" && nonEmptyString(body.script)) expectFile(ctx, body.script, ["provision", i, "shell", "script"], add);
  } else if (keys[0] === "file" && body.direction === "download") {
    checkDownloadDestination(body.destination, ["provision", i, "file", "destination"], add);
  } else if (keys[0] === "shell_local") {
    const which = exactlyOne(body, ["inline", "script"], ["provision", i, "shell_local"], add);
    if (which === "script" && nonEmptyString(body.script)) expectFile(ctx, body.script, ["provision", i, "shell_local", "script"], add);
  } else if (keys[0] === "ansible" || keys[0] === "ansible_local") {
    const kind = keys[0];
    if (nonEmptyString(body.playbook)) expectFile(ctx, body.playbook, ["provision", i, kind, "playbook"], add);
    const ev = body.extra_vars;
    const list = Array.isArray(ev) ? ev : [ev];
    list.forEach((v, j) => {
      if (typeof v === "string" && v.startsWith("@") && v.length > 1)
        expectFile(ctx, v.slice(1), ["provision", i, kind, "extra_vars", ...(Array.isArray(ev) ? [j] : [])], add);
    });
  } else if (keys[0] === "file" && nonEmptyString(body.source)) {
    const abs = resolveLocalPath(ctx.baseDir, body.source);
    const st = stat(abs);
    if (!st) add(["provision", i, "file", "source"], `file not found: ${abs}`);
    else if (abs.endsWith("/") && !st.isDirectory())
      add(["provision", i, "file", "source"], `a trailing "/" means a directory's contents, but ${abs} is not a directory`);
  }
}

/** A downloaded file lands inside the output directory: a relative path that stays inside it. */
function checkDownloadDestination(dest: unknown, path: PathSegment[], add: Add): void {
  if (!nonEmptyString(dest)) return;
  if (dest.startsWith("/") || dest.startsWith("~") || dest.split(/[\\/]/).includes("..") || dest.endsWith("/"))
    add(path, `a download goes into output.directory: expected a relative file path without "..", got ${dest}`);
  else if (["SHA256SUMS", "manifest.json"].includes(dest)) add(path, `${dest} is written by vmkiln; pick another name`);
}

function expectFile(ctx: RuleContext, rel: string, path: PathSegment[], add: Add): void {
  const abs = resolveLocalPath(ctx.baseDir, rel);
  const st = stat(abs);
  if (!st) add(path, `file not found: ${abs}`);
  else if (!st.isFile()) add(path, `not a regular file: ${abs}`);
}

/** stat that treats "not there" (including ENOTDIR from a trailing slash on a file) as undefined. */
function stat(abs: string): Stats | undefined {
  try {
    return statSync(abs);
  } catch {
    // A trailing slash on a regular file fails with ENOTDIR; report the file as what the user meant.
    return abs.endsWith("/") ? stat(abs.slice(0, -1)) : undefined;
  }
}

function checkOutputFormats(raw: Rec, add: Add): void {
  const output = raw.output;
  if (!isRec(raw.drivers) || !isRec(output) || !Array.isArray(output.formats)) return;
  for (const driver of Object.keys(raw.drivers)) {
    const supported = DRIVER_EXPORTS[driver as DriverName] as readonly string[] | undefined;
    if (!supported) continue; // unknown driver: the schema reports it
    output.formats.forEach((f, i) => {
      // Formats the schema doesn't know are reported there; here only "valid but not for this driver".
      if (typeof f === "string" && (OUTPUT_FORMATS as readonly string[]).includes(f) && !supported.includes(f))
        add(["output", "formats", i], `driver ${driver} cannot export ${f} (supported: ${supported.join(", ")})`);
    });
  }
}
