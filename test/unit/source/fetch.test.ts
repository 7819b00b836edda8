import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AbortError, BuildError, UserError } from "../../../src/errors.js";
import { EventBus, type BuildEvent } from "../../../src/log/events.js";
import { resolveSource, type ResolveSourceOptions } from "../../../src/source/fetch.js";
import type { ChecksumSpec, SourceSpec } from "../../../src/template/spec.js";
import { startServer, type TestServer } from "./server.js";

const BODY = randomBytes(512 * 1024 + 123);
const SHA256 = createHash("sha256").update(BODY).digest("hex");
const SHA512 = createHash("sha512").update(BODY).digest("hex");

let server: TestServer;
let tmp: string;
let cacheDir: string;
let events: BuildEvent[];
let bus: EventBus;

beforeEach(async () => {
  server = await startServer();
  tmp = await mkdtemp(join(tmpdir(), "vmkiln-src-"));
  cacheDir = join(tmp, "cache");
  events = [];
  bus = new EventBus();
  bus.subscribe((e) => events.push(e));
  server.routes.set("/img/disk.img", { body: BODY, etag: '"v1"' });
});

afterEach(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

function spec(location: string, checksum: ChecksumSpec): SourceSpec {
  return { kind: "cloud-image", location, checksum, format: undefined };
}

function opts(extra: Partial<ResolveSourceOptions> = {}): ResolveSourceOptions {
  return {
    events: bus,
    signal: new AbortController().signal,
    cacheDir,
    download: { retries: 0, retryDelayMs: 10 },
    ...extra,
  };
}

/** Every file under the cache with its size: "identical before/after" compares these. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      const p = join(d, n);
      const st = await stat(p);
      if (st.isDirectory()) {
        out.push(`${relative(dir, p)}/`);
        await walk(p);
      } else out.push(`${relative(dir, p)} ${st.size}`);
    }
  };
  await walk(dir);
  return out;
}

const sha256 = (hex = SHA256): ChecksumSpec => ({ kind: "sha256", hex });

describe("resolveSource over HTTP", () => {
  it("downloads, verifies sha256 and stores the entry by digest with a sidecar", async () => {
    const url = server.url("/img/disk.img");
    const r = await resolveSource(spec(url, sha256()), opts());
    expect(r).toMatchObject({ sha256: SHA256, size: BODY.length, location: url, fromCache: false });
    expect(r.path).toBe(join(cacheDir, "sources", `sha256-${SHA256}`));
    expect((await readFile(r.path)).equals(BODY)).toBe(true);
    const meta = JSON.parse(await readFile(`${r.path}.json`, "utf8"));
    expect(meta).toMatchObject({ url, size: BODY.length, sha256: SHA256 });
    expect(typeof meta.fetchedAt).toBe("string");
    // Nothing left behind but the entry, its sidecar and the (empty) partial dir.
    expect(await listing(join(cacheDir, "sources"))).toEqual([`partial/`, `sha256-${SHA256} ${BODY.length}`, expect.stringMatching(/^sha256-.*\.json \d+$/)]);
  });

  it("emits progress events with the total", async () => {
    await resolveSource(spec(server.url("/img/disk.img"), sha256()), opts());
    const progress = events.filter((e) => e.type === "progress");
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({ done: BODY.length, total: BODY.length, unit: "bytes" });
    expect(events.some((e) => e.type === "progress-end")).toBe(true);
  });

  it("verifies sha512 and keys the entry by it, still reporting sha256", async () => {
    const r = await resolveSource(spec(server.url("/img/disk.img"), { kind: "sha512", hex: SHA512.toUpperCase() }), opts());
    expect(r.sha256).toBe(SHA256);
    expect(r.path.endsWith(`sha512-${SHA512}`)).toBe(true);
    const again = await resolveSource(spec(server.url("/img/disk.img"), { kind: "sha512", hex: SHA512 }), opts());
    expect(again).toMatchObject({ fromCache: true, sha256: SHA256, path: r.path });
  });

  it.each([
    ["GNU *name (binary marker), sha256", `${SHA256} *disk.img\n${"0".repeat(64)}  other.img\n`, "sha256"],
    ["GNU bare sha512 with ./name", `${SHA512}  ./disk.img\n`, "sha512"],
    ["BSD SHA256", `SHA256 (other.img) = ${"0".repeat(64)}\nSHA256 (disk.img) = ${SHA256}\n`, "sha256"],
    ["BSD SHA512", `SHA512 (disk.img) = ${SHA512}\n`, "sha512"],
  ])("file: sums over http — %s", async (_label, sums, algo) => {
    server.routes.set("/img/SHA256SUMS", { body: Buffer.from(sums) });
    const r = await resolveSource(
      spec(server.url("/img/disk.img"), { kind: "file", location: server.url("/img/SHA256SUMS") }),
      opts(),
    );
    expect(r.sha256).toBe(SHA256);
    expect(r.path.endsWith(`${algo}-${algo === "sha256" ? SHA256 : SHA512}`)).toBe(true);
  });

  it("file: sums from a local path", async () => {
    const sums = join(tmp, "SHA256SUMS");
    await writeFile(sums, `SHA256 (disk.img) = ${SHA256}\n`);
    const r = await resolveSource(spec(server.url("/img/disk.img"), { kind: "file", location: sums }), opts());
    expect(r.sha256).toBe(SHA256);
  });

  it("a sums file without the entry names the sums file and the file looked for", async () => {
    server.routes.set("/img/SHA256SUMS", { body: Buffer.from(`${SHA256}  other.img\n`) });
    const sumsUrl = server.url("/img/SHA256SUMS");
    const err = await resolveSource(spec(server.url("/img/disk.img"), { kind: "file", location: sumsUrl }), opts()).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain(sumsUrl);
    expect(err.message).toContain('"disk.img"');
    expect(server.bodyGets("/img/disk.img")).toBe(0);
  });

  it("a cache hit makes no request", async () => {
    const url = server.url("/img/disk.img");
    await resolveSource(spec(url, sha256()), opts());
    const before = server.seen.length;
    const r = await resolveSource(spec(url, sha256()), opts());
    expect(r.fromCache).toBe(true);
    expect(server.seen.length).toBe(before);
  });

  it("resumes an interrupted download with Range + If-Range", async () => {
    const cut = 200_000;
    server.routes.set("/img/disk.img", { body: BODY, etag: '"v1"', cutAfter: cut, cutWhenPartIn: join(cacheDir, "sources", "partial") });
    const url = server.url("/img/disk.img");
    const first = await resolveSource(spec(url, sha256()), opts()).catch((e) => e);
    expect(first).toBeInstanceOf(BuildError);
    expect(first.message).not.toMatch(/\n|at .*\.ts/);
    const partial = await readdir(join(cacheDir, "sources", "partial"));
    expect(partial.filter((n) => n.endsWith(".part"))).toHaveLength(1);
    expect(partial.some((n) => n.endsWith(".lock"))).toBe(false);

    const r = await resolveSource(spec(url, sha256()), opts());
    expect(server.seen.at(-1)).toMatchObject({ range: `bytes=${cut}-`, ifRange: '"v1"' });
    expect((await readFile(r.path)).equals(BODY)).toBe(true);
    expect(r.sha256).toBe(SHA256);
    expect(await readdir(join(cacheDir, "sources", "partial"))).toEqual([]);
  });

  it("retries within one call, resuming where the connection was cut", async () => {
    server.routes.set("/img/disk.img", { body: BODY, lastModified: "Mon, 01 Jan 2024 00:00:00 GMT", cutAfter: 100_000, cutTimes: 2, cutWhenPartIn: join(cacheDir, "sources", "partial") });
    const r = await resolveSource(spec(server.url("/img/disk.img"), sha256()), opts({ download: { retries: 3, retryDelayMs: 10 } }));
    expect(r.sha256).toBe(SHA256);
    expect(server.seen.map((s) => s.range)).toEqual([undefined, "bytes=100000-", "bytes=200000-"]);
    expect(server.seen[1]!.ifRange).toBe("Mon, 01 Jan 2024 00:00:00 GMT");
  });

  it("restarts from zero when the server answers 200 to a Range request", async () => {
    const route = { body: BODY, etag: '"v1"', cutAfter: 150_000 };
    server.routes.set("/img/disk.img", route);
    const url = server.url("/img/disk.img");
    await expect(resolveSource(spec(url, sha256()), opts())).rejects.toBeInstanceOf(BuildError);
    server.routes.set("/img/disk.img", { body: BODY, etag: '"v1"', ignoreRange: true });
    const r = await resolveSource(spec(url, sha256()), opts());
    expect(server.seen.at(-1)!.range).toBe("bytes=150000-");
    expect((await readFile(r.path)).equals(BODY)).toBe(true);
  });

  it("restarts from zero when the file changed upstream (If-Range no longer matches)", async () => {
    server.routes.set("/img/disk.img", { body: randomBytes(BODY.length), etag: '"old"', cutAfter: 150_000 });
    const url = server.url("/img/disk.img");
    await expect(resolveSource(spec(url, sha256()), opts())).rejects.toBeInstanceOf(BuildError);
    server.routes.set("/img/disk.img", { body: BODY, etag: '"new"' });
    const r = await resolveSource(spec(url, sha256()), opts());
    expect(server.seen.at(-1)!.ifRange).toBe('"old"');
    expect(r.sha256).toBe(SHA256);
  });

  it("after a mismatch on a resumed download, downloads once more from zero", async () => {
    // A server that changed the file but kept its ETag: the resume splices two versions.
    server.routes.set("/img/disk.img", { body: randomBytes(BODY.length), etag: '"same"', cutAfter: 150_000 });
    const url = server.url("/img/disk.img");
    await expect(resolveSource(spec(url, sha256()), opts())).rejects.toBeInstanceOf(BuildError);
    server.routes.set("/img/disk.img", { body: BODY, etag: '"same"' });
    const r = await resolveSource(spec(url, sha256()), opts());
    expect(server.seen.slice(-2).map((s) => s.range)).toEqual(["bytes=150000-", undefined]);
    expect(r.sha256).toBe(SHA256);
    expect(events.some((e) => e.type === "log" && /downloading it again/.test(e.message))).toBe(true);
  });

  it("a checksum mismatch is a one-line CHECKSUM_MISMATCH and leaves the cache exactly as it was", async () => {
    // A populated cache (another entry) so the comparison covers real state, not just absence.
    server.routes.set("/img/other.img", { body: Buffer.from("other") });
    await resolveSource(spec(server.url("/img/other.img"), { kind: "none" }), opts());
    const before = await listing(cacheDir);

    const wrong = "0".repeat(64);
    const url = server.url("/img/disk.img");
    const err = await resolveSource(spec(url, sha256(wrong)), opts()).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.code).toBe("CHECKSUM_MISMATCH");
    expect(err.message).toBe(`checksum mismatch for ${url}: expected sha256:${wrong}, got sha256:${SHA256}`);
    expect(await listing(cacheDir)).toEqual(before);
  });

  it("a mismatch into a fresh cache dir leaves nothing behind", async () => {
    const err = await resolveSource(spec(server.url("/img/disk.img"), sha256("1".repeat(64))), opts()).catch((e) => e);
    expect(err.code).toBe("CHECKSUM_MISMATCH");
    expect(await listing(cacheDir)).toEqual([]);
  });

  it("two concurrent calls for the same URL download it once", async () => {
    server.routes.set("/img/disk.img", { body: BODY, etag: '"v1"', chunkDelayMs: 5 });
    const url = server.url("/img/disk.img");
    const [a, b] = await Promise.all([resolveSource(spec(url, sha256()), opts()), resolveSource(spec(url, sha256()), opts())]);
    expect(server.bodyGets("/img/disk.img")).toBe(1);
    expect(a.path).toBe(b.path);
    expect([a.fromCache, b.fromCache].sort()).toEqual([false, true]);
    expect(events.some((e) => e.type === "log" && /waiting for another vmkiln process/.test(e.message))).toBe(true);
  });

  it("abort mid-download rejects with AbortError, keeps the partial and leaves no lock", async () => {
    server.routes.set("/img/disk.img", { body: BODY, etag: '"v1"', stallAfter: 64 * 1024 });
    const ac = new AbortController();
    bus.subscribe((e) => {
      if (e.type === "progress" && e.done > 0) ac.abort();
    });
    const err = await resolveSource(spec(server.url("/img/disk.img"), sha256()), opts({ signal: ac.signal })).catch((e) => e);
    expect(err).toBeInstanceOf(AbortError);
    const files = await listing(cacheDir);
    expect(files.filter((f) => f.includes(".lock"))).toEqual([]);
    expect(files.some((f) => /\.part \d+$/.test(f))).toBe(true);
  });

  it("a server that goes silent mid-body hits the idle timeout", async () => {
    server.routes.set("/img/disk.img", { body: BODY, etag: '"v1"', stallAfter: 32 * 1024 });
    const err = await resolveSource(
      spec(server.url("/img/disk.img"), sha256()),
      opts({ download: { retries: 0, bodyTimeoutMs: 200 } }),
    ).catch((e) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect(err.code).toBe("DOWNLOAD_TIMEOUT");
    expect((await listing(cacheDir)).filter((f) => f.includes(".lock"))).toEqual([]);
  });

  it("follows redirects", async () => {
    server.routes.set("/latest/disk.img", { redirectTo: "/img/disk.img" });
    const r = await resolveSource(spec(server.url("/latest/disk.img"), sha256()), opts());
    expect(r.sha256).toBe(SHA256);
  });

  it("HTTP 404 is a UserError naming the URL", async () => {
    const url = server.url("/img/missing.img");
    const err = await resolveSource(spec(url, sha256()), opts()).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain(url);
  });

  it("checksum none downloads, warns and stores by the computed sha256", async () => {
    const r = await resolveSource(spec(server.url("/img/disk.img"), { kind: "none" }), opts());
    expect(r.path.endsWith(`sha256-${SHA256}`)).toBe(true);
    expect(events.some((e) => e.type === "log" && e.level === "warn" && /unverified/.test(e.message))).toBe(true);
  });
});

describe("resolveSource with a local path", () => {
  let file: string;
  beforeEach(async () => {
    file = join(tmp, "local.img");
    await writeFile(file, BODY);
  });

  it("verifies in place (no copy) and memoises the digest", async () => {
    const r = await resolveSource(spec(file, sha256()), opts());
    expect(r).toEqual({ path: file, sha256: SHA256, size: BODY.length, location: file, fromCache: false });
    expect(events.some((e) => e.type === "progress" && e.total === BODY.length)).toBe(true);
    expect((await listing(join(cacheDir, "sources"))).filter((f) => f.startsWith("sha"))).toEqual([]);

    events.length = 0;
    const again = await resolveSource(spec(file, sha256()), opts());
    expect(again.sha256).toBe(SHA256);
    expect(events.some((e) => e.type === "progress")).toBe(false); // memo hit: not re-read
  });

  it("re-hashes after the file changes", async () => {
    await resolveSource(spec(file, { kind: "none" }), opts());
    const other = Buffer.concat([BODY, Buffer.from("x")]);
    await writeFile(file, other);
    const r = await resolveSource(spec(file, { kind: "none" }), opts());
    expect(r.sha256).toBe(createHash("sha256").update(other).digest("hex"));
  });

  it("verifies sha512 and from a local sums file", async () => {
    expect((await resolveSource(spec(file, { kind: "sha512", hex: SHA512 }), opts())).sha256).toBe(SHA256);
    const sums = join(tmp, "SUMS");
    await writeFile(sums, `${SHA256} *local.img\n`);
    expect((await resolveSource(spec(file, { kind: "file", location: sums }), opts())).sha256).toBe(SHA256);
  });

  it("a wrong checksum fails with CHECKSUM_MISMATCH naming the path", async () => {
    const wrong = "f".repeat(64);
    const err = await resolveSource(spec(file, sha256(wrong)), opts()).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.code).toBe("CHECKSUM_MISMATCH");
    expect(err.message).toBe(`checksum mismatch for ${file}: expected sha256:${wrong}, got sha256:${SHA256}`);
  });

  it("a missing file is a UserError naming it", async () => {
    const missing = join(tmp, "nope.img");
    const err = await resolveSource(spec(missing, sha256()), opts()).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toContain(missing);
  });
});
