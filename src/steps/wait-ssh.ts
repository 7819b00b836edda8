import type { BuildContext } from "../pipeline/context.js";
import type { Step } from "../pipeline/step.js";
import { waitForSsh } from "../ssh/wait.js";
import { writeKnownHosts } from "../ssh/known-hosts.js";

export async function connectSsh(ctx: BuildContext, signal: AbortSignal, timeoutMs: number): Promise<void> {
  const vm = ctx.vm!;
  const endpoint = ctx.sshEndpoint ?? (await ctx.driver.sshEndpoint(vm, signal));
  const consoleTail = (ctx.driver as { consoleTail?: (vm: unknown, n: number) => Promise<string> }).consoleTail;
  const r = await waitForSsh({
    target: { host: endpoint.host, port: endpoint.port, username: ctx.spec.ssh.username, privateKey: ctx.sshKey?.privateKey, password: ctx.spec.ssh.password },
    timeoutMs,
    pinned: ctx.hostKeyFingerprint,
    events: ctx.events,
    signal,
    vmExited: ctx.driver.exited?.(vm),
    ...(consoleTail ? { consoleTail: () => consoleTail.call(ctx.driver, vm, 25) } : {}),
  });
  ctx.hostKeyFingerprint ??= r.hostKey;
  if (!ctx.hostPublicKey) {
    ctx.hostPublicKey = r.hostKeyBlob;
    ctx.knownHostsPath = await writeKnownHosts(ctx.buildDir, endpoint, r.hostKeyBlob);
  }
  ctx.ssh = r.session;
  ctx.durations["ssh_banner_ms"] ??= r.bannerAtMs;
  ctx.defer("close ssh", () => r.session.close());
}

export const waitSshStep: Step = {
  name: "wait for ssh",
  run: (ctx, signal) => connectSsh(ctx, signal, ctx.spec.ssh.timeoutMs),
};
