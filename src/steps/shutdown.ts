// Shutdown: one root command generalizes, removes the build user (it must be last: after it, sudo no
// longer knows us), trims, and powers off; then the driver waits for the VM to stop (ACPI, then
// force) and the export starts the moment QEMU exits (the process exit is the event).
//
// Generalize runs here rather than in its own SSH exec (issue 19 "the last seconds"): under TCG each
// exec costs a channel, a sudo and a shell start (~0.3-0.5 s), and the generalize step ran right
// before this one anyway. A generalize failure still fails the build, loudly and before power-off:
// its part exits with GENERALIZE_FAILED_EXIT and the VM is left to the build's cleanup.
import { BuildError } from "../errors.js";
import type { Step } from "../pipeline/step.js";
import { generalizeScript, removeUserScript } from "../provision/generalize.js";
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

/** The final command's exit status when its generalize part failed (nothing else in it exits so). */
export const GENERALIZE_FAILED_EXIT = 86;

export function finalCommand(opts: { username: string; removeUser: boolean; trim: boolean; shutdown: Pick<ShutdownSpec, "mode" | "command">; generalize?: string }): string {
  const parts: string[] = [];
  // In a subshell: its `set -e` ends only that part, and the status says which part failed. Not
  // `( … ) || …`: POSIX sh ignores -e inside any command of an AND-OR list but the last, so the
  // script would run on past its first failure.
  if (opts.generalize) {
    parts.push(`(\n${opts.generalize.trim()}\n)`, `st=$?; if [ "$st" -ne 0 ]; then echo "generalize failed with exit status $st" >&2; exit ${GENERALIZE_FAILED_EXIT}; fi`);
  }
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
    const g = spec.generalize;
    const cmd = finalCommand({
      username: spec.ssh.username,
      removeUser: g.buildUser,
      trim: g.trim,
      shutdown: spec.shutdown,
      ...(g.cloudInit || g.machineId || g.sshHostKeys || g.logs ? { generalize: generalizeScript(g) } : {}),
    });
    const lines: string[] = [];
    const r = await ctx.ssh!.exec(cmd, { signal, timeoutMs: 300_000, onLine: (stream, line) => {
      lines.push(line);
      ctx.events.emit({ type: "output", source: "shutdown", stream, line });
    } });
    if (r.exitCode === GENERALIZE_FAILED_EXIT) {
      throw new BuildError("GENERALIZE_FAILED", `generalize failed in the guest: ${lines.slice(-3).join(" | ") || `exit status ${r.exitCode}`}`);
    }
    if (r.exitCode !== 0 && !r.disconnected) {
      ctx.events.warn(`shutdown command exited with ${r.exitCode}: ${lines.slice(-2).join(" | ")}; asking the VM to power off`, "shutdown");
    }
    await ctx.ssh!.close();
    await ctx.driver.shutdown(ctx.vm!, { timeoutMs: spec.shutdown.timeoutMs, guestInitiated: r.exitCode === 0 || r.disconnected }, signal);
  },
};
