// The source cache: files named by their digest, so a hit needs no network and two templates that
// point at the same bytes share one copy. Layout under `<root>/sources`:
//   sha256-<hex> / sha512-<hex>     the image (read-only), appears last, atomically
//   <entry>.json                    sidecar: url, size, fetched time, sha256 (always)
//   <entry>.lock                    held while one process downloads it
//   partial/<sha256(url)>.part      resumable downloads (+ .part.json validators, .lock)
//   local/<sha256(path)>.json       digest memo for local files

import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { chmod, link, mkdir, open, readFile, rename, rm, rmdir, stat, unlink } from "node:fs/promises";
import { hostname, homedir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { asAbortError, throwIfAborted } from "../errors.js";
import type { DigestAlgo, Digests } from "./checksum.js";
import { fsyncDir, writeFileAtomic } from "../util/atomic.js";

export { writeFileAtomic };

export interface CacheDirs {
  /** `<root>/sources` */
  sources: string;
  partial: string;
  local: string;
}

/**
 * `root` (the `cacheDir` option) replaces `$VMKILN_CACHE_DIR`; otherwise XDG, then ~/.cache.
 * Sources live in a `sources/` subdirectory so other caches can sit beside them.
 */
export function cacheDirs(root?: string, env: NodeJS.ProcessEnv = process.env): CacheDirs {
  const base =
    root ??
    (env.VMKILN_CACHE_DIR ||
      (env.XDG_CACHE_HOME ? join(env.XDG_CACHE_HOME, "vmkiln") : join(homedir(), ".cache", "vmkiln")));
  const sources = join(base, "sources");
  return { sources, partial: join(sources, "partial"), local: join(sources, "local") };
}

export function entryName(algo: DigestAlgo, hex: string): string {
  return `${algo}-${hex.toLowerCase()}`;
}

export function sha256Text(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export interface EntryMeta {
  url: string;
  size: number;
  fetchedAt: string;
  sha256: string;
  sha512?: string;
}

export interface CacheHit {
  path: string;
  meta: EntryMeta;
}

/**
 * A hit needs the file and a sidecar agreeing on its size. A sidecar without a file (crash between
 * the two renames) or a size disagreement is a miss: the download then overwrites both.
 */
export async function lookupEntry(dirs: CacheDirs, algo: DigestAlgo, hex: string): Promise<CacheHit | undefined> {
  const path = join(dirs.sources, entryName(algo, hex));
  try {
    const [st, text] = await Promise.all([stat(path), readFile(`${path}.json`, "utf8")]);
    const meta = JSON.parse(text) as Partial<EntryMeta>;
    if (!st.isFile() || meta.size !== st.size || typeof meta.sha256 !== "string") return undefined;
    return { path, meta: meta as EntryMeta };
  } catch {
    return undefined;
  }
}


/**
 * Moves a complete, verified file (on the same filesystem, e.g. `partial/…`) into the cache. The
 * sidecar goes first so the image's own rename is the single step that makes the entry visible.
 */
export async function commitEntry(
  dirs: CacheDirs,
  from: string,
  algo: DigestAlgo,
  digests: Digests,
  meta: Omit<EntryMeta, "sha256" | "sha512">,
): Promise<string> {
  const hex = digests[algo]!;
  const path = join(dirs.sources, entryName(algo, hex));
  const full: EntryMeta = { ...meta, sha256: digests.sha256!, ...(digests.sha512 ? { sha512: digests.sha512 } : {}) };
  const fh = await open(from, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  // Read-only: VMs use the entry as a backing file; nothing should write to it in place.
  await chmod(from, 0o444);
  await writeFileAtomic(`${path}.json`, JSON.stringify(full, null, 2) + "\n", dirs.sources);
  await rename(from, path);
  await fsyncDir(dirs.sources);
  return path;
}

// ---------------------------------------------------------------------------------------------
// Locks

interface LockOwner {
  pid: number;
  host: string;
  /** Kernel start time of the process (/proc/<pid>/stat field 22), to tell a reused pid apart. */
  startTicks: string | undefined;
  startedAt: string;
  nonce: string;
}

function procStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return rest[19]; // field 22 overall; rest[0] is field 3
  } catch {
    return undefined;
  }
}

function isAlive(owner: LockOwner): boolean {
  // A lock from another host (shared cache on NFS) can't be checked: assume it is live.
  if (owner.host !== hostname()) return true;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  if (owner.startTicks !== undefined) {
    const now = procStartTicks(owner.pid);
    if (now !== undefined && now !== owner.startTicks) return false; // pid reused by another process
  }
  return true;
}

const selfTicks = procStartTicks(process.pid);

export interface LockOptions {
  signal: AbortSignal;
  /** Called once when another live process holds the lock, before the first wait. */
  onWait?: (holder: { pid: number; startedAt: string }) => void;
  /** An unreadable/empty lock older than this is stale (its writer died between create and write). */
  emptyStaleMs?: number;
}

export interface Lock {
  release(): Promise<void>;
}

/**
 * Exclusive-create lock file holding the owner's pid and start time. Waiters back off up to 1 s and
 * steal the lock when its owner is dead. Abortable while waiting.
 */
export async function acquireLock(path: string, opts: LockOptions): Promise<Lock> {
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    startTicks: selfTicks,
    startedAt: new Date().toISOString(),
    nonce: randomBytes(8).toString("hex"),
  };
  const text = JSON.stringify(owner);
  let delay = 25;
  let told = false;
  for (;;) {
    throwIfAborted(opts.signal);
    try {
      const fh = await open(path, "wx", 0o644);
      try {
        await fh.writeFile(text);
      } finally {
        await fh.close();
      }
      return { release: () => releaseLock(path, owner.nonce) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const held = await readLock(path);
    if (held === "gone") continue;
    if (held === "unreadable") {
      if (await olderThan(path, opts.emptyStaleMs ?? 5000)) {
        await stealLock(path, undefined);
        continue;
      }
    } else if (!isAlive(held)) {
      await stealLock(path, held.nonce);
      continue;
    } else if (!told) {
      told = true;
      opts.onWait?.({ pid: held.pid, startedAt: held.startedAt });
    }
    try {
      await sleep(delay, undefined, { signal: opts.signal });
    } catch {
      throw asAbortError(opts.signal.reason);
    }
    delay = Math.min(1000, delay * 2);
  }
}

/** Runs `fn` holding the lock; always releases it, also on failure or abort. */
export async function withLock<T>(path: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(path, opts);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

async function readLock(path: string): Promise<LockOwner | "gone" | "unreadable"> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "gone";
    throw err;
  }
  try {
    const o = JSON.parse(text) as LockOwner;
    if (typeof o.pid === "number" && typeof o.nonce === "string") return o;
  } catch {
    /* half-written */
  }
  return "unreadable";
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    return false;
  }
}

/**
 * Removes a dead owner's lock without racing another stealer: move it aside under a unique name, and
 * if what we moved turns out to be a fresh live lock (someone stole and re-created it in between),
 * put it back with link(), which refuses to overwrite.
 */
async function stealLock(path: string, staleNonce: string | undefined): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  const moved = await readLock(aside);
  const wasStale = moved === "unreadable" ? staleNonce === undefined : moved !== "gone" && moved.nonce === staleNonce;
  if (!wasStale) {
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}

async function releaseLock(path: string, nonce: string): Promise<void> {
  const held = await readLock(path).catch(() => "gone" as const);
  // Only remove our own lock: if it was stolen (we looked dead), the new owner's lock stays.
  if (typeof held === "object" && held.nonce !== nonce) return;
  await rm(path, { force: true });
}

/** Removes now-empty cache subdirectories a failed attempt created, so it leaves no trace. */
export async function removeIfEmpty(...dirs: string[]): Promise<void> {
  for (const d of dirs) {
    try {
      await rmdir(d);
    } catch {
      /* not empty or gone */
    }
  }
}

export async function ensureDirs(dirs: CacheDirs): Promise<void> {
  await mkdir(dirs.partial, { recursive: true });
}

// ---------------------------------------------------------------------------------------------
// Local-file digest memo

export interface LocalMemo {
  path: string;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  digests: Digests;
}

export interface FileIdentity {
  path: string;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

function memoPath(dirs: CacheDirs, absPath: string): string {
  return join(dirs.local, `${sha256Text(absPath)}.json`);
}

/**
 * The memo is trusted only when path, size, mtime, ctime and inode all match: an edited or replaced
 * file changes at least one of them (ctime also catches `touch -d` restoring an old mtime).
 */
export async function readLocalMemo(dirs: CacheDirs, id: FileIdentity): Promise<Digests | undefined> {
  try {
    const m = JSON.parse(await readFile(memoPath(dirs, id.path), "utf8")) as LocalMemo;
    const same =
      m.path === id.path && m.size === id.size && m.mtimeMs === id.mtimeMs && m.ctimeMs === id.ctimeMs && m.ino === id.ino;
    return same ? m.digests : undefined;
  } catch {
    return undefined;
  }
}

export async function writeLocalMemo(dirs: CacheDirs, id: FileIdentity, digests: Digests): Promise<void> {
  await mkdir(dirs.local, { recursive: true });
  const memo: LocalMemo = { ...id, digests };
  await writeFileAtomic(memoPath(dirs, id.path), JSON.stringify(memo) + "\n", dirs.local);
}
