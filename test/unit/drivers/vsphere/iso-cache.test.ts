// Issue 12 items 3 and 4: the ISO cache's journal and size checks, with the datastore faked at its
// boundary (the real datastore: test/integration/vsphere-iso-cache.test.ts against vcsim).
import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VsphereDriver } from "../../../../drivers/vsphere/index.js";
import { EventBus } from "../../../../src/log/events.js";
import { Journal } from "../../../../src/pipeline/journal.js";
import type { BuildSpec, VsphereSpec } from "../../../../src/template/spec.js";

describe("vSphere ISO cache", () => {
  let dir: string;
  let iso: string;
  let journal: Journal;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmkiln-iso-cache-"));
    iso = join(dir, "installer.iso");
    writeFileSync(iso, "x".repeat(1000));
    journal = new Journal("b1", join(dir, "journal"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** A datastore whose files are a Map; `fail` makes an operation throw. */
  function fakeStore(fail: { upload?: boolean; remove?: boolean; storeBytes?: number } = {}) {
    const files = new Map<string, number>();
    const calls: string[] = [];
    const store = {
      path: (p: string) => `[ds1] ${p}`,
      exists: async (p: string) => files.has(p), // what the cache used before it checked sizes
      size: async (p: string) => files.get(p),
      mkdir: async () => undefined,
      upload: async (_local: string, p: string) => {
        calls.push(`upload ${p}`);
        files.set(p, fail.storeBytes ?? 1000);
        if (fail.upload) throw new Error("connection reset during the upload");
      },
      move: async (from: string, to: string) => {
        calls.push(`move ${from} ${to}`);
        files.set(to, files.get(from)!);
        files.delete(from);
      },
      remove: async (p: string) => {
        calls.push(`remove ${p}`);
        if (fail.remove) throw new Error("vCenter unreachable");
        files.delete(p);
      },
    };
    return { store, files, calls };
  }

  function uploadIso(store: unknown) {
    const events = new EventBus();
    const warnings: string[] = [];
    events.subscribe((e) => e.type === "log" && e.level === "warn" && warnings.push(e.message));
    const v = { url: "https://vc.invalid", insecure: false, isoCacheFolder: "vmkiln-cache" } as VsphereSpec;
    const d = new VsphereDriver({} as BuildSpec, v, { url: v.url, username: "u", password: "p", caFile: undefined, insecure: false }, events, journal);
    const p = (d as unknown as { uploadIso(ds: unknown, local: string, s: AbortSignal): Promise<string> }).uploadIso(store, iso, new AbortController().signal);
    return { p, warnings };
  }

  it("a failed upload whose removal fails too stays in the journal for gc", async () => {
    const { store } = fakeStore({ upload: true, remove: true });
    const { p, warnings } = uploadIso(store);
    await expect(p).rejects.toThrow(/connection reset during the upload/);
    expect(journal.pending()).toEqual([expect.objectContaining({ kind: "remote", driver: "vsphere", id: expect.stringMatching(/^\[ds1\] vmkiln-cache\/[0-9a-f]{64}\.iso/) })]);
    expect(warnings.join("\n")).toMatch(/could not remove .* \(left for 'vmkiln gc'\): vCenter unreachable/);
  });

  it("a failed upload that is removed leaves nothing, under any name", async () => {
    const { store, files } = fakeStore({ upload: true });
    await expect(uploadIso(store).p).rejects.toThrow(/connection reset/);
    expect([...files.keys()]).toEqual([]);
    expect(journal.pending()).toEqual([]);
  });

  it("an upload the datastore kept only part of is refused and never renamed into the cache", async () => {
    const { store, files, calls } = fakeStore({ storeBytes: 999 });
    await expect(uploadIso(store).p).rejects.toThrow(/^upload of \[ds1\] vmkiln-cache\/[0-9a-f]{64}\.iso is incomplete: the datastore holds 999 bytes of 1000$/);
    expect(calls.filter((c) => c.startsWith("move"))).toEqual([]);
    expect([...files.keys()]).toEqual([]);
    expect(journal.pending()).toEqual([]);
  });

  it("uploads under a temporary name and renames it into place", async () => {
    const { store, files, calls } = fakeStore();
    const path = await uploadIso(store).p;
    expect(path).toMatch(/^\[ds1\] vmkiln-cache\/[0-9a-f]{64}\.iso$/);
    const final = path.replace("[ds1] ", "");
    expect(calls).toEqual([`upload ${final}.b1.part`, `move ${final}.b1.part ${final}`]);
    expect([...files.entries()]).toEqual([[final, 1000]]);
    expect(journal.pending()).toEqual([]);
  });
});
