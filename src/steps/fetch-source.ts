import { resolveSource } from "../source/fetch.js";
import type { Step } from "../pipeline/step.js";

export const fetchSourceStep: Step = {
  name: "fetch source",
  async run(ctx, signal) {
    const src = ctx.spec.source;
    const r = await resolveSource(src, { events: ctx.events, signal, ...(ctx.options.offline ? { offline: true } : {}) });
    ctx.source = { path: r.path, sha256: r.sha256, format: src.format ?? "", location: r.location };
    ctx.events.info(`source ${r.location} (sha256 ${r.sha256.slice(0, 16)}…${r.fromCache ? ", cached" : ""})`, "source");
  },
};
