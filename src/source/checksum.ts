// Streaming digests and SHA256SUMS-style parsing. Images are gigabytes: everything here reads in
// chunks and computes every wanted digest in the same pass over the bytes.

import { createHash, type Hash } from "node:crypto";
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { asAbortError, throwIfAborted, UserError } from "../errors.js";

export type DigestAlgo = "sha256" | "sha512";
export type Digests = Partial<Record<DigestAlgo, string>>;

const HEX_LENGTH: Record<DigestAlgo, number> = { sha256: 64, sha512: 128 };

/** The algorithm a bare hex digest belongs to, from its length; undefined for md5/sha1/garbage. */
export function algoForHex(hex: string): DigestAlgo | undefined {
  if (!/^[0-9a-fA-F]+$/.test(hex)) return undefined;
  if (hex.length === HEX_LENGTH.sha256) return "sha256";
  if (hex.length === HEX_LENGTH.sha512) return "sha512";
  return undefined;
}

export function isValidHex(algo: DigestAlgo, hex: string): boolean {
  return hex.length === HEX_LENGTH[algo] && /^[0-9a-fA-F]+$/.test(hex);
}

/** Several hashes fed with the same bytes, so one read serves sha256 (manifest) and the checked algo. */
export class MultiHash {
  private readonly hashes = new Map<DigestAlgo, Hash>();

  constructor(algos: Iterable<DigestAlgo>) {
    for (const a of algos) if (!this.hashes.has(a)) this.hashes.set(a, createHash(a));
  }

  update(chunk: Uint8Array): void {
    for (const h of this.hashes.values()) h.update(chunk);
  }

  /** Lowercase hex per algorithm. Call once. */
  digest(): Digests {
    const out: Digests = {};
    for (const [a, h] of this.hashes) out[a] = h.digest("hex");
    return out;
  }
}

export interface HashOptions {
  signal?: AbortSignal;
  /** Called with the cumulative number of bytes hashed. */
  onProgress?: (done: number) => void;
  /** Hash only the first `length` bytes (resume: the part already on disk). */
  length?: number;
  /** Refuse a symlink (O_NOFOLLOW): for vmkiln's own cache files, never for a user's source path. */
  nofollow?: boolean;
}

const CHUNK = 1024 * 1024;

/** Feeds a file (or its first `length` bytes) into `hash`; returns the bytes read. */
export async function hashInto(path: string, hash: MultiHash, opts: HashOptions = {}): Promise<number> {
  const fh = await open(path, opts.nofollow ? constants.O_RDONLY | constants.O_NOFOLLOW : "r");
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    const limit = opts.length ?? Number.POSITIVE_INFINITY;
    let done = 0;
    while (done < limit) {
      if (opts.signal) throwIfAborted(opts.signal);
      const want = Math.min(CHUNK, limit - done);
      const { bytesRead } = await fh.read(buf, 0, want, done);
      if (bytesRead === 0) break;
      // update() copies what it needs, so reusing `buf` for the next read is safe.
      hash.update(buf.subarray(0, bytesRead));
      done += bytesRead;
      opts.onProgress?.(done);
    }
    return done;
  } catch (err) {
    if (opts.signal?.aborted) throw asAbortError(opts.signal.reason);
    throw err;
  } finally {
    await fh.close();
  }
}

/** Lowercase hex digest of a whole file. */
export async function hashFile(path: string, algo: DigestAlgo, opts: HashOptions = {}): Promise<string> {
  const d = await hashFileMulti(path, [algo], opts);
  return d[algo]!;
}

/** Several digests of a file in one pass. */
export async function hashFileMulti(
  path: string,
  algos: DigestAlgo[],
  opts: HashOptions = {},
): Promise<Digests & { size: number }> {
  const h = new MultiHash(algos);
  const size = await hashInto(path, h, opts);
  return { ...h.digest(), size };
}

export interface SumsEntry {
  /** The file name as written in the sums file (a leading `./` or `*` marker removed). */
  name: string;
  algo: DigestAlgo;
  /** Lowercase. */
  hex: string;
}

// BSD/tag style (`sha256sum --tag`, Fedora CHECKSUM): `SHA256 (name) = hex`. GNU style: `hex  name`
// (text mode) or `hex *name` (binary mode). Either starts with `\` when coreutils escaped the name
// (it holds a backslash or a newline: `\\`, `\n`, and `\r` since coreutils 9.2); see coreutils
// src/digest.c, print_filename and filename_unescape.
const TAG_LINE = /^(\\?)(SHA256|SHA512|SHA2-256|SHA2-512)\s*\((.*)\)\s*=\s*([0-9a-fA-F]+)\s*$/i;
const GNU_LINE = /^(\\?)([0-9a-fA-F]+) [ *](.*)$/;

/**
 * Parses a SHA256SUMS/SHA512SUMS/CHECKSUM file. Lines it does not recognise (PGP armour, comments,
 * md5/sha1 entries) are skipped rather than rejected: real-world sums files carry all of those.
 * A name is taken exactly as written (spaces at either end are part of it), unescaped when the line
 * says so.
 */
export function parseSums(text: string): SumsEntry[] {
  const out: SumsEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = (raw.endsWith("\r") ? raw.slice(0, -1) : raw).trimStart();
    if (line === "" || line.startsWith("#")) continue;
    const tag = TAG_LINE.exec(line);
    if (tag) {
      const algo: DigestAlgo = tag[2]!.toUpperCase().endsWith("512") ? "sha512" : "sha256";
      const hex = tag[4]!.toLowerCase();
      const name = cleanName(tag[3]!, tag[1] === "\\");
      if (name !== undefined && isValidHex(algo, hex)) out.push({ name, algo, hex });
      continue;
    }
    const gnu = GNU_LINE.exec(line);
    if (gnu) {
      const algo = algoForHex(gnu[2]!);
      const name = cleanName(gnu[3]!, gnu[1] === "\\");
      if (algo && name !== undefined) out.push({ name, algo, hex: gnu[2]!.toLowerCase() });
    }
  }
  return out;
}

/** The name as a file name: unescaped when the line was marked, without a leading `./`; undefined when unusable. */
function cleanName(written: string, escaped: boolean): string | undefined {
  let n = written;
  if (escaped) {
    let out = "";
    for (let i = 0; i < n.length; i++) {
      if (n[i] !== "\\") {
        out += n[i];
        continue;
      }
      const c = n[++i];
      if (c === "\\") out += "\\";
      else if (c === "n") out += "\n";
      else if (c === "r") out += "\r";
      else return undefined; // coreutils rejects any other escape
    }
    n = out;
  }
  if (n.startsWith("./")) n = n.slice(2);
  return n === "" ? undefined : n;
}

/**
 * The entry for `fileName`: an exact match first, then a unique entry whose basename matches (sums
 * files listing `images/foo.img`), then a unique one that matches once the spaces around its name
 * are dropped (a hand-edited file with trailing blanks). Prefers sha512 over sha256 when a file
 * lists both.
 */
export function findSum(entries: SumsEntry[], fileName: string): SumsEntry | undefined {
  const pick = (list: SumsEntry[]) => list.find((e) => e.algo === "sha512") ?? list[0];
  const unique = (list: SumsEntry[]) => (new Set(list.map((e) => e.name)).size === 1 ? pick(list) : undefined);
  const exact = entries.filter((e) => e.name === fileName);
  if (exact.length > 0) return pick(exact);
  return unique(entries.filter((e) => basename(e.name) === fileName)) ?? unique(entries.filter((e) => e.name.trim() === fileName));
}

/** The file name a sums file lists for a source: last URL path segment (decoded) or path basename. */
export function sourceFileName(location: string): string {
  if (/^https?:\/\//i.test(location)) {
    const u = new URL(location);
    const seg = u.pathname.split("/").filter(Boolean).pop() ?? "";
    try {
      return decodeURIComponent(seg);
    } catch {
      return seg;
    }
  }
  if (location.startsWith("file:")) return basename(fileURLToPath(location));
  return basename(location);
}

/** Normalises a `sha256:<hex>` style spec, rejecting a digest of the wrong shape as a user error. */
export function checkDigestShape(algo: DigestAlgo, hex: string, where: string): string {
  if (!isValidHex(algo, hex)) {
    throw new UserError(
      "CHECKSUM_INVALID",
      `${where}: ${algo} digest must be ${HEX_LENGTH[algo]} hex characters, got ${JSON.stringify(hex)}`,
    );
  }
  return hex.toLowerCase();
}
