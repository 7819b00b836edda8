// Cross-field rules for the ISO-install sections (boot, http, install_media, install). Like rules.ts
// they read the interpolated raw tree defensively: a field of the wrong type is the schema's to report.
import { readFileSync, statSync } from "node:fs";
import { SPECIAL_KEY_SPELLING } from "../bootcommand/keys.js";
import { parseBootCommand, type UnknownToken } from "../bootcommand/parse.js";
import { messageOf, type Problem } from "../errors.js";
import { renderText } from "../http/render.js";
import { resolveLocalPath } from "./normalize.js";
import { didYouMean, formatPath, type PathSegment } from "./paths.js";
import type { BuildSpec, RenderedText } from "./spec.js";

type Rec = Record<string, unknown>;
type Add = (path: PathSegment[], message: string) => void;
const isRec = (v: unknown): v is Rec => v !== null && typeof v === "object" && !Array.isArray(v);

/** Placeholders that let a boot command be parsed (syntax, unknown keys and values) before the build runs. */
const PLACEHOLDER_VALUES = { "http.ip": "10.0.2.2", "http.port": "8000", "http.prefix": "/prefix", name: "name", "ssh.public_key": "ssh-ed25519 AAAA" };

export function checkInstall(raw: Rec, ctx: { baseDir: string; warn?: ((path: PathSegment[], message: string, code: string) => void) | undefined }, add: Add): void {
  const isIso = isRec(raw.source) && raw.source.iso !== undefined && raw.source.cloud_image === undefined;
  if (!isIso) {
    for (const key of ["boot", "install_media", "install"] as const) {
      if (raw[key] !== undefined) add([key], "only for installer builds (source.iso); a cloud image is configured through cloud_init");
    }
  } else if (isRec(raw.drivers) && isRec(raw.drivers.qemu) && raw.drivers.qemu.disk_size === undefined) {
    add(["drivers", "qemu", "disk_size"], "required for an installer build (source.iso): the size of the empty disk to install on");
  }

  if (isRec(raw.boot) && Array.isArray(raw.boot.command) && raw.boot.command.every((c) => typeof c === "string")) {
    // Deferred references (`$${`, `${http.ip}`) survived interpolation; the parser resolves them.
    try {
      // Packer types an unknown `<word>` as text; that is almost always a typo, so say so (issue 12).
      const onUnknownToken = (u: UnknownToken) => ctx.warn?.(["boot", "command", u.element], unknownTokenMessage(u), "BOOT_COMMAND_UNKNOWN_KEY");
      parseBootCommand(raw.boot.command as string[], { values: PLACEHOLDER_VALUES, onUnknownToken });
    } catch (err) {
      const m = /^boot_command\[(\d+)\](.*)$/s.exec(messageOf(err));
      if (m) add(["boot", "command", Number(m[1])], `invalid boot command${m[2]}`);
      else add(["boot", "command"], messageOf(err));
    }
  }

  if (isRec(raw.http)) {
    const h = raw.http;
    if (typeof h.directory === "string" && h.directory !== "") {
      const abs = resolveLocalPath(ctx.baseDir, h.directory);
      if (!isDir(abs)) add(["http", "directory"], `directory not found: ${abs}`);
    }
    checkRendered(h.content, ["http", "content"], ctx, add);
    if (isRec(h.content)) {
      for (const k of Object.keys(h.content)) if (!/^\/\S*$/.test(k)) add(["http", "content", k], 'expected a URL path starting with "/" (no spaces)');
    }
    if (h.directory === undefined && (!isRec(h.content) || Object.keys(h.content).length === 0))
      add(["http"], "nothing to serve: give http.directory or http.content");
    if (Array.isArray(h.expect)) {
      h.expect.forEach((p, i) => {
        if (typeof p === "string" && !p.startsWith("/")) add(["http", "expect", i], 'expected a URL path starting with "/"');
      });
    }
  }

  if (isRec(raw.install_media)) {
    const m = raw.install_media;
    if (m.cd_files !== undefined && m.floppy_files !== undefined) add(["install_media"], "only one of cd_files or floppy_files may be given");
    for (const key of ["cd_files", "floppy_files"] as const) {
      const list = m[key];
      if (Array.isArray(list)) list.forEach((f, i) => typeof f === "string" && expectFile(ctx, f, ["install_media", key, i], add));
    }
    checkRendered(m.content, ["install_media", "content"], ctx, add);
    if (isRec(m.content)) {
      for (const k of Object.keys(m.content)) if (!/^[^/\\]+$/.test(k)) add(["install_media", "content", k], "expected a file name (no directories)");
    }
    const empty = (v: unknown) => v === undefined || (Array.isArray(v) && v.length === 0) || (isRec(v) && Object.keys(v).length === 0);
    if (empty(m.cd_files) && empty(m.floppy_files) && empty(m.content)) add(["install_media"], "empty: give cd_files, floppy_files or content");
    if ((m.floppy_files !== undefined || m.type === "floppy") && typeof m.label === "string" && m.label.length > 11)
      add(["install_media", "label"], "a floppy label has at most 11 characters");
  }
}

/** Every token spelling the parser knows (keys, their On/Off holds, `wait`), for did-you-mean. */
const KEY_SPELLINGS = [...Object.values(SPECIAL_KEY_SPELLING).filter((n): n is string => n !== undefined), "return"];
const TOKEN_NAMES: readonly string[] = [...KEY_SPELLINGS, ...KEY_SPELLINGS.flatMap((n) => [`${n}On`, `${n}Off`]), "wait"];

function unknownTokenMessage(u: UnknownToken): string {
  const typed = `${u.token} (column ${u.column}) is not a key or a wait: it will be typed as text`;
  const inner = u.token.slice(1, -1);
  if (inner.toLowerCase().startsWith("wait")) return `${typed}: a wait is <wait>, <wait5> (seconds) or <wait1m30s> (a Go duration)`;
  // `<wiat5>`: a misspelt wait with its duration.
  const wait = /^([A-Za-z]+)(\d.*)$/.exec(inner);
  const hint = wait && didYouMean(wait[1]!, ["wait"]) ? `wait${wait[2]}` : didYouMean(inner.trim(), TOKEN_NAMES);
  return hint ? `${typed} (did you mean <${hint}>?)` : typed;
}

function checkRendered(map: unknown, path: PathSegment[], ctx: { baseDir: string }, add: Add): void {
  if (!isRec(map)) return;
  for (const [k, v] of Object.entries(map)) {
    if (isRec(v) && typeof v.file === "string" && v.file !== "") expectFile(ctx, v.file, [...path, k, "file"], add);
  }
}

function expectFile(ctx: { baseDir: string }, rel: string, path: PathSegment[], add: Add): void {
  const abs = resolveLocalPath(ctx.baseDir, rel);
  try {
    if (!statSync(abs).isFile()) add(path, `not a regular file: ${abs}`);
  } catch {
    add(path, `file not found: ${abs}`);
  }
}

function isDir(abs: string): boolean {
  try {
    return statSync(abs).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Renders every answer file (http.content, install_media.content) with placeholder build values, so a
 * stray `${` or an unknown reference is a template error at validate time, not a failure mid-build.
 * Runs on the spec, where the effective variables (-var, -var-file) are known.
 */
export function renderProblems(spec: BuildSpec, env: NodeJS.ProcessEnv): Problem[] {
  const problems: Problem[] = [];
  const scope = { variables: spec.variables, env, name: spec.name, values: { "http.ip": "10.0.2.2", "http.port": "8000", "http.prefix": "/prefix", "http.url": "http://10.0.2.2:8000/prefix", "ssh.public_key": "ssh-ed25519 AAAA" } };
  const check = (map: Record<string, RenderedText> | undefined, path: PathSegment[]) => {
    for (const [k, entry] of Object.entries(map ?? {})) {
      let text: string;
      try {
        text = "text" in entry ? entry.text : readFileSync(entry.file, "utf8");
      } catch {
        continue; // a missing file is already reported by checkInstall
      }
      const r = renderStrict(text, scope);
      if (r) problems.push({ path: formatPath("file" in entry ? [...path, k, "file"] : [...path, k]), message: "file" in entry ? `${entry.file}: ${r}` : r });
    }
  };
  check(spec.http?.content, ["http", "content"]);
  check(spec.install?.media?.content, ["install_media", "content"]);
  return problems;
}

function renderStrict(text: string, scope: Parameters<typeof renderText>[1]): string | undefined {
  try {
    renderText(text, scope, "");
    return undefined;
  } catch (err) {
    return messageOf(err).replace(/^: /, "");
  }
}
