// Shutdown: one root command removes the build user (it must be last: after it, sudo no longer
// knows us), trims, and powers off; then the driver waits for the VM to stop (ACPI, then force).
import type { Step } from "../pipeline/step.js";
import { removeUserScript } from "../provision/generalize.js";
import { detachedAfterOneSecond, shq } from "../ssh/session.js";
import type { ShutdownSpec } from "../template/spec.js";

/**
 * The power-off itself, detached so the SSH command returns (with its exit status) before sshd
 * goes away. With systemd, `systemctl --no-block` queues the job and returns at once; `--force`
 * skips the units' stop jobs (about 3 s of the ~4 s a graceful power-off takes under TCG) while
 * systemd-shutdown still SIGTERMs every process and unmounts or remounts read-only every file
 * system. A template's own command, or a guest without systemd, gets a one-second head start
 * instead, long enough for the exit status to reach us.
 */
export function powerOffCommand(s: Pick<ShutdownSpec, "mode" | "command">): string {
  if (s.command !== undefined) return detachedAfterOneSecond(s.command);
  const force = s.mode === "fast" ? " --force" : "";
  return `if [ -d /run/systemd/system ]; then systemctl --no-block poweroff${force}; else ${detachedAfterOneSecond("poweroff")} fi`;
}

export function finalCommand(opts: { username: string; removeUser: boolean; trim: boolean; shutdown: Pick<ShutdownSpec, "mode" | "command"> }): string {
  const parts: string[] = [];
  if (opts.removeUser && opts.username !== "root") parts.push(removeUserScript(opts.username));
  parts.push("sync");
  // fstrim after every deletion so freed blocks reach the qcow2 as holes (discard=unmap).
  if (opts.trim) parts.push("fstrim -av || true");
  parts.push(powerOffCommand(opts.shutdown));
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
      shutdown: spec.shutdown,
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
