// First step: refuse an output dir vmkiln may not replace (output-guard.ts), or an existing one
// without --force; make the private build dir.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Step } from "../pipeline/step.js";
import { preflightProvisioners } from "../provision/preflight.js";
import { preflightOutput } from "./output-guard.js";

export const prepareStep: Step = {
  name: "prepare",
  async run(ctx) {
    // Before anything is fetched or created: a file, `..`, the template's or the source's
    // directory, or any directory vmkiln did not write would be lost when the output is replaced.
    await preflightOutput(ctx.spec, { force: ctx.options.force });
    // Host tools provisioners need (ansible-playbook): fail now, not after the VM has booted.
    preflightProvisioners(ctx.spec.provision, ctx.driver.name);
  },
};

export async function makeBuildDir(buildId: string): Promise<string> {
  const base = process.env.VMKILN_TMPDIR ?? tmpdir();
  return mkdtemp(join(base, `vmkiln-${buildId}-`));
}

export async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}
