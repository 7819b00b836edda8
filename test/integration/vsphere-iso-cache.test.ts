// Issue 12 item 4: the vSphere ISO cache trusts no name. Against vcsim (no VM boots here): a file
// planted under the cache name with the wrong size is replaced, and while an upload runs nothing
// exists under the final name, so a build killed half-way cannot leave a truncated file that the
// next build would attach. vcsim, like a datastore, keeps whatever part of a PUT body it received.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync, openSync, ftruncateSync, closeSync, writeSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Datastore } from "../../drivers/vsphere/datastore.js";
import { VsphereDriver } from "../../drivers/vsphere/index.js";
import { VimSession } from "../../drivers/vsphere/session.js";
import { AbortError } from "../../src/errors.js";
import { EventBus } from "../../src/log/events.js";
import { Journal } from "../../src/pipeline/journal.js";
import type { BuildSpec, VsphereSpec } from "../../src/template/spec.js";
import { startVcsim, type Vcsim } from "../helpers/vcsim.js";

const signal = new AbortController().signal;
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe("vSphere ISO cache against vcsim", () => {
  let vc: Vcsim;
  let s: VimSession;
  let ds: Datastore;
  let work: string;
  let cacheDir: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "vmkiln-vs-cache-"));
    vc = await startVcsim();
    s = await VimSession.login({ url: vc.url, username: vc.username, password: vc.password, caFile: vc.caFile, insecure: false }, signal);
    const dc = (await s.findByInventoryPath("/DC0", signal))!;
    ds = new Datastore(s, { datacenter: dc, datacenterPath: "/DC0", datastoreName: "LocalDS_0" });
    cacheDir = join(vc.datastoreDir, "vmkiln-cache");
  });
  afterAll(async () => {
    await s?.logout();
    await vc?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  function driver(buildId: string) {
    const events = new EventBus();
    const logs: string[] = [];
    events.subscribe((e) => e.type === "log" && logs.push(`${e.level} ${e.message}`));
    const journal = new Journal(buildId, join(work, "journal"));
    const v = { url: vc.url, insecure: false, isoCacheFolder: "vmkiln-cache" } as VsphereSpec;
    const d = new VsphereDriver({} as BuildSpec, v, { url: vc.url, username: vc.username, password: vc.password, caFile: vc.caFile, insecure: false }, events, journal);
    const uploadIso = (local: string, sig: AbortSignal) => (d as unknown as { uploadIso(ds: Datastore, local: string, s: AbortSignal): Promise<string> }).uploadIso(ds, local, sig);
    return { uploadIso, events, logs, journal };
  }

  /** A file of `size` bytes with content that differs per call (so its digest is new). */
  function isoFile(name: string, size: number): string {
    const file = join(work, name);
    const fd = openSync(file, "w");
    ftruncateSync(fd, size);
    writeSync(fd, `${name} ${Date.now()} ${Math.random()}\n`, 0);
    writeSync(fd, "end\n", size - 4);
    closeSync(fd);
    return file;
  }

  it("a truncated file planted under the cache name is detected and replaced", async () => {
    const iso = isoFile("planted.iso", 3 * 2 ** 20 + 17);
    const sha = sha256(iso);
    mkdirSync(cacheDir, { recursive: true });
    const cached = join(cacheDir, `${sha}.iso`);
    writeFileSync(cached, readFileSync(iso).subarray(0, 2 ** 20)); // what a cut-off upload leaves
    const { uploadIso, logs, journal } = driver("b-planted");
    expect(await uploadIso(iso, signal)).toBe(`[LocalDS_0] vmkiln-cache/${sha}.iso`);
    expect(statSync(cached).size).toBe(statSync(iso).size);
    expect(sha256(cached)).toBe(sha);
    expect(logs.join("\n")).toMatch(new RegExp(`warn .*${sha}\\.iso holds 1048576 bytes, the ISO has 3145745: uploading it again`));
    expect(readdirSync(cacheDir).filter((n) => n.includes(sha))).toEqual([`${sha}.iso`]);
    expect(journal.pending()).toEqual([]);

    // Now it is right: reused without an upload.
    const again = driver("b-again");
    let progress = 0;
    again.events.subscribe((e) => e.type === "progress" && progress++);
    expect(await again.uploadIso(iso, signal)).toBe(`[LocalDS_0] vmkiln-cache/${sha}.iso`);
    expect(progress).toBe(0);
    expect(again.logs.join("\n")).toMatch(/ISO already on the datastore/);
  });

  it("while an upload runs nothing is under the final name; cut off half-way, it leaves nothing there", async () => {
    // Sparse and large, so the upload takes long enough to be caught half-way.
    const iso = isoFile("cut.iso", 128 * 2 ** 20);
    const sha = sha256(iso);
    const total = statSync(iso).size;
    const cached = join(cacheDir, `${sha}.iso`);
    const { uploadIso, events, journal } = driver("b-cut");
    const ac = new AbortController();
    const seen: Array<{ done: number; final: boolean; pending: string[] }> = [];
    events.subscribe((e) => {
      if (e.type !== "progress" || ac.signal.aborted) return;
      // What a SIGKILL at this moment would leave: on the datastore, and in the journal for gc.
      seen.push({ done: e.done, final: existsSync(cached), pending: journal.pending().map((p) => (p.kind === "remote" ? p.id : "")) });
      if (e.done >= total / 4) ac.abort(new AbortError("interrupted by SIGINT"));
    });
    await expect(uploadIso(iso, ac.signal)).rejects.toBeInstanceOf(AbortError);
    const mid = seen.filter((x) => x.done > 0 && x.done < total);
    expect(mid.length).toBeGreaterThan(0);
    expect(mid.filter((x) => x.final)).toEqual([]);
    // The partial upload is journaled (gc would remove it) and is not the cache file.
    for (const x of mid) expect(x.pending).toEqual([expect.stringMatching(new RegExp(`^\\[LocalDS_0\\] vmkiln-cache/.+\\.part$`))]);
    expect(existsSync(cached)).toBe(false);
    expect(readdirSync(cacheDir).filter((n) => n.includes(sha))).toEqual([]);
    expect(journal.pending()).toEqual([]);
  });
});
