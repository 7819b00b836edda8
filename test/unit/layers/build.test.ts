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
