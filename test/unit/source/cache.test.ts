import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AbortError } from "../../../src/errors.js";
import { acquireLock, cacheDirs } from "../../../src/source/cache.js";

describe("cacheDirs", () => {
  it("prefers the option, then VMKILN_CACHE_DIR, then XDG, then ~/.cache", () => {
    expect(cacheDirs("/c", { VMKILN_CACHE_DIR: "/v" }).sources).toBe("/c/sources");
    expect(cacheDirs(undefined, { VMKILN_CACHE_DIR: "/v", XDG_CACHE_HOME: "/x" }).sources).toBe("/v/sources");
    expect(cacheDirs(undefined, { XDG_CACHE_HOME: "/x" }).sources).toBe("/x/vmkiln/sources");
    expect(cacheDirs(undefined, {}).sources).toMatch(/\.cache\/vmkiln\/sources$/);
    expect(cacheDirs("/c").partial).toBe("/c/sources/partial");
  });
});

describe("acquireLock", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmkiln-lock-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("makes a second holder wait until the first releases", async () => {
    const path = join(dir, "x.lock");
    const signal = new AbortController().signal;
    const first = await acquireLock(path, { signal });
    let waited = 0;
    let second = false;
    const p = acquireLock(path, { signal, onWait: () => waited++ }).then((l) => {
      second = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(second).toBe(false);
    expect(waited).toBe(1);
    await first.release();
    const l2 = await p;
    expect(second).toBe(true);
    await l2.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it("steals a lock whose owner process is dead", async () => {
    const path = join(dir, "x.lock");
    const dead = spawnSync(process.execPath, ["-e", ""]).pid;
    await writeFile(path, JSON.stringify({ pid: dead, host: hostname(), startedAt: "then", nonce: "old" }));
    const lock = await acquireLock(path, { signal: new AbortController().signal });
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it("steals an old, half-written lock", async () => {
    const path = join(dir, "x.lock");
    await writeFile(path, "");
    const old = new Date(Date.now() - 60_000);
    await utimes(path, old, old);
    const lock = await acquireLock(path, { signal: new AbortController().signal });
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it("honours the AbortSignal while waiting and leaves the holder's lock alone", async () => {
    const path = join(dir, "x.lock");
    const holder = await acquireLock(path, { signal: new AbortController().signal });
    const ac = new AbortController();
    const p = acquireLock(path, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toBeInstanceOf(AbortError);
    expect(await readdir(dir)).toEqual(["x.lock"]);
    await holder.release();
    expect(await readdir(dir)).toEqual([]);
  });
});
