import type { Step } from "../pipeline/step.js";
import { generalizeScript } from "../provision/generalize.js";
import { shq } from "../ssh/session.js";

export const generalizeStep: Step = {
  name: "generalize",
  async run(ctx, signal) {
    const g = ctx.spec.generalize;
    if (!g.cloudInit && !g.machineId && !g.sshHostKeys && !g.logs) return;
    const sudo = ctx.spec.ssh.username === "root" ? "" : "sudo -n ";
    await ctx.ssh!.capture(`${sudo}sh -c ${shq(generalizeScript(g))}`, { signal, timeoutMs: 300_000 });
  },
};
