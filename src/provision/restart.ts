// The restart provisioner: reboot the guest, wait until it is back on a new boot with the same
// pinned host key, then the build goes on (Packer's windows-restart, for any guest).
import type { RestartProvisioner } from "../template/spec.js";
import { detachedAfterOneSecond, shq } from "../ssh/session.js";
import { bootId, waitForReboot } from "./reboot.js";
import type { ProvisionContext } from "./types.js";

/** Detached so the command returns (and the channel closes cleanly) before sshd is stopped. */
export function restartCommand(command: string, username: string): string {
  const detached = detachedAfterOneSecond(command);
  return username === "root" ? `sh -c ${shq(detached)}` : `sudo -n sh -c ${shq(detached)}`;
}

export async function runRestart(p: RestartProvisioner, ctx: ProvisionContext): Promise<void> {
  const before = await bootId(ctx.ssh, ctx.signal);
  await ctx.ssh.capture(restartCommand(p.command, ctx.username), { signal: ctx.signal, timeoutMs: 60_000 });
  ctx.events.info(`${ctx.label}: rebooting (${p.command}); waiting for the guest to come back`, ctx.label);
  await waitForReboot(ctx, { previousBootId: before, timeoutMs: p.restartTimeoutMs });
}
