// The source cache: files named by their digest, so a hit needs no network and two templates that
// point at the same bytes share one copy. Layout under `<root>/sources`:
//   sha256-<hex> / sha512-<hex>     the image (read-only), appears last, atomically
//   <entry>.json                    sidecar: url, size, fetched time, sha256 (always), and the
//                                   file's identity when its bytes were last verified
//   <entry>.lock                    held while one process downloads it
//   partial/<sha256(url)>.part      resumable downloads (+ .part.json validators, .lock)
//   local/<sha256(path)>.json       digest memo for local files

import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { constants } from "node:fs";
import { link, lstat, mkdir, open, readFile, rename, rm, rmdir, stat, unlink } from "node:fs/promises";
import { hostname, homedir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { asAbortError, throwIfAborted } from "../errors.js";
import { hashFileMulti, type DigestAlgo, type Digests } from "./checksum.js";
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
  /** The file's identity when vmkiln last verified its bytes against the entry's digest. */
  verified?: StoredIdentity;
}

/** dev, inode, size and nanosecond mtime/ctime as decimal strings (JSON has no bigint). */
export interface StoredIdentity {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

/**
 * What changes whenever a file's bytes do: a write updates mtime and ctime (ctime cannot be set
 * back from user space, so `touch -d` restoring the mtime still shows), a replacement changes the
 * inode. lstat: a symlink put in place of an entry is not the file that was verified.
 */
export async function storedIdentity(path: string, opts: { follow?: boolean } = {}): Promise<StoredIdentity & { isFile: boolean }> {
  const s = opts.follow ? await stat(path, { bigint: true }) : await lstat(path, { bigint: true });
  return { dev: String(s.dev), ino: String(s.ino), size: String(s.size), mtimeNs: String(s.mtimeNs), ctimeNs: String(s.ctimeNs), isFile: s.isFile() };
}

function sameStoredIdentity(a: StoredIdentity | undefined, b: StoredIdentity): boolean {
  return a !== undefined && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

export interface CacheHit {
  path: string;
  meta: EntryMeta;
}

export interface LookupOptions {
  signal: AbortSignal;
  /** A re-hash is starting (the entry's identity differs from the verified one): for progress. */
  onVerify?: (path: string, size: number) => { set(done: number): void; end(): void };
  /** The entry's bytes no longer match its name: it is treated as a miss (and replaced by the download). */
  onCorrupt?: (path: string, message: string) => void;
}

/**
 * A hit needs the file and a sidecar agreeing on its size, and bytes vmkiln has verified: the
 * entry's identity must be the one recorded when its digest was last checked, or the file is hashed
 * again (a same-size replacement, an edit, a restored backup). A good re-hash records the new
 * identity; a bad one is a miss, so the download replaces the entry. A sidecar without a file
 * (crash between the two renames) or a size disagreement is a miss too.
 */
export async function lookupEntry(dirs: CacheDirs, algo: DigestAlgo, hex: string, opts: LookupOptions): Promise<CacheHit | undefined> {
  const path = join(dirs.sources, entryName(algo, hex));
  let meta: EntryMeta;
  let id: StoredIdentity & { isFile: boolean };
  try {
    const [st, text] = await Promise.all([storedIdentity(path), readFile(`${path}.json`, "utf8")]);
    const m = JSON.parse(text) as Partial<EntryMeta>;
    if (!st.isFile || m.size !== Number(st.size) || typeof m.sha256 !== "string") return undefined;
    meta = m as EntryMeta;
    id = st;
  } catch {
    return undefined;
  }
  if (sameStoredIdentity(meta.verified, id)) return { path, meta };

  const algos: DigestAlgo[] = algo === "sha256" ? ["sha256"] : ["sha256", algo];
  const progress = opts.onVerify?.(path, meta.size);
  let got: Digests & { size: number };
  try {
    got = await hashFileMulti(path, algos, { signal: opts.signal, onProgress: (d) => progress?.set(d), nofollow: true });
  } catch (err) {
    throwIfAborted(opts.signal);
    opts.onCorrupt?.(path, `cannot read it: ${(err as Error).message}`);
    return undefined;
  } finally {
    progress?.end();
  }
  const after = await storedIdentity(path).catch(() => undefined);
  if (got[algo] !== hex.toLowerCase() || got.sha256 !== meta.sha256 || got.size !== meta.size) {
    opts.onCorrupt?.(path, `its bytes no longer match ${entryName(algo, hex)} (changed since vmkiln verified them)`);
    return undefined;
  }
  // Changed while it was read: the digest proves nothing about the bytes now there.
  if (!after || !sameStoredIdentity(id, after)) return undefined;
  const verified: StoredIdentity = { dev: id.dev, ino: id.ino, size: id.size, mtimeNs: id.mtimeNs, ctimeNs: id.ctimeNs };
  const updated: EntryMeta = { ...meta, verified };
  // Recording the identity only saves the next hash; failing to must not fail the build.
  await writeFileAtomic(`${path}.json`, JSON.stringify(updated, null, 2) + "\n", dirs.sources).catch(() => undefined);
  return { path, meta: updated };
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
  // O_NOFOLLOW, and chmod through the descriptor: never through a link planted at the part's name.
  const fh = await open(from, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await fh.sync();
    // Read-only: VMs use the entry as a backing file; nothing should write to it in place.
    await fh.chmod(0o444);
  } finally {
    await fh.close();
  }
  await writeFileAtomic(`${path}.json`, JSON.stringify(full, null, 2) + "\n", dirs.sources);
  await rename(from, path);
  await fsyncDir(dirs.sources);
  // The identity the verified bytes have now (rename changed the ctime): later lookups trust the
  // entry without hashing it only while it stays the same.
  const id = await storedIdentity(path);
  const verified: StoredIdentity = { dev: id.dev, ino: id.ino, size: id.size, mtimeNs: id.mtimeNs, ctimeNs: id.ctimeNs };
  await writeFileAtomic(`${path}.json`, JSON.stringify({ ...full, verified }, null, 2) + "\n", dirs.sources);
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

export interface LocalMemo extends StoredIdentity {
  path: string;
  digests: Digests;
}

/** A local source file's path and identity (stat, following links: a local source may be one). */
export interface FileIdentity extends StoredIdentity {
  path: string;
}

export async function localIdentity(path: string): Promise<FileIdentity & { isFile: boolean }> {
  return { path, ...(await storedIdentity(path, { follow: true })) };
}

function memoPath(dirs: CacheDirs, absPath: string): string {
  return join(dirs.local, `${sha256Text(absPath)}.json`);
}

/**
 * The memo is trusted only when path, device, inode, size and the nanosecond mtime and ctime all
 * match: an edited or replaced file changes at least one of them (ctime also catches `touch -d`
 * restoring an old mtime). Memos of older versions (millisecond times, no device) never match.
 */
export async function readLocalMemo(dirs: CacheDirs, id: FileIdentity): Promise<Digests | undefined> {
  try {
    const m = JSON.parse(await readFile(memoPath(dirs, id.path), "utf8")) as LocalMemo;
    return m.path === id.path && sameStoredIdentity(m, id) ? m.digests : undefined;
  } catch {
    return undefined;
  }
}

export async function writeLocalMemo(dirs: CacheDirs, id: FileIdentity, digests: Digests): Promise<void> {
  await mkdir(dirs.local, { recursive: true });
  const memo: LocalMemo = { path: id.path, dev: id.dev, ino: id.ino, size: id.size, mtimeNs: id.mtimeNs, ctimeNs: id.ctimeNs, digests };
  await writeFileAtomic(memoPath(dirs, id.path), JSON.stringify(memo) + "\n", dirs.local);
}
