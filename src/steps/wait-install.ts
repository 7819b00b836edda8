// Waits for the unattended install to end (the installer powers the VM off, or reboots it, which
// under QEMU's -no-reboot also stops it), then boots the installed disk without the installer ISO
// and media. Meanwhile the files the installer must fetch are watched: if the VM never asks for its
// kickstart/preseed, the build fails with that instead of sitting out the whole install timeout.
import { BuildError, UserError } from "../errors.js";
import type { Step } from "../pipeline/step.js";
import { abortable } from "../util/abort.js";

export const waitInstallStep: Step = {
  name: "wait for install",
  async run(ctx, signal) {
    const install = ctx.spec.install;
    const driver = ctx.driver;
    const vm = ctx.vm!;
    if (!install) return;
    if (!driver.waitForGuestStop || !driver.restart) {
      throw new UserError("SOURCE_UNSUPPORTED", `source.iso: the ${driver.name} driver cannot follow an install`);
    }
    const local = new AbortController();
    const onAbort = () => local.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const started = performance.now();
    const what = install.waitFor === "poweroff" ? "power the VM off" : "reboot";
    ctx.events.info(`waiting up to ${Math.round(install.timeoutMs / 60_000)} min for the installer to ${what}`, "install");
    try {
      const waits: Array<Promise<boolean>> = [driver.waitForGuestStop(vm, { timeoutMs: install.timeoutMs }, local.signal)];
      const expect = ctx.spec.http?.expect ?? [];
      if (ctx.http && expect.length > 0) {
        // Resolves when everything was fetched (then only the stop matters); rejects on the deadline.
        waits.push(
          ctx.http.server.waitForRequests(expect, ctx.spec.http!.expectTimeoutMs, local.signal).then(() => {
            ctx.events.info(`the installer fetched ${expect.join(", ")}`, "install");
            return new Promise<boolean>(() => undefined);
          }),
        );
      }
      const stopped = await abortable(Promise.race(waits), signal);
      if (!stopped) {
        const tail = await consoleTail(ctx, vm);
        throw new BuildError("INSTALL_TIMEOUT", `the installer did not ${what} within ${Math.round(install.timeoutMs / 60_000)} min`, {
          hint: tail ? `serial console (last lines):\n${tail}` : "watch the installer's screen (drivers.qemu.headless: false)",
        });
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      local.abort();
    }
    const ms = Math.round(performance.now() - started);
    ctx.durations["install_ms"] = ms;
    ctx.events.info(`install finished in ${(ms / 60_000).toFixed(1)} min: booting the installed disk`, "install");
    await driver.restart(vm, { removeInstallerMedia: true }, signal);
    ctx.sshEndpoint = await driver.sshEndpoint(vm, signal);
  },
};

async function consoleTail(ctx: { driver: unknown }, vm: unknown): Promise<string> {
  const tail = (ctx.driver as { consoleTail?: (vm: unknown, n: number) => Promise<string> }).consoleTail;
  return tail ? tail.call(ctx.driver, vm, 20).catch(() => "") : "";
}
