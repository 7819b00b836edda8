// The source cache trusts only bytes vmkiln verified (issue 12): an entry is named by its digest, but
// a file whose bytes were replaced (same size, so the sidecar's size check passes) was used as the
// build's source without a hash check. Now the identity recorded at verification (dev, inode, size,
// mtime, ctime in ns) must still hold, or the entry is hashed again.
import { createHash, randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync, writeSync, chmodSync, existsSync, mkdirSync, renameSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventBus, type BuildEvent } from "../../../src/log/events.js";
import { sha256Text } from "../../../src/source/cache.js";
import { resolveSource, type ResolveSourceOptions } from "../../../src/source/fetch.js";
import type { SourceSpec } from "../../../src/template/spec.js";
import { startServer, type TestServer } from "./server.js";

const BODY = randomBytes(256 * 1024 + 7);
const SHA256 = createHash("sha256").update(BODY).digest("hex");
let server: TestServer;
let tmp: string;
let cacheDir: string;
let events: BuildEvent[];

beforeEach(async () => {
  server = await startServer();
  tmp = await mkdtemp(join(tmpdir(), "vmkiln-cache-trust-"));
  cacheDir = join(tmp, "cache");
  events = [];
  server.routes.set("/disk.img", { body: BODY, etag: '"v1"' });
});
afterEach(async () => {
  await server.close();
  await rm(tmp, { recursive: true, force: true });
});

const spec = (): SourceSpec => ({ kind: "cloud-image", location: server.url("/disk.img"), checksum: { kind: "sha256", hex: SHA256 }, format: undefined });
function opts(): ResolveSourceOptions {
  const bus = new EventBus();
  bus.subscribe((e) => events.push(e));
  return { events: bus, signal: new AbortController().signal, cacheDir, download: { retries: 0, retryDelayMs: 10 } };
}
const entry = () => join(cacheDir, "sources", `sha256-${SHA256}`);
const verifyProgress = () => events.filter((e) => e.type === "progress" && /^verify /.test((e as { task?: string }).task ?? ""));

/** Overwrites the entry in place (root ignores its 0444), same size, then optionally restores its mtime. */
function tamper(path: string, restoreMtime: boolean): void {
  const before = statSync(path);
  chmodSync(path, 0o644);
  const fd = openSync(path, "r+");
  writeSync(fd, Buffer.alloc(4096, 0x66), 0, 4096, 1000);
  closeSync(fd);
  chmodSync(path, 0o444);
  if (restoreMtime) utimesSync(path, before.atime, before.mtime);
  expect(statSync(path).size).toBe(before.size);
}

describe("a cache entry is used only while vmkiln can vouch for its bytes", () => {
  it("a same-size replacement is detected, not used, and replaced by a fresh download", async () => {
    await resolveSource(spec(), opts());
    tamper(entry(), false);
    events = [];
    const r = await resolveSource(spec(), opts());
    expect(readFileSync(r.path).equals(BODY)).toBe(true);
    expect(r.fromCache).toBe(false);
    expect(server.bodyGets("/disk.img")).toBe(2);
    expect(events.some((e) => e.type === "log" && e.level === "warn" && /no longer match sha256-/.test(e.message))).toBe(true);
  });

  it("…also when the mtime was put back (touch -d): the ctime still shows the write", async () => {
    await resolveSource(spec(), opts());
    tamper(entry(), true);
    const r = await resolveSource(spec(), opts());
    expect(readFileSync(r.path).equals(BODY)).toBe(true);
    expect(server.bodyGets("/disk.img")).toBe(2);
  });

  it("an unchanged entry is not hashed again; a touched one with the same bytes is hashed once, then trusted", async () => {
    await resolveSource(spec(), opts());
    events = [];
    expect((await resolveSource(spec(), opts())).fromCache).toBe(true);
    expect(verifyProgress()).toEqual([]);

    const t = new Date(Date.now() - 3600_000);
    utimesSync(entry(), t, t); // bytes intact, identity changed
    events = [];
    expect((await resolveSource(spec(), opts())).fromCache).toBe(true);
    expect(verifyProgress().length).toBeGreaterThan(0);
    events = [];
    expect((await resolveSource(spec(), opts())).fromCache).toBe(true);
    expect(verifyProgress()).toEqual([]);
    expect(server.bodyGets("/disk.img")).toBe(1);
  });

  it("an entry replaced by a symlink (even to the right bytes) is not the verified file", async () => {
    await resolveSource(spec(), opts());
    const elsewhere = join(tmp, "elsewhere.img");
    writeFileSync(elsewhere, BODY);
    renameSync(entry(), join(tmp, "moved-away"));
    symlinkSync(elsewhere, entry());
    const r = await resolveSource(spec(), opts());
    expect(r.fromCache).toBe(false);
    expect(statSync(elsewhere).mode & 0o777).not.toBe(0o444); // the link's target was not touched
  });
});

describe("downloads into the cache never write through a planted link", () => {
  it("a symlink at the part file's name is replaced, its target untouched", async () => {
    const partial = join(cacheDir, "sources", "partial");
    mkdirSync(partial, { recursive: true });
    const victim = join(tmp, "victim.txt");
    writeFileSync(victim, "do not touch");
    symlinkSync(victim, join(partial, `${sha256Text(server.url("/disk.img"))}.part`));
    const r = await resolveSource(spec(), opts());
    expect(readFileSync(r.path).equals(BODY)).toBe(true);
    expect(readFileSync(victim, "utf8")).toBe("do not touch");
    expect(statSync(victim).mode & 0o777).toBe(0o644);
    expect(existsSync(join(partial, `${sha256Text(server.url("/disk.img"))}.part`))).toBe(false);
  });
});
