// Types the boot command (Packer's boot_command) after boot_wait, through the driver's keyboard.
import { parseBootCommand, withKeyInterval } from "../bootcommand/index.js";
import { eventsToText } from "../bootcommand/text.js";
import { UserError } from "../errors.js";
import type { Step } from "../pipeline/step.js";
import { abortable, sleep } from "../util/abort.js";
import { renderScope } from "./render-scope.js";

export const bootCommandStep: Step = {
  name: "boot command",
  async run(ctx, signal) {
    const boot = ctx.spec.install?.boot;
    if (!boot || boot.command.length === 0) return;
    const driver = ctx.driver;
    if (!driver.capabilities.keystrokes || !driver.sendKeys) {
      throw new UserError("KEYSTROKES_UNSUPPORTED", `boot.command: the ${driver.name} driver cannot type keys`);
    }
    // The values answer files get (http.*, ssh.public_key), so every one validation accepts is set.
    const values: Record<string, string> = { name: ctx.spec.name, ...renderScope(ctx).values };
    let keys = parseBootCommand(boot.command, { values });
    if (boot.keyIntervalMs > 0) keys = withKeyInterval(keys, boot.keyIntervalMs);

    const exited = driver.exited?.(ctx.vm!);
    const work = (async () => {
      if (boot.waitMs > 0) {
        ctx.events.info(`waiting ${Math.round(boot.waitMs / 1000)} s (boot.wait) before typing`, "boot");
        await sleep(boot.waitMs, signal);
      }
      ctx.events.info(`typing the boot command (${keys.length} key events)`, "boot");
      ctx.events.debug(`boot command: ${eventsToText(keys)}`, "boot");
      const started = performance.now();
      await driver.sendKeys!(ctx.vm!, keys, signal);
      ctx.durations["boot_command_ms"] = Math.round(performance.now() - started);
    })();
    await abortable(exited ? Promise.race([work, exited.then(() => undefined)]) : work, signal);
  },
};
