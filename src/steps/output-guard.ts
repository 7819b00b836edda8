// What vmkiln may replace when it hands a build's artifacts over: only an output directory it wrote
// itself, and only the files it wrote there. The export step swaps the new output in at the very end
// of a build; everything that could make that swap destroy somebody's files is checked here before
// the build starts (the prepare step, exit 2), and checked again at the swap (the directory may have
// changed during a long build).
//
// "vmkiln wrote it" means: a manifest.json in vmkiln's shape (version, build id, artifacts with
// sizes and SHA-256s), a SHA256SUMS whose bytes are exactly what vmkiln writes for those artifacts,
// and nothing else in the directory but the listed artifacts and the `.ova.sha256` beside each OVA,
// each artifact unchanged since: the size the manifest records, the modification time it records
// (`mtime_ns`, to within 1 µs: a cache hit restores it through utimes(); manifests written before vmkiln recorded it have none), and a modification
// time not newer than manifest.json's own (the export writes manifest.json after every artifact).
// Contents are not hashed again (a multi-GB disk on every build); a change that keeps the size and
// restores the old modification time, or lands within the same timestamp tick as manifest.json on
// a file system with coarse timestamps, is not seen. A file named manifest.json from another tool, a
// directory someone added notes to, a qcow2 or raw disk that was booted in place since: refused,
// whatever --force says. The old output is then removed file by file from that list, never `rm -r`.
import { lstat, mkdir, readFile, readdir, realpath, rename, rmdir, unlink } from "node:fs/promises";
import { dirname, join, posix, relative, resolve, sep } from "node:path";
import { sha256sums } from "../artifact/sums.js";
import { UserError } from "../errors.js";
import { cacheDirs } from "../source/cache.js";
import { isHttpUrl } from "../source/fetch.js";
import type { BuildSpec } from "../template/spec.js";

/** Written by every build beside the artifacts. */
export const MANIFEST_JSON = "manifest.json";
export const SHA256SUMS = "SHA256SUMS";
const CACHE_INPUT = "vmkiln's cache";

/** More entries than any build writes: a directory this large is not a vmkiln output. */
const MAX_ENTRIES = 10_000;
/** manifest.json of a real build is a few KiB. */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
const BUILD_ID = /^\d{14}-[0-9a-f]{6}$/;
const SHA256 = /^[0-9a-f]{64}$/;

/** See ownedOutput: how far a file's mtime may be from the recorded one and still be the same write. */
const MTIME_SLACK_NS = 1000n;
const absDiff = (a: bigint, b: bigint): bigint => (a > b ? a - b : b - a);

export type Ownership =
  | { owned: true; /** Files vmkiln wrote, relative, children before parents. */ files: string[]; dirs: string[] }
  | { owned: false; reason: string };

/**
 * Checks `output.directory` (and the names the build will write there) before any work starts.
 * Throws a UserError (exit 2) naming the field; returns quietly when the build may go ahead.
 */
export async function preflightOutput(spec: BuildSpec, opts: { force: boolean; outputInCache?: boolean }): Promise<void> {
  const out = resolve(spec.output.directory);
  const field = "output.directory";

  const bad = checkFileName(spec.output.basename);
  if (bad) throw new UserError("OUTPUT_BASENAME", `output.basename ${JSON.stringify(spec.output.basename)}: ${bad} (artifact names are made from it)`);
  checkDownloadNames(spec);

  // The directory the output goes in must be (or become) a directory: a file on the way fails here.
  const parent = await nearestExisting(dirname(out));
  if (!parent.isDirectory) throw new UserError("OUTPUT_NOT_DIRECTORY", `${field}: ${parent.path} is a file, not a directory`);

  const where = await realish(out);
  for (const input of localInputs(spec)) {
    // A stage build writes into a private dir of the stage cache (src/layers/store.ts), by design.
    if (opts.outputInCache && input.what === CACHE_INPUT) continue;
    const p = await realish(input.path);
    if (isSameOrInside(p, where)) {
      const how = p === where ? "is" : "contains";
      throw new UserError(
        "OUTPUT_HOLDS_INPUT",
        `${field}: ${out} ${how} ${input.what} (${input.path}); the output directory is replaced at the end of a build, so it must not hold the build's inputs`,
        { hint: "choose another output.directory, e.g. ./output/<name>" },
      );
    }
  }

  const st = await lstat(out).catch(() => undefined);
  if (!st) return;
  if (st.isSymbolicLink()) {
    throw new UserError("OUTPUT_SYMLINK", `${field}: ${out} is a symbolic link; vmkiln replaces only a directory it wrote`, {
      hint: "point output.directory at the real directory",
    });
  }
  if (!st.isDirectory()) throw new UserError("OUTPUT_NOT_DIRECTORY", `${field}: ${out} is a file, not a directory`);
  if ((await readdir(out)).length === 0) return; // an empty directory: nothing to lose
  const own = await ownedOutput(out);
  if (!own.owned) {
    throw new UserError("OUTPUT_NOT_OURS", `${field}: ${out} is not a vmkiln output directory (${own.reason}); vmkiln replaces only what it wrote`, {
      hint: "choose another output.directory, or move its contents away yourself",
    });
  }
  if (!opts.force) throw new UserError("OUTPUT_EXISTS", `${field}: ${out} already exists`, { hint: "remove it or pass --force" });
}

/** Whether `dir` holds exactly a previous vmkiln output (see the file comment), and which files. */
export async function ownedOutput(dir: string): Promise<Ownership> {
  const no = (reason: string): Ownership => ({ owned: false, reason });
  const manifestPath = join(dir, MANIFEST_JSON);
  const mst = await lstat(manifestPath).catch(() => undefined);
  if (!mst) return no(`no ${MANIFEST_JSON}`);
  if (!mst.isFile()) return no(`${MANIFEST_JSON} is not a regular file`);
  if (mst.size > MAX_MANIFEST_BYTES) return no(`${MANIFEST_JSON} is too large to be vmkiln's`);
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readFile(manifestPath, "utf8"));
  } catch {
    return no(`${MANIFEST_JSON} is not JSON`);
  }
  const artifacts = manifestArtifacts(manifest);
  if (typeof artifacts === "string") return no(`${MANIFEST_JSON} was not written by vmkiln: ${artifacts}`);

  const sums = await readSmallFile(join(dir, SHA256SUMS), 1024 * 1024);
  if (sums === undefined || sums !== sha256sums(artifacts)) return no(`${SHA256SUMS} does not match ${MANIFEST_JSON}`);

  // Artifacts were all written before manifest.json: one modified later is not what vmkiln wrote.
  const manifestMtime = (await lstat(manifestPath, { bigint: true })).mtimeNs;
  const expected = new Map<string, { size: number; mtimeNs?: string } | undefined>([
    [MANIFEST_JSON, undefined],
    [SHA256SUMS, undefined],
  ]);
  for (const a of artifacts) {
    expected.set(a.name, { size: a.size, mtimeNs: a.mtime_ns });
    if (a.format === "ova") expected.set(`${a.name}.sha256`, undefined);
  }
  const files: string[] = [];
  const dirs: string[] = [];
  const allowedDirs = new Set<string>();
  for (const name of expected.keys()) for (let d = posix.dirname(name); d !== "."; d = posix.dirname(d)) allowedDirs.add(d);

  let seen = 0;
  const walk = async (rel: string): Promise<string | undefined> => {
    for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
      if (++seen > MAX_ENTRIES) return `more than ${MAX_ENTRIES} entries`;
      const name = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory() && allowedDirs.has(name)) {
        const why = await walk(name);
        if (why) return why;
        dirs.push(name);
        continue;
      }
      if (!entry.isFile() || !expected.has(name)) return `it holds ${name}, which vmkiln did not write`;
      const want = expected.get(name);
      if (want !== undefined) {
        const st = await lstat(join(dir, name), { bigint: true });
        if (st.size !== BigInt(want.size)) return `${name} has ${st.size} bytes where ${MANIFEST_JSON} records ${want.size}: it changed since vmkiln wrote it`;
        if (st.mtimeNs > manifestMtime) return `${name} was modified after vmkiln wrote it (it is newer than ${MANIFEST_JSON})`;
        // Within a microsecond: a cache hit's copy gets the recorded time back through utimes(),
        // whose double seconds carry about 0.25 µs (src/layers/build.ts, materialize).
        if (want.mtimeNs !== undefined && absDiff(st.mtimeNs, BigInt(want.mtimeNs)) >= MTIME_SLACK_NS) {
          return `${name} was modified after vmkiln wrote it (its modification time is not the one ${MANIFEST_JSON} records)`;
        }
      }
      files.push(name);
    }
    return undefined;
  };
  const why = await walk("");
  if (why) return no(why);
  return { owned: true, files, dirs };
}

/**
 * Moves `staging` into place as `out`. An existing `out` must be empty or vmkiln's own output
 * (checked again now: it may have changed during the build); the old output is moved aside first,
 * then its listed files are unlinked one by one and its directories removed only when empty.
 */
export async function replaceOutput(staging: string, out: string, buildId: string): Promise<{ leftBehind?: string }> {
  await mkdir(dirname(out), { recursive: true });
  const st = await lstat(out).catch(() => undefined);
  if (!st) {
    await rename(staging, out);
    return {};
  }
  if (!st.isDirectory() || st.isSymbolicLink()) throw new UserError("OUTPUT_NOT_DIRECTORY", `output.directory: ${out} is no longer a directory; not replacing it`);
  const own = (await readdir(out)).length === 0 ? ({ owned: true, files: [], dirs: [] } as const) : await ownedOutput(out);
  if (!own.owned) {
    throw new UserError("OUTPUT_NOT_OURS", `output.directory: ${out} changed during the build (${own.reason}); not replacing it`);
  }
  const aside = join(dirname(out), `.${buildId}.vmkiln-old`);
  await rename(out, aside);
  await rename(staging, out);
  for (const f of own.files) await unlink(join(aside, f)).catch(() => undefined);
  for (const d of own.dirs) await rmdir(join(aside, d)).catch(() => undefined);
  // Whatever appeared there between the check and the move is kept, and said so.
  return rmdir(aside).then(
    () => ({}),
    () => ({ leftBehind: aside }),
  );
}

/** A download's destination as it goes into the output dir and the manifest: `./a//b` → `a/b`. */
export function downloadName(destination: string): string {
  return posix.normalize(destination.replace(/\\/g, "/")).replace(/^(\.\/)+/, "");
}

/**
 * Names vmkiln writes in an output dir for this spec: reserved, so a download cannot take them
 * (writing it would overwrite an artifact, or the artifact would overwrite it).
 */
export function reservedNames(spec: BuildSpec): Set<string> {
  const b = spec.output.basename;
  return new Set([MANIFEST_JSON, SHA256SUMS, `${b}.qcow2`, `${b}.raw`, `${b}-disk1.vmdk`, `${b}.ovf`, `${b}.mf`, `${b}.ova`, `${b}.ova.sha256`]);
}

function checkDownloadNames(spec: BuildSpec): void {
  const reserved = reservedNames(spec);
  const names = new Map<string, number>();
  spec.provision.forEach((p, i) => {
    if (p.type !== "file" || p.direction !== "download") return;
    const field = `provision[${i}].file.destination`;
    const name = downloadName(p.destination);
    const parts = name.split("/");
    if (name === "." || name === "" || name.startsWith("/") || parts.includes("..") || p.destination.endsWith("/")) {
      throw new UserError("DOWNLOAD_DESTINATION", `${field}: ${JSON.stringify(p.destination)} is not a file path inside output.directory`);
    }
    const bad = parts.map(checkFileName).find(Boolean);
    if (bad) throw new UserError("DOWNLOAD_DESTINATION", `${field}: ${JSON.stringify(p.destination)}: ${bad}`);
    if (reserved.has(name) || reserved.has(parts[0]!)) {
      throw new UserError("DOWNLOAD_NAME_TAKEN", `${field}: ${name} is a file vmkiln writes in the output directory; pick another name`);
    }
    // Two downloads where one would need the other's file as a directory (a, a/b).
    for (const [other, j] of names) {
      if (other !== name && (other.startsWith(`${name}/`) || name.startsWith(`${other}/`))) {
        throw new UserError("DOWNLOAD_DESTINATION", `${field}: ${name} and provision[${j}].file.destination ${other} cannot both exist`);
      }
    }
    names.set(name, i);
  });
}

/** A single path component vmkiln may create: not empty, not `.`/`..`, no separator or NUL. */
export function checkFileName(name: string): string | undefined {
  if (name === "") return "is empty";
  if (name === "." || name === "..") return "is not a file name";
  if (/[/\\\0]/.test(name)) return "must be a plain file name (no / or \\)";
  if (Buffer.byteLength(name) > 200) return "is longer than 200 bytes";
  return undefined;
}

type ManifestArtifact = { name: string; format: string; size: number; sha256: string; mtime_ns?: string };

function manifestArtifacts(m: unknown): ManifestArtifact[] | string {
  if (m === null || typeof m !== "object" || Array.isArray(m)) return "not an object";
  const o = m as Record<string, unknown>;
  if (typeof o.vmkiln_version !== "string") return "no vmkiln_version";
  if (typeof o.build_id !== "string" || !BUILD_ID.test(o.build_id)) return "no vmkiln build_id";
  if (!Array.isArray(o.artifacts)) return "no artifacts list";
  const out: ManifestArtifact[] = [];
  for (const a of o.artifacts as unknown[]) {
    if (a === null || typeof a !== "object") return "an artifact is not an object";
    const { name, format, size, sha256, mtime_ns } = a as Record<string, unknown>;
    if (typeof name !== "string" || typeof format !== "string" || typeof sha256 !== "string" || !SHA256.test(sha256)) return "an artifact lacks name, format or sha256";
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) return `artifact ${name} has no size`;
    // A name that leaves the directory (forged or corrupt) must never become a path to unlink.
    if (name !== downloadName(name) || name.startsWith("/") || name.split("/").some((p) => checkFileName(p) !== undefined)) {
      return `artifact name ${JSON.stringify(name)} is not a path inside the directory`;
    }
    if (mtime_ns !== undefined && (typeof mtime_ns !== "string" || !/^\d{1,30}$/.test(mtime_ns))) return `artifact ${name} has a malformed mtime_ns`;
    out.push({ name, format, size, sha256, ...(mtime_ns === undefined ? {} : { mtime_ns }) });
  }
  return out;
}

async function readSmallFile(path: string, max: number): Promise<string | undefined> {
  const st = await lstat(path).catch(() => undefined);
  if (!st?.isFile() || st.size > max) return undefined;
  return readFile(path, "utf8").catch(() => undefined);
}

/** Local files and directories a build reads: the output directory must not be or contain them. */
export function localInputs(spec: BuildSpec): Array<{ what: string; path: string }> {
  const out: Array<{ what: string; path: string }> = [];
  const add = (what: string, p: string | undefined) => {
    if (p && !isHttpUrl(p) && !p.startsWith("file:") && p.startsWith("/")) out.push({ what, path: p.replace(/[\\/]+$/, "") || "/" });
  };
  if (spec.templatePath !== "<inline>") add("the template", spec.templatePath);
  add("the template's directory", spec.templateDir);
  const src = spec.source;
  if (src.kind !== "clone" && !src.library) add("the source image", src.location);
  if (src.checksum.kind === "file") add("the checksum file", src.checksum.location);
  add(CACHE_INPUT, dirname(cacheDirs().sources));
  add("ssh.private_key_file", spec.ssh.privateKeyFile);
  add("drivers.vsphere.ca_file", spec.drivers.vsphere?.caFile);
  add("http.directory", spec.http?.directory);
  for (const [k, v] of Object.entries(spec.http?.content ?? {})) if ("file" in v) add(`http.content[${JSON.stringify(k)}]`, v.file);
  for (const f of spec.install?.media?.files ?? []) add("an install_media file", f);
  for (const [k, v] of Object.entries(spec.install?.media?.content ?? {})) if ("file" in v) add(`install_media.content[${JSON.stringify(k)}]`, v.file);
  spec.provision.forEach((p, i) => {
    const at = `provision[${i}].${p.type}`;
    if (p.type === "file" && p.direction === "upload") add(`${at}.source`, p.source);
    if ((p.type === "shell" || p.type === "shell_local") && p.script) add(`${at}.script`, p.script);
    if (p.type === "ansible" || p.type === "ansible_local") {
      add(`${at}.playbook`, p.playbook);
      for (const v of p.extraVars) if (typeof v === "string" && v.startsWith("@")) add(`${at}.extra_vars`, v.slice(1));
    }
    if (p.type === "ansible_local") add(`${at}.playbook_dir`, p.playbookDir);
  });
  return out;
}

function isSameOrInside(p: string, dir: string): boolean {
  const rel = relative(dir, p);
  return rel === "" || (!rel.startsWith(`..${sep}`) && rel !== ".." && !rel.startsWith(sep) && !/^[A-Za-z]:/.test(rel));
}

/** The real path of `p`, or of its nearest existing ancestor joined with the rest. */
async function realish(p: string): Promise<string> {
  const abs = resolve(p);
  try {
    return await realpath(abs);
  } catch {
    const parent = dirname(abs);
    if (parent === abs) return abs;
    return join(await realish(parent), abs.slice(parent.length).replace(/^[\\/]+/, ""));
  }
}

async function nearestExisting(p: string): Promise<{ path: string; isDirectory: boolean }> {
  for (let cur = resolve(p); ; cur = dirname(cur)) {
    const st = await lstat(cur).catch(() => undefined);
    if (st) {
      const isDirectory = st.isDirectory() || (st.isSymbolicLink() && (await realpath(cur).then((r) => lstat(r)).then((s) => s.isDirectory(), () => false)));
      return { path: cur, isDirectory };
    }
    if (dirname(cur) === cur) return { path: cur, isDirectory: true };
  }
}
