// The datastore ISO cache: one file per ISO, named by its SHA-256, so a second build with the same
// ISO uploads nothing. The name alone proves nothing: a build killed mid-upload (or a datastore
// that kept part of a PUT body, as vcsim does) would leave a truncated file under it, and every
// later build would attach that. So an upload goes to a temporary name, journaled for `vmkiln gc`,
// is checked for size, and only then renamed into place; a cached file is reused only at the
// ISO's size, and one at another size is uploaded again.
import { BuildError } from "../../src/errors.js";
import type { EventBus } from "../../src/log/events.js";
import type { JournalEntry } from "../../src/pipeline/journal.js";
import type { Datastore } from "./datastore.js";

type RemoteEntry = Extract<JournalEntry, { kind: "remote" }>;

/** The datastore operations the cache needs (Datastore; a fake in unit tests). */
export type CacheStore = Pick<Datastore, "path" | "size" | "mkdir" | "upload" | "move" | "remove">;

export interface IsoCacheRequest {
  local: string;
  /** The local file's size and digest. */
  size: number;
  sha256: string;
  /** Datastore folder of the cache (drivers.vsphere.iso_cache_folder). */
  folder: string;
  /** Makes the upload's name unique to this build. */
  buildId: string;
  journal: { add(e: RemoteEntry): void; done(e: RemoteEntry): void };
  /** The journal entry for a datastore path (`[ds] path`). */
  entry(dsPath: string): RemoteEntry;
  events: EventBus;
}

/** Cache file name for an ISO: its SHA-256, so equal content is uploaded once. */
export function cachedIsoPath(cacheFolder: string, sha256: string): string {
  return `${cacheFolder.replace(/\/+$/, "")}/${sha256}.iso`;
}

/** Returns the `[ds] path` of the cached ISO, uploading it first unless a complete one is there. */
export async function ensureCachedIso(store: CacheStore, r: IsoCacheRequest, signal: AbortSignal): Promise<string> {
  const rel = cachedIsoPath(r.folder, r.sha256);
  const found = await store.size(rel, signal);
  if (found === r.size) {
    r.events.info(`ISO already on the datastore: ${store.path(rel)}`, "vsphere");
    return store.path(rel);
  }
  if (found !== undefined) {
    r.events.warn(`${store.path(rel)} holds ${found} bytes, the ISO has ${r.size}: uploading it again`, "vsphere");
  }
  const part = `${rel}.${r.buildId}.part`;
  const entry = r.entry(store.path(part));
  r.journal.add(entry);
  try {
    await store.mkdir(r.folder, signal);
    await store.upload(r.local, part, r.events, signal);
    const got = await store.size(part, signal);
    if (got !== r.size) {
      throw new BuildError("VSPHERE_UPLOAD_SHORT", `upload of ${store.path(rel)} is incomplete: the datastore holds ${got ?? "no"} bytes of ${r.size}`);
    }
    await store.move(part, rel, signal);
  } catch (err) {
    // Removed now if it can be; otherwise the journal keeps it for `vmkiln gc`.
    try {
      await store.remove(part, AbortSignal.timeout(60_000));
      r.journal.done(entry);
    } catch (cleanupErr) {
      r.events.warn(`could not remove ${store.path(part)} (left for 'vmkiln gc'): ${(cleanupErr as Error).message}`, "vsphere");
    }
    throw err;
  }
  r.journal.done(entry);
  return store.path(rel);
}
