import { abortable } from "../util/abort.js";
import { runProvisioner } from "../provision/index.js";
import type { Step } from "../pipeline/step.js";

export const provisionStep: Step = {
  name: "provision",
  async run(ctx, signal) {
    const list = ctx.spec.provision;
    for (const [i, p] of list.entries()) {
      const label = `provision[${i}] ${p.name}`;
      const started = performance.now();
      ctx.events.info(`${label}: start`, "provision");
      // A VM that dies mid-provisioning ends the wait at once instead of at an SSH timeout.
      const exited = ctx.driver.exited?.(ctx.vm!);
      const work = runProvisioner(p, { ssh: ctx.ssh!, events: ctx.events, signal, username: ctx.spec.ssh.username, label });
      await abortable(exited ? Promise.race([work, exited.then(() => undefined)]) : work, signal);
      const ms = Math.round(performance.now() - started);
      ctx.timings.push({ step: `  ${label}`, durationMs: ms, ok: true });
      ctx.events.info(`${label}: done in ${(ms / 1000).toFixed(1)} s`, "provision");
    }
  },
};
