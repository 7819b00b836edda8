import type { Step } from "../pipeline/step.js";

export const createVmStep: Step = {
  name: "create vm",
  async run(ctx, signal) {
    const spec = ctx.spec;
    // The settings of the driver this build runs on (a template may configure several).
    const q = spec.drivers[ctx.driver.name as keyof typeof spec.drivers];
    const isIso = spec.source.kind === "iso";
    const vm = await ctx.driver.createVm(
      {
        name: `vmkiln-${ctx.buildId}`,
        buildId: ctx.buildId,
        buildDir: ctx.buildDir,
        sourceDisk: ctx.source && !isIso ? { path: ctx.source.path, format: ctx.source.format || undefined, ...(ctx.source.slice ? { slice: ctx.source.slice } : {}) } : undefined,
        // ISO installs: an empty disk of disk_size, the installer ISO, and a reboot that stops the VM.
        installerIso: isIso ? ctx.source?.path : undefined,
        installerMedia: ctx.installerMedia,
        exitOnReboot: isIso,
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
