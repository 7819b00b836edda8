// wait_cloud_init: wait until cloud-init has finished its last stage, then report its errors.
//
// The wait is a shell loop on /run/cloud-init/result.json, which cloud-init writes when its final
// stage ends (and which `cloud-init status` itself reads to say "done"). `cloud-init status --wait`
// would answer the same, but it is a Python program: under TCG its start alone takes ~3 s of guest
// CPU, taken from the cloud-init stages it waits for. When the loop cannot decide (cloud-init
// disabled, not installed, or a system without its systemd generator), `cloud-init status --wait
// --long` gets the last word. Exit 2 of that command (cloud-init >= 23.4) and `recoverable_errors`
// in result.json mean "done with recoverable errors" — Ubuntu 24.04 images hit it; warn and go on
// (reference/qemu-cloud-init.md).
import { BuildError } from "../errors.js";
import { shq } from "../ssh/session.js";
import type { WaitCloudInitProvisioner } from "../template/spec.js";
import type { ProvisionContext } from "./types.js";

/** Exit code of the wait loop when it cannot tell whether cloud-init will run. */
const UNDECIDED = 100;

/**
 * Polls every 0.2 s. /run/cloud-init/enabled (written by cloud-init's systemd generator early in
 * boot) or status.json (written as soon as a stage starts) say cloud-init is on its way; with
 * neither for `giveUpPolls` polls (5 s), the loop gives up and lets `cloud-init status` explain.
 */
export function resultWaitScript(runDir = "/run/cloud-init", giveUpPolls = 25): string {
  return [
    `d=${shq(runDir)}; n=0`,
    'while [ ! -e "$d/result.json" ]; do',
    '  if [ -e "$d/enabled" ] || [ -e "$d/status.json" ]; then n=0; else n=$((n+1)); fi',
    `  [ "$n" -gt ${giveUpPolls} ] && exit ${UNDECIDED}`,
    "  sleep 0.2",
    "done",
    'cat "$d/result.json"',
  ].join("\n");
}

export interface CloudInitResult {
  errors: string[];
  recoverable: string[];
}

/** Reads result.json ({"v1": {"datasource", "errors": [...], "recoverable_errors": {LEVEL: [...]}}}). */
export function parseResultJson(text: string): CloudInitResult | undefined {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return undefined;
  }
  const v1 = (j as { v1?: unknown } | null)?.v1;
  if (!v1 || typeof v1 !== "object") return undefined;
  const { errors, recoverable_errors: rec } = v1 as { errors?: unknown; recoverable_errors?: unknown };
  const recoverable: string[] = [];
  if (rec && typeof rec === "object") {
    for (const [level, list] of Object.entries(rec as Record<string, unknown>)) {
      if (Array.isArray(list)) for (const m of list) recoverable.push(`${level}: ${String(m)}`);
    }
  }
  return { errors: Array.isArray(errors) ? errors.map(String) : [], recoverable };
}

export async function runWaitCloudInit(p: WaitCloudInitProvisioner, ctx: ProvisionContext, waitScript = resultWaitScript()): Promise<void> {
  const out: string[] = [];
  const fast = await ctx.ssh.exec(`sh -c ${shq(waitScript)}`, {
    signal: ctx.signal,
    timeoutMs: p.timeoutMs,
    onLine: (s, line) => {
      if (s === "stdout") out.push(line);
    },
  });
  const result = fast.exitCode === 0 ? parseResultJson(out.join("\n")) : undefined;
  if (result) {
    if (result.errors.length > 0) {
      throw new BuildError("CLOUD_INIT_FAILED", `${ctx.label}: cloud-init finished with errors: ${result.errors.slice(-3).join(" | ")}`, { hint: HINT });
    }
    if (result.recoverable.length > 0) {
      ctx.events.warn(`${ctx.label}: cloud-init finished with recoverable errors: ${result.recoverable.slice(-4).join(" | ")}`, ctx.label);
      return;
    }
    ctx.events.info(`${ctx.label}: cloud-init finished`, ctx.label);
    return;
  }
  if (fast.disconnected) throw new BuildError("CLOUD_INIT_FAILED", `${ctx.label}: the SSH connection dropped while waiting for cloud-init`, { hint: HINT });
  if (fast.exitCode !== UNDECIDED) ctx.events.debug(`${ctx.label}: result.json unreadable (exit ${fast.exitCode}); asking cloud-init status`, ctx.label);
  await statusWait(p, ctx);
}

const HINT = "read /var/log/cloud-init.log in the guest (run the build with --on-error=abort to keep the VM)";

async function statusWait(p: WaitCloudInitProvisioner, ctx: ProvisionContext): Promise<void> {
  const out: string[] = [];
  const r = await ctx.ssh.exec("cloud-init status --wait --long", {
    signal: ctx.signal,
    timeoutMs: p.timeoutMs,
    onLine: (_s, line) => {
      if (line.trim() && line.trim() !== ".") out.push(line);
    },
  });
  if (r.exitCode === 0) {
    ctx.events.info(`${ctx.label}: ${/status:\s*disabled/.test(out.join("\n")) ? "cloud-init is disabled in this guest" : "cloud-init finished"}`, ctx.label);
    return;
  }
  if (r.exitCode === 2) {
    ctx.events.warn(`${ctx.label}: cloud-init finished with recoverable errors: ${summary(out)}`, ctx.label);
    return;
  }
  throw new BuildError("CLOUD_INIT_FAILED", `${ctx.label}: cloud-init status exited with ${r.exitCode ?? r.signal ?? "a dropped connection"}: ${summary(out)}`, { hint: HINT });
}

function summary(lines: string[]): string {
  const interesting = lines.filter((l) => /status|error|detail/i.test(l));
  return (interesting.length ? interesting : lines).slice(-4).join(" | ");
}
