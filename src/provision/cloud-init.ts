// wait_cloud_init: `cloud-init status --wait`. Exit 2 (cloud-init >= 23.4) means "done with
// recoverable errors" — Ubuntu 24.04 images hit it; warn and go on (reference/qemu-cloud-init.md).
import { BuildError } from "../errors.js";
import type { WaitCloudInitProvisioner } from "../template/spec.js";
import type { ProvisionContext } from "./types.js";

export async function runWaitCloudInit(p: WaitCloudInitProvisioner, ctx: ProvisionContext): Promise<void> {
  const out: string[] = [];
  const r = await ctx.ssh.exec("cloud-init status --wait --long", {
    signal: ctx.signal,
    timeoutMs: p.timeoutMs,
    onLine: (_s, line) => {
      if (line.trim() && line.trim() !== ".") out.push(line);
    },
  });
  if (r.exitCode === 0) {
    ctx.events.info(`${ctx.label}: cloud-init finished`, ctx.label);
    return;
  }
  if (r.exitCode === 2) {
    ctx.events.warn(`${ctx.label}: cloud-init finished with recoverable errors: ${summary(out)}`, ctx.label);
    return;
  }
  throw new BuildError("CLOUD_INIT_FAILED", `${ctx.label}: cloud-init status exited with ${r.exitCode ?? r.signal ?? "a dropped connection"}: ${summary(out)}`, {
    hint: "read /var/log/cloud-init.log in the guest (run the build with --on-error=abort to keep the VM)",
  });
}

function summary(lines: string[]): string {
  const interesting = lines.filter((l) => /status|error|detail/i.test(l));
  return (interesting.length ? interesting : lines).slice(-4).join(" | ");
}
