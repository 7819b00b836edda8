// The stage cache (issue 17), beside the source cache under the cache root:
//   stages/<key>/entry.json      what the entry is: stage, template, parent, inputs, masked spec, and
//                                every file with its size, sha256 and the identity it had when hashed
//   stages/<key>/files/...       the stage's output: its disk (and, for a last stage, every artifact,
//                                SHA256SUMS and manifest.json, copied out byte for byte on a hit)
//   stages/<key>.lock            held while one process builds the stage; others wait, then hit
//   stages/.tmp/<key>.<pid>.<r>  a build in progress; never read as an entry
// Trust follows the source cache (src/source/cache.ts): an entry appears by one rename of a complete
// directory whose entry.json was written last, so a build killed at any point leaves only a .tmp dir;
// a file is trusted while its identity (dev, inode, size, ns mtime/ctime) is the one recorded after
// hashing, and hashed again otherwise.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, lstat, mkdir, readFile, readdir, rename, rm, stat, utimes } from "node:fs/promises";
import { dirname, join } from "node:path";
import { throwIfAborted } from "../errors.js";
import { cacheDirs, storedIdentity, type StoredIdentity } from "../source/cache.js";
import { fsyncDir, writeFileAtomic } from "../util/atomic.js";
import type { KeptResult } from "../pipeline/driver.js";
import { pidAlive } from "../pipeline/journal.js";

export interface StageDirs {
  root: string;
  stages: string;
  tmp: string;
}

export function stageDirs(root?: string): StageDirs {
  const base = dirname(cacheDirs(root).sources);
  const stages = join(base, "stages");
  return { root: base, stages, tmp: join(stages, ".tmp") };
}

export interface EntryFile {
  /** Relative to files/, "/"-separated. */
  name: string;
  size: number;
  sha256: string;
  verified?: StoredIdentity;
}

export interface StageEntry {
  schema: 1;
  key: string;
  stage: string;
  template: string;
  driver: string;
  vmkiln_version: string;
  created: string;
  /** Key of the stage whose disk this one was built on. */
  parent?: string;
  source: { digest: string; location: string };
  inputs: Array<{ what: string; path: string; sha256: string }>;
  /** The spec as digested, secrets masked. */
  spec: unknown;
  /** The disk a next stage boots from (qcow2), relative to files/. */
  disk?: string;
  /**
   * Instead of a disk: the stage's VM as the hypervisor keeps it (vSphere: a template by inventory
   * path, moref, instanceUuid); the next stage clones it. Checked to still exist on every hit.
   */
  kept?: KeptResult;
  files: EntryFile[];
}

export const KEY_PATTERN = /^[0-9a-f]{64}$/;

export function entryDir(dirs: StageDirs, key: string): string {
  if (!KEY_PATTERN.test(key)) throw new Error(`not a stage key: ${key}`);
  return join(dirs.stages, key);
}

export function lockPath(dirs: StageDirs, key: string): string {
  return `${entryDir(dirs, key)}.lock`;
}

export interface Hit {
  dir: string;
  entry: StageEntry;
}

export async function readEntry(dirs: StageDirs, key: string): Promise<StageEntry | undefined> {
  try {
    const st = await lstat(join(entryDir(dirs, key), "entry.json"));
    if (!st.isFile() || st.size > 64 * 1024 * 1024) return undefined;
    const e = JSON.parse(await readFile(join(entryDir(dirs, key), "entry.json"), "utf8")) as StageEntry;
    if (e.schema !== 1 || e.key !== key || !Array.isArray(e.files)) return undefined;
    for (const f of e.files) if (!isSafeRel(f.name) || typeof f.size !== "number" || !KEY_PATTERN.test(f.sha256)) return undefined;
    if (e.kept !== undefined && !isKept(e.kept)) return undefined;
    return e;
  } catch {
    return undefined;
  }
}

/**
 * A hit: a readable entry whose every file is a regular file with the recorded size, and either the
 * identity recorded when it was hashed or bytes that hash to the recorded sha256 now. Anything less
 * is a miss (`onBad` says why), so the stage is built again and the entry replaced.
 */
export async function lookupStage(dirs: StageDirs, key: string, signal: AbortSignal, onBad?: (why: string) => void): Promise<Hit | undefined> {
  const entry = await readEntry(dirs, key);
  if (!entry) return undefined;
  const dir = entryDir(dirs, key);
  let changed = false;
  for (const f of entry.files) {
    throwIfAborted(signal);
    const p = join(dir, "files", f.name);
    const id = await storedIdentity(p).catch(() => undefined);
    if (!id || !id.isFile || Number(id.size) !== f.size) {
      onBad?.(`${f.name} is missing or changed size`);
      return undefined;
    }
    if (f.verified && sameId(f.verified, id)) continue;
    if ((await sha256Of(p, signal)) !== f.sha256) {
      onBad?.(`${f.name} no longer matches its sha256`);
      return undefined;
    }
    f.verified = pick(id);
    changed = true;
  }
  // Only saves the next re-hash; failing to record it must not fail the build.
  if (changed) await writeFileAtomic(join(dir, "entry.json"), JSON.stringify(entry, null, 2) + "\n").catch(() => undefined);
  const now = new Date();
  await utimes(join(dir, "entry.json"), now, now).catch(() => undefined); // last use, for prune
  return { dir, entry };
}

/** A fresh private directory for one build of `key`; committed by commitStage or removed. */
export async function makeTmp(dirs: StageDirs, key: string): Promise<string> {
  await mkdir(dirs.tmp, { recursive: true });
  const dir = join(dirs.tmp, `${key}.${process.pid}.${randomBytes(4).toString("hex")}`);
  await mkdir(dir);
  return dir;
}

/**
 * Hashes and seals `tmp/files`, writes entry.json last, and renames the directory into place. The
 * rename is the single step that makes the entry visible; an entry already there (a build that did
 * not take the lock) wins and ours is dropped, unless `replace` (the caller holds the key's lock and
 * built the stage because that entry must not be used: --no-cache, a kept template that is gone).
 */
export async function commitStage(dirs: StageDirs, tmp: string, entry: Omit<StageEntry, "files">, signal: AbortSignal, opts: { replace?: boolean } = {}): Promise<Hit> {
  await mkdir(join(tmp, "files"), { recursive: true }); // a kept stage (vSphere template) writes no file
  const files: EntryFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const d of (await readdir(join(tmp, "files", rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const name = rel === "" ? d.name : `${rel}/${d.name}`;
      if (d.isDirectory()) await walk(name);
      else if (d.isFile()) {
        const p = join(tmp, "files", name);
        await chmod(p, 0o444); // a next stage's backing file; nothing writes to an entry in place
        const sha256 = await sha256Of(p, signal);
        const id = await storedIdentity(p);
        files.push({ name, size: Number(id.size), sha256, verified: pick(id) });
      } else throw new Error(`stage output ${name} is not a regular file`);
    }
  };
  await walk("");
  const full: StageEntry = { ...entry, files };
  await writeFileAtomic(join(tmp, "entry.json"), JSON.stringify(full, null, 2) + "\n", tmp);
  const dir = entryDir(dirs, entry.key);
  await mkdir(dirs.stages, { recursive: true });
  if (!opts.replace && (await readEntry(dirs, entry.key))) {
    await rm(tmp, { recursive: true, force: true });
  } else {
    // A damaged entry lookupStage refused, or one being replaced: moved aside in one rename (a
    // concurrent lookup sees it whole or not at all), then deleted.
    await removeStage(dirs, entry.key);
    await rename(tmp, dir);
    await fsyncDir(dirs.stages);
  }
  const hit = await lookupStage(dirs, entry.key, signal);
  if (!hit) throw new Error(`stage cache entry ${entry.key} did not verify after it was written`);
  return hit;
}

export interface ListedEntry {
  key: string;
  entry: StageEntry;
  size: number;
  lastUsed: Date;
}

export async function listStages(dirs: StageDirs): Promise<ListedEntry[]> {
  const names = await readdir(dirs.stages).catch(() => [] as string[]);
  const out: ListedEntry[] = [];
  for (const key of names.filter((n) => KEY_PATTERN.test(n))) {
    const entry = await readEntry(dirs, key);
    if (!entry) continue;
    const st = await stat(join(entryDir(dirs, key), "entry.json"));
    out.push({ key, entry, size: entry.files.reduce((a, f) => a + f.size, 0), lastUsed: st.mtime });
  }
  return out.sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime());
}

/**
 * Removes an entry: first renamed into .tmp (one step: a concurrent lookup sees it or not, never
 * half of it), then deleted.
 */
export async function removeStage(dirs: StageDirs, key: string): Promise<boolean> {
  const dir = entryDir(dirs, key);
  if (!(await lstat(dir).catch(() => undefined))) return false;
  await mkdir(dirs.tmp, { recursive: true });
  const aside = join(dirs.tmp, `${key}.removed.${randomBytes(4).toString("hex")}`);
  await rename(dir, aside);
  await rm(aside, { recursive: true, force: true });
  return true;
}

/** Build dirs of processes that are gone (killed mid-build): never trusted, removed here. */
export async function removeStaleTmp(dirs: StageDirs): Promise<string[]> {
  const removed: string[] = [];
  for (const n of await readdir(dirs.tmp).catch(() => [] as string[])) {
    const m = /^[0-9a-f]{64}\.(\d+)\.[0-9a-f]{8}$/.exec(n);
    const removedAside = /\.removed\./.test(n);
    if (!m && !removedAside) continue;
    if (m && pidAlive(Number(m[1]))) continue;
    await rm(join(dirs.tmp, n), { recursive: true, force: true });
    removed.push(n);
  }
  return removed;
}

export interface PruneOptions {
  /** Keep the N most recently used entries. */
  keep?: number;
  /** Remove entries not used for longer than this. */
  olderThanMs?: number;
  /** Remove least recently used entries until the total is at most this. */
  maxBytes?: number;
  /** Never removed (the entries the running build uses). */
  protect?: Set<string>;
  dryRun?: boolean;
}

export interface PruneResult {
  removed: ListedEntry[];
  /** Entry directories whose entry.json cannot be read (never trusted): removed, whatever the options. */
  damaged: string[];
  /** Bytes of the entries left. */
  leftBytes: number;
  /** Set when --max-size could not be reached: why (the entries that had to stay). */
  short?: string;
}

/**
 * Removes what the options select. A size cap evicts least recently used entries until the entries
 * left fit, whatever else was selected; entries it may not remove (the running build's, and those a
 * live build holds the lock of: it is replacing them) stay, and `short` says so when they alone
 * exceed the cap. A damaged entry (no readable entry.json) takes space but is never trusted: it goes.
 */
export async function pruneStages(dirs: StageDirs, o: PruneOptions): Promise<PruneResult> {
  const list = await listStages(dirs); // most recent first
  const blocked = new Map<string, string>();
  for (const e of list) {
    if (o.protect?.has(e.key)) blocked.set(e.key, "used by this build");
    else {
      const pid = await lockOwner(dirs, e.key);
      if (pid !== undefined) blocked.set(e.key, `locked by pid ${pid}, which is building it`);
    }
  }
  const doomed = new Set<string>();
  const now = Date.now();
  list.forEach((e, i) => {
    if (blocked.has(e.key)) return;
    if (o.keep !== undefined && i >= o.keep) doomed.add(e.key);
    if (o.olderThanMs !== undefined && now - e.lastUsed.getTime() > o.olderThanMs) doomed.add(e.key);
  });
  let left = list.filter((e) => !doomed.has(e.key)).reduce((a, e) => a + e.size, 0);
  if (o.maxBytes !== undefined) {
    for (const e of [...list].reverse()) {
      if (left <= o.maxBytes) break;
      if (doomed.has(e.key) || blocked.has(e.key)) continue;
      doomed.add(e.key);
      left -= e.size;
    }
  }
  const removed = list.filter((e) => doomed.has(e.key));
  const listed = new Set(list.map((e) => e.key));
  const damaged: string[] = [];
  for (const n of await readdir(dirs.stages).catch(() => [] as string[])) {
    if (KEY_PATTERN.test(n) && !listed.has(n) && (await lockOwner(dirs, n)) === undefined) damaged.push(n);
  }
  if (!o.dryRun) {
    for (const e of removed) await removeStage(dirs, e.key);
    for (const k of damaged) await removeStage(dirs, k);
    await removeStaleTmp(dirs);
  }
  const result: PruneResult = { removed, damaged, leftBytes: left };
  if (o.maxBytes !== undefined && left > o.maxBytes) {
    const stay = list.filter((e) => blocked.has(e.key));
    result.short = `${left} bytes stay, over the cap of ${o.maxBytes}: ${stay.map((e) => `${e.entry.stage} (${e.key.slice(0, 16)}…, ${e.size} bytes) is ${blocked.get(e.key)}`).join("; ")}`;
  }
  return result;
}

/** The live pid holding `<key>.lock` (building or replacing the entry), if any. */
async function lockOwner(dirs: StageDirs, key: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(lockPath(dirs, key), "utf8");
  } catch {
    return undefined;
  }
  try {
    const pid = (JSON.parse(text) as { pid?: unknown }).pid;
    return typeof pid === "number" && Number.isSafeInteger(pid) && pid > 0 && pidAlive(pid) ? pid : undefined;
  } catch {
    return undefined; // half-written by a build that died: nobody holds it
  }
}

export async function sha256Of(p: string, signal: AbortSignal): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(p, { signal })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** A relative "/"-separated path that stays inside its root: no "..", no absolute, no empty part. */
export function isSafeRel(name: unknown): name is string {
  if (typeof name !== "string" || name === "" || name.length > 1024 || name.startsWith("/") || name.includes("\\") || name.includes("\0")) return false;
  return name.split("/").every((part) => part !== "" && part !== "." && part !== "..");
}

function isKept(k: unknown): k is KeptResult {
  if (k === null || typeof k !== "object") return false;
  const r = k as Record<string, unknown>;
  const id = r.identity;
  return (
    typeof r.driver === "string" &&
    typeof r.location === "string" &&
    r.location !== "" &&
    id !== null &&
    typeof id === "object" &&
    !Array.isArray(id) &&
    Object.values(id as object).every((v) => typeof v === "string")
  );
}

function sameId(a: StoredIdentity, b: StoredIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

function pick(id: StoredIdentity): StoredIdentity {
  return { dev: id.dev, ino: id.ino, size: id.size, mtimeNs: id.mtimeNs, ctimeNs: id.ctimeNs };
}
