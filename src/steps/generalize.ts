import type { Step } from "../pipeline/step.js";

// The generalize script runs in the shutdown step's one root command (steps/shutdown.ts says why);
// this step stays in the plan so the step list and --debug's pause before it are unchanged.
export const generalizeStep: Step = {
  name: "generalize",
  async run(ctx) {
    const g = ctx.spec.generalize;
    if (g.cloudInit || g.machineId || g.sshHostKeys || g.logs) ctx.events.debug("generalize runs in the shutdown command", "generalize");
  },
};
