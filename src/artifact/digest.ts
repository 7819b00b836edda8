// Hashing files by streaming them once (memory stays flat whatever the size).
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { asAbortError } from "../errors.js";

export const READ_CHUNK = 1024 * 1024;

export interface FileDigests {
  size: number;
  digests: Record<string, string>;
  /** First bytes of the file (for magic checks) without a second read. */
  head: Buffer;
  /** The file's identity while it was read; undefined when it changed under the read. */
  identity: FileIdentity | undefined;
}

/**
 * What changes whenever a file's bytes do: any write updates mtime and ctime (ctime cannot be set
 * back from user space), a replacement changes the inode. Lets a digest computed once vouch for the
 * file later without hashing it again (writeOva).
 */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export async function fileIdentity(path: string): Promise<FileIdentity> {
  const s = await stat(path, { bigint: true });
  return { dev: s.dev, ino: s.ino, size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs };
}

export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/**
 * Reads `path` once and returns its digests for each algorithm in `algorithms` (node crypto names).
 * `onBytes` is called with each chunk length (progress).
 */
export async function digestFile(
  path: string,
  algorithms: readonly string[],
  opts: { signal: AbortSignal; onBytes?: (n: number) => void; headBytes?: number },
): Promise<FileDigests> {
  const hashes: Array<[string, Hash]> = [...new Set(algorithms)].map((a) => [a, createHash(a)]);
  const headBytes = opts.headBytes ?? 0;
  const headParts: Buffer[] = [];
  let headLen = 0;
  let size = 0;
  const before = await fileIdentity(path);
  const stream = createReadStream(path, { highWaterMark: READ_CHUNK, signal: opts.signal });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      for (const [, h] of hashes) h.update(chunk);
      if (headLen < headBytes) {
        const part = chunk.subarray(0, headBytes - headLen);
        headParts.push(Buffer.from(part));
        headLen += part.length;
      }
      size += chunk.length;
      opts.onBytes?.(chunk.length);
    }
  } catch (err) {
    if (opts.signal.aborted) throw asAbortError(opts.signal.reason);
    throw err;
  }
  const digests: Record<string, string> = {};
  for (const [a, h] of hashes) digests[a] = h.digest("hex");
  const after = await fileIdentity(path);
  return { size, digests, head: Buffer.concat(headParts), identity: sameIdentity(before, after) && BigInt(size) === after.size ? after : undefined };
}

export function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}
