// Shutdown: one root command removes the build user (it must be last: after it, sudo no longer
// knows us), trims, and powers off; then the driver waits for the VM to stop (ACPI, then force).
import type { Step } from "../pipeline/step.js";
import { removeUserScript } from "../provision/generalize.js";
import { shq } from "../ssh/session.js";

export function finalCommand(opts: { username: string; removeUser: boolean; trim: boolean; command: string }): string {
  const parts: string[] = [];
  if (opts.removeUser && opts.username !== "root") parts.push(removeUserScript(opts.username));
  parts.push("sync");
  // fstrim after every deletion so freed blocks reach the qcow2 as holes (discard=unmap).
  if (opts.trim) parts.push("fstrim -av || true");
  // Detach the power-off so this command returns before sshd is stopped.
  parts.push(`nohup sh -c ${shq(`sleep 1; ${opts.command}`)} >/dev/null 2>&1 &`);
  const script = parts.join("\n");
  return opts.username === "root" ? `sh -c ${shq(script)}` : `sudo -n sh -c ${shq(script)}`;
}

export const shutdownStep: Step = {
  name: "shutdown",
  async run(ctx, signal) {
    const { spec } = ctx;
    const cmd = finalCommand({
      username: spec.ssh.username,
      removeUser: spec.generalize.buildUser,
      trim: spec.generalize.trim,
      command: spec.shutdown.command,
    });
    const lines: string[] = [];
    const r = await ctx.ssh!.exec(cmd, { signal, timeoutMs: 300_000, onLine: (stream, line) => {
      lines.push(line);
      ctx.events.emit({ type: "output", source: "shutdown", stream, line });
    } });
    if (r.exitCode !== 0 && !r.disconnected) {
      ctx.events.warn(`shutdown command exited with ${r.exitCode}: ${lines.slice(-2).join(" | ")}; asking the VM to power off`, "shutdown");
    }
    await ctx.ssh!.close();
    await ctx.driver.shutdown(ctx.vm!, { timeoutMs: spec.shutdown.timeoutMs, guestInitiated: r.exitCode === 0 || r.disconnected }, signal);
  },
};
