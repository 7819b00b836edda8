// The stage cache's trust model (issue 17): an entry is what a complete rename made visible, checked
// by identity or by its bytes; a killed build's directory is never read as an entry.
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile, chmod, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { commitStage, listStages, lookupStage, makeTmp, pruneStages, removeStaleTmp, stageDirs, isSafeRel, type StageDirs } from "../../../src/layers/store.js";

let root: string;
let dirs: StageDirs;
const signal = new AbortController().signal;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "vmkiln-stages-"));
  dirs = stageDirs(root);
});
afterEach(() => rm(root, { recursive: true, force: true }));

const key = (c: string) => c.repeat(64);

async function entry(k: string, files: Record<string, string>) {
  const tmp = await makeTmp(dirs, k);
  for (const [n, t] of Object.entries(files)) {
    await mkdir(join(tmp, "files", n, ".."), { recursive: true });
    await writeFile(join(tmp, "files", n), t);
  }
  return commitStage(dirs, tmp, { schema: 1, key: k, stage: "s", template: "/t.yaml", driver: "qemu", vmkiln_version: "0", created: "now", source: { digest: "x", location: "y" }, inputs: [], spec: {}, disk: "disk.qcow2" }, signal);
}

describe("stage cache", () => {
  it("a committed entry is a hit, its files read-only; a missing key is a miss", async () => {
    const hit = await entry(key("a"), { "disk.qcow2": "disk", "sub/x": "x" });
    expect(hit.entry.files.map((f) => f.name)).toEqual(["disk.qcow2", "sub/x"]);
    expect((await lookupStage(dirs, key("a"), signal))?.entry.key).toBe(key("a"));
    expect(await lookupStage(dirs, key("b"), signal)).toBeUndefined();
    expect(await readdir(dirs.tmp)).toEqual([]);
  });

  it("a file changed in place (same size) is re-hashed and the entry refused", async () => {
    await entry(key("a"), { "disk.qcow2": "disk" });
    const p = join(dirs.stages, key("a"), "files", "disk.qcow2");
    await chmod(p, 0o644);
    await writeFile(p, "DISK");
    const why: string[] = [];
    expect(await lookupStage(dirs, key("a"), signal, (w) => why.push(w))).toBeUndefined();
    expect(why[0]).toMatch(/no longer matches/);
  });

  it("a touched but unchanged file is re-hashed and still trusted", async () => {
    await entry(key("a"), { "disk.qcow2": "disk" });
    const p = join(dirs.stages, key("a"), "files", "disk.qcow2");
    await utimes(p, new Date(0), new Date(0));
    expect(await lookupStage(dirs, key("a"), signal)).toBeDefined();
  });

  it("a missing file or a half-written entry (killed build) is a miss", async () => {
    await entry(key("a"), { "disk.qcow2": "disk" });
    await rm(join(dirs.stages, key("a"), "files", "disk.qcow2"), { force: true });
    expect(await lookupStage(dirs, key("a"), signal)).toBeUndefined();
    // Killed after the output was written but before entry.json and the rename.
    const tmp = await makeTmp(dirs, key("c"));
    await mkdir(join(tmp, "files"));
    await writeFile(join(tmp, "files", "disk.qcow2"), "half");
    expect(await lookupStage(dirs, key("c"), signal)).toBeUndefined();
    expect(await listStages(dirs)).toHaveLength(1);
    // A directory at the key's name without entry.json (a rename by hand, a copy cut short).
    await mkdir(join(dirs.stages, key("d"), "files"), { recursive: true });
    expect(await lookupStage(dirs, key("d"), signal)).toBeUndefined();
  });

  it("removeStaleTmp removes only build dirs of dead processes", async () => {
    const mine = await makeTmp(dirs, key("a"));
    await mkdir(join(dirs.tmp, `${key("b")}.999999999.0badf00d`));
    expect(await removeStaleTmp(dirs)).toEqual([`${key("b")}.999999999.0badf00d`]);
    expect(await readdir(dirs.tmp)).toEqual([mine.slice(dirs.tmp.length + 1)]);
  });

  it("prune: --keep, --older-than and a size cap, least recently used first, never a protected entry", async () => {
    await entry(key("a"), { "disk.qcow2": "a".repeat(100) });
    await entry(key("b"), { "disk.qcow2": "b".repeat(100) });
    await entry(key("c"), { "disk.qcow2": "c".repeat(100) });
    const t = (k: string, s: number) => utimes(join(dirs.stages, k, "entry.json"), new Date(s * 1000), new Date(s * 1000));
    await t(key("a"), 1000);
    await t(key("b"), 2000);
    await t(key("c"), Date.now() / 1000);
    expect((await pruneStages(dirs, { keep: 2, dryRun: true })).removed.map((e) => e.key)).toEqual([key("a")]);
    expect((await pruneStages(dirs, { olderThanMs: 3600_000, dryRun: true })).removed.map((e) => e.key).sort()).toEqual([key("a"), key("b")]);
    expect((await pruneStages(dirs, { maxBytes: 150, protect: new Set([key("a")]) })).removed.map((e) => e.key).sort()).toEqual([key("b"), key("c")]);
    expect((await listStages(dirs)).map((e) => e.key)).toEqual([key("a")]);
  });

  it("a size cap with --keep and a protected entry evicts oldest-first until the entries left fit (regression: it stopped at 200 bytes over a 150 cap)", async () => {
    for (const c of "abc") await entry(key(c), { "disk.qcow2": c.repeat(100) });
    const t = (k: string, s: number) => utimes(join(dirs.stages, k, "entry.json"), new Date(s * 1000), new Date(s * 1000));
    await t(key("a"), 1000);
    await t(key("b"), 2000);
    // keep: 2 selects a, but a is protected (the running build uses it): it stays, so b and c must go.
    const r = await pruneStages(dirs, { keep: 2, maxBytes: 150, protect: new Set([key("a")]) });
    expect(r.removed.map((e) => e.key).sort()).toEqual([key("b"), key("c")]);
    expect(r.leftBytes).toBe(100);
    expect(r.short).toBeUndefined();
    expect((await listStages(dirs)).map((e) => e.key)).toEqual([key("a")]);
  });

  it("a size cap it cannot reach says why: the protected entry, and the one a live build holds the lock of", async () => {
    for (const c of "abc") await entry(key(c), { "disk.qcow2": c.repeat(100) });
    await writeFile(join(dirs.stages, `${key("b")}.lock`), JSON.stringify({ pid: process.pid, nonce: "n" }));
    // A lock of a dead process holds nothing.
    await writeFile(join(dirs.stages, `${key("c")}.lock`), JSON.stringify({ pid: 4194305, nonce: "n" }));
    const r = await pruneStages(dirs, { maxBytes: 50, protect: new Set([key("a")]) });
    expect(r.removed.map((e) => e.key)).toEqual([key("c")]);
    expect(r.leftBytes).toBe(200);
    expect(r.short).toMatch(/^200 bytes stay, over the cap of 50: /);
    expect(r.short).toContain("is used by this build");
    expect(r.short).toContain(`locked by pid ${process.pid}, which is building it`);
  });

  it("a damaged entry (no readable entry.json) takes space the cap cannot see: prune removes it", async () => {
    await entry(key("a"), { "disk.qcow2": "a".repeat(100) });
    await mkdir(join(dirs.stages, key("d"), "files"), { recursive: true });
    await writeFile(join(dirs.stages, key("d"), "files", "disk.qcow2"), "d".repeat(1000));
    await writeFile(join(dirs.stages, key("d"), "entry.json"), "{ half");
    expect((await pruneStages(dirs, { maxBytes: 1000, dryRun: true })).damaged).toEqual([key("d")]);
    expect(await readdir(dirs.stages)).toContain(key("d"));
    const r = await pruneStages(dirs, { maxBytes: 1000 });
    expect(r.damaged).toEqual([key("d")]);
    expect(r.removed).toEqual([]);
    expect((await readdir(dirs.stages)).filter((n) => /^[0-9a-f]{64}$/.test(n))).toEqual([key("a")]);
  });

  it("a kept result (a VM template, no files) is recorded and read back; a malformed one makes the entry a miss", async () => {
    const tmp = await makeTmp(dirs, key("e"));
    const kept = { driver: "vsphere" as const, location: "/DC0/vm/tpl", identity: { moref: "vm-1", instanceUuid: "u-1" } };
    await commitStage(dirs, tmp, { schema: 1, key: key("e"), stage: "s", template: "/t.yaml", driver: "vsphere", vmkiln_version: "0", created: "now", source: { digest: "x", location: "y" }, inputs: [], spec: {}, kept }, signal);
    expect((await lookupStage(dirs, key("e"), signal))?.entry).toMatchObject({ kept, files: [] });
    const file = join(dirs.stages, key("e"), "entry.json");
    const good = JSON.parse(await readFile(file, "utf8"));
    for (const bad of [{ ...kept, location: "" }, { ...kept, identity: { moref: 1 } }, { ...kept, identity: ["u"] }, "tpl", null, { location: "/x", identity: {} }]) {
      await chmod(file, 0o644);
      await writeFile(file, JSON.stringify({ ...good, kept: bad }));
      expect(await lookupStage(dirs, key("e"), signal), JSON.stringify(bad)).toBeUndefined();
    }
  });

  it("isSafeRel refuses escapes", () => {
    for (const bad of ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a\\b", "a\0b", "..", "."]) expect(isSafeRel(bad), bad).toBe(false);
    for (const good of ["disk.qcow2", "a/b/c", "..a", "a..b"]) expect(isSafeRel(good), good).toBe(true);
  });
});
