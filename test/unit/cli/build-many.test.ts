// `vmkiln build a.yaml b.yaml …` (issue 19 item 2) without VMs: how templates and drivers become
// jobs, what --parallel accepts and defaults to, how each build's events are told apart, and that
// in-process port probes never hand the same port to two builds.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { defaultParallel, parseParallel, planJobs, runMany, type BuildJob } from "../../../src/cli/build.js";
import { main } from "../../../src/cli/main.js";
import { BuildError, UserError } from "../../../src/errors.js";
import { sleep } from "../../../src/util/abort.js";
import { createQemuDriver } from "../../../drivers/qemu/index.js";
import { EventBus } from "../../../src/log/events.js";
import { plainReporter } from "../../../src/log/reporters/plain.js";
import { jsonReporter } from "../../../src/log/reporters/json.js";
import { freePort } from "../../../src/util/net.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vmkiln-many-"));
  await writeFile(join(dir, "img.qcow2"), "");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function template(name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const f = join(dir, `${name}.yaml`);
  await writeFile(
    f,
    stringify({
      name,
      source: { cloud_image: { path: join(dir, "img.qcow2"), checksum: "none", format: "qcow2" } },
      drivers: { qemu: { cpus: 2, memory: 1024 } },
      output: { directory: join(dir, "out", name), formats: ["qcow2"] },
      ...extra,
    }),
  );
  return f;
}

function fakeStream() {
  let text = "";
  return { stream: { write: (s: string) => ((text += s), true), isTTY: false } as unknown as NodeJS.WriteStream, text: () => text };
}

describe("planJobs", () => {
  it("one job per template, labelled by name", async () => {
    const jobs = await planJobs([await template("a"), await template("b")], {});
    expect(jobs.map((j) => [j.label, j.driver])).toEqual([
      ["a", "qemu"],
      ["b", "qemu"],
    ]);
  });

  it("several drivers of one template: one job each, output <directory>-<driver>", async () => {
    const f = await template("multi", { drivers: { qemu: { cpus: 1 }, virtualbox: { cpus: 1 } }, output: { directory: join(dir, "out", "multi"), formats: ["ova"] } });
    const jobs = await planJobs([f], { only: "qemu,virtualbox" });
    expect(jobs.map((j) => j.label)).toEqual(["multi/qemu", "multi/virtualbox"]);
    expect(jobs.map((j) => j.spec.output.directory)).toEqual([join(dir, "out", "multi-qemu"), join(dir, "out", "multi-virtualbox")]);
  });

  it("refuses two builds writing the same output directory, an unconfigured driver, an empty --only entry", async () => {
    const a = await template("same");
    await expect(planJobs([a, a], {})).rejects.toThrow(/both write to/);
    await expect(planJobs([a], { only: "vsphere" })).rejects.toThrow(UserError);
    await expect(planJobs([a], { only: "qemu," })).rejects.toThrow(/--only qemu,/);
    await expect(planJobs([], {})).rejects.toThrow(/at least one template/);
  });
});

describe("--parallel", () => {
  it("takes a positive whole number only", () => {
    expect(parseParallel("3")).toBe(3);
    for (const bad of ["0", "-1", "1.5", "", "two", "1e3", "99999999999999999999"]) expect(() => parseParallel(bad), bad).toThrow(/--parallel: expected a positive whole number/);
  });

  it("defaults to what the cores allow: TCG cores/vCPUs, hardware twice that, remote builds free", () => {
    const job = (vcpus: number, emulated: boolean, driver = "qemu"): BuildJob =>
      ({ label: "x", driver, factory: undefined, spec: { drivers: { qemu: { cpus: vcpus, accelerator: emulated ? "tcg" : "kvm" }, virtualbox: { cpus: vcpus } } } }) as unknown as BuildJob;
    const tcg = (n: number, vcpus: number) => Array.from({ length: n }, () => job(vcpus, true));
    expect(defaultParallel(tcg(2, 2), 2)).toBe(1); // this machine: one TCG build at a time
    expect(defaultParallel(tcg(4, 1), 2)).toBe(2);
    expect(defaultParallel(tcg(8, 2), 16)).toBe(8);
    expect(defaultParallel(tcg(3, 4), 2)).toBe(1); // never below 1
    expect(defaultParallel([job(2, false, "virtualbox"), job(2, false, "virtualbox"), job(2, false, "virtualbox")], 2)).toBe(2);
    expect(defaultParallel([job(2, false, "vsphere"), job(2, false, "vsphere"), job(2, false, "vsphere")], 2)).toBe(3);
  });

  it("bad values exit 2 before anything starts", async () => {
    const err = fakeStream();
    const code = await main(["build", await template("p"), "--parallel", "0"], { stdout: fakeStream().stream, stderr: err.stream });
    expect(code).toBe(2);
    expect(err.text()).toMatch(/^vmkiln: error: --parallel: expected a positive whole number of builds, got "0"/);
  });
});

describe("events of builds run at once", () => {
  it("a child bus tags its events; plain output prefixes them, --json carries build", () => {
    const bus = new EventBus();
    const plain: string[] = [];
    const json: string[] = [];
    bus.subscribe(plainReporter({ write: (l) => plain.push(l), debug: false }));
    bus.subscribe(jsonReporter({ write: (l) => json.push(l), debug: false }));
    const a = bus.child("a");
    const b = bus.child("b");
    a.addSecret("hunter22");
    a.info("password hunter22");
    b.emit({ type: "step-start", step: "export", index: 0, total: 1 });
    a.emit({ type: "progress", task: "convert", done: 50, total: 100, unit: "bytes" });
    b.emit({ type: "progress", task: "convert", done: 50, total: 100, unit: "bytes" });
    bus.info("summary");
    expect(plain).toEqual(["[a] password ***", "[b] ==> [1/1] export", "[a]     convert: 50%", "[b]     convert: 50%", "summary"]);
    expect(json.map((l) => JSON.parse(l).build)).toEqual(["a", "b", "a", "b", undefined]);
  });

  // The CLI masks what it prints after the builds (summary, the first build's error) with the top
  // bus's redactor: a secret one build registered at run time must be known there too.
  it("a secret a child registers is masked by the parent's redactor and by its siblings", () => {
    const bus = new EventBus();
    const lines: string[] = [];
    bus.subscribe(plainReporter({ write: (l) => lines.push(l), debug: false }));
    bus.child("a").addSecret("s3cr3t-key");
    expect(bus.redact("first error: ssh key s3cr3t-key refused")).toBe("first error: ssh key *** refused");
    bus.child("b").info("echo s3cr3t-key");
    expect(lines).toEqual(["[b] echo ***"]);
  });
});

describe("freePort", () => {
  it("never hands the same port out twice in a while, even when probes run at once", async () => {
    const ports = await Promise.all(Array.from({ length: 40 }, () => freePort()));
    const more: number[] = [];
    for (let i = 0; i < 40; i++) more.push(await freePort());
    expect(new Set([...ports, ...more]).size).toBe(80);
  });
});

describe("runMany: one failure stops only its own build unless --fail-fast", () => {
  // A driver whose VM creation fails at once (build a) or only after working a while (build b):
  // without --fail-fast, b's work runs to its own end; with it, b is stopped when a fails.
  function fakeFactory(kind: "fail" | "slow"): BuildJob["factory"] {
    const createVm = async (_spec: unknown, signal: AbortSignal) => {
      if (kind === "fail") throw new BuildError("FAKE_FAIL", "a failed on purpose");
      await sleep(1500, signal);
      throw new BuildError("FAKE_DONE", "b worked to its own end");
    };
    // The real QEMU driver for everything before the VM exists, a fake createVm.
    return (ctx) => new Proxy(createQemuDriver(ctx), { get: (t, p) => (p === "createVm" ? createVm : Reflect.get(t, p)) });
  }

  async function run(failFast: boolean) {
    const jobs = await planJobs([await template(`ff-a-${failFast}`), await template(`ff-b-${failFast}`)], {});
    jobs[0]!.factory = fakeFactory("fail");
    jobs[1]!.factory = fakeFactory("slow");
    const events = new EventBus();
    const seen: Array<Record<string, unknown>> = [];
    events.subscribe((e) => seen.push(e));
    const err = await runMany(jobs, 2, { failFast }, { events, signal: new AbortController().signal, out: () => undefined, err: () => undefined }).catch((e: unknown) => e);
    const ends = Object.fromEntries(seen.filter((e) => e.type === "build-end").map((e) => [String(e.build).slice(0, 4), e.error]));
    return { err, ends };
  }

  it("without --fail-fast the other build goes on", async () => {
    const { err, ends } = await run(false);
    expect(err).toBeInstanceOf(BuildError);
    expect(String((err as Error).message)).toMatch(/2 of 2 builds did not finish: ff-a-false, ff-b-false/);
    expect(ends).toEqual({ "ff-a": "a failed on purpose", "ff-b": "b worked to its own end" });
  });

  it("with --fail-fast the other build is stopped", async () => {
    const { ends } = await run(true);
    expect(ends["ff-a"]).toBe("a failed on purpose");
    expect(ends["ff-b"]).toMatch(/fail-fast/);
  });
});
