// output.publish (issue 18 item 1): after the export has handed the output directory over, push its
// qcow2 to each registry (src/publish/push.ts) and record each digest in manifest.json. A push that
// fails fails the build (exit 1) but leaves the output directory as the export wrote it: nothing here
// removes or rewrites an artifact.
import type { Step } from "../pipeline/step.js";
import { push } from "../publish/push.js";

export const publishStep: Step = {
  name: "publish",
  async run(ctx, signal) {
    for (const p of ctx.spec.output.publish) {
      const r = await push({ artifact: ctx.spec.output.directory, to: p.to, layout: p.layout, caFile: p.caFile, insecure: p.insecure, events: ctx.events, signal });
      ctx.events.info(`published ${r.pinned} (${p.layout})`, "publish");
    }
  },
};
