// Shutdown: one root command cleans the guest (every generalize operation, the build user last
// among the users: after it, sudo no longer knows us), trims and powers off; then the driver waits
// for the VM to stop (ACPI, then force). Cleaning in the power-off command itself is what makes it
// the last write to the disk: nothing vmkiln runs comes after it (README "Generalize").
import { BuildError } from "../errors.js";
import type { Step } from "../pipeline/step.js";
import { cleaningScript, planOperations, REPORT_MARK, ReportCollector, type OperationReport } from "../provision/generalize.js";
import { detachedAfterOneSecond, shq } from "../ssh/session.js";
import type { GeneralizeSpec, ShutdownSpec } from "../template/spec.js";

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

/** Exit status of the final command when a generalize operation failed (the guest stays up). */
export const CLEANING_FAILED = 3;

export function finalCommand(opts: {
  username: string;
  generalize: GeneralizeSpec;
  buildPublicKey?: string | undefined;
  defaultUser?: string | undefined;
  shutdown: Pick<ShutdownSpec, "mode" | "command">;
}): string {
  const parts: string[] = [];
  const clean = cleaningScript(opts.generalize, {
    username: opts.username,
    ...(opts.buildPublicKey !== undefined ? { buildPublicKey: opts.buildPublicKey } : {}),
    defaultUser: opts.defaultUser,
  });
  // Exits CLEANING_FAILED before the power-off when an operation failed: nothing half-cleaned is exported.
  if (clean) parts.push(clean);
  parts.push("sync");
  // fstrim after every deletion so freed blocks reach the qcow2 as holes (discard=unmap).
  if (opts.generalize.trim) {
    parts.push(`echo '${REPORT_MARK} trim begin'; fstrim -av 2>&1 | sed 's/^/${REPORT_MARK} trim - /'; echo '${REPORT_MARK} trim ok'`);
  }
  parts.push(powerOffCommand(opts.shutdown));
  const script = parts.join("\n");
  return opts.username === "root" ? `sh -c ${shq(script)}` : `sudo -n sh -c ${shq(script)}`;
}

/** One log line per operation: what it changed (the first few changes), or why it did not run. */
export function describeReport(r: OperationReport): string {
  const shown = r.changes.slice(0, 6).join("; ");
  const more = r.changes.length > 6 ? ` (and ${r.changes.length - 6} more)` : "";
  const what = r.changes.length ? `: ${shown}${more}` : r.status === "done" ? ": nothing to do" : "";
  const took = r.ms === undefined ? "" : ` in ${(r.ms / 1000).toFixed(1)} s`;
  return `${r.operation} ${r.status}${took}${what}`;
}

export const shutdownStep: Step = {
  name: "shutdown",
  async run(ctx, signal) {
    const { spec } = ctx;
    const collector = new ReportCollector(planOperations(spec.generalize));
    const cmd = finalCommand({
      username: spec.ssh.username,
      generalize: spec.generalize,
      buildPublicKey: ctx.sshKey?.publicKey,
      defaultUser: ctx.defaultUser,
      shutdown: spec.shutdown,
    });
    const lines: string[] = [];
    const t0 = performance.now();
    const r = await ctx.ssh!.exec(cmd, { signal, timeoutMs: 300_000, onLine: (stream, line) => {
      if (collector.line(stream, line)) return;
      lines.push(line);
      ctx.events.emit({ type: "output", source: "shutdown", stream, line });
    } });
    const reports = collector.list();
    ctx.generalized = reports;
    for (const rep of reports) {
      const msg = `generalize ${describeReport(rep)}`;
      if (rep.status === "failed") ctx.events.warn(msg, "generalize");
      else ctx.events.info(msg, "generalize");
    }
    if (r.exitCode === CLEANING_FAILED) {
      const failed = reports.filter((x) => x.status === "failed");
      throw new BuildError(
        "GENERALIZE_FAILED",
        `generalize: ${failed.map((f) => `${f.operation} failed${f.changes.length ? ` (${f.changes.slice(-2).join("; ")})` : ""}`).join(", ") || "an operation failed"}`,
        { hint: "run the build with --on-error=abort to keep the VM and look, or switch the operation off under generalize:" },
      );
    }
    if (r.exitCode !== 0 && !r.disconnected) {
      ctx.events.warn(`shutdown command exited with ${r.exitCode}: ${lines.slice(-2).join(" | ")}; asking the VM to power off`, "shutdown");
    }
    const t1 = performance.now();
    await ctx.ssh!.close();
    await ctx.driver.shutdown(ctx.vm!, { timeoutMs: spec.shutdown.timeoutMs, guestInitiated: r.exitCode === 0 || r.disconnected }, signal);
    // Where the step's seconds go (issue 19): the guest's own work, then the power-off itself.
    const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    ctx.events.info(`power-off command ran ${secs(t1 - t0)} in the guest; the VM was off ${secs(performance.now() - t1)} later`, "shutdown");
  },
};
