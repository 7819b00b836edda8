// A JavaScript program using the installed package by name (see README.md next to it).
// Usage: node consumer.mjs <mode: api|build> <work dir> <result.json>
// It writes what it saw to result.json and nothing to stdout: the test checks that the library
// printed nothing either. A process.exit from the library throws instead of ending the run.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as vmkiln from "vmkiln";

const { AbortError, BuildError, TemplateError, UserError, VmkilnError, buildImage, builtinDrivers, loadTemplate, packOva, sleep, verifyOva } = vmkiln;

process.exit = (code) => {
  throw new Error(`the library called process.exit(${code})`);
};

const [mode, work, resultFile] = process.argv.slice(2);
const out = { exports: Object.keys(vmkiln).sort() };

/** What a thrown error looked like, for the test. */
function describeError(e) {
  return {
    name: e?.name,
    message: e?.message,
    code: e?.code,
    exitCode: e?.exitCode,
    isVmkilnError: e instanceof VmkilnError,
    isUserError: e instanceof UserError,
    isTemplateError: e instanceof TemplateError,
    isBuildError: e instanceof BuildError,
    isAbortError: e instanceof AbortError,
    problems: e?.problems,
  };
}

/**
 * A third-party driver that records what the build asked of it and never boots anything: it fails
 * `start` (or waits there until the build is aborted).
 */
function recordingDriver(calls, startBehaviour) {
  return (ctx) => ({
    name: "qemu",
    capabilities: { sources: ["cloud-image"], keystrokes: false, exports: ["qcow2"] },
    async createVm(spec) {
      calls.push(`createVm ${spec.name} source=${spec.sourceDisk ? "yes" : "no"} cidata=${spec.cidataIso ? "yes" : "no"}`);
      ctx.events.info("recording driver: VM created", "recording");
      return { id: spec.name, driver: "qemu" };
    },
    async start(vm, signal) {
      calls.push("start");
      if (startBehaviour === "fail") throw new BuildError("RECORDING_START", `cannot start ${vm.id}: this driver never boots`);
      await sleep(600_000, signal); // until the build is aborted
    },
    async sshEndpoint() {
      calls.push("sshEndpoint");
      return { host: "127.0.0.1", port: 22 };
    },
    async shutdown() {
      calls.push("shutdown");
    },
    async exportDisk() {
      throw new Error("not reached");
    },
    async destroyVm(vm) {
      calls.push(`destroyVm ${vm.id}`);
    },
  });
}

if (mode === "api") {
  // 1. A template, loaded.
  const spec = await loadTemplate(join(work, "good.yaml"));
  out.loaded = { name: spec.name, drivers: Object.keys(spec.drivers), formats: spec.output.formats, memory: spec.drivers.qemu?.memory };

  // 2. A bad one: one typed error listing every problem.
  try {
    await loadTemplate(join(work, "bad.yaml"));
    out.bad = "no error";
  } catch (e) {
    out.bad = describeError(e);
  }

  // 3. An OVF export packed into an OVA, then checked.
  const packEvents = [];
  const packed = await packOva(join(work, "export"), { out: join(work, "tiny.ova"), onEvent: (e) => packEvents.push(e.type) });
  const verified = await verifyOva(packed.path);
  const damaged = await verifyOva(join(work, "damaged.ova"));
  out.ova = {
    packed: { path: packed.path, members: packed.members, sha256: packed.sha256, fixes: packed.fixes },
    verified: { ok: verified.ok, findings: verified.findings, sha256: verified.sha256 },
    damaged: { ok: damaged.ok, codes: damaged.findings.map((f) => f.code) },
    packEvents,
  };
  try {
    await verifyOva(join(work, "nope.ova"));
  } catch (e) {
    out.ova.missing = describeError(e);
  }

  // 4. A third-party driver registered for the build: it fails, the build undoes what it made.
  const failCalls = [];
  const failEvents = [];
  try {
    await buildImage(spec, { drivers: { ...builtinDrivers(), qemu: recordingDriver(failCalls, "fail") }, onEvent: (e) => failEvents.push(e) });
    out.failing = "no error";
  } catch (e) {
    out.failing = {
      error: describeError(e),
      calls: failCalls,
      steps: failEvents.filter((e) => e.type === "step-end").map((e) => `${e.step}:${e.ok}`),
      cleanups: failEvents.filter((e) => e.type === "cleanup").map((e) => `${e.what}:${e.ok}`),
      driverLog: failEvents.some((e) => e.type === "log" && e.message === "recording driver: VM created" && e.source === "recording"),
      buildEnd: failEvents.filter((e) => e.type === "build-end").map((e) => ({ ok: e.ok, error: e.error })),
      timed: failEvents.every((e) => typeof e.time === "string"),
    };
  }

  // 5. The same driver waiting in start: the caller's AbortSignal stops the build.
  const abortCalls = [];
  const ac = new AbortController();
  try {
    await buildImage(spec, {
      drivers: { qemu: recordingDriver(abortCalls, "wait") },
      signal: ac.signal,
      onEvent: (e) => {
        if (e.type === "step-start" && e.step === "start vm") setTimeout(() => ac.abort(new Error("stopped by the caller")), 50);
      },
    });
    out.aborted = "no error";
  } catch (e) {
    out.aborted = { error: describeError(e), calls: abortCalls };
  }

  // 6. A driver name the registry does not have.
  try {
    await buildImage(spec, { drivers: {} });
  } catch (e) {
    out.unavailable = describeError(e);
  }
} else if (mode === "build") {
  // A real build of the package's own example (fixture guest, real QEMU) through a registered
  // driver that wraps the shipped qemu driver and records the calls it forwards.
  const calls = [];
  const qemu = builtinDrivers().qemu;
  const traced = (ctx) => {
    const inner = qemu(ctx);
    return new Proxy(inner, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target);
        if (typeof v !== "function") return v;
        return (...args) => {
          calls.push(String(prop));
          return v.apply(target, args);
        };
      },
    });
  };
  const example = join(work, "node_modules", "vmkiln", "fixtures", "examples", "qemu-cloud-image.yaml");
  const spec = await loadTemplate(example, { vars: { output_dir: join(work, "out") } });
  const events = [];
  const r = await buildImage(spec, { drivers: { ...builtinDrivers(), qemu: traced }, onEvent: (e) => events.push(e) });
  const ova = r.artifacts.find((a) => a.format === "ova");
  const verified = ova ? await verifyOva(ova.path) : undefined;
  out.build = {
    ok: r.ok,
    outputDir: r.outputDir,
    artifacts: r.artifacts.map((a) => ({ name: a.name, format: a.format, size: a.size, sha256: a.sha256 })),
    calls: [...new Set(calls)],
    steps: events.filter((e) => e.type === "step-end").map((e) => `${e.step}:${e.ok}`),
    buildEnd: events.filter((e) => e.type === "build-end").map((e) => e.ok),
    ovaVerified: verified && { ok: verified.ok, findings: verified.findings },
  };
}

writeFileSync(resultFile, JSON.stringify(out, null, 2));
