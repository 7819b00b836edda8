// Getting the source image: a local file verified in place, or a URL served from the digest-keyed
// cache, downloading (resumably, under a lock) only on a miss.

import { readFile, rm, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { throwIfAborted, UserError } from "../errors.js";
import { progressReporter, type EventBus } from "../log/events.js";
import type { ChecksumSpec, SourceSpec } from "../template/spec.js";
import {
  checkDigestShape,
  findSum,
  hashFileMulti,
  parseSums,
  sourceFileName,
  type DigestAlgo,
  type Digests,
} from "./checksum.js";
import {
  cacheDirs,
  commitEntry,
  ensureDirs,
  entryName,
  lookupEntry,
  localIdentity,
  readLocalMemo,
  removeIfEmpty,
  sha256Text,
  withLock,
  writeLocalMemo,
  type CacheDirs,
  type LockOptions,
  type LookupOptions,
} from "./cache.js";
import { discardPart, displayUrl, download, fetchText } from "./download.js";

export interface ResolvedSourceFile {
  /** Absolute path of the image: the local file itself, or the cache entry. */
  path: string;
  sha256: string;
  size: number;
  /** Where it came from (URL without credentials, or the absolute path), for the manifest. */
  location: string;
  fromCache: boolean;
}

export interface ResolveSourceOptions {
  events: EventBus;
  signal: AbortSignal;
  /** Cache root, replacing $VMKILN_CACHE_DIR; entries go in `<cacheDir>/sources`. */
  cacheDir?: string;
  /** Download tuning; defaults suit real mirrors, tests shorten them. */
  download?: {
    retries?: number;
    retryDelayMs?: number;
    headersTimeoutMs?: number;
    bodyTimeoutMs?: number;
  };
}

interface Expected {
  algo: DigestAlgo;
  hex: string;
}

export function isHttpUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

export async function resolveSource(spec: SourceSpec, opts: ResolveSourceOptions): Promise<ResolvedSourceFile> {
  throwIfAborted(opts.signal);
  const dirs = cacheDirs(opts.cacheDir);
  if (isHttpUrl(spec.location)) return resolveUrl(spec, dirs, opts);
  const path = spec.location.startsWith("file:") ? fileURLToPath(spec.location) : resolve(spec.location);
  return resolveLocal(path, spec.checksum, dirs, opts);
}

// ---------------------------------------------------------------------------------------------

async function expectedDigest(location: string, checksum: ChecksumSpec, opts: ResolveSourceOptions): Promise<Expected | undefined> {
  switch (checksum.kind) {
    case "none":
      return undefined;
    case "sha256":
    case "sha512":
      return { algo: checksum.kind, hex: checkDigestShape(checksum.kind, checksum.hex, "source.checksum") };
    case "file": {
      const text = await readSumsFile(checksum.location, opts);
      const name = sourceFileName(location);
      const entry = findSum(parseSums(text), name);
      if (!entry) {
        throw new UserError(
          "CHECKSUM_NOT_LISTED",
          `checksum file ${displayUrl(checksum.location)} has no entry for "${name}"`,
          { hint: "check that the checksum file belongs to the same release as the source URL" },
        );
      }
      return { algo: entry.algo, hex: entry.hex };
    }
  }
}

async function readSumsFile(location: string, opts: ResolveSourceOptions): Promise<string> {
  if (isHttpUrl(location)) {
    return fetchText(location, { signal: opts.signal, ...opts.download });
  }
  const path = location.startsWith("file:") ? fileURLToPath(location) : location;
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new UserError("CHECKSUM_FILE_MISSING", `cannot read checksum file ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`, {
      cause: err,
    });
  }
}

function mismatch(where: string, expected: Expected, got: Digests): UserError {
  return new UserError(
    "CHECKSUM_MISMATCH",
    `checksum mismatch for ${where}: expected ${expected.algo}:${expected.hex}, got ${expected.algo}:${got[expected.algo]}`,
    { hint: "the file is corrupt or the checksum is for another release" },
  );
}

// ---------------------------------------------------------------------------------------------
// Local files: hashed in place (no copy), with a memo so an unchanged file is not re-read every build.

async function resolveLocal(
  path: string,
  checksum: ChecksumSpec,
  dirs: CacheDirs,
  opts: ResolveSourceOptions,
): Promise<ResolvedSourceFile> {
  let st;
  try {
    st = await localIdentity(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError("SOURCE_NOT_FOUND", code === "ENOENT" ? `source file not found: ${path}` : `cannot read source file ${path}: ${code}`, {
      cause: err,
    });
  }
  if (!st.isFile) throw new UserError("SOURCE_NOT_FILE", `source is not a regular file: ${path}`);
  const size = Number(st.size);

  const expected = await expectedDigest(path, checksum, opts);
  const algos: DigestAlgo[] = expected && expected.algo !== "sha256" ? ["sha256", expected.algo] : ["sha256"];
  const { isFile: _isFile, ...id } = st;

  let digests = await readLocalMemo(dirs, id);
  const memoHit = digests !== undefined && algos.every((a) => digests![a] !== undefined);
  if (!memoHit) {
    const progress = progressReporter(opts.events, `hash ${basename(path)}`, size);
    try {
      digests = await hashFileMulti(path, algos, { signal: opts.signal, onProgress: (d) => progress.set(d) });
    } finally {
      progress.end();
    }
  }
  const got = digests!;
  if (expected && got[expected.algo] !== expected.hex) throw mismatch(path, expected, got);
  if (!expected) opts.events.warn(`source ${path} has no checksum: it is used unverified`);
  if (!memoHit) {
    // Only bytes that did not change while they were hashed may be vouched for by the memo.
    const after = await localIdentity(path).catch(() => undefined);
    const unchanged = after && after.ino === id.ino && after.dev === id.dev && after.size === id.size && after.mtimeNs === id.mtimeNs && after.ctimeNs === id.ctimeNs;
    // The memo only saves time; failing to write it must not fail the build.
    if (unchanged) await writeLocalMemo(dirs, id, got).catch((err) => opts.events.debug(`digest memo not written: ${String(err)}`));
  }
  return { path, sha256: got.sha256!, size, location: path, fromCache: false };
}

// ---------------------------------------------------------------------------------------------
// URLs

async function resolveUrl(spec: SourceSpec, dirs: CacheDirs, opts: ResolveSourceOptions): Promise<ResolvedSourceFile> {
  const url = spec.location;
  const shown = displayUrl(url);
  const expected = await expectedDigest(url, spec.checksum, opts);

  if (expected) {
    const hit = await lookupEntry(dirs, expected.algo, expected.hex, lookupOptions(opts));
    if (hit) {
      opts.events.debug(`source ${shown} found in cache: ${hit.path}`);
      return { path: hit.path, sha256: hit.meta.sha256, size: hit.meta.size, location: shown, fromCache: true };
    }
  } else {
    opts.events.warn(`source ${shown} has no checksum: it is downloaded every build and used unverified`);
  }

  // Note what this attempt creates so a failure can leave the cache exactly as it found it.
  const existed = await Promise.all([exists(dirs.sources), exists(dirs.partial)]);
  await ensureDirs(dirs);
  const lockOpts: LockOptions = {
    signal: opts.signal,
    onWait: (h) => opts.events.info(`waiting for another vmkiln process (pid ${h.pid}) downloading ${shown}`),
  };
  const partPath = join(dirs.partial, `${sha256Text(url)}.part`);
  try {
    // The entry lock makes two builds of the same digest download once (even from two mirrors);
    // the part lock keeps two writers off the same part file (same URL, different checksums).
    const entryLock = join(dirs.sources, `${expected ? entryName(expected.algo, expected.hex) : `url-${sha256Text(url)}`}.lock`);
    return await withLock(entryLock, lockOpts, async () => {
      if (expected) {
        const hit = await lookupEntry(dirs, expected.algo, expected.hex, lookupOptions(opts));
        if (hit) return { path: hit.path, sha256: hit.meta.sha256, size: hit.meta.size, location: shown, fromCache: true };
      }
      return await withLock(`${partPath}.lock`, lockOpts, () => downloadAndCommit(url, partPath, expected, dirs, opts));
    });
  } catch (err) {
    if (!existed[1]) await removeIfEmpty(dirs.partial);
    if (!existed[0]) await removeIfEmpty(dirs.sources);
    throw err;
  }
}

async function downloadAndCommit(
  url: string,
  partPath: string,
  expected: Expected | undefined,
  dirs: CacheDirs,
  opts: ResolveSourceOptions,
): Promise<ResolvedSourceFile> {
  const shown = displayUrl(url);
  const algo: DigestAlgo = expected?.algo ?? "sha256";
  const algos: DigestAlgo[] = algo === "sha256" ? ["sha256"] : ["sha256", algo];

  for (let attempt = 0; ; attempt++) {
    // Created on the first report: the total is known only once the response headers arrive.
    let progress: ReturnType<typeof progressReporter> | undefined;
    let result;
    try {
      result = await download({
        url,
        partPath,
        algos,
        signal: opts.signal,
        ...opts.download,
        onProgress: (done, total) => {
          progress ??= progressReporter(opts.events, `download ${sourceFileName(url)}`, total);
          progress.set(done);
        },
      });
    } finally {
      progress?.end();
    }
    if (expected && result.digests[algo] !== expected.hex) {
      await discardPart(partPath);
      // A resumed download can splice two versions of a file that changed upstream without a
      // validator change; one fresh download settles whether the bytes or the checksum are wrong.
      if (result.resumedFrom > 0 && attempt === 0) {
        opts.events.warn(`checksum mismatch after resuming ${shown}; downloading it again from the start`);
        continue;
      }
      throw mismatch(shown, expected, result.digests);
    }
    const path = await commitEntry(dirs, partPath, algo, result.digests, {
      url: shown,
      size: result.size,
      fetchedAt: new Date().toISOString(),
    });
    await rm(`${partPath}.json`, { force: true });
    return { path, sha256: result.digests.sha256!, size: result.size, location: shown, fromCache: false };
  }
}

/** Cache lookups re-hash an entry whose identity changed since it was verified: show it, say why. */
function lookupOptions(opts: ResolveSourceOptions): LookupOptions {
  return {
    signal: opts.signal,
    onVerify: (path, size) => progressReporter(opts.events, `verify ${basename(path)}`, size),
    onCorrupt: (path, message) => opts.events.warn(`cache entry ${path}: ${message}; it is not used`),
  };
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
