// What gets uploaded: a blob made of segments (bytes in memory, byte ranges of files) that can be
// read from any offset, so a resumed upload sends only what the registry lacks, and a digest is taken
// by streaming, never by holding a disk in memory (1 MiB reads, backpressure from the consumer).
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { throwIfAborted } from "../errors.js";
import { READ_CHUNK } from "../artifact/digest.js";

export type Segment = { data: Buffer } | { path: string; start: number; length: number };

export interface BlobSource {
  mediaType: string;
  size: number;
  /** "sha256:<hex>" */
  digest: string;
  /** For messages: what this blob is ("layer disk/x.qcow2", "config"). */
  label: string;
  /** The blob's bytes from `start` (inclusive) to `end` (exclusive). */
  read(start: number, end: number, signal: AbortSignal): AsyncGenerator<Buffer>;
}

export function segmentsSize(segments: Segment[]): number {
  return segments.reduce((n, s) => n + ("data" in s ? s.data.length : s.length), 0);
}

export async function* readSegments(segments: Segment[], start: number, end: number, signal: AbortSignal): AsyncGenerator<Buffer> {
  let pos = 0;
  for (const s of segments) {
    const len = "data" in s ? s.data.length : s.length;
    const segStart = pos;
    const segEnd = pos + len;
    pos = segEnd;
    if (segEnd <= start || len === 0) continue;
    if (segStart >= end) break;
    const from = Math.max(start, segStart) - segStart;
    const to = Math.min(end, segEnd) - segStart;
    throwIfAborted(signal);
    if ("data" in s) {
      yield s.data.subarray(from, to);
      continue;
    }
    let seen = 0;
    const rs = createReadStream(s.path, { start: s.start + from, end: s.start + to - 1, highWaterMark: READ_CHUNK, signal });
    for await (const c of rs as AsyncIterable<Buffer>) {
      seen += c.length;
      yield c;
    }
    if (seen !== to - from) throw new Error(`${s.path}: read ${seen} bytes, expected ${to - from} (the file shrank)`);
  }
}

/** A blob from segments; the digest is computed by one streaming pass unless the caller knows it. */
export async function segmentsBlob(mediaType: string, label: string, segments: Segment[], signal: AbortSignal, onBytes?: (n: number) => void): Promise<BlobSource> {
  const size = segmentsSize(segments);
  const h = createHash("sha256");
  for await (const c of readSegments(segments, 0, size, signal)) {
    h.update(c);
    onBytes?.(c.length);
  }
  return { mediaType, size, digest: `sha256:${h.digest("hex")}`, label, read: (s, e, sig) => readSegments(segments, s, e, sig) };
}

export function bufferBlob(mediaType: string, label: string, data: Buffer): BlobSource {
  const segments: Segment[] = [{ data }];
  return {
    mediaType,
    size: data.length,
    digest: `sha256:${createHash("sha256").update(data).digest("hex")}`,
    label,
    read: (s, e, sig) => readSegments(segments, s, e, sig),
  };
}
