// The layered build's cache logic (issue 17) with the stage build replaced by a fake that writes an
// output like a real export (the real thing runs in test/integration/layered-cache.test.ts): which
// stages build, what a hit writes, and that concurrent builds of one stage build it once.
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BuildRequest, BuildResult } from "../../../src/build.js";
import { buildLayered } from "../../../src/layers/build.js";
import { loadBuild } from "../../../src/layers/load.js";
import { EventBus } from "../../../src/log/events.js";
import { sha256sums } from "../../../src/artifact/sums.js";
import { UserError } from "../../../src/errors.js";
import type { DriverFactory, StageHandoff } from "../../../src/pipeline/driver.js";

let dir: string;
let builds: Array<{ name: string; source: string; stage: string }>;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "vmkiln-lbuild-"));
  builds = [];
  await writeFile(join(dir, "disk.qcow2"), "cloud image");
  await writeFile(join(dir, "base.sh"), "v1");
  await writeFile(join(dir, "node.sh"), "v1");
  await writeFile(
    join(dir, "t.yaml"),
    `name: t\nvariables: { out: ./out }\nsource:\n  cloud_image: { path: ./disk.qcow2, checksum: none, format: qcow2 }\ndrivers:\n  qemu: {}\nstages:\n  - name: base\n    provision: [ { shell: { script: ./base.sh } } ]\n  - name: node\n    provision: [ { shell: { script: ./node.sh } } ]\noutput: { directory: "\${var.out}", formats: [qcow2] }\n`,
  );
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

/** Writes what an export would: the disk (made of its source and the stage's script), SHA256SUMS, manifest.json. */
function fakeBuild(delayMs = 0, exports: string[] = ["qcow2", "vmdk"]) {
  return async (req: BuildRequest): Promise<BuildResult> => {
    for (const f of req.spec.output.formats) if (!exports.includes(f)) throw new UserError("FORMAT_UNSUPPORTED", `output.formats: cannot export ${f}`);
    const script = req.spec.provision[0]!;
    const stage = script.type === "shell" && script.script ? await readFile(script.script, "utf8") : "";
    builds.push({ name: req.spec.output.basename, source: req.spec.source.location, stage });
    await new Promise((r) => setTimeout(r, delayMs));
    const out = req.spec.output.directory;
    await mkdir(out, { recursive: true });
    const disk = Buffer.from(`${await readFile(req.spec.source.location, "utf8")}+${stage}@${Math.random()}`);
    const format = req.spec.output.formats[0]!;
    const name = format === "vmdk" ? `${req.spec.output.basename}-disk1.vmdk` : `${req.spec.output.basename}.qcow2`;
    await writeFile(join(out, name), disk);
    const artifacts = [{ name, path: join(out, name), size: disk.length, sha256: sha(disk), format }];
    await writeFile(join(out, "SHA256SUMS"), sha256sums(artifacts));
    await writeFile(join(out, "manifest.json"), JSON.stringify({ vmkiln_version: "0", build_id: "20261205000000-abcdef", created: new Date().toISOString(), artifacts: artifacts.map(({ path: _p, ...a }) => a) }));
    return { ok: true, artifacts, outputDir: out, durationMs: 1, buildId: "x" };
  };
}

async function run(out: string, opts: { delayMs?: number; noCache?: boolean; exports?: string[] } = {}) {
  const l = await loadBuild(join(dir, "t.yaml"), { vars: { out: join(dir, out) } });
  if (l.kind !== "layered") throw new Error("layered expected");
  const events = new EventBus();
  const logs: string[] = [];
  events.subscribe((e) => e.type === "log" && e.source === "cache" && logs.push(e.message.replace(/ \(key.*$/, "")));
  const r = await buildLayered({
    plan: l.plan,
    driverName: "qemu",
    driverFactory: () => {
      throw new Error("no driver in this test");
    },
    events,
    signal: new AbortController().signal,
    options: { force: false, onError: "cleanup", debug: false },
    cacheDir: join(dir, "cache"),
    runBuild: fakeBuild(opts.delayMs, opts.exports),
    ...(opts.noCache ? { noCache: true } : {}),
  });
  if (!r.ok) throw r.error;
  return { r, logs: logs.filter((m) => /cache hit|built$/.test(m)) };
}

const tree = async (d: string) => Object.fromEntries(await Promise.all((await readdir(d)).sort().map(async (n) => [n, sha(await readFile(join(d, n)))])));

describe("layered build", () => {
  it("first build builds both stages, the second stage on the first's disk", async () => {
    const { logs } = await run("o1");
    expect(logs).toEqual(["stage base: built", "stage node: built"]);
    expect(builds.map((b) => b.name)).toEqual(["disk", "t"]);
    expect(builds[1]!.source).toMatch(/stages\/[0-9a-f]{64}\/files\/disk\.qcow2$/);
    expect(await readFile(join(dir, "o1", "t.qcow2"), "utf8")).toMatch(/^cloud image\+v1@.*\+v1@/);
  });

  it("an unchanged rebuild builds nothing and writes the same bytes", async () => {
    await run("o1");
    builds = [];
    const { logs } = await run("o2");
    expect(logs).toEqual(["stage base: cache hit", "stage node: cache hit"]);
    expect(builds).toEqual([]);
    expect(await tree(join(dir, "o2"))).toEqual(await tree(join(dir, "o1")));
  });

  it("a last-stage change builds only it; a base change builds both; --no-cache builds both", async () => {
    await run("o1");
    builds = [];
    await writeFile(join(dir, "node.sh"), "v2");
    expect((await run("o2")).logs).toEqual(["stage base: cache hit", "stage node: built"]);
    await writeFile(join(dir, "base.sh"), "v2");
    expect((await run("o3")).logs).toEqual(["stage base: built", "stage node: built"]);
    expect((await run("o4", { noCache: true })).logs).toEqual(["stage base: built", "stage node: built"]);
  });

  it("two concurrent builds of the same template build each stage once", async () => {
    const [a, b] = await Promise.all([run("oa", { delayMs: 300 }), run("ob", { delayMs: 300 })]);
    expect(builds.map((x) => x.name)).toEqual(["disk", "t"]);
    expect([...a.logs, ...b.logs].filter((m) => m.endsWith("built"))).toHaveLength(2);
    expect(await tree(join(dir, "oa"))).toEqual(await tree(join(dir, "ob")));
  });

  it("a driver without qcow2 export hands stages a VMDK; one with neither is told so", async () => {
    await writeFile(join(dir, "t.yaml"), (await readFile(join(dir, "t.yaml"), "utf8")).replace("formats: [qcow2]", "formats: [vmdk]"));
    await run("o1", { exports: ["vmdk", "ova"] });
    expect(builds[1]!.source).toMatch(/files\/disk-disk1\.vmdk$/);
    await writeFile(join(dir, "base.sh"), "v9");
    await expect(run("o2", { exports: ["ova"] })).rejects.toThrow(/stages: the qemu driver cannot export a stage's disk \(qcow2 or vmdk\)/);
  });

  it("an existing output is refused before any stage builds (exit 2), replaced with --force", async () => {
    await run("o1");
    builds = [];
    await writeFile(join(dir, "base.sh"), "v3");
    await expect(run("o1")).rejects.toThrow(/already exists/);
    expect(builds).toEqual([]);
  });
});

describe("layered build: --no-cache", () => {
  it("replaces the entries it rebuilt: the output is the new build's bytes, and the next build hits them", async () => {
    await run("o1");
    await run("o2", { noCache: true });
    // The fake's disk carries a random token: a new build differs from the first one.
    expect((await tree(join(dir, "o2")))["t.qcow2"]).not.toBe((await tree(join(dir, "o1")))["t.qcow2"]);
    builds = [];
    const { logs } = await run("o3");
    expect(logs).toEqual(["stage base: cache hit", "stage node: cache hit"]);
    expect(await tree(join(dir, "o3"))).toEqual(await tree(join(dir, "o2")));
  });
});

describe("layered build: a driver that keeps a stage's VM (StageHandoff)", () => {
  /** The hypervisor's inventory, as far as the fake driver goes: location → identity. */
  let inventory: Map<string, string>;
  let verified: string[];
  let made = 0;
  beforeEach(() => {
    inventory = new Map();
    verified = [];
    made = 0;
  });

  const handoff: StageHandoff = {
    keepSpec: (spec) => ({ ...spec, output: { ...spec.output, formats: [] }, name: `${spec.name}-kept` }),
    fromKept: (spec, kept) => ({ ...spec, source: { kind: "clone", location: kept.location, checksum: { kind: "none" }, format: undefined } }),
    verifyKept: async (_spec, kept) => {
      verified.push(kept.location);
      if (!inventory.has(kept.location)) return `the template ${kept.location} is gone`;
      return inventory.get(kept.location) === kept.identity.uuid ? undefined : `${kept.location} is not the template this stage made`;
    },
  };
  const factory = Object.assign(
    () => {
      throw new Error("no driver in this test");
    },
    { stageHandoff: handoff },
  ) as DriverFactory;

  /** Keeps a "template" for a stage asked to keep, exports like fakeBuild otherwise. */
  const keepingBuild = async (req: BuildRequest): Promise<BuildResult> => {
    const script = req.spec.provision[0]!;
    const stage = script.type === "shell" && script.script ? await readFile(script.script, "utf8") : "";
    builds.push({ name: req.spec.name, source: req.spec.source.location, stage });
    if (req.spec.name.endsWith("-kept")) {
      const location = `/DC0/vm/tpl-${++made}`;
      const uuid = `uuid-${made}`;
      inventory.set(location, uuid);
      return { ok: true, artifacts: [], outputDir: req.spec.output.directory, durationMs: 1, buildId: "x", kept: { driver: "vsphere", location, identity: { uuid } } };
    }
    const out = req.spec.output.directory;
    await mkdir(out, { recursive: true });
    const disk = Buffer.from(`${req.spec.source.location}+${stage}@${Math.random()}`);
    await writeFile(join(out, "t.ova"), disk);
    const artifacts = [{ name: "t.ova", path: join(out, "t.ova"), size: disk.length, sha256: sha(disk), format: "ova" }];
    await writeFile(join(out, "manifest.json"), JSON.stringify({ artifacts: artifacts.map(({ path: _p, ...a }) => a) }));
    return { ok: true, artifacts, outputDir: out, durationMs: 1, buildId: "x" };
  };

  async function runKept(out: string) {
    const l = await loadBuild(join(dir, "t.yaml"), { vars: { out: join(dir, out) } });
    if (l.kind !== "layered") throw new Error("layered expected");
    const events = new EventBus();
    const logs: string[] = [];
    events.subscribe((e) => e.type === "log" && e.source === "cache" && logs.push(`${e.level} ${e.message.replace(/ \(key.*$/, "").replace(/[0-9a-f]{16}…/, "KEY")}`));
    const r = await buildLayered({ plan: l.plan, driverName: "qemu", driverFactory: factory, events, signal: new AbortController().signal, options: { force: false, onError: "cleanup", debug: false }, cacheDir: join(dir, "cache"), runBuild: keepingBuild });
    if (!r.ok) throw r.error;
    return logs.filter((m) => /cache hit|built$|not used/.test(m));
  }
  const keptEntries = async () => {
    const root = join(dir, "cache", "stages");
    const keys = (await readdir(root)).filter((n) => /^[0-9a-f]{64}$/.test(n));
    return (await Promise.all(keys.map(async (k) => JSON.parse(await readFile(join(root, k, "entry.json"), "utf8")) as { stage: string; kept?: { location: string }; disk?: string; files: unknown[] }))).filter((e) => e.kept);
  };

  it("keeps the base, records it instead of a disk, and builds the next stage as a clone of it", async () => {
    expect(await runKept("o1")).toEqual(["info stage base: built", "info stage node: built"]);
    expect(builds.map((b) => [b.name, b.source])).toEqual([
      ["t-kept", join(dir, "disk.qcow2")],
      ["t", "/DC0/vm/tpl-1"],
    ]);
    const [e] = await keptEntries();
    expect(e).toMatchObject({ stage: "base", kept: { location: "/DC0/vm/tpl-1" }, files: [] });
    expect(e!.disk).toBeUndefined();
  });

  it("a hit is checked with the driver first; an unchanged rebuild builds nothing", async () => {
    await runKept("o1");
    builds = [];
    expect(await runKept("o2")).toEqual(["info stage base: cache hit", "info stage node: cache hit"]);
    expect(verified).toEqual(["/DC0/vm/tpl-1"]);
    expect(builds).toEqual([]);
  });

  it("a kept template that is gone, or replaced by another of the same name, is built again and its entry replaced", async () => {
    await runKept("o1");
    inventory.delete("/DC0/vm/tpl-1");
    builds = [];
    expect(await runKept("o2")).toEqual(["warn stage base: cache entry KEY not used: the template /DC0/vm/tpl-1 is gone", "info stage base: built", "info stage node: built"]);
    expect(builds.map((b) => b.source)).toEqual([join(dir, "disk.qcow2"), "/DC0/vm/tpl-2"]);
    expect((await keptEntries()).map((e) => e.kept!.location)).toEqual(["/DC0/vm/tpl-2"]);
    // Someone put another VM at that path: not ours, not used (and left alone).
    inventory.set("/DC0/vm/tpl-2", "someone-else");
    builds = [];
    expect(await runKept("o3")).toEqual(["warn stage base: cache entry KEY not used: /DC0/vm/tpl-2 is not the template this stage made", "info stage base: built", "info stage node: built"]);
    expect(inventory.get("/DC0/vm/tpl-2")).toBe("someone-else");
  });

  it("--offline: a kept stage is not checked (that would reach the hypervisor) but refused, naming it", async () => {
    await runKept("o1");
    const l = await loadBuild(join(dir, "t.yaml"), { vars: { out: join(dir, "o2") } });
    if (l.kind !== "layered") throw new Error("layered expected");
    const r = await buildLayered({ plan: l.plan, driverName: "qemu", driverFactory: factory, events: new EventBus(), signal: new AbortController().signal, options: { force: false, onError: "cleanup", debug: false, offline: true }, cacheDir: join(dir, "cache"), runBuild: keepingBuild });
    expect(r.error).toMatchObject({ code: "OFFLINE_NETWORK", exitCode: 2, message: "--offline: stage base is kept on vsphere (/DC0/vm/tpl-1), which is reached over the network" });
    expect(verified).toEqual([]);
  });

  it("a kept stage whose build keeps nothing fails with STAGE_NOT_KEPT, and no entry appears", async () => {
    const noKeep = async (req: BuildRequest): Promise<BuildResult> => ({ ok: true, artifacts: [], outputDir: req.spec.output.directory, durationMs: 1, buildId: "x" });
    const l = await loadBuild(join(dir, "t.yaml"), { vars: { out: join(dir, "o1") } });
    if (l.kind !== "layered") throw new Error("layered expected");
    const r = await buildLayered({ plan: l.plan, driverName: "qemu", driverFactory: factory, events: new EventBus(), signal: new AbortController().signal, options: { force: false, onError: "cleanup", debug: false }, cacheDir: join(dir, "cache"), runBuild: noKeep });
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe("STAGE_NOT_KEPT");
    expect(await readdir(join(dir, "cache", "stages", ".tmp"))).toEqual([]);
    expect((await readdir(join(dir, "cache", "stages"))).filter((n) => /^[0-9a-f]{64}$/.test(n))).toEqual([]);
  });
});

describe("layered build: the last stage's publish and test: when it is a cache hit", () => {
  type PushReq = Parameters<typeof import("../../../src/publish/push.js").push>[0];
  let pushes: PushReq[];
  beforeEach(async () => {
    pushes = [];
    const text = await readFile(join(dir, "t.yaml"), "utf8");
    await writeFile(
      join(dir, "t.yaml"),
      text.replace('output: { directory: "${var.out}", formats: [qcow2] }', 'output:\n  directory: "${var.out}"\n  formats: [qcow2]\n  publish: [ { to: "oci://127.0.0.1:9/vm/t:1", insecure: true } ]\n'),
    );
  });

  /** fakeBuild, and the publish step a real last stage runs after its export. */
  const publishingBuild = (req: BuildRequest) =>
    fakeBuild()(req).then((r) => {
      if (req.spec.output.publish.length > 0) pushes.push({ artifact: req.spec.output.directory, to: req.spec.output.publish[0]!.to } as PushReq);
      return r;
    });

  async function runPub(out: string, extra: { offline?: boolean; test?: boolean } = {}) {
    const l = await loadBuild(join(dir, "t.yaml"), { vars: { out: join(dir, out) } });
    if (l.kind !== "layered") throw new Error("layered expected");
    const events = new EventBus();
    const logs: string[] = [];
    events.subscribe((e) => e.type === "log" && logs.push(e.message.replace(/ \(key.*$/, "")));
    const r = await buildLayered({
      plan: l.plan,
      driverName: "qemu",
      driverFactory: () => {
        throw new Error("no driver in this test");
      },
      events,
      signal: new AbortController().signal,
      options: { force: false, onError: "cleanup", debug: false, ...(extra.offline ? { offline: true } : {}) },
      cacheDir: join(dir, "cache"),
      runBuild: publishingBuild,
      push: async (p) => {
        pushes.push(p);
        return { pinned: `127.0.0.1:9/vm/t@sha256:${"d".repeat(64)}` } as Awaited<ReturnType<typeof import("../../../src/publish/push.js").push>>;
      },
    });
    return { r, logs };
  }

  it("a full cache hit still pushes, from the copied artifacts in the output directory; a miss pushes once, in the stage's own build", async () => {
    const first = await runPub("o1");
    expect(first.r.ok, first.r.error?.message).toBe(true);
    expect(pushes.map((p) => p.artifact)).toEqual([expect.stringMatching(/stages\/\.tmp\/[0-9a-f]{64}\.\d+\.[0-9a-f]{8}\/files$/)]);
    pushes = [];
    const again = await runPub("o2");
    expect(again.r.ok).toBe(true);
    expect(again.r.stages.map((s) => s.hit)).toEqual([true, true]);
    expect(pushes.map((p) => [p.artifact, p.to, p.insecure])).toEqual([[join(dir, "o2"), "oci://127.0.0.1:9/vm/t:1", true]]);
    expect(again.logs).toContain(`publish: the last stage is a cache hit; pushing its artifacts from ${join(dir, "o2")}`);
    expect(again.logs).toContain(`published 127.0.0.1:9/vm/t@sha256:${"d".repeat(64)} (containerdisk)`);
  });

  it("only the last stage pushes and is tested; a new tag or test does not rebuild the base", async () => {
    const seen: Array<{ name: string; publish: number; test: boolean }> = [];
    const watch = (req: BuildRequest) => {
      seen.push({ name: req.spec.output.basename, publish: req.spec.output.publish.length, test: req.spec.test !== undefined });
      return publishingBuild(req);
    };
    const go = async (out: string) => {
      const l = await loadBuild(join(dir, "t.yaml"), { vars: { out: join(dir, out) } });
      if (l.kind !== "layered") throw new Error("layered expected");
      const r = await buildLayered({ plan: l.plan, driverName: "qemu", driverFactory: (() => ({})) as never, events: new EventBus(), signal: new AbortController().signal, options: { force: false, onError: "cleanup", debug: false }, cacheDir: join(dir, "cache"), runBuild: watch, push: async () => ({ pinned: "x" }) as never });
      if (!r.ok) throw r.error;
      return r.stages.map((x) => x.hit);
    };
    await writeFile(join(dir, "goss.yaml"), "file: {}\n");
    const text = await readFile(join(dir, "t.yaml"), "utf8");
    await writeFile(join(dir, "t.yaml"), `${text}test: { checks: [./goss.yaml], formats: [qcow2] }\n`);
    expect(await go("o1")).toEqual([false, false]);
    expect(seen).toEqual([
      { name: "disk", publish: 0, test: false },
      { name: "t", publish: 1, test: true },
    ]);
    await writeFile(join(dir, "t.yaml"), (await readFile(join(dir, "t.yaml"), "utf8")).replace("vm/t:1", "vm/t:2"));
    expect(await go("o2")).toEqual([true, false]);
  });

  it("test: on a full hit is not run again, and the log says why", async () => {
    await writeFile(join(dir, "goss.yaml"), "file: {}\n");
    const text = await readFile(join(dir, "t.yaml"), "utf8");
    await writeFile(join(dir, "t.yaml"), `${text}test: { checks: [./goss.yaml], formats: [qcow2] }\n`);
    await runPub("o1");
    // What the real test step leaves in the entry's manifest.json: the summary of a passed test.
    const root = join(dir, "cache", "stages");
    for (const k of (await readdir(root)).filter((n) => /^[0-9a-f]{64}$/.test(n))) {
      const m = join(root, k, "files", "manifest.json");
      const entry = join(root, k, "entry.json");
      const e = JSON.parse(await readFile(entry, "utf8")) as { files: Array<{ name: string; size: number; sha256: string; verified?: unknown }> };
      const f = e.files.find((x) => x.name === "manifest.json");
      if (!f) continue;
      const { chmod } = await import("node:fs/promises");
      await chmod(m, 0o644);
      const body = JSON.stringify({ ...JSON.parse(await readFile(m, "utf8")), test: { ok: true, artifacts: [] } });
      await writeFile(m, body);
      Object.assign(f, { size: Buffer.byteLength(body), sha256: sha(body) });
      delete f.verified;
      await chmod(entry, 0o644);
      await writeFile(entry, JSON.stringify(e));
    }
    const again = await runPub("o2");
    expect(again.r.stages.map((s) => s.hit)).toEqual([true, true]);
    expect(again.logs).toContain(
      'test: not run again: the last stage is a cache hit, and its artifacts are the bytes that passed the test when it was built (manifest.json "test"); --no-cache builds and tests it again',
    );
  });

  it("--offline with output.publish is refused before anything, hit or miss (exit 2)", async () => {
    await runPub("o1");
    pushes = [];
    const r = await runPub("o2", { offline: true });
    expect(r.r.ok).toBe(false);
    expect(r.r.error).toMatchObject({ code: "OFFLINE_NETWORK", exitCode: 2 });
    expect(r.r.error?.message).toMatch(/^--offline: output\.publish pushes to a registry/);
    expect(pushes).toEqual([]);
  });
});
