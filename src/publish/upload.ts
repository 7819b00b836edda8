// Blob and manifest upload (opencontainers/distribution-spec spec.md "Pushing blobs"):
// - HEAD /v2/<name>/blobs/<digest> first (end-2): a blob the registry has is not sent again;
// - a blob up to one chunk goes monolithically: POST (end-4a) then PUT <location>?digest= with the
//   bytes (end-6);
// - a larger one in chunks: PATCH <location> with Content-Range: <start>-<end> (end-5), each answer's
//   Location used for the next request (it carries the session state), then PUT ?digest= (end-6).
// Resume: when a chunk fails (connection reset, registry restarted, 502/503/504), the upload session is
// asked how much it holds, GET <location> → 204 with Range: 0-<last byte> (end-13), and the upload
// goes on from there. A registry that lost the session (404 BLOB_UPLOAD_UNKNOWN) or will not resume it
// (distribution 2.x answers 400 BLOB_UPLOAD_INVALID when the stored size differs from the offset in
// its `_state` token, and cancels it: registry/handlers/blobupload.go ResumeBlobUpload) gets a new
// session, from byte 0. Since PATCH on distribution 2.x appends whatever arrives (its Content-Range is
// a TODO there), the registry's digest check at the final PUT is what proves the bytes right; a
// DIGEST_INVALID there restarts the blob once.
import { setTimeout as sleep } from "node:timers/promises";
import { BuildError, UserError, asAbortError } from "../errors.js";
import { progressReporter, type EventBus } from "../log/events.js";
import type { BlobSource } from "./blob.js";
import { RegistryUnreachableError, clipHeader, registryErrors, type RegistryClient, type RegistryResponse } from "./registry.js";

export interface UploadOptions {
  chunkSize: number;
  events: EventBus;
  signal: AbortSignal;
  /** Consecutive failed attempts tolerated per blob before giving up. */
  maxRetries?: number;
  /** First back-off (ms); doubles each time, at most 8 s. */
  backoffMs?: number;
}

export interface UploadResult {
  digest: string;
  size: number;
  /** The registry already had it (HEAD 200): nothing sent. */
  skipped: boolean;
  /** Bytes of the blob sent over the wire, resends included. */
  sent: number;
  /** Times the upload went on from the registry's offset after a failure. */
  resumed: number;
  /** Times the upload had to start over with a new session. */
  restarted: number;
}

export async function blobExists(c: RegistryClient, blob: BlobSource): Promise<boolean> {
  const r = await c.call("HEAD", `/v2/${c.ref.repository}/blobs/${blob.digest}`);
  if (r.status === 200) {
    // A registry that says it has the blob but names another digest or size is not believed: the
    // push would otherwise tag a manifest whose layer is something else.
    const got = header(r.headers["docker-content-digest"]);
    const len = header(r.headers["content-length"]);
    if ((got !== undefined && got !== blob.digest) || (len !== undefined && Number(len) !== blob.size)) {
      throw new BuildError(
        "REGISTRY_DIGEST",
        `${c.name}/${c.ref.repository}: HEAD ${blob.label} ${short(blob.digest)} answered 200 for ${got !== undefined ? clipHeader(got) : "the same digest"} of ${len ?? "?"} bytes (expected ${blob.size}); refusing to trust it`,
      );
    }
    return true;
  }
  if (r.status === 404) return false;
  throw c.httpError(`HEAD blob ${short(blob.digest)}`, r);
}

export async function pushBlob(c: RegistryClient, blob: BlobSource, o: UploadOptions): Promise<UploadResult> {
  const result: UploadResult = { digest: blob.digest, size: blob.size, skipped: false, sent: 0, resumed: 0, restarted: 0 };
  if (await blobExists(c, blob)) {
    o.events.info(`${blob.label} ${short(blob.digest)}: already in ${c.name}/${c.ref.repository}, not sent`, "push");
    return { ...result, skipped: true };
  }
  const progress = progressReporter(o.events, `push ${blob.label}`, blob.size);
  try {
    await upload(c, blob, o, result, progress);
  } finally {
    progress.end();
  }
  return result;
}

type Progress = ReturnType<typeof progressReporter>;

async function upload(c: RegistryClient, blob: BlobSource, o: UploadOptions, res: UploadResult, progress: Progress): Promise<void> {
  const maxRetries = o.maxRetries ?? 5;
  const backoff0 = o.backoffMs ?? 500;
  let failures = 0;
  let digestRestarts = 0;
  let location: string | undefined;
  let offset = 0;

  const fail = async (err: Error, where: string): Promise<void> => {
    failures++;
    if (failures > maxRetries) {
      if (location) await c.raw("DELETE", location, { auth: true }).catch(() => undefined); // best effort (spec "Canceling an Upload")
      throw new BuildError(
        "REGISTRY_UPLOAD_FAILED",
        `${c.name}/${c.ref.repository}: upload of ${blob.label} ${short(blob.digest)} failed at byte ${offset} of ${blob.size} (${where}), ${failures} attempts: ${err.message}`,
        { hint: "the registry stopped answering; nothing local was changed: run the push again once it is back (blobs it already has are not sent again)", cause: err },
      );
    }
    const wait = Math.min(8000, backoff0 * 2 ** (failures - 1));
    o.events.warn(`${blob.label} ${short(blob.digest)}: ${where} failed (${err.message}); retrying in ${(wait / 1000).toFixed(1)} s`, "push");
    try {
      await sleep(wait, undefined, { signal: o.signal });
    } catch {
      throw asAbortError(o.signal.reason);
    }
  };

  const start = async (): Promise<void> => {
    const r = await c.call("POST", `/v2/${c.ref.repository}/blobs/uploads/`, { headers: { "content-length": "0" }, what: "POST blob upload" });
    if (r.status !== 202) throw c.httpError(`POST blob upload (${blob.label})`, r);
    location = locationOf(c, r, "POST blob upload");
    offset = 0;
  };

  const monolithic = blob.size <= o.chunkSize;
  for (;;) {
    try {
      if (location === undefined) await start();
      if (!monolithic) {
        while (offset < blob.size) {
          const from = offset;
          const end = Math.min(from + o.chunkSize, blob.size);
          const r = await c.call("PATCH", location!, {
            headers: { "content-type": "application/octet-stream", "content-length": String(end - from), "content-range": `${from}-${end - 1}` },
            body: () => counted(blob.read(from, end, o.signal), res, progress),
            what: "PATCH blob chunk",
          });
          if (r.status === 202) {
            location = locationOf(c, r, "PATCH");
            const got = rangeEnd(r.headers["range"]);
            offset = got ?? end;
            if (got !== undefined && got !== end) o.events.warn(`${c.name} acknowledged ${got} bytes where ${end} were sent; going on from ${got}`, "push");
            progress.set(offset);
            failures = 0;
            continue;
          }
          if (r.status === 416) {
            const got = rangeEnd(r.headers["range"]);
            if (got === undefined) throw c.httpError("PATCH (416 without a Range)", r);
            offset = got;
            location = locationOrKeep(c, r, location!);
            await fail(new Error(`the registry holds ${got} bytes`), "PATCH out of order");
            continue;
          }
          if (isSessionGone(r)) {
            o.events.warn(`${c.name} dropped the upload session of ${blob.label} (${r.status} ${registryErrors(r.body)}): starting it again from byte 0`, "push");
            res.restarted++;
            location = undefined;
            throw new Retry();
          }
          if (r.status === 502 || r.status === 503 || r.status === 504) throw new Transient(`HTTP ${r.status}`);
          throw c.httpError(`PATCH ${blob.label}`, r);
        }
      }
      // Complete: the digest goes on the upload URL, keeping its own query (the session state).
      const u = new URL(location!);
      u.searchParams.set("digest", blob.digest);
      const r = await c.call("PUT", u.toString(), {
        headers: { "content-type": "application/octet-stream", "content-length": String(monolithic ? blob.size : 0) },
        body: monolithic ? () => counted(blob.read(0, blob.size, o.signal), res, progress) : Buffer.alloc(0),
        what: "PUT blob",
      });
      if (r.status === 201) {
        const got = header(r.headers["docker-content-digest"]);
        if (got && got !== blob.digest) throw new BuildError("REGISTRY_DIGEST", `${c.name} stored ${blob.label} as ${clipHeader(got)}, expected ${blob.digest}`);
        progress.set(blob.size);
        return;
      }
      if (isSessionGone(r) || (monolithic && (r.status === 502 || r.status === 503 || r.status === 504))) {
        res.restarted++;
        location = undefined;
        throw new Retry();
      }
      if (r.status === 400 && /DIGEST_INVALID/.test(registryErrors(r.body)) && digestRestarts === 0) {
        // The bytes the session holds are not the blob (a resume appended at the wrong offset, or the
        // file changed): one fresh upload; a second mismatch is reported.
        digestRestarts++;
        o.events.warn(`${c.name}: the uploaded bytes of ${blob.label} do not match ${short(blob.digest)}; uploading it again from byte 0`, "push");
        res.restarted++;
        location = undefined;
        throw new Retry();
      }
      if (r.status === 502 || r.status === 503 || r.status === 504) throw new Transient(`HTTP ${r.status}`);
      throw c.httpError(`PUT ${blob.label}`, r);
    } catch (err) {
      if (o.signal.aborted) {
        if (location) await c.cancelUpload(location);
        throw asAbortError(o.signal.reason);
      }
      if (err instanceof Retry) continue;
      if (!(err instanceof RegistryUnreachableError || err instanceof Transient)) throw err;
      await fail(err as Error, monolithic ? "upload" : location ? "chunk upload" : "upload start");
      if (location === undefined || monolithic) {
        location = undefined;
        continue;
      }
      // Ask the session where it stands (end-13) and go on from there.
      const s = await askStatus(c, location).catch(async (e: unknown) => {
        if (e instanceof RegistryUnreachableError) return "unreachable" as const;
        throw e;
      });
      if (s === "unreachable") continue; // the next attempt asks again (counted by fail())
      if (s === "gone") {
        o.events.warn(`${c.name} no longer knows the upload session of ${blob.label}: starting it again from byte 0`, "push");
        res.restarted++;
        location = undefined;
        continue;
      }
      if (s.offset !== offset) o.events.info(`${blob.label}: the registry holds ${s.offset} of ${blob.size} bytes; resuming there`, "push");
      else o.events.info(`${blob.label}: resuming at byte ${s.offset} of ${blob.size}`, "push");
      offset = s.offset;
      location = s.location;
      res.resumed++;
    }
  }
}

class Retry extends Error {}
class Transient extends Error {}

async function askStatus(c: RegistryClient, location: string): Promise<{ offset: number; location: string } | "gone"> {
  const r = await c.call("GET", location, { what: "GET upload status" });
  if (r.status === 204 || r.status === 200) {
    const end = rangeEnd(r.headers["range"]) ?? 0;
    return { offset: end, location: locationOrKeep(c, r, location) };
  }
  if (isSessionGone(r)) return "gone";
  if (r.status === 502 || r.status === 503 || r.status === 504) throw new RegistryUnreachableError("REGISTRY_UNREACHABLE", `${c.name}: upload status answered ${r.status}`);
  throw c.httpError("GET upload status", r);
}

function isSessionGone(r: RegistryResponse): boolean {
  if (r.status === 404) return true;
  return r.status === 400 && /BLOB_UPLOAD_(UNKNOWN|INVALID)/.test(registryErrors(r.body));
}

/**
 * Range: "0-<last>" (or "bytes=0-<last>") → bytes held. distribution answers "0-0" both for an empty
 * session and for one holding a single byte (blobupload.go blobUploadResponse); read as 0, and a
 * wrong guess is caught by the digest check at the final PUT.
 */
export function rangeEnd(h: string | string[] | undefined): number | undefined {
  const v = header(h);
  if (v === undefined) return undefined;
  const m = /^(?:bytes=)?0-(\d+)$/.exec(v.trim());
  if (!m) return undefined;
  const last = Number(m[1]);
  return last === 0 ? 0 : last + 1;
}

function header(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

function locationOf(c: RegistryClient, r: RegistryResponse, what: string): string {
  const l = header(r.headers["location"]);
  if (!l) throw new BuildError("REGISTRY_PROTOCOL", `${c.name}: ${what} answered ${r.status} without a Location`);
  return c.resolve(l);
}

function locationOrKeep(c: RegistryClient, r: RegistryResponse, keep: string): string {
  const l = header(r.headers["location"]);
  return l ? c.resolve(l) : keep;
}

async function* counted(src: AsyncGenerator<Buffer>, res: UploadResult, progress: Progress): AsyncGenerator<Buffer> {
  for await (const c of src) {
    res.sent += c.length;
    progress.add(c.length);
    yield c;
  }
}

export function short(digest: string): string {
  return digest.slice(0, 7 + 12);
}

/** PUT /v2/<name>/manifests/<reference> (end-7); returns the manifest's digest. */
export async function pushManifest(c: RegistryClient, mediaType: string, body: Buffer, digest: string): Promise<string> {
  const r = await c.call("PUT", `/v2/${c.ref.repository}/manifests/${c.ref.reference}`, {
    headers: { "content-type": mediaType, "content-length": String(body.length) },
    body,
    what: "PUT manifest",
  });
  if (r.status !== 201 && r.status !== 200) {
    const e = c.httpError(`PUT manifest ${c.ref.reference}`, r);
    if (r.status === 400 || r.status === 415) throw new UserError(e.code, `${e.message} (the registry does not take this manifest; try the other layout with --as)`);
    throw e;
  }
  const got = header(r.headers["docker-content-digest"]);
  if (got && got !== digest) throw new BuildError("REGISTRY_DIGEST", `${c.name} stored the manifest as ${clipHeader(got)}, expected ${digest}`);
  return digest;
}
