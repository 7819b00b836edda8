// The library entry for a build: context, journal, build dir, steps, cleanup.
import { randomBytes } from "node:crypto";
import type { EventBus } from "./log/events.js";
import { specSecrets } from "./log/redact.js";
import type { Artifact, BuildContext, BuildOptions, Undo } from "./pipeline/context.js";
import type { DriverFactory, KeptResult } from "./pipeline/driver.js";
import { Journal, describeEntry } from "./pipeline/journal.js";
import { planSteps } from "./pipeline/plan.js";
import { runSteps } from "./pipeline/runner.js";
import { makeBuildDir, removeDir } from "./steps/prepare.js";
import type { BuildSpec } from "./template/spec.js";
import type { VmkilnError } from "./errors.js";

export interface BuildRequest {
  spec: BuildSpec;
  driverFactory: DriverFactory;
  events: EventBus;
  signal: AbortSignal;
  options: BuildOptions;
}

export interface BuildResult {
  ok: boolean;
  error?: VmkilnError;
  artifacts: Artifact[];
  outputDir: string;
  durationMs: number;
  buildId: string;
  /** The VM the hypervisor keeps (vSphere after: template): a layered build's next stage clones it. */
  kept?: KeptResult;
}

export function newBuildId(): string {
  const t = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return `${t}-${randomBytes(3).toString("hex")}`;
}

export async function build(req: BuildRequest): Promise<BuildResult> {
  const startedAt = Date.now();
  const buildId = newBuildId();
  const journal = new Journal(buildId);
  const undos: Undo[] = [];
  // A spec built without the CLI's loader options still masks its secrets in every event.
  req.events.redactor.addAll(specSecrets(req.spec));
  const driver = req.driverFactory({ spec: req.spec, events: req.events, journal });
  const steps = planSteps(req.spec, driver);

  const buildDir = await makeBuildDir(buildId);
  journal.add({ kind: "dir", path: buildDir });
  undos.push({
    what: `remove build dir ${buildDir}`,
    onlyOnFailure: false,
    fn: async () => {
      await removeDir(buildDir);
      journal.done({ kind: "dir", path: buildDir });
    },
  });

  const ctx: BuildContext = {
    spec: req.spec,
    driver,
    events: req.events,
    journal,
    buildId,
    buildDir,
    options: req.options,
    startedAt,
    artifacts: [],
    timings: [],
    durations: {},
    defer(what, fn, opts) {
      undos.push({ what, fn, onlyOnFailure: opts?.onlyOnFailure ?? false });
    },
  };
  req.events.info(`build ${buildId}: ${req.spec.name} on ${driver.name} (build dir ${buildDir})`);
  for (const w of req.spec.warnings ?? []) req.events.warn(w.path ? `${w.path}: ${w.message}` : w.message, "template");
  const r = await runSteps(ctx, undos, steps, req.signal);
  if (!r.ok && req.options.onError === "abort" && undos.length > 0 && ctx.sshEndpoint && ctx.sshKey) {
    const ep = ctx.sshEndpoint;
    req.events.warn(`the VM is still running for inspection: ssh -i ${ctx.sshKey.privateKeyPath} -p ${ep.port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null ${req.spec.ssh.username}@${ep.host}`);
  }
  // The journal goes only when everything it holds is accounted for. What is still pending was left
  // behind on purpose (--on-error=abort) or could not be removed (an undo failed): `vmkiln gc` must find it.
  const left = journal.pending();
  if (left.length === 0) journal.close();
  else if (!(req.options.onError === "abort" && !r.ok && undos.length > 0)) {
    req.events.warn(`${left.length} thing(s) could not be removed and stay in ${journal.file} for 'vmkiln gc': ${left.map(describeEntry).join(", ")}`);
  }
  const durationMs = Date.now() - startedAt;
  const result: BuildResult = { ok: r.ok, artifacts: ctx.artifacts, outputDir: req.spec.output.directory, durationMs, buildId };
  if (r.error) result.error = r.error;
  if (ctx.kept) result.kept = ctx.kept;
  return result;
}
