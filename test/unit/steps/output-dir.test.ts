// The export step replaces its output directory at the end of a build. Independent review (issue 12)
// found that an output.directory that is a file, `..`, the template's or the source's directory, or
// any directory of someone else's passed validation and a successful --force build deleted it. These
// builds run for real (prepare, fetch source, create vm, export) with a fake driver whose "disk" is a
// small file, so each case shows both that nothing is lost and that nothing started: no source
// hashed, no VM created.
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { build, type BuildResult } from "../../../src/build.js";
import { EventBus } from "../../../src/log/events.js";
import type { Driver } from "../../../src/pipeline/driver.js";
import { createVmStep } from "../../../src/steps/create-vm.js";
import { exportStep } from "../../../src/steps/export.js";
import { fetchSourceStep } from "../../../src/steps/fetch-source.js";
import { ownedOutput } from "../../../src/steps/output-guard.js";
import { prepareStep } from "../../../src/steps/prepare.js";
import { specFromObject } from "../../../src/template/load.js";
import type { BuildSpec } from "../../../src/template/spec.js";

let root: string;
let tpl: string;
let calls: string[];
const saved: Record<string, string | undefined> = {};
const DISK = Buffer.from("not really a disk, but the bytes of one\n");
const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "vmkiln-outdir-"));
  for (const k of ["VMKILN_CACHE_DIR", "VMKILN_STATE_DIR", "VMKILN_TMPDIR"]) saved[k] = process.env[k];
  process.env.VMKILN_CACHE_DIR = join(root, "cache");
  process.env.VMKILN_STATE_DIR = join(root, "state");
  process.env.VMKILN_TMPDIR = join(root, "tmp");
  mkdirSync(join(root, "tmp"));
});
afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
  else process.env[k] = v;
  await rm(root, { recursive: true, force: true });
});

let n = 0;
beforeEach(() => {
  calls = [];
  rmCache();
  // A fresh project per test: template dir with the template and the source image next to it.
  tpl = join(root, `project-${++n}`, "tpl");
  mkdirSync(tpl, { recursive: true });
  writeFileSync(join(tpl, "t.yaml"), "# the template (its object is passed inline below)\n");
  writeFileSync(join(tpl, "disk.img"), DISK);
});

/** The digest memo a fetch writes is how a case tells that the source was read: start without one. */
function rmCache(): void {
  if (root) rmSync(join(root, "cache"), { recursive: true, force: true });
}

const fakeDriver = (): Driver => ({
  name: "qemu",
  capabilities: { sources: ["cloud-image"], keystrokes: false, exports: ["qcow2"] },
  async createVm() {
    calls.push("createVm");
    return { id: "fake", driver: "qemu" };
  },
  async start() {},
  async sshEndpoint() {
    return { host: "127.0.0.1", port: 22 };
  },
  async shutdown() {},
  async exportDisk(_vm, to) {
    calls.push("exportDisk");
    writeFileSync(to.path, DISK);
    return { path: to.path, format: to.format, size: DISK.length, virtualSize: DISK.length };
  },
  async destroyVm() {},
  plan: () => [prepareStep, fetchSourceStep, createVmStep, exportStep],
});

async function runBuild(extra: Record<string, unknown>, force = true, source = "./disk.img", mutate?: (s: BuildSpec) => void): Promise<BuildResult> {
  const spec = specFromObject(
    {
      name: "t",
      source: { cloud_image: { path: source, checksum: `sha256:${sha(DISK)}` } },
      drivers: { qemu: {} },
      ...extra,
    },
    { baseDir: tpl, file: "t.yaml", env: {} },
  );
  mutate?.(spec);
  return build({ spec, driverFactory: fakeDriver, events: new EventBus(), signal: new AbortController().signal, options: { force, onError: "cleanup", debug: false } });
}

/** Refused at preflight: exit 2 with this code, nothing fetched (no digest memo), no VM. */
function expectRefused(r: BuildResult, code: string, message?: RegExp): void {
  expect(r.ok).toBe(false);
  expect(r.error?.code).toBe(code);
  expect(r.error?.exitCode).toBe(2);
  if (message) expect(r.error?.message).toMatch(message);
  expect(calls).toEqual([]);
  expect(existsSync(join(root, "cache", "sources", "local")), "the source was hashed: work started").toBe(false);
}

const out = (extra: Record<string, unknown> = {}) => ({ output: { formats: ["qcow2"], ...extra } });

describe("output.directory vmkiln must not replace (refused before any work, exit 2)", () => {
  it("a file", async () => {
    writeFileSync(join(tpl, "notes.txt"), "mine");
    expectRefused(await runBuild(out({ directory: "./notes.txt" })), "OUTPUT_NOT_DIRECTORY", /output\.directory: .*notes\.txt is a file/);
    expect(readFileSync(join(tpl, "notes.txt"), "utf8")).toBe("mine");
  });

  it("a path through a file", async () => {
    writeFileSync(join(tpl, "notes.txt"), "mine");
    expectRefused(await runBuild(out({ directory: "./notes.txt/out" })), "OUTPUT_NOT_DIRECTORY");
  });

  it("..", async () => {
    expectRefused(await runBuild(out({ directory: ".." })), "OUTPUT_HOLDS_INPUT", /contains the template/);
    expect(existsSync(join(tpl, "t.yaml"))).toBe(true);
  });

  it("the template's own directory", async () => {
    expectRefused(await runBuild(out({ directory: "." })), "OUTPUT_HOLDS_INPUT", /is the template's directory|contains the template/);
    expect(existsSync(join(tpl, "t.yaml"))).toBe(true);
  });

  it("the source image's directory", async () => {
    const images = join(tpl, "..", "images");
    mkdirSync(images);
    writeFileSync(join(images, "disk.img"), DISK);
    expectRefused(await runBuild(out({ directory: "../images" }), true, "../images/disk.img"), "OUTPUT_HOLDS_INPUT", /contains the source image/);
    expect(readFileSync(join(images, "disk.img"))).toEqual(DISK);
  });

  it("name: .. (the default ./output/${name} is the template's directory)", async () => {
    const r = await runBuild({ name: "..", output: { formats: ["qcow2"] } });
    expect(r.ok).toBe(false);
    expect(r.error?.exitCode).toBe(2);
    expect(calls).toEqual([]);
    expect(existsSync(join(tpl, "t.yaml"))).toBe(true);
  });

  it("a directory of someone else's, even with --force", async () => {
    const d = join(tpl, "..", "mine");
    mkdirSync(d);
    writeFileSync(join(d, "thesis.tex"), "years of work");
    expectRefused(await runBuild(out({ directory: "../mine" })), "OUTPUT_NOT_OURS", /no manifest\.json/);
    expect(readFileSync(join(d, "thesis.tex"), "utf8")).toBe("years of work");
  });

  it("a directory with somebody else's manifest.json", async () => {
    const d = join(tpl, "..", "web");
    mkdirSync(d);
    writeFileSync(join(d, "manifest.json"), JSON.stringify({ name: "my web app", icons: [] }));
    writeFileSync(join(d, "index.html"), "<html/>");
    expectRefused(await runBuild(out({ directory: "../web" })), "OUTPUT_NOT_OURS", /not written by vmkiln/);
    expect(existsSync(join(d, "index.html"))).toBe(true);
  });

  it("a forged vmkiln manifest.json that lists the victim, without vmkiln's SHA256SUMS", async () => {
    const d = join(tpl, "..", "forged");
    mkdirSync(d);
    writeFileSync(join(d, "data.db"), "precious");
    const manifest = { vmkiln_version: "0.1.0", build_id: "20260101000000-abcdef", artifacts: [{ name: "data.db", format: "qcow2", size: 8, sha256: sha("x") }] };
    writeFileSync(join(d, "manifest.json"), JSON.stringify(manifest));
    expectRefused(await runBuild(out({ directory: "../forged" })), "OUTPUT_NOT_OURS", /SHA256SUMS/);
    expect(readFileSync(join(d, "data.db"), "utf8")).toBe("precious");
  });

  it("a symbolic link", async () => {
    const real = join(tpl, "..", "real");
    mkdirSync(real);
    writeFileSync(join(real, "x"), "x");
    symlinkSync(real, join(tpl, "..", "link"));
    expectRefused(await runBuild(out({ directory: "../link" })), "OUTPUT_SYMLINK");
    expect(existsSync(join(real, "x"))).toBe(true);
  });

  it("output.basename that leaves the staging dir (a library caller's own BuildSpec skips the schema)", async () => {
    const r = await runBuild(out({ directory: "./out" }), true, "./disk.img", (s) => (s.output.basename = "../../escape"));
    expectRefused(r, "OUTPUT_BASENAME");
  });

  it("a download that would overwrite SHA256SUMS (./SHA256SUMS slipped past the template rule)", async () => {
    const r = await runBuild({ ...out({ directory: "./out" }), provision: [{ file: { direction: "download", source: "/etc/os-release", destination: "./SHA256SUMS" } }] });
    expectRefused(r, "DOWNLOAD_NAME_TAKEN");
  });
});

describe("a previous vmkiln output", () => {
  it("is replaced with --force, refused without, and refused once anything else is in it", async () => {
    const first = await runBuild(out({ directory: "./out" }));
    expect(first.error?.message).toBeUndefined();
    const dir = join(tpl, "out");
    expect(readdirSync(dir).sort()).toEqual(["SHA256SUMS", "manifest.json", "t.qcow2"]);
    expect((await ownedOutput(dir)).owned).toBe(true);

    calls = [];
    rmCache();
    expectRefused(await runBuild(out({ directory: "./out" }), false), "OUTPUT_EXISTS");

    const before = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { build_id: string };
    const second = await runBuild(out({ directory: "./out" }));
    expect(second.ok).toBe(true);
    const after = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { build_id: string };
    expect(after.build_id).not.toBe(before.build_id);
    expect(readdirSync(tpl).filter((e) => e.includes("vmkiln"))).toEqual([]); // no staging or old dir left

    writeFileSync(join(dir, "notes.txt"), "my notes about this image");
    calls = [];
    rmCache();
    expectRefused(await runBuild(out({ directory: "./out" })), "OUTPUT_NOT_OURS", /notes\.txt, which vmkiln did not write/);
    expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("my notes about this image");
  });

  it("is refused when an artifact changed size since (booted in place, or replaced)", async () => {
    expect((await runBuild(out({ directory: "./out" }))).ok).toBe(true);
    const dir = join(tpl, "out");
    writeFileSync(join(dir, "t.qcow2"), "somebody's own disk now");
    calls = [];
    rmCache();
    expectRefused(await runBuild(out({ directory: "./out" })), "OUTPUT_NOT_OURS", /t\.qcow2 has \d+ bytes/);
    expect(readFileSync(join(dir, "t.qcow2"), "utf8")).toBe("somebody's own disk now");
  });

  it("an empty directory is fine without --force", async () => {
    mkdirSync(join(tpl, "empty"));
    const r = await runBuild(out({ directory: "./empty" }), false);
    expect(r.ok).toBe(true);
    expect(lstatSync(join(tpl, "empty", "t.qcow2")).isFile()).toBe(true);
  });
});
