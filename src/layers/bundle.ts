// `vmkiln cache export` / `cache import` (issue 17): sources and stage entries carried to an
// air-gapped machine in one tar. The tar's member names are inert ("index.json", then "m000001"…):
// where each member goes is said by index.json, whose paths must match a fixed grammar (a source entry
// or its sidecar, a stage entry's entry.json or a file under its files/), so nothing in the archive
// can name a place outside the cache. Members must be regular files, in the index's order, with the
// index's size and sha256; links, directories, devices, unlisted or duplicate members are refused.
// Everything is written into a private directory first and moved into place only once verified.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, lstat, mkdir, open, readFile, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { UserError, throwIfAborted } from "../errors.js";
import { BLOCK, END_OF_ARCHIVE, decodeSize, encodeGnuHeader, paddingFor } from "../artifact/tar-header.js";
import { cacheDirs, storedIdentity } from "../source/cache.js";
import { DestinationExistsError, publishFile, writeFileAtomic, createTempBeside } from "../util/atomic.js";
import { KEY_PATTERN, isSafeRel, listStages, readEntry, stageDirs, type StageEntry } from "./store.js";
import { readdir } from "node:fs/promises";

const FORMAT = "vmkiln-cache-bundle";
const INDEX = "index.json";
const MAX_INDEX_BYTES = 64 * 1024 * 1024;
const SOURCE_PATH = /^sources\/(sha256-[0-9a-f]{64}|sha512-[0-9a-f]{128})(\.json)?$/;
const STAGE_PATH = /^stages\/([0-9a-f]{64})\/(entry\.json|files\/(.+))$/;

interface IndexMember {
  member: string;
  path: string;
  size: number;
  sha256: string;
}

interface BundleIndex {
  format: typeof FORMAT;
  version: 1;
  members: IndexMember[];
}

interface Pending {
  path: string;
  size: number;
  sha256: string;
  /** A file to copy, or bytes. */
  from: string | Buffer;
}

export interface ExportResult {
  sources: number;
  stages: number;
  bytes: number;
}

/** Writes every verified-looking source and stage entry into `file` (temp name, renamed when complete). */
export async function exportBundle(file: string, opts: { cacheDir?: string; force: boolean; signal: AbortSignal }): Promise<ExportResult> {
  const src = cacheDirs(opts.cacheDir);
  const dirs = stageDirs(opts.cacheDir);
  const pending: Pending[] = [];
  const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
  const text = (v: unknown) => Buffer.from(JSON.stringify(v, null, 2) + "\n");
  let sources = 0;
  for (const n of (await readdir(src.sources).catch(() => [] as string[])).sort()) {
    const m = /^(sha256|sha512)-([0-9a-f]+)$/.exec(n);
    if (!m) continue;
    let meta: { sha256?: string; size?: number; verified?: unknown };
    try {
      meta = JSON.parse(await readFile(join(src.sources, `${n}.json`), "utf8"));
    } catch {
      continue; // no sidecar: not an entry the cache trusts
    }
    const st = await lstat(join(src.sources, n)).catch(() => undefined);
    if (!st?.isFile() || st.size !== meta.size || typeof meta.sha256 !== "string") continue;
    const { verified: _v, ...portable } = meta; // an identity means nothing on another machine
    const side = text(portable);
    pending.push({ path: `sources/${n}`, size: st.size, sha256: meta.sha256, from: join(src.sources, n) });
    pending.push({ path: `sources/${n}.json`, size: side.length, sha256: sha(side), from: side });
    sources++;
  }
  const stages = await listStages(dirs);
  for (const { key, entry } of stages) {
    const portable: StageEntry = { ...entry, files: entry.files.map(({ verified: _v, ...f }) => f) };
    const e = text(portable);
    for (const f of entry.files) pending.push({ path: `stages/${key}/files/${f.name}`, size: f.size, sha256: f.sha256, from: join(dirs.stages, key, "files", f.name) });
    pending.push({ path: `stages/${key}/entry.json`, size: e.length, sha256: sha(e), from: e });
  }
  const index: BundleIndex = { format: FORMAT, version: 1, members: pending.map((p, i) => ({ member: memberName(i), path: p.path, size: p.size, sha256: p.sha256 })) };
  const indexBytes = text(index);

  const { path: tmp, fh } = await createTempBeside(file);
  let bytes = 0;
  try {
    const mtime = Math.floor(Date.now() / 1000);
    const put = async (name: string, data: Buffer | string, size: number) => {
      await fh.write(encodeGnuHeader({ name, size, mtime }));
      if (typeof data === "string") {
        let n = 0;
        for await (const chunk of createReadStream(data, { signal: opts.signal })) {
          await fh.write(chunk as Buffer);
          n += (chunk as Buffer).length;
        }
        if (n !== size) throw new UserError("CACHE_CHANGED", `${data} changed size while it was exported`);
      } else await fh.write(data);
      await fh.write(paddingFor(size));
      bytes += size;
    };
    await put(INDEX, indexBytes, indexBytes.length);
    for (const [i, p] of pending.entries()) {
      throwIfAborted(opts.signal);
      await put(memberName(i), p.from, p.size);
    }
    await fh.write(END_OF_ARCHIVE);
    await fh.sync();
    await fh.close();
    await publishFile(tmp, file, { replace: opts.force });
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    if (err instanceof DestinationExistsError) throw new UserError("OUTPUT_EXISTS", `-o ${file}: already exists`, { hint: "pass --force to replace it" });
    throw err;
  }
  return { sources, stages: stages.length, bytes };
}

function memberName(i: number): string {
  return `m${String(i + 1).padStart(6, "0")}`;
}

export interface ImportResult {
  sources: { added: number; present: number };
  stages: { added: number; present: number };
}

/** Reads, verifies and installs a bundle; refuses it whole on the first problem (nothing is installed). */
export async function importBundle(file: string, opts: { cacheDir?: string; signal: AbortSignal }): Promise<ImportResult> {
  const src = cacheDirs(opts.cacheDir);
  const dirs = stageDirs(opts.cacheDir);
  await mkdir(dirs.root, { recursive: true });
  const work = join(dirs.root, `.import-${process.pid}-${randomBytes(4).toString("hex")}`);
  await mkdir(work);
  let fh: FileHandle | undefined;
  const bad = (why: string) => new UserError("BUNDLE_INVALID", `${file}: ${why}; nothing was imported`);
  try {
    try {
      fh = await open(file, "r");
    } catch (err) {
      throw new UserError("BUNDLE_NOT_FOUND", `${file}: ${(err as NodeJS.ErrnoException).code ?? "cannot open"}`);
    }
    const total = (await fh.stat()).size;
    let pos = 0;
    const readHeader = async (): Promise<{ name: string; size: number } | undefined> => {
      if (pos + BLOCK > total) throw bad("truncated (no end-of-archive marker)");
      const h = Buffer.alloc(BLOCK);
      await fh!.read(h, 0, BLOCK, pos);
      pos += BLOCK;
      if (h.every((b) => b === 0)) return undefined;
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
      if (parseInt(h.subarray(148, 156).toString("ascii").replace(/[\0 ]+$/, ""), 8) !== sum) throw bad(`bad tar header checksum at byte ${pos - BLOCK}`);
      const type = h[156];
      const name = h.subarray(0, 100).toString("latin1").replace(/\0.*$/s, "");
      if (type !== 0x30 && type !== 0) throw bad(`member ${JSON.stringify(name)} is not a regular file (tar type ${JSON.stringify(String.fromCharCode(type ?? 0))}); links and directories are refused`);
      if (name.includes("/") || name.includes("\\") || name === ".." || name === ".") throw bad(`member name ${JSON.stringify(name)} is a path; a bundle has bare member names`);
      const size = decodeSize(h);
      if (!Number.isSafeInteger(size) || size < 0 || pos + size > total) throw bad(`member ${JSON.stringify(name)} is truncated`);
      return { name, size };
    };
    const copyOut = async (size: number, to: string): Promise<string> => {
      const out = await open(to, "wx", 0o600);
      const h = createHash("sha256");
      try {
        const buf = Buffer.alloc(1024 * 1024);
        for (let done = 0; done < size; ) {
          throwIfAborted(opts.signal);
          const n = Math.min(buf.length, size - done);
          const { bytesRead } = await fh!.read(buf, 0, n, pos + done);
          if (bytesRead !== n) throw bad("truncated");
          h.update(buf.subarray(0, n));
          await out.write(buf.subarray(0, n));
          done += n;
        }
        await out.sync();
      } finally {
        await out.close();
      }
      pos += size + paddingFor(size).length;
      return h.digest("hex");
    };

    const first = await readHeader();
    if (!first || first.name !== INDEX || first.size > MAX_INDEX_BYTES) throw bad(`the first member is not ${INDEX}: not a vmkiln cache bundle`);
    const ib = Buffer.alloc(first.size);
    await fh.read(ib, 0, first.size, pos);
    pos += first.size + paddingFor(first.size).length;
    let index: BundleIndex;
    try {
      index = JSON.parse(ib.toString("utf8")) as BundleIndex;
    } catch {
      throw bad(`${INDEX} is not JSON`);
    }
    if (index.format !== FORMAT || index.version !== 1 || !Array.isArray(index.members)) throw bad(`${INDEX} is not a version-1 ${FORMAT}`);
    const seen = new Set<string>();
    for (const [i, m] of index.members.entries()) {
      if (m === null || typeof m !== "object" || m.member !== memberName(i) || typeof m.path !== "string" || !Number.isSafeInteger(m.size) || m.size < 0 || typeof m.sha256 !== "string" || !KEY_PATTERN.test(m.sha256))
        throw bad(`${INDEX} member ${i + 1} is malformed`);
      const stage = STAGE_PATH.exec(m.path);
      if (!SOURCE_PATH.test(m.path) && !(stage && (stage[2] === "entry.json" || isSafeRel(stage[3])))) throw bad(`${INDEX} names ${JSON.stringify(m.path)}, which is not a cache entry's path`);
      if (seen.has(m.path)) throw bad(`${INDEX} lists ${m.path} twice`);
      seen.add(m.path);
    }
    // Extract and verify every member into the private dir.
    for (const m of index.members) {
      const h = await readHeader();
      if (!h || h.name !== m.member) throw bad(`expected member ${m.member} (${m.path}), found ${h ? JSON.stringify(h.name) : "the end"}`);
      if (h.size !== m.size) throw bad(`${m.path}: ${h.size} bytes where ${INDEX} says ${m.size}`);
      const to = join(work, m.path);
      await mkdir(dirname(to), { recursive: true });
      const got = await copyOut(h.size, to);
      if (got !== m.sha256) throw bad(`${m.path}: sha256 ${got} where ${INDEX} says ${m.sha256}`);
    }
    const after = await readHeader();
    if (after) throw bad(`member ${JSON.stringify(after.name)} is not in ${INDEX}`);

    // Each entry must be whole and agree with itself before anything moves into the cache.
    const sha = new Map(index.members.map((m) => [m.path, m.sha256]));
    const sourceNames = [...new Set(index.members.map((m) => SOURCE_PATH.exec(m.path)?.[1]).filter((x): x is string => !!x))];
    for (const n of sourceNames) {
      if (!sha.has(`sources/${n}`) || !sha.has(`sources/${n}.json`)) throw bad(`source ${n} comes without its file or sidecar`);
      let meta: { sha256?: unknown; size?: unknown };
      try {
        meta = JSON.parse(await readFile(join(work, "sources", `${n}.json`), "utf8")) as typeof meta;
      } catch {
        throw bad(`source ${n}: its sidecar is not JSON`);
      }
      if (meta === null || typeof meta !== "object" || Array.isArray(meta)) throw bad(`source ${n}: its sidecar is not a JSON object`);
      const size = (await stat(join(work, "sources", n))).size;
      if (meta.sha256 !== sha.get(`sources/${n}`) || meta.size !== size) throw bad(`source ${n}: its sidecar does not match its bytes`);
      if (n.startsWith("sha256-") && n.slice(7) !== meta.sha256) throw bad(`source ${n}: its bytes have sha256 ${meta.sha256}`);
      if (n.startsWith("sha512-")) {
        const h = createHash("sha512");
        for await (const c of createReadStream(join(work, "sources", n))) h.update(c as Buffer);
        if (h.digest("hex") !== n.slice(7)) throw bad(`source ${n}: its bytes do not have that sha512`);
      }
    }
    const keys = [...new Set(index.members.map((m) => STAGE_PATH.exec(m.path)?.[1]).filter((x): x is string => !!x))];
    const stagesRoot = { root: work, stages: join(work, "stages"), tmp: join(work, "tmp") };
    for (const key of keys) {
      const entry = await readEntry(stagesRoot, key);
      if (!entry) throw bad(`stage ${key}: no valid entry.json`);
      const listed = index.members.filter((m) => m.path.startsWith(`stages/${key}/files/`)).map((m) => m.path.slice(`stages/${key}/files/`.length));
      if (listed.length !== entry.files.length || entry.files.some((f) => sha.get(`stages/${key}/files/${f.name}`) !== f.sha256))
        throw bad(`stage ${key}: its files do not match its entry.json`);
      for (const f of entry.files) {
        const p = join(work, "stages", key, "files", f.name);
        await chmod(p, 0o444);
        const id = await storedIdentity(p);
        f.verified = { dev: id.dev, ino: id.ino, size: id.size, mtimeNs: id.mtimeNs, ctimeNs: id.ctimeNs };
      }
      await writeFileAtomic(join(work, "stages", key, "entry.json"), JSON.stringify(entry, null, 2) + "\n");
    }

    // Install: entries already present are kept (same name, same content by construction).
    const result: ImportResult = { sources: { added: 0, present: 0 }, stages: { added: 0, present: 0 } };
    if (sourceNames.length > 0) await mkdir(src.sources, { recursive: true });
    for (const n of sourceNames) {
      if (await lstat(join(src.sources, n)).catch(() => undefined)) {
        result.sources.present++;
        continue;
      }
      await chmod(join(work, "sources", n), 0o444);
      await rename(join(work, "sources", `${n}.json`), join(src.sources, `${n}.json`));
      await rename(join(work, "sources", n), join(src.sources, n));
      result.sources.added++;
    }
    if (keys.length > 0) await mkdir(dirs.stages, { recursive: true });
    for (const key of keys) {
      if (await readEntry(dirs, key)) {
        result.stages.present++;
        continue;
      }
      await rm(join(dirs.stages, key), { recursive: true, force: true });
      await rename(join(work, "stages", key), join(dirs.stages, key));
      result.stages.added++;
    }
    return result;
  } finally {
    await fh?.close().catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}
