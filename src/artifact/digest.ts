// Hashing files by streaming them once (memory stays flat whatever the size).
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { asAbortError } from "../errors.js";

export const READ_CHUNK = 1024 * 1024;

export interface FileDigests {
  size: number;
  digests: Record<string, string>;
  /** First bytes of the file (for magic checks) without a second read. */
  head: Buffer;
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
  return { size, digests, head: Buffer.concat(headParts) };
}

export function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}
