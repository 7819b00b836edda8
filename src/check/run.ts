// `vmkiln test <artifact>` and the template's `test:` section: boot a throw-away overlay of the
// artifact through the driver contract, with a fresh cidata (a new user, key and instance-id) as the
// image's user would, wait for cloud-init to finish, then run the built-in first-boot checks and
// the gossfiles. It is a build pipeline of its own (pipeline/runner.ts): the same ssh-key, cidata,
// create/start VM and SSH-wait steps as a build, a journal and an undo stack, so Ctrl-C and failures
// leave nothing and `vmkiln gc` removes what a killed run left (the VM process, the work dir).
import { access, constants } from "node:fs/promises";
import { basename } from "node:path";
import { BuildError, UserError, type VmkilnError } from "../errors.js";
import type { EventBus } from "../log/events.js";
import type { BuildContext, BuildOptions, Undo } from "../pipeline/context.js";
import type { DriverFactory } from "../pipeline/driver.js";
import { Journal, describeEntry } from "../pipeline/journal.js";
import { runSteps } from "../pipeline/runner.js";
import type { Step } from "../pipeline/step.js";
import { parseResultJson } from "../provision/cloud-init.js";
import { CLOUD_INIT_IDLE, cloudInitSettleScript } from "../provision/generalize.js";
import { shq } from "../ssh/session.js";
import { createVmStep, startVmStep } from "../steps/create-vm.js";
import { makeCidataStep } from "../steps/make-cidata.js";
import { makeBuildDir, removeDir } from "../steps/prepare.js";
import { sshKeyStep } from "../steps/ssh-key.js";
import { waitSshStep } from "../steps/wait-ssh.js";
import { specFromObject } from "../template/load.js";
import type { BuildSpec } from "../template/spec.js";
import { loadGossfile, readVarsFile, type Gossfile } from "../goss/load.js";
import { compileFor, compileMatcher } from "../goss/matchers.js";
import { sshProbeRunner, validateGossfile } from "../goss/validate.js";
import { runGossBinary } from "../goss/binary.js";
import { resolveArtifact, type TestArtifact } from "./artifact.js";
import { FIRST_BOOT_CHECKS, factsScript, judgeFirstBoot, parseFacts, type FirstBootCheck } from "./first-boot.js";
import { resultLine, summarize, summaryLine, type CheckResult } from "./results.js";

export interface TestOptions {
  /** Gossfiles. */
  checks: string[];
  varsFile?: string | undefined;
  gossBinary?: string | undefined;
  firstBoot: Record<FirstBootCheck, boolean>;
  retryTimeoutMs: number;
  sleepMs: number;
  /** SSH answer + cloud-init finish. */
  timeoutMs: number;
  /** The disk the test boots (bytes); default: the image's size + 1 GiB, so growpart has work to do. */
  diskSize?: number | undefined;
  manifest?: string | undefined;
  /** Settings for the test VM (a `drivers.qemu` mapping, as in templates). */
  driverSettings?: Record<string, unknown>;
  debug: boolean;
}

export interface TestRun {
  artifact: string;
  ok: boolean;
  results: CheckResult[];
  durationMs: number;
  error?: VmkilnError;
}

const GROW_BY = 1024 ** 3;

/** The gossfiles, read and every matcher compiled: bad input is exit 2 before anything boots. */
export function prepareChecks(o: Pick<TestOptions, "checks" | "varsFile" | "gossBinary">): Array<{ path: string; goss: Gossfile }> {
  const vars = o.varsFile ? readVarsFile(o.varsFile) : {};
  if (o.gossBinary) return o.checks.map((path) => ({ path, goss: { resources: [], matching: [], files: [path], warnings: [] } }));
  return o.checks.map((path) => {
    const goss = loadGossfile(path, { Vars: vars, Env: { ...process.env } });
    for (const r of goss.resources) for (const e of r.expect) compileFor(e.value, e.prop.kind === "reader", `${r.file}: ${r.def.type}.${r.id}.${e.prop.key}`);
    for (const c of goss.matching) compileMatcher(c.matches, `${c.file}: matching.${c.id}.matches`);
    return { path, goss };
  });
}

function testSpec(art: TestArtifact, user: string, o: TestOptions): BuildSpec {
  const spec = specFromObject(
    {
      name: "vmkiln-test",
      source: { cloud_image: { path: art.disk.path, checksum: "none", format: art.disk.format } },
      drivers: { qemu: { ...(o.driverSettings ?? {}) } },
      ssh: { username: user, timeout: Math.ceil(o.timeoutMs / 1000) },
      generalize: false,
    },
    { baseDir: process.cwd(), file: "vmkiln-test" },
  );
  const q = spec.drivers.qemu!;
  // Always a throw-away overlay: the artifact is never written.
  q.diskMode = "overlay";
  q.diskSize = Math.max(o.diskSize ?? art.virtualSize + GROW_BY, art.virtualSize);
  return spec;
}

export async function testArtifact(
  artifactPath: string,
  o: TestOptions,
  env: { driverFactory: DriverFactory; events: EventBus; signal: AbortSignal; checks?: Array<{ path: string; goss: Gossfile }> },
): Promise<TestRun> {
  const started = Date.now();
  const checks = env.checks ?? prepareChecks(o);
  if (o.gossBinary) {
    await access(o.gossBinary, constants.R_OK).catch(() => {
      throw new UserError("GOSS_BINARY", `test.goss_binary: cannot read ${o.gossBinary}`);
    });
  }
  const art = await resolveArtifact(artifactPath, env.signal, o.manifest);
  const name = basename(art.path);
  const events = env.events;
  for (const g of checks) for (const w of g.goss.warnings) events.warn(w, "goss");
  // The test's own user: never the build's (the check looks for the build's).
  const user = art.identity?.user === "vmkiln-test" ? "vmkiln-tester" : "vmkiln-test";
  const spec = testSpec(art, user, o);
  const testId = `test-${new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14)}-${Math.random().toString(16).slice(2, 8)}`;
  const journal = new Journal(testId);
  const driver = env.driverFactory({ spec, events, journal });
  if (art.disk.slice && !driver.capabilities.diskSlices) {
    throw new UserError("DRIVER_CANNOT_SLICE", `--driver ${driver.name}: cannot boot the disk inside an OVA (only the qemu driver reads a disk at an offset of the archive)`);
  }
  const undos: Undo[] = [];
  const buildDir = await makeBuildDir(testId);
  journal.add({ kind: "dir", path: buildDir });
  undos.push({ what: `remove ${buildDir}`, onlyOnFailure: false, fn: async () => {
    await removeDir(buildDir);
    journal.done({ kind: "dir", path: buildDir });
  } });
  const options: BuildOptions = { force: false, onError: "cleanup", debug: o.debug };
  const ctx: BuildContext = {
    spec, driver, events, journal, buildId: testId, buildDir, options, startedAt: started,
    artifacts: [], timings: [], durations: {},
    defer(what, fn, opts) {
      undos.push({ what, fn, onlyOnFailure: opts?.onlyOnFailure ?? false });
    },
    source: { path: art.disk.path, sha256: "", format: art.disk.format, location: art.path, ...(art.disk.slice ? { slice: { offset: art.disk.slice.offset, size: art.disk.slice.size } } : {}) },
  };
  const results: CheckResult[] = [];
  const emit = (rs: CheckResult[]) => {
    for (const r of rs) {
      results.push(r);
      events.emit({ type: "check", artifact: name, outcome: r.outcome, line: resultLine(r), result: toJson(r) });
    }
  };
  events.info(`test ${testId}: ${art.path} (${art.kind}${art.disk.slice ? `: ${art.disk.slice.member} at byte ${art.disk.slice.offset}` : ""}; ${art.identity ? `build identity from ${art.manifestPath}` : "no build manifest"}) on a ${spec.drivers.qemu!.diskSize}-byte overlay (work dir ${buildDir})`, "test");

  let seenHostKey = "";
  const firstBoot: Step = {
    name: "first-boot checks",
    async run(c, signal) {
      seenHostKey = c.hostKeyFingerprint ?? "";
      const t0 = performance.now();
      const out: string[] = [];
      const wait = await c.ssh!.exec(`sudo -n sh -c ${shq(cloudInitSettleScript())}`, { signal, timeoutMs: o.timeoutMs, onLine: (s, l) => s === "stdout" && out.push(l) });
      let cloudInit = { ran: wait.exitCode === 0, errors: [] as string[] };
      if (wait.exitCode !== 0 && wait.exitCode !== CLOUD_INIT_IDLE) throw new BuildError("CLOUD_INIT_WAIT", `waiting for cloud-init to finish the boot ended with ${wait.exitCode ?? wait.signal ?? "a dropped connection"}`);
      if (cloudInit.ran) {
        const res = parseResultJson(out.join("\n"));
        cloudInit = { ran: true, errors: res ? [...res.errors, ...res.recoverable] : ["result.json is not cloud-init's"] };
        events.info(`cloud-init finished the boot${cloudInit.errors.length ? ` with errors: ${cloudInit.errors.slice(0, 3).join(" | ")}` : ""}`, "test");
      }
      if (!FIRST_BOOT_CHECKS.some((k) => o.firstBoot[k])) return;
      const id = art.identity;
      const script = factsScript({ buildUser: id?.user ?? "", buildInstanceId: id?.instance_id ?? "", buildMachineId: id?.machine_id ?? "" });
      const facts: string[] = [];
      const r = await c.ssh!.exec(`sudo -n sh -c ${shq(script)}`, { signal, timeoutMs: 300_000, onLine: (s, l) => s === "stdout" && facts.push(l) });
      if (r.exitCode !== 0) throw new BuildError("FIRST_BOOT_FACTS", `reading the guest's first-boot facts failed (exit ${r.exitCode ?? r.signal ?? "lost connection"})`);
      emit(judgeFirstBoot({
        facts: parseFacts(facts.join("\n")),
        identity: id,
        seenHostKey,
        testInstanceId: `vmkiln-${testId}`,
        cloudInit,
        grownBy: spec.drivers.qemu!.diskSize! - art.virtualSize,
        enabled: o.firstBoot,
        durationMs: Math.round(performance.now() - t0),
      }));
    },
  };
  const gossStep: Step = {
    name: "goss checks",
    async run(c, signal) {
      for (const g of checks) {
        if (o.gossBinary) {
          emit(await runGossBinary({ ssh: c.ssh!, binary: o.gossBinary, gossfile: g.path, varsFile: o.varsFile, retryTimeoutMs: o.retryTimeoutMs, sleepMs: o.sleepMs, signal, events }));
          continue;
        }
        emit(await validateGossfile(g.goss, {
          suite: g.path,
          probe: sshProbeRunner(c.ssh!, { sudo: true }),
          signal,
          retryTimeoutMs: o.retryTimeoutMs,
          sleepMs: o.sleepMs,
          onRetry: (n, failed) => events.info(`${g.path}: ${failed} check(s) failed; retrying (attempt ${n + 1})`, "goss"),
        }));
      }
    },
  };
  const steps = [sshKeyStep, makeCidataStep, createVmStep, startVmStep, waitSshStep, firstBoot, ...(checks.length ? [gossStep] : [])];
  const r = await runSteps(ctx, undos, steps, env.signal);
  const left = journal.pending();
  if (left.length === 0) journal.close();
  else events.warn(`${left.length} thing(s) could not be removed and stay in ${journal.file} for 'vmkiln gc': ${left.map(describeEntry).join(", ")}`);
  const durationMs = Date.now() - started;
  const s = summarize(results, durationMs);
  const ok = r.ok && s.failed === 0;
  if (r.ok) events.emit({ type: "test-end", artifact: name, ok, line: summaryLine(s), summary: { ...s } });
  return { artifact: art.path, ok, results, durationMs, ...(r.error ? { error: r.error } : {}) };
}

/** A result as JSON (snake_case keys, like goss's `-f json` results). */
export function toJson(r: CheckResult): Record<string, unknown> {
  return {
    suite: r.suite,
    "resource-type": r.resourceType,
    "resource-id": r.resourceId,
    property: r.property,
    ...(r.title ? { title: r.title } : {}),
    result: r.outcome,
    ...(r.expected !== undefined ? { expected: r.expected } : {}),
    ...(r.found !== undefined ? { found: r.found } : {}),
    ...(r.matcher ? { matcher: r.matcher } : {}),
    ...(r.missing ? { "missing-elements": r.missing } : {}),
    ...(r.error !== undefined ? { err: r.error } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    "duration-ms": r.durationMs,
  };
}
