// Reading gossfiles: render the template (template.ts), parse the YAML, follow `gossfile:` includes
// and merge, as goss's store.go does (ReadJSON renders then decodes; mergeJSONData follows
// includes in sorted key order, relative to the including file, globs allowed, `skip: true` leaves
// one out, a pattern matching nothing is an error, and a resource defined again later replaces the
// earlier one). Everything wrong in a gossfile is a UserError (exit 2) naming the file and key.
import { readFileSync, readdirSync, realpathSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { parse as parseYaml } from "yaml";
import { UserError } from "../errors.js";
import { GossSyntaxError } from "./matchers.js";
import { RESOURCE_BY_TYPE, normalizeResource, type GossResource } from "./resources.js";
import { renderGossTemplate, type TemplateData } from "./template.js";

export interface MatchingCheck {
  id: string;
  file: string;
  title: string | undefined;
  skip: boolean;
  content: unknown;
  matches: unknown;
}

export interface Gossfile {
  resources: GossResource[];
  matching: MatchingCheck[];
  /** Every file read (the main one and its includes), for messages. */
  files: string[];
  warnings: string[];
}

const TOP_KEYS = [...RESOURCE_BY_TYPE.keys(), "gossfile", "matching"];
const MAX_DEPTH = 50; // store.go mergeJSONData: errMaxDepth
/**
 * vmkiln's own bounds (goss has none): a gossfile or vars file larger than this is refused before it
 * is read (a 10 MB gossfile took half a minute to parse), and so is a tree of more files, or a
 * rendered template larger than MAX_RENDERED (template.ts), so a mistaken `range` cannot eat memory.
 */
export const MAX_GOSSFILE_BYTES = 4 * 1024 * 1024;
export const MAX_GOSSFILES = 256;

/** Reads a file the user named, refusing what is not a regular file or is larger than MAX_GOSSFILE_BYTES. */
function readBounded(file: string, where: string, code: string): string {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    throw new UserError(code, `${where}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  if (!st.isFile()) throw new UserError(code, `${where}: not a regular file`);
  if (st.size > MAX_GOSSFILE_BYTES) throw new UserError(code, `${where}: ${st.size} bytes; vmkiln reads gossfiles and vars files up to ${MAX_GOSSFILE_BYTES} bytes`);
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new UserError(code, `${where}: ${(err as Error).message}`);
  }
}

export function readVarsFile(path: string): unknown {
  const text = readBounded(path, `--vars ${path}`, "GOSS_VARS");
  try {
    return parseYaml(text, { maxAliasCount: 100, logLevel: "error" }) ?? {};
  } catch (err) {
    throw new UserError("GOSS_VARS", `--vars ${path}: not YAML or JSON: ${(err as Error).message.split("\n")[0]}`);
  }
}

export function loadGossfile(path: string, data: TemplateData): Gossfile {
  const out: Gossfile = { resources: [], matching: [], files: [], warnings: [] };
  const byKey = new Map<string, GossResource | MatchingCheck>();
  const top = resolve(path);
  // Includes stay inside the directory of the gossfile given (after symlinks): goss itself follows
  // any path (store.go mergeJSONData joins it to the including file's directory), but a gossfile
  // that reaches outside its tree is a mistake or a trick, and a template's test: section may come
  // from someone else.
  const root = dirname(realOrSelf(top));
  /** `stack`: the files being read, outermost first, to name an include loop precisely. */
  const load = (file: string, depth: number, stack: string[], where: string) => {
    if (stack.includes(file)) throw new UserError("GOSS_INCLUDE", `${where}: includes ${file} again, which is already being read (${[...stack.slice(stack.indexOf(file)), file].join(" → ")}): an include loop`);
    if (depth >= MAX_DEPTH) throw new UserError("GOSS_INCLUDE", `${where}: gossfile includes nest deeper than ${MAX_DEPTH}`);
    if (out.files.length >= MAX_GOSSFILES) throw new UserError("GOSS_INCLUDE", `${where}: more than ${MAX_GOSSFILES} gossfiles in one tree`);
    out.files.push(file);
    const text = readBounded(file, where === file ? file : `${where}: ${file}`, "GOSS_FILE");
    const rendered = renderGossTemplate(text, data, file);
    let doc: unknown;
    try {
      // goss docs "Important note about goss file format": a key written twice keeps the last one.
      // logLevel "error": yaml must not write warnings of its own to stderr (--json is read by tools).
      doc = parseYaml(rendered, { uniqueKeys: false, maxAliasCount: 100, logLevel: "error" });
    } catch (err) {
      throw new UserError("GOSS_YAML", `${file}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
    }
    if (doc === null || doc === undefined) return;
    if (typeof doc !== "object" || Array.isArray(doc)) throw new GossSyntaxError(file, "expected a mapping of resource types at the top level");
    const d = doc as Record<string, unknown>;
    for (const key of Object.keys(d)) {
      if (!TOP_KEYS.includes(key)) throw new GossSyntaxError(`${file}: ${key}`, `unknown resource type (vmkiln evaluates: ${TOP_KEYS.join(", ")})`);
    }
    for (const [type, section] of Object.entries(d)) {
      if (type === "gossfile") continue;
      if (section === null) continue;
      if (typeof section !== "object" || Array.isArray(section)) throw new GossSyntaxError(`${file}: ${type}`, "expected a mapping of resources");
      for (const [id, raw] of Object.entries(section as Record<string, unknown>)) {
        const key = `${type}\0${id}`;
        byKey.delete(key); // the later definition wins, and takes the later place
        if (type === "matching") byKey.set(key, matchingCheck(id, raw, file));
        else byKey.set(key, normalizeResource(RESOURCE_BY_TYPE.get(type)!, id, raw, file, (m) => out.warnings.push(m)));
      }
    }
    const includes = d.gossfile;
    if (includes === undefined || includes === null) return;
    if (typeof includes !== "object" || Array.isArray(includes)) throw new GossSyntaxError(`${file}: gossfile`, "expected a mapping of files to include");
    for (const key of Object.keys(includes).sort()) {
      const inc = (includes as Record<string, unknown>)[key] ?? {};
      const where = `${file}: gossfile.${key}`;
      if (typeof inc !== "object" || Array.isArray(inc)) throw new GossSyntaxError(where, "expected a mapping (file, skip)");
      const o = inc as Record<string, unknown>;
      for (const k of Object.keys(o)) if (!["file", "skip", "title", "meta"].includes(k)) throw new GossSyntaxError(`${where}.${k}`, "unknown attribute for a gossfile include (known: file, skip)");
      if (o.skip !== undefined && typeof o.skip !== "boolean") throw new GossSyntaxError(`${where}.skip`, "expected true or false");
      if (o.file !== undefined && typeof o.file !== "string") throw new GossSyntaxError(`${where}.file`, "expected a path");
      if (o.skip === true) continue;
      const target = (o.file as string | undefined) ?? key;
      const pattern = isAbsolute(target) ? target : join(dirname(file), target);
      const matches = globFiles(pattern);
      if (matches.length === 0) throw new UserError("GOSS_INCLUDE", `${where}: no matched files were found: ${pattern}`);
      for (const m of matches) {
        const real = realpathSync(m);
        const rel = relative(root, real);
        if (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
          throw new UserError("GOSS_INCLUDE", `${where}: ${m} is outside ${root}: vmkiln follows gossfile includes only inside the directory of the gossfile it was given`);
        }
        load(real, depth + 1, [...stack, realOrSelf(file)], where);
      }
    }
  };
  load(top, 0, [], top);
  for (const v of byKey.values()) {
    if ("def" in v) out.resources.push(v);
    else out.matching.push(v);
  }
  return out;
}

function matchingCheck(id: string, raw: unknown, file: string): MatchingCheck {
  const where = `${file}: matching.${id}`;
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new GossSyntaxError(where, "expected a mapping with content and matches");
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!["content", "matches", "title", "meta", "skip"].includes(k)) throw new GossSyntaxError(`${where}.${k}`, "unknown attribute for a matching check (known: content, matches, title, skip)");
  if (!("matches" in o)) throw new GossSyntaxError(where, "missing required attribute matches");
  if (o.skip !== undefined && typeof o.skip !== "boolean") throw new GossSyntaxError(`${where}.skip`, "expected true or false");
  return { id, file, title: typeof o.title === "string" ? o.title : undefined, skip: o.skip === true, content: o.content, matches: o.matches };
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/** filepath.Glob for `*`, `?` and `[…]` in the last path components; a plain path is itself. */
export function globFiles(pattern: string): string[] {
  if (!/[*?[]/.test(pattern)) {
    try {
      return statSync(pattern).isFile() ? [pattern] : [];
    } catch {
      return [];
    }
  }
  const parts = pattern.split("/");
  let bases = [parts[0] === "" ? "/" : parts[0]!];
  for (const part of parts.slice(1)) {
    if (part === "") continue;
    const next: string[] = [];
    for (const b of bases) {
      if (!/[*?[]/.test(part)) {
        next.push(join(b, part));
        continue;
      }
      const re = new RegExp("^" + part.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]") + "$");
      let names: string[] = [];
      try {
        names = readdirSync(b).sort();
      } catch {
        continue;
      }
      for (const n of names) if (re.test(n)) next.push(join(b, n));
    }
    bases = next;
  }
  return bases.filter((f) => {
    try {
      return statSync(f).isFile();
    } catch {
      return false;
    }
  });
}
