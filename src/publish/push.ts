// `vmkiln push <artifact> oci://HOST/REPO:TAG` and output.publish: the qcow2 goes into a registry as a
// KubeVirt containerDisk or an OCI artifact (layouts.ts), through the client in registry.ts and the
// resumable uploads in upload.ts. Nothing local is changed except manifest.json, which gets the pushed
// digest (atomically, and only after the registry has stored the manifest): a failed push leaves
// every file as it was.
import { constants } from "node:fs";
import { lstat, open, readFile, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join } from "node:path";
import { UserError } from "../errors.js";
import { progressReporter, type EventBus } from "../log/events.js";
import { writeFileAtomic } from "../util/atomic.js";
import { bufferBlob, segmentsBlob, type BlobSource } from "./blob.js";
import { findCredentials } from "./credentials.js";
import { DISK_CONFIG, DISK_QCOW2, OCI_IMAGE_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST, artifactConfig, containerDiskConfig, imageManifest, type Layout, type Platform } from "./layouts.js";
import { parseOciReference } from "./reference.js";
import { RegistryClient, readCaFile } from "./registry.js";
import { containerDiskSegments } from "./tar-layer.js";
import { pushBlob, pushManifest, type UploadResult } from "./upload.js";

export const DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024;

export interface PushRequest {
  /** A qcow2 file, or a vmkiln output directory (its manifest.json names the qcow2). */
  artifact: string;
  to: string;
  layout: Layout;
  caFile?: string | undefined;
  insecure?: boolean | undefined;
  chunkSize?: number | undefined;
  platform?: Platform | undefined;
  events: EventBus;
  signal: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Retry tuning (tests). */
  maxRetries?: number;
  backoffMs?: number;
}

export interface PushResult {
  to: string;
  /** HOST/REPO@sha256:... */
  pinned: string;
  digest: string;
  layout: Layout;
  mediaType: string;
  artifactType?: string;
  disk: string;
  blobs: UploadResult[];
  /** The manifest.json that now records the digest, when there was one for this artifact. */
  manifestJson?: string;
  durationMs: number;
}

export interface PublishedEntry {
  to: string;
  as: Layout;
  digest: string;
  pinned: string;
  media_type: string;
  artifact_type?: string;
  disk: string;
  pushed_at: string;
}

interface Located {
  disk: string;
  size: number;
  manifestJson: string | undefined;
  created: string;
}

export async function push(req: PushRequest): Promise<PushResult> {
  const started = Date.now();
  const ref = parseOciReference(req.to);
  if (typeof ref === "string") throw new UserError("PUSH_REFERENCE", `${shown(req.to)}: ${ref}`);
  const chunkSize = req.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 64 * 1024 || chunkSize > 4 * 1024 ** 3) throw new UserError("PUSH_CHUNK_SIZE", "--chunk-size must be between 64K and 4G");
  const loc = await locate(req.artifact);
  const platform = req.platform ?? { architecture: "amd64", os: "linux" };
  const info = { name: basename(loc.disk), virtualSize: await qcow2VirtualSize(loc.disk), created: loc.created };

  const credentials = await findCredentials(ref.registry, { env: req.env ?? process.env, signal: req.signal });
  if (req.insecure) req.events.warn(`${ref.registry}: TLS verification is off (--insecure)`, "push");
  const caPem = req.caFile ? await readCaFile(req.caFile) : undefined;
  const client = new RegistryClient({ ref, credentials, caPem, insecure: req.insecure ?? false, events: req.events, signal: req.signal });
  try {
    await client.ping();
    const hashing = progressReporter(req.events, `digest ${info.name}`, loc.size);
    let layer: BlobSource;
    try {
      layer =
        req.layout === "containerdisk"
          ? await segmentsBlob(OCI_LAYER_TAR, `layer disk/${info.name}`, containerDiskSegments({ path: loc.disk, size: loc.size, name: info.name }, Date.parse(info.created) / 1000), req.signal, (n) => hashing.add(n))
          : await segmentsBlob(DISK_QCOW2, `disk ${info.name}`, [{ path: loc.disk, start: 0, length: loc.size }], req.signal, (n) => hashing.add(n));
    } finally {
      hashing.end();
    }
    const config =
      req.layout === "containerdisk"
        ? bufferBlob(OCI_IMAGE_CONFIG, "image config", containerDiskConfig(layer, platform, info))
        : bufferBlob(DISK_CONFIG, "disk config", artifactConfig(platform, info));
    const opts = { chunkSize, events: req.events, signal: req.signal, ...(req.maxRetries !== undefined ? { maxRetries: req.maxRetries } : {}), ...(req.backoffMs !== undefined ? { backoffMs: req.backoffMs } : {}) };
    const blobs = [await pushBlob(client, layer, opts), await pushBlob(client, config, opts)];
    const manifest = bufferBlob(OCI_MANIFEST, "manifest", imageManifest(req.layout, config, layer, info));
    await readManifestBytes(manifest, req.signal).then((bytes) => pushManifest(client, OCI_MANIFEST, bytes, manifest.digest));
    const pinned = `${ref.registry}/${ref.repository}@${manifest.digest}`;
    req.events.info(`pushed ${info.name} as ${req.layout} to ${ref.display} (${pinned})`, "push");
    const result: PushResult = {
      to: req.to,
      pinned,
      digest: manifest.digest,
      layout: req.layout,
      mediaType: OCI_MANIFEST,
      ...(req.layout === "artifact" ? { artifactType: DISK_QCOW2 } : {}),
      disk: loc.disk,
      blobs,
      durationMs: Date.now() - started,
    };
    if (loc.manifestJson) {
      await recordPublished(loc.manifestJson, {
        to: req.to,
        as: req.layout,
        digest: manifest.digest,
        pinned,
        media_type: OCI_MANIFEST,
        ...(req.layout === "artifact" ? { artifact_type: DISK_QCOW2 } : {}),
        disk: basename(loc.disk),
        pushed_at: new Date().toISOString(),
      });
      result.manifestJson = loc.manifestJson;
    }
    return result;
  } finally {
    await client.close();
  }
}

/** What a push reads locally, checked before a build starts: the reference, the CA file, the credentials. */
export async function preflightPublish(p: { to: string; caFile?: string | undefined }, signal: AbortSignal): Promise<void> {
  const ref = parseOciReference(p.to);
  if (typeof ref === "string") throw new UserError("PUSH_REFERENCE", `output.publish: ${shown(p.to)}: ${ref}`);
  if (p.caFile) await readCaFile(p.caFile);
  await findCredentials(ref.registry, { env: process.env, signal });
}

async function readManifestBytes(b: BlobSource, signal: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of b.read(0, b.size, signal)) chunks.push(c);
  return Buffer.concat(chunks);
}

/** The qcow2 to push: a file (QFI\xfb magic), or the qcow2 a vmkiln output directory's manifest.json lists. */
async function locate(artifact: string): Promise<Located> {
  const st = await stat(artifact).catch((err: NodeJS.ErrnoException) => {
    throw new UserError("PUSH_ARTIFACT", `${artifact}: ${err.code === "ENOENT" ? "no such file or directory" : err.message}`);
  });
  let disk = artifact;
  let manifestJson: string | undefined;
  if (st.isDirectory()) {
    manifestJson = join(artifact, "manifest.json");
    const m = await readManifestJson(manifestJson);
    if (!m) throw new UserError("PUSH_ARTIFACT", `${artifact}: a directory to push must be a vmkiln output directory (no readable manifest.json)`);
    const q = Array.isArray(m.artifacts) ? m.artifacts.find((a) => isRecord(a) && a.format === "qcow2") : undefined;
    if (!q) throw new UserError("PUSH_ARTIFACT", `${artifact}: its manifest.json lists no qcow2 artifact (build with output.formats: [qcow2])`);
    // The name comes from a file: it must stay in the directory, and not lead out through a link.
    if (typeof q.name !== "string" || q.name === "" || isAbsolute(q.name) || q.name.split(/[\\/]/).includes("..")) {
      throw new UserError("PUSH_ARTIFACT", `${manifestJson}: the qcow2 artifact's name ${JSON.stringify(String(q.name).slice(0, 200))} is not a file name inside ${artifact}`);
    }
    disk = join(artifact, q.name);
    const ls = await lstat(disk).catch(() => undefined);
    if (ls?.isSymbolicLink()) throw new UserError("PUSH_ARTIFACT", `${disk}: is a symbolic link; a build's qcow2 is a regular file (push the file it points to by name)`);
  } else {
    const beside = join(dirname(artifact), "manifest.json");
    const m = await readManifestJson(beside);
    if (Array.isArray(m?.artifacts) && m.artifacts.some((a) => isRecord(a) && a.name === basename(artifact))) manifestJson = beside;
  }
  const ds = await stat(disk).catch(() => undefined);
  if (!ds?.isFile()) throw new UserError("PUSH_ARTIFACT", `${disk}: not a regular file`);
  if (!(await isQcow2(disk))) throw new UserError("PUSH_ARTIFACT", `${disk}: not a qcow2 image (only qcow2 disks are pushed)`);
  const m = manifestJson ? await readManifestJson(manifestJson) : undefined;
  const created = typeof m?.created === "string" && !Number.isNaN(Date.parse(m.created)) ? new Date(Date.parse(m.created)).toISOString() : new Date(Math.floor(ds.mtimeMs / 1000) * 1000).toISOString();
  return { disk, size: ds.size, manifestJson, created };
}

interface ManifestJsonShape {
  created?: unknown;
  artifacts?: Array<{ name: unknown; format: unknown }>;
  published?: PublishedEntry[];
}

/** A build's manifest.json is a few KiB; the output guard (steps/output-guard.ts) takes 16 MiB as the limit too. */
const MAX_MANIFEST_JSON_BYTES = 16 * 1024 * 1024;

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** A destination as typed, for a message: clipped, control characters escaped. */
function shown(s: string): string {
  const c = s.length > 200 ? `${s.slice(0, 200)}…` : s;
  return /[\u0000-\u001f\u007f-\u009f]/.test(c) ? JSON.stringify(c) : c;
}

async function readManifestJson(path: string): Promise<ManifestJsonShape | undefined> {
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile() || st.size > MAX_MANIFEST_JSON_BYTES) return undefined;
  const text = await readFile(path, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const j = JSON.parse(text) as unknown;
    return isRecord(j) ? (j as ManifestJsonShape) : undefined;
  } catch {
    return undefined;
  }
}

/** Adds (or replaces, for the same destination and layout) the published entry in manifest.json. */
export async function recordPublished(path: string, entry: PublishedEntry): Promise<void> {
  const j = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown> & { published?: PublishedEntry[] };
  const list = Array.isArray(j.published) ? j.published.filter((p) => !(isRecord(p) && p.to === entry.to && p.as === entry.as)) : [];
  list.push(entry);
  j.published = list;
  await writeFileAtomic(path, JSON.stringify(j, null, 2) + "\n");
}

async function isQcow2(path: string): Promise<boolean> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK); // a FIFO must not block (see util/small-file.ts)
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, 0);
    return b.equals(Buffer.from([0x51, 0x46, 0x49, 0xfb]));
  } finally {
    await fh.close();
  }
}

async function qcow2VirtualSize(path: string): Promise<number | undefined> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const b = Buffer.alloc(8);
    const { bytesRead } = await fh.read(b, 0, 8, 24);
    return bytesRead === 8 ? Number(b.readBigUInt64BE(0)) : undefined;
  } finally {
    await fh.close();
  }
}
