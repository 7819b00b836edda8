// shell_local: commands on the host (glue such as handing an artifact to another system), with
// the build VM's SSH address in the environment so they can reach it with the build's key.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BuildError } from "../errors.js";
import { run } from "../exec/run.js";
import type { ShellLocalProvisioner } from "../template/spec.js";
import { inlineScript } from "./shell.js";
import type { ProvisionContext, SshAccess } from "./types.js";

/** What a shell_local script can read about the build VM. */
export function shellLocalEnv(o: { access: SshAccess | undefined; buildName: string; buildDir: string; userEnv: Record<string, string> }): Record<string, string> {
  const a = o.access;
  return {
    VMKILN_BUILD_NAME: o.buildName,
    VMKILN_BUILD_DIR: o.buildDir,
    ...(a
      ? {
          VMKILN_SSH_HOST: a.host,
          VMKILN_SSH_PORT: String(a.port),
          VMKILN_SSH_USER: a.username,
          VMKILN_SSH_KEY: a.privateKeyPath,
          ...(a.knownHostsPath ? { VMKILN_KNOWN_HOSTS: a.knownHostsPath } : {}),
        }
      : {}),
    ...o.userEnv,
  };
}

export async function runShellLocal(p: ShellLocalProvisioner, ctx: ProvisionContext, index: number): Promise<void> {
  const buildDir = ctx.buildDir;
  if (!buildDir) throw new BuildError("INTERNAL", `${ctx.label}: no build dir`);
  // The same wrapper as the guest-side shell provisioner: -eE and an ERR trap naming the command.
  const file = join(buildDir, `shell-local-${index}.sh`);
  const body = p.script ? await readFile(p.script) : inlineScript(p.inline ?? []);
  await writeFile(file, body, { mode: 0o700 });
  const tail: string[] = [];
  const r = await run(p.script ? file : "/bin/bash", p.script ? [] : [file], {
    signal: ctx.signal,
    timeoutMs: 0,
    cwd: ctx.templateDir,
    env: shellLocalEnv({ access: ctx.access, buildName: ctx.buildName ?? "", buildDir, userEnv: p.env }),
    reject: false,
    onLine: (stream, line) => {
      const m = /^__vmkiln_failed__ (\d+) (.*)$/.exec(line);
      if (m) {
        tail.push(`command \`${m[2]}\` failed with exit code ${m[1]}`);
        return;
      }
      ctx.events.emit({ type: "output", source: ctx.label, stream, line });
    },
  });
  if (r.exitCode !== 0) {
    throw new BuildError("SHELL_LOCAL_FAILED", `${ctx.label}: ${tail.at(-1) ?? `exited with code ${r.exitCode}`}`);
  }
}
