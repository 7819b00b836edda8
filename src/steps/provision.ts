// Runs spec.provision in order. Options common to every kind (only/except, pause_before, timeout,
// max_retries) are applied here, uniformly (src/provision/options.ts); a provisioner that reboots the
// guest reconnects through the same path as the first connection, with the pinned host key.
import { abortable } from "../util/abort.js";
import { runProvisioner } from "../provision/index.js";
import { appliesTo, runWithOptions } from "../provision/options.js";
import type { ProvisionContext } from "../provision/types.js";
import type { BuildContext, Download } from "../pipeline/context.js";
import type { Step } from "../pipeline/step.js";
import { connectSsh } from "./wait-ssh.js";

export const provisionStep: Step = {
  name: "provision",
  async run(ctx, signal) {
    const list = ctx.spec.provision;
    for (const [i, p] of list.entries()) {
      const label = `provision[${i}] ${p.name}`;
      if (!appliesTo(p.options, ctx.driver.name)) {
        ctx.events.info(`${label}: skipped for the ${ctx.driver.name} driver (only/except)`, "provision");
        continue;
      }
      const started = performance.now();
      ctx.events.info(`${label}: start`, "provision");
      const pctx = provisionContext(ctx, label, signal);
      const { attempts } = await runWithOptions(
        p.options,
        signal,
        async (attemptSignal) => {
          pctx.signal = attemptSignal;
          // A VM that dies mid-provisioning ends the wait at once instead of at an SSH timeout.
          const exited = ctx.driver.exited?.(ctx.vm!);
          const work = runProvisioner(p, pctx, i);
          await abortable(exited ? Promise.race([work, exited.then(() => undefined)]) : work, attemptSignal);
        },
        {
          events: ctx.events,
          label,
          // A failed attempt may have left the session dead (a reboot it did not expect): reconnect.
          beforeRetry: async (_n, s) => {
            if (pctx.ssh.closed && (await settled(pctx.ssh.closed))) {
              pctx.signal = s;
              await pctx.reconnect!();
            }
          },
        },
      );
      const ms = Math.round(performance.now() - started);
      ctx.timings.push({ step: `  ${label}`, durationMs: ms, ok: true });
      ctx.events.info(`${label}: done in ${(ms / 1000).toFixed(1)} s${attempts > 1 ? ` (attempt ${attempts})` : ""}`, "provision");
    }
  },
};

export function provisionContext(ctx: BuildContext, label: string, signal: AbortSignal): ProvisionContext {
  const endpoint = ctx.sshEndpoint;
  const pctx: ProvisionContext = {
    ssh: ctx.ssh!,
    events: ctx.events,
    signal,
    username: ctx.spec.ssh.username,
    label,
    buildDir: ctx.buildDir,
    buildName: ctx.spec.name,
    templateDir: ctx.spec.templateDir,
    driverName: ctx.driver.name,
    rebootTimeoutMs: ctx.spec.ssh.timeoutMs,
    ...(endpoint && ctx.sshKey
      ? {
          access: {
            host: endpoint.host,
            port: endpoint.port,
            username: ctx.spec.ssh.username,
            privateKeyPath: ctx.sshKey.privateKeyPath,
            knownHostsPath: ctx.knownHostsPath,
          },
        }
      : {}),
    reconnect: async () => {
      await ctx.ssh?.close();
      await connectSsh(ctx, pctx.signal, ctx.spec.ssh.timeoutMs);
      pctx.ssh = ctx.ssh!;
      return pctx.ssh;
    },
    addDownload: (name, path) => {
      const list: Download[] = (ctx.downloads ??= []);
      const at = list.findIndex((d) => d.name === name);
      if (at >= 0) list.splice(at, 1); // the same destination again: the last download wins
      list.push({ name, path });
    },
  };
  return pctx;
}

/** Whether the session has already ended (without waiting for it to). */
function settled(p: Promise<void>): Promise<boolean> {
  return Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 0))]);
}
