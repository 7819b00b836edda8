// First step: refuse an existing output dir (unless --force), make the private build dir.
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../errors.js";
import type { Step } from "../pipeline/step.js";
import { preflightProvisioners } from "../provision/preflight.js";

export const prepareStep: Step = {
  name: "prepare",
  async run(ctx) {
    const out = ctx.spec.output.directory;
    if (existsSync(out) && !ctx.options.force) {
      const entries = await readdir(out).catch(() => []);
      if (entries.length > 0) {
        throw new UserError("OUTPUT_EXISTS", `output.directory: ${out} already exists`, { hint: "remove it or pass --force" });
      }
    }
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
