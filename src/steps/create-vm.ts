import type { Step } from "../pipeline/step.js";

export const createVmStep: Step = {
  name: "create vm",
  async run(ctx, signal) {
    const spec = ctx.spec;
    const q = spec.drivers.qemu;
    const vm = await ctx.driver.createVm(
      {
        name: `vmkiln-${ctx.buildId}`,
        buildId: ctx.buildId,
        buildDir: ctx.buildDir,
        sourceDisk: ctx.source ? { path: ctx.source.path, format: ctx.source.format || undefined } : undefined,
        installerIso: undefined,
        cidataIso: ctx.cidataIso,
        diskSize: q?.diskSize,
        firmware: q?.firmware ?? "bios",
      },
      signal,
    );
    ctx.defer(`destroy vm ${vm.id}`, () => ctx.driver.destroyVm(vm));
    ctx.vm = vm;
  },
};

export const startVmStep: Step = {
  name: "start vm",
  async run(ctx, signal) {
    await ctx.driver.start(ctx.vm!, signal);
    ctx.sshEndpoint = await ctx.driver.sshEndpoint(ctx.vm!, signal);
  },
};
