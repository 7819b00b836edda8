// HTTP downloads with undici: bounded redirects, header/idle timeouts, resume with Range + If-Range,
// and hashing in the same pass as writing, so a multi-GB image is read from the network once and
// never re-read from disk just to verify it.

import { constants } from "node:fs";
import { lstat, open, readFile, rm, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { EnvHttpProxyAgent, errors as undiciErrors, request, type Dispatcher } from "undici";
import { asAbortError, BuildError, UserError, VmkilnError, messageOf } from "../errors.js";
import { hashInto, MultiHash, type DigestAlgo, type Digests } from "./checksum.js";
import { writeFileAtomic } from "./cache.js";
import { writeAllAt } from "../util/write-all.js";

export interface HttpOptions {
  signal: AbortSignal;
  /** Time to wait for response headers. Default 30 s. */
  headersTimeoutMs?: number;
  /** Longest silence between body chunks (an idle timeout, not a total). Default 60 s. */
  bodyTimeoutMs?: number;
  /** Default 10. */
  maxRedirects?: number;
  dispatcher?: Dispatcher;
}

let sharedDispatcher: Dispatcher | undefined;
/** Honours HTTP(S)_PROXY / NO_PROXY like curl does; a plain agent when they are unset. */
function defaultDispatcher(): Dispatcher {
  sharedDispatcher ??= new EnvHttpProxyAgent();
  return sharedDispatcher;
}

/** The URL without user:password, for messages and the manifest. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = "";
    u.password = "";
    return u.toString();
  } catch {
    return url;
  }
}

export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
  finalUrl: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** GET with redirects followed by hand (bounded), so headers like Range go to every hop. */
export async function httpGet(
  url: string,
  headers: Record<string, string>,
  opts: HttpOptions,
): Promise<HttpResponse> {
  const max = opts.maxRedirects ?? 10;
  let current = url;
  for (let hop = 0; ; hop++) {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(current, {
        method: "GET",
        headers,
        signal: opts.signal,
        headersTimeout: opts.headersTimeoutMs ?? 30_000,
        bodyTimeout: opts.bodyTimeoutMs ?? 60_000,
        dispatcher: opts.dispatcher ?? defaultDispatcher(),
      });
    } catch (err) {
      throw networkError(url, err, opts.signal);
    }
    if (!REDIRECTS.has(res.statusCode)) {
      return { statusCode: res.statusCode, headers: res.headers, body: res.body, finalUrl: current };
    }
    await res.body.dump().catch(() => undefined);
    const location = header(res.headers, "location");
    if (!location) throw new BuildError("DOWNLOAD_FAILED", `${displayUrl(url)}: redirect without a Location header`);
    if (hop >= max) throw new BuildError("DOWNLOAD_FAILED", `${displayUrl(url)}: more than ${max} redirects`);
    const next = new URL(location, current);
    if (next.protocol !== "http:" && next.protocol !== "https:") {
      throw new BuildError("DOWNLOAD_FAILED", `${displayUrl(url)}: redirect to unsupported ${next.protocol} URL`);
    }
    current = next.toString();
  }
}

export function header(h: HttpResponse["headers"], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Maps undici/socket failures to our errors; an abort always wins so callers see AbortError. */
export function networkError(url: string, err: unknown, signal: AbortSignal): VmkilnError {
  if (signal.aborted) return asAbortError(signal.reason);
  if (err instanceof VmkilnError) return err;
  const hint = "run the build again: the download resumes where it stopped";
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return new BuildError("DOWNLOAD_TIMEOUT", `download of ${displayUrl(url)} timed out (${messageOf(err)})`, {
      hint,
      cause: err,
    });
  }
  const code = (err as { code?: string }).code;
  const detail = code && !messageOf(err).includes(code) ? `${messageOf(err)} (${code})` : messageOf(err);
  return new BuildError("DOWNLOAD_FAILED", `download of ${displayUrl(url)} failed: ${detail}`, { hint, cause: err });
}

function statusError(url: string, status: number): VmkilnError {
  const msg = `download of ${displayUrl(url)} failed: HTTP ${status}`;
  // A missing file is the template's fault; anything else is the server's.
  if (status === 404 || status === 410) return new UserError("SOURCE_NOT_FOUND", msg);
  return new BuildError("DOWNLOAD_FAILED", msg, { hint: status >= 500 ? "the server may be busy; try again" : undefined });
}

/** A small text resource (a SHA256SUMS file) read into memory, with a size cap. */
export async function fetchText(url: string, opts: HttpOptions & { maxBytes?: number }): Promise<string> {
  const max = opts.maxBytes ?? 16 * 1024 * 1024;
  const res = await httpGet(url, {}, opts);
  if (res.statusCode !== 200) {
    await res.body.dump().catch(() => undefined);
    throw statusError(url, res.statusCode);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > max) {
        res.body.destroy();
        throw new UserError("SUMS_TOO_LARGE", `${displayUrl(url)} is larger than ${max} bytes; is it really a checksum file?`);
      }
      chunks.push(chunk);
    }
  } catch (err) {
    throw networkError(url, err, opts.signal);
  }
  return Buffer.concat(chunks).toString("utf8");
}

// ---------------------------------------------------------------------------------------------

/** What `<part>.json` records so a later run can ask for the rest of the same bytes. */
interface PartInfo {
  url: string;
  /** Strong ETag only: RFC 9110 forbids weak validators in If-Range. */
  etag?: string;
  lastModified?: string;
  total?: number;
}

export interface DownloadOptions extends HttpOptions {
  url: string;
  /** `<cache>/partial/<sha256 of url>.part`; `<part>.json` holds the resume validators. */
  partPath: string;
  /** Digests computed over the whole file (existing part + new bytes). */
  algos: DigestAlgo[];
  onProgress?: (done: number, total: number | undefined) => void;
  /** Extra attempts after a network error or 5xx, each resuming. Default 3. */
  retries?: number;
  /** First backoff between attempts, doubled each time. Default 1000 ms. */
  retryDelayMs?: number;
}

export interface DownloadResult {
  size: number;
  digests: Digests;
  /** Bytes that were already on disk when the final attempt started. */
  resumedFrom: number;
  etag: string | undefined;
  lastModified: string | undefined;
}

/**
 * Downloads `url` into `partPath`, resuming what an earlier interrupted run left. The part file and
 * its sidecar are kept on failure or abort (for the next resume); the caller removes them after
 * moving the verified file into the cache, or after a checksum mismatch.
 */
export async function download(opts: DownloadOptions): Promise<DownloadResult> {
  const retries = opts.retries ?? 3;
  let delay = opts.retryDelayMs ?? 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await downloadOnce(opts);
    } catch (err) {
      const e = networkError(opts.url, err, opts.signal);
      const transient =
        e.code === "DOWNLOAD_TIMEOUT" || (e.code === "DOWNLOAD_FAILED" && !/HTTP 4\d\d/.test(e.message));
      if (!transient || attempt >= retries) throw e;
      try {
        await sleep(delay, undefined, { signal: opts.signal });
      } catch {
        throw asAbortError(opts.signal.reason);
      }
      delay *= 2;
    }
  }
}

async function readPartInfo(partPath: string, url: string): Promise<{ info: PartInfo; size: number } | undefined> {
  try {
    const info = JSON.parse(await readFile(`${partPath}.json`, "utf8")) as PartInfo;
    const st = await lstat(partPath);
    if (!st.isFile() || info.url !== url || st.size === 0 || (!info.etag && !info.lastModified)) return undefined;
    if (info.total !== undefined && st.size > info.total) return undefined;
    return { info, size: st.size };
  } catch {
    return undefined;
  }
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

async function downloadOnce(opts: DownloadOptions): Promise<DownloadResult> {
  const { url, partPath, signal } = opts;
  const report = opts.onProgress ?? (() => undefined);
  const resume = await readPartInfo(partPath, url);

  // A part that is already complete (crash after the last byte): nothing to ask the server.
  if (resume && resume.info.total === resume.size) {
    const hash = new MultiHash(opts.algos);
    await hashInto(partPath, hash, { signal, onProgress: (d) => report(d, resume.size), nofollow: true });
    return { size: resume.size, digests: hash.digest(), resumedFrom: resume.size, ...validators(resume.info) };
  }

  const headers: Record<string, string> = { "accept-encoding": "identity" };
  if (resume) {
    headers.range = `bytes=${resume.size}-`;
    headers["if-range"] = resume.info.etag ?? resume.info.lastModified!;
  }
  const res = await httpGet(url, headers, opts);

  let offset = 0;
  let total: number | undefined;
  if (res.statusCode === 206 && resume) {
    const m = CONTENT_RANGE.exec(header(res.headers, "content-range") ?? "");
    if (!m || Number(m[1]) !== resume.size) {
      // A range we did not ask for: throw the part away and start over on the next attempt.
      await res.body.dump().catch(() => undefined);
      await discardPart(partPath);
      throw new BuildError("DOWNLOAD_FAILED", `${displayUrl(url)}: server sent an unexpected range`);
    }
    offset = resume.size;
    total = m[3] === "*" ? undefined : Number(m[3]);
  } else if (res.statusCode === 200) {
    // Fresh start, or the server ignored Range / the file changed (If-Range failed): from zero.
    const len = header(res.headers, "content-length");
    total = len === undefined ? undefined : Number(len);
    const info: PartInfo = { url };
    const etag = header(res.headers, "etag");
    const lastModified = header(res.headers, "last-modified");
    if (etag && !etag.startsWith("W/")) info.etag = etag;
    if (lastModified) info.lastModified = lastModified;
    if (total !== undefined) info.total = total;
    await writeFileAtomic(`${partPath}.json`, JSON.stringify(info) + "\n", dirname(partPath));
  } else {
    await res.body.dump().catch(() => undefined);
    if (res.statusCode === 416) {
      // Our part is not a prefix of what the server has now: start over next attempt.
      await discardPart(partPath);
      throw new BuildError("DOWNLOAD_FAILED", `${displayUrl(url)}: server rejected the resume range`);
    }
    throw statusError(url, res.statusCode);
  }

  const hash = new MultiHash(opts.algos);
  if (offset > 0) {
    // One pass over the bytes: the part on disk first, then the rest as it arrives.
    await hashInto(partPath, hash, { signal, length: offset, onProgress: (d) => report(d, total), nofollow: true });
  } else {
    // A fresh part is ours to create: whatever else sits at its name (a symlink planted in the cache
    // would be written through) is unlinked, never followed; O_NOFOLLOW closes the race.
    const st = await lstat(partPath).catch(() => undefined);
    if (st && !st.isFile()) await unlink(partPath);
  }
  const fh = await open(
    partPath,
    offset > 0 ? constants.O_RDWR | constants.O_NOFOLLOW : constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
    0o644,
  );
  let pos = offset;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      await writeAllAt(fh, chunk, pos);
      pos += chunk.length;
      report(pos, total);
    }
  } catch (err) {
    res.body.destroy();
    throw networkError(url, err, signal);
  } finally {
    await fh.close();
  }
  if (total !== undefined && pos !== total) {
    throw new BuildError("DOWNLOAD_FAILED", `download of ${displayUrl(url)} failed: got ${pos} of ${total} bytes`);
  }
  const info = await readPartInfo(partPath, url);
  return { size: pos, digests: hash.digest(), resumedFrom: offset, ...validators(info?.info) };
}

function validators(info: PartInfo | undefined): { etag: string | undefined; lastModified: string | undefined } {
  return { etag: info?.etag, lastModified: info?.lastModified };
}

/** Removes a part file and its sidecar (after a mismatch, or when it can't be resumed). */
export async function discardPart(partPath: string): Promise<void> {
  await rm(partPath, { force: true });
  await rm(`${partPath}.json`, { force: true });
}
