// `vmkiln build --debug` step mode (Packer's -debug): before each step, say what comes next and how
// to SSH into the VM (the build key, port, user, and the pinned known_hosts), then wait for Enter.
// It pauses only when stdin is a terminal and not in CI, so --debug in a pipe just adds the hints.
import type { BuildContext, BuildOptions } from "../pipeline/context.js";
import { isCi } from "../provision/breakpoint.js";
import { sshCommandLine } from "../ssh/known-hosts.js";
import { waitForEnter } from "../util/prompt.js";

export interface DebugStepIO {
  tty: boolean;
  ci: boolean;
  waitForEnter: (signal: AbortSignal) => Promise<void>;
}

export function debugSshHint(ctx: BuildContext): string | undefined {
  if (!ctx.sshEndpoint || !ctx.sshKey || !ctx.vm) return undefined;
  return sshCommandLine({ ...ctx.sshEndpoint, username: ctx.spec.ssh.username, privateKeyPath: ctx.sshKey.privateKeyPath, knownHostsPath: ctx.knownHostsPath });
}

export function debugStepHook(io: DebugStepIO = { tty: process.stdin.isTTY === true, ci: isCi(), waitForEnter: (s) => waitForEnter(s) }): NonNullable<BuildOptions["beforeStep"]> {
  const pause = io.tty && !io.ci;
  let told = false;
  return async (ctx, step, signal) => {
    const hint = debugSshHint(ctx);
    if (hint) ctx.events.info(`debug: ssh into the VM: ${hint}`, "debug");
    if (!pause) {
      if (!told) ctx.events.info(`debug: not pausing between steps (${io.ci ? "CI is set" : "stdin is not a terminal"})`, "debug");
      told = true;
      return;
    }
    ctx.events.info(`debug: next step "${step}": press Enter to run it (Ctrl-C stops the build and cleans up)`, "debug");
    await io.waitForEnter(signal);
  };
}
