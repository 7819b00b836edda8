// Reboots mid-build (a kernel update, `restart`, a shell script with expect_disconnect): wait for
// the old connection to end, then for SSH again with the pinned host key (the build generalizes
// host keys only at the end, so the same key must come back), and check the boot id changed so we
// never carry on against a guest that is still going down.
import { BuildError } from "../errors.js";
import type { Communicator } from "../ssh/communicator.js";
import { sleep } from "../util/abort.js";
import type { ProvisionContext } from "./types.js";

export const BOOT_ID_COMMAND = "cat /proc/sys/kernel/random/boot_id";

export async function bootId(ssh: Communicator, signal: AbortSignal): Promise<string> {
  return (await ssh.capture(BOOT_ID_COMMAND, { signal, timeoutMs: 60_000 })).trim();
}

/** Resolves true when the session ends within `ms`, false otherwise. */
export async function waitClosed(ssh: Communicator, ms: number, signal: AbortSignal): Promise<boolean> {
  if (!ssh.closed) return false;
  let done = false;
  const closed = ssh.closed.then(() => (done = true));
  await Promise.race([closed, sleep(ms, signal).catch(() => undefined)]);
  if (signal.aborted) throw signal.reason;
  return done;
}

/**
 * After a script that may have rebooted the guest exited 0 with the session still up: is a shutdown
 * under way? systemd reports "stopping" from the moment reboot.target is queued; a probe that cannot
 * run (the session is being torn down) means the same.
 */
export async function shutdownInProgress(ssh: Communicator, signal: AbortSignal): Promise<boolean> {
  const lines: string[] = [];
  try {
    const r = await ssh.exec("systemctl is-system-running 2>/dev/null || true", { signal, timeoutMs: 15_000, onLine: (_s, l) => lines.push(l) });
    if (r.disconnected) return true;
    return lines.some((l) => l.trim() === "stopping");
  } catch (err) {
    if (signal.aborted) throw err;
    return true;
  }
}

export interface RebootWaitOptions {
  /** The boot id before; when given, only a session to a new boot counts. */
  previousBootId: string | undefined;
  /** How long the whole wait may take. */
  timeoutMs: number;
}

/** The guest is going down (or gone): wait for the session to end, reconnect, check the boot. */
export async function waitForReboot(ctx: ProvisionContext, o: RebootWaitOptions): Promise<void> {
  if (!ctx.reconnect) throw new BuildError("INTERNAL", `${ctx.label}: cannot reconnect here`);
  const deadline = Date.now() + o.timeoutMs;
  // sshd is stopped early in shutdown; keepalives end a silently dead link within about a minute.
  const ended = await waitClosed(ctx.ssh, Math.min(180_000, o.timeoutMs), ctx.signal);
  if (!ended) ctx.events.warn(`${ctx.label}: the SSH session did not end after the reboot began; reconnecting anyway`, ctx.label);
  for (;;) {
    const ssh = await ctx.reconnect();
    const now = await bootId(ssh, ctx.signal).catch(() => undefined);
    if (o.previousBootId === undefined || (now !== undefined && now !== o.previousBootId)) {
      ctx.events.info(`${ctx.label}: the guest is back${now && o.previousBootId ? ` (new boot ${now.slice(0, 8)}…, was ${o.previousBootId.slice(0, 8)}…)` : ""}; same pinned host key`, ctx.label);
      return;
    }
    if (Date.now() > deadline) {
      throw new BuildError("REBOOT_TIMEOUT", `${ctx.label}: the guest did not reboot within ${Math.round(o.timeoutMs / 1000)} s (boot id unchanged)`);
    }
    // Reached the old system while it was still going down: let it finish.
    await sleep(3000, ctx.signal);
  }
}
