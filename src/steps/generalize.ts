// Generalize, part one: before anything is cleaned, cloud-init must be done with the current boot
// and stay done. A template that reboots mid-provisioning starts all of cloud-init's stages again;
// when the clean ran before the final stage (k8s-node example, issue 14; reproduced with
// the reboot in test/integration/templates/provisioning.yaml on the old code), `cloud-init modules
// --mode=final` then found no cached datasource, fell back to DataSourceNone, wrote a new
// instance's state (instances/iid-datasource-none/sem/*, data/result.json) and its logs back into
// the image, and failed to write boot-finished (FileNotFoundError: the clean had removed the
// `instance` link): that is the FAIL the second boot reported. The cleaning itself runs in the
// power-off command (steps/shutdown.ts) so that it is the last write.
import { BuildError } from "../errors.js";
import type { BuildContext } from "../pipeline/context.js";
import type { Step } from "../pipeline/step.js";
import { parseResultJson } from "../provision/cloud-init.js";
import { cloudConfigDumpScript, defaultUserFromDump } from "../provision/default-user.js";
import { CLOUD_INIT_IDLE, cloudInitSettleScript, planOperations } from "../provision/generalize.js";
import { shq } from "../ssh/session.js";
import { recordBuildIdentity } from "./build-identity.js";

/** What the host reads of cloud-init's configuration files at most (the dump, one line per line). */
export const MAX_CLOUD_CONFIG_BYTES = 4 * 1024 * 1024;

/** Generous: a boot whose final stage installs packages (runcmd, packages:) can take long under TCG. */
export const SETTLE_TIMEOUT_MS = 30 * 60_000;

export const generalizeStep: Step = {
  name: "generalize",
  async run(ctx, signal) {
    // Before anything is cleaned: what `vmkiln test` must not find in the booted image (manifest.json).
    await recordBuildIdentity(ctx, signal);
    const plan = planOperations(ctx.spec.generalize);
    const runs = plan.filter((p) => p.state === "run").map((p) => p.name);
    ctx.events.info(runs.length ? `operations: ${runs.join(", ")} (run as root in the power-off command)` : "every operation is switched off", "generalize");
    if (ctx.spec.generalize.cloudInit) await settleCloudInit(ctx, signal);
    if (runs.includes("default_user")) await readDefaultUser(ctx, signal);
  },
};

/**
 * Reads cloud-init's configuration files and finds the default user on the host (after
 * provisioning, which may have changed them); when it cannot tell, the cleaning asks the guest.
 */
async function readDefaultUser(ctx: BuildContext, signal: AbortSignal): Promise<void> {
  const out: string[] = [];
  let bytes = 0;
  const r = await ctx.ssh!.exec(`sh -c ${shq(cloudConfigDumpScript())}`, {
    signal,
    timeoutMs: 60_000,
    onLine: (s, line) => {
      if (s !== "stdout") return;
      // Configuration files are a few KiB; past the cap the guest's own reader decides.
      bytes += line.length + 1;
      if (bytes <= MAX_CLOUD_CONFIG_BYTES) out.push(line);
    },
  });
  const name = r.exitCode === 0 && bytes <= MAX_CLOUD_CONFIG_BYTES ? defaultUserFromDump(out.join("\n")) : undefined;
  if (name === undefined) {
    ctx.events.info("the default user is left to cloud-init's own reader in the guest (its configuration needs more than this reader models)", "generalize");
    return;
  }
  ctx.defaultUser = name;
  ctx.events.info(name ? `cloud-init's default user is ${name}` : "cloud-init's configuration names no default user", "generalize");
}

async function settleCloudInit(ctx: BuildContext, signal: AbortSignal): Promise<void> {
  const out: string[] = [];
  const r = await ctx.ssh!.exec(`sh -c ${shq(cloudInitSettleScript())}`, {
    signal,
    timeoutMs: SETTLE_TIMEOUT_MS,
    onLine: (s, line) => {
      if (s === "stdout") out.push(line);
    },
  });
  if (r.exitCode === CLOUD_INIT_IDLE) {
    ctx.events.info("cloud-init is not installed or did not run in this boot: nothing to wait for", "generalize");
    return;
  }
  if (r.exitCode !== 0) {
    throw new BuildError("CLOUD_INIT_FAILED", `generalize: waiting for cloud-init to finish this boot ended with ${r.exitCode ?? r.signal ?? "a dropped connection"}`);
  }
  const result = parseResultJson(out.join("\n"));
  const errors = result ? [...result.errors, ...result.recoverable] : [];
  // The build's own wait_cloud_init provisioner fails on errors; here the boot is only being
  // finished before the clean, so its errors are reported and the clean goes on.
  if (errors.length) ctx.events.warn(`cloud-init finished this boot with errors (the clean removes its state anyway): ${errors.slice(-3).join(" | ")}`, "generalize");
  else ctx.events.info("cloud-init finished this boot; no stage is running", "generalize");
}
