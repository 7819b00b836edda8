// breakpoint: stop the build so a person can look inside the VM. It continues on Enter when the
// build runs on a terminal, or when a named file appears (for builds without a terminal). It never
// stops in CI (CI=true): a forgotten breakpoint must not hang a pipeline.
import { existsSync } from "node:fs";
import type { BreakpointProvisioner } from "../template/spec.js";
import { sshCommandLine } from "../ssh/known-hosts.js";
import { sleep } from "../util/abort.js";
import { waitForEnter } from "../util/prompt.js";
import type { ProvisionContext } from "./types.js";

export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI;
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

export type BreakpointMode = "disabled" | "ci" | "file" | "enter" | "no-tty";

export function breakpointMode(p: Pick<BreakpointProvisioner, "disable" | "waitForFile">, o: { ci: boolean; tty: boolean }): BreakpointMode {
  if (p.disable) return "disabled";
  if (o.ci) return "ci";
  if (p.waitForFile) return "file";
  return o.tty ? "enter" : "no-tty";
}

export async function runBreakpoint(p: BreakpointProvisioner, ctx: ProvisionContext, io: { tty: boolean } = { tty: process.stdin.isTTY === true }): Promise<void> {
  const mode = breakpointMode(p, { ci: isCi(), tty: io.tty });
  const note = p.note ? `: ${p.note}` : "";
  switch (mode) {
    case "disabled":
      ctx.events.info(`${ctx.label}: disabled, not pausing`, ctx.label);
      return;
    case "ci":
      ctx.events.warn(`${ctx.label}: not pausing in CI (CI is set)${note}`, ctx.label);
      return;
    case "no-tty":
      ctx.events.warn(`${ctx.label}: no terminal to wait on and no wait_for_file: not pausing${note}`, ctx.label);
      return;
  }
  const a = ctx.access;
  if (a) ctx.events.info(`${ctx.label}: to get into the VM: ${sshCommandLine(a)}`, ctx.label);
  if (mode === "file") {
    ctx.events.info(`${ctx.label}: paused${note}; create ${p.waitForFile} to continue`, ctx.label);
    while (!existsSync(p.waitForFile!)) await sleep(500, ctx.signal);
  } else {
    ctx.events.info(`${ctx.label}: paused${note}; press Enter to continue`, ctx.label);
    await waitForEnter(ctx.signal);
  }
  ctx.events.info(`${ctx.label}: continuing`, ctx.label);
}
