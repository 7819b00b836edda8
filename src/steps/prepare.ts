// First step: refuse an output dir vmkiln may not replace (output-guard.ts), or an existing one
// without --force, and provisioners whose host tools are missing. The private build dir is made
// before any step, by build() (src/build.ts), with makeBuildDir below.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Step } from "../pipeline/step.js";
import { preflightProvisioners } from "../provision/preflight.js";
import { preflightOutput } from "./output-guard.js";
import { ovaSigner } from "./ova-signer.js";
import { preflightPublish } from "../publish/push.js";
import { UserError } from "../errors.js";

export const prepareStep: Step = {
  name: "prepare",
  async run(ctx, signal) {
    if (ctx.options.offline && ctx.driver.capabilities.remote) {
      throw new UserError("OFFLINE_NETWORK", `--offline: the ${ctx.driver.name} driver reaches its hypervisor over the network`);
    }
    if (ctx.options.offline && ctx.spec.output.publish.length > 0) throw offlinePublish();
    // Before anything is fetched or created: a file, `..`, the template's or the source's
    // directory, or any directory vmkiln did not write would be lost when the output is replaced.
    await preflightOutput(ctx.spec, { force: ctx.options.force, outputInCache: ctx.options.outputInCache ?? false });
    // Host tools provisioners need (ansible-playbook): fail now, not after the VM has booted.
    preflightProvisioners(ctx.spec.provision, ctx.driver.name);
    // The OVA's signing key and each registry's credentials and CA file: a wrong passphrase, a
    // broken auth file or a missing login fails now, not after the build (no network here: the
    // registry itself is only asked at the end).
    await ovaSigner(ctx);
    for (const p of ctx.spec.output.publish) await preflightPublish(p, signal);
  },
};

/** --offline refuses every network access, and output.publish pushes to a registry. */
export function offlinePublish(): UserError {
  return new UserError("OFFLINE_NETWORK", "--offline: output.publish pushes to a registry over the network; build without --offline, or push later with vmkiln push");
}

export async function makeBuildDir(buildId: string): Promise<string> {
  const base = process.env.VMKILN_TMPDIR ?? tmpdir();
  return mkdtemp(join(base, `vmkiln-${buildId}-`));
}

export async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}
