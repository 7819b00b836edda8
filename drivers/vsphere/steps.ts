// The vSphere-only steps of the plan (plan.ts), where its flow differs from the shared one.
import type { Step } from "../../src/pipeline/step.js";
import type { VsphereDriver } from "./index.js";

/** Power on without waiting for SSH: an installer first needs its boot command. */
export const powerOnStep: Step = {
  name: "power on",
  run: (ctx, signal) => ctx.driver.start(ctx.vm!, signal),
};

/**
 * http.expect for an install on vSphere: the installer reboots into the installed system (there is
 * no -no-reboot to stop the VM, as under QEMU), so the fetch is waited for on its own, before SSH;
 * a boot command that never reached the installer fails here, after http.expect_timeout, instead of
 * after the whole SSH wait.
 */
export const waitHttpFetchStep: Step = {
  name: "wait for http fetch",
  async run(ctx, signal) {
    const h = ctx.spec.http;
    if (!ctx.http || !h || h.expect.length === 0) return;
    ctx.events.info(`waiting up to ${Math.round(h.expectTimeoutMs / 60_000)} min for the installer to fetch ${h.expect.join(", ")}`, "install");
    await ctx.http.server.waitForRequests(h.expect, h.expectTimeoutMs, signal);
    ctx.events.info(`the installer fetched ${h.expect.join(", ")}`, "install");
  },
};

export function finishStep(driver: VsphereDriver, after: "template" | "snapshot" | "none"): Step {
  return {
    name: `keep vm (${after})`,
    async run(ctx, signal) {
      const { path, kept } = await driver.finish(ctx.vm!, after, ctx.buildId, signal);
      if (kept) ctx.kept = kept;
      ctx.events.info(after === "template" ? `converted ${path} to a template` : after === "snapshot" ? `took snapshot vmkiln-${ctx.buildId} of ${path}` : `left ${path} on vSphere`, "vsphere");
    },
  };
}

/** after: library — the VM becomes an OVF template item; the VM itself is removed like an exported one. */
export function captureStep(driver: VsphereDriver): Step {
  return {
    name: "capture to library",
    async run(ctx, signal) {
      const r = await driver.captureToLibrary(ctx.vm!, signal);
      ctx.events.info(`captured the VM as OVF template ${r.name} in content library ${r.library} (item ${r.id})`, "vsphere");
    },
  };
}
