// The shell provisioner: inline commands or a local script, uploaded and run in one shell so state
// (cd, variables) carries from line to line as in Packer. The ERR trap names the failing command.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { randomBytes } from "node:crypto";
import { BuildError } from "../errors.js";
import type { ShellProvisioner } from "../template/spec.js";
import { shq } from "../ssh/session.js";
import { bootId, shutdownInProgress, waitForReboot } from "./reboot.js";
import type { ProvisionContext } from "./types.js";

const FAIL_MARK = "__vmkiln_failed__";

export function inlineScript(lines: string[]): string {
  return [
    "#!/bin/bash",
    // -e: stop at the first failure; -E: the ERR trap also fires inside functions.
    "set -eE",
    `trap 'rc=$?; printf "%s %d %s\\n" ${FAIL_MARK} "$rc" "$BASH_COMMAND" >&2' ERR`,
    ...lines,
    "",
  ].join("\n");
}

/** `env K='v' …` prefix; names are validated by the template schema. */
export function envPrefix(env: Record<string, string>): string {
  const parts = Object.entries(env).map(([k, v]) => `${k}=${shq(v)}`);
  return parts.length ? `env ${parts.join(" ")} ` : "";
}

export function runCommand(remoteScript: string, p: Pick<ShellProvisioner, "env" | "sudo">, username: string, interpreter: string | undefined): string {
  const sudo = p.sudo && username !== "root" ? "sudo -n " : "";
  const exe = interpreter ? `${interpreter} ${shq(remoteScript)}` : shq(remoteScript);
  return `${sudo}${envPrefix(p.env)}${exe}`;
}

/** Writes the command's stdin to `remote` (0700: the script may hold secrets; sudo reads it as root). */
export function writeStdinTo(remote: string): string {
  return `(umask 077 && cat > ${shq(remote)}) && chmod 0700 ${shq(remote)}`;
}

export async function runShell(p: ShellProvisioner, ctx: ProvisionContext): Promise<void> {
  // With expect_disconnect the script may reboot the guest: note the boot to tell a reboot apart.
  const before = p.expectDisconnect ? await bootId(ctx.ssh, ctx.signal).catch(() => undefined) : undefined;
  const remote = `/tmp/vmkiln-${randomBytes(4).toString("hex")}-${p.script ? basename(p.script) : "inline.sh"}`;
  const body = p.script ? await readFile(p.script) : Buffer.from(inlineScript(p.inline ?? []));
  let failed: { rc: string; command: string } | undefined;
  const interpreter = p.script ? undefined : "/bin/bash";
  // The script travels on the command's stdin (no SFTP round trip, and guests without an sftp
  // subsystem work); the script itself then reads an empty stdin, as it would have before.
  const r = await ctx.ssh.exec(`${writeStdinTo(remote)} && ${runCommand(remote, p, ctx.username, interpreter)}; rc=$?; rm -f ${shq(remote)}; exit $rc`, {
    signal: ctx.signal,
    stdin: body,
    onLine: (stream, line) => {
      if (line.startsWith(FAIL_MARK + " ")) {
        const [, rc = "?", ...cmd] = line.split(" ");
        failed = { rc, command: cmd.join(" ") };
        return;
      }
      ctx.events.emit({ type: "output", source: ctx.label, stream, line });
    },
  });
  if (p.expectDisconnect && (r.disconnected || (r.exitCode === 0 && (await shutdownInProgress(ctx.ssh, ctx.signal))))) {
    ctx.events.info(`${ctx.label}: the guest is going down (expect_disconnect); waiting for SSH again`, ctx.label);
    await waitForReboot(ctx, { previousBootId: r.disconnected ? undefined : before, timeoutMs: ctx.rebootTimeoutMs ?? 15 * 60_000 });
    return;
  }
  if (r.exitCode === 0) return;
  if (r.disconnected) throw new BuildError("PROVISION_DISCONNECTED", `${ctx.label}: the SSH connection dropped while the script ran`, {
      hint: "set expect_disconnect: true on a script that reboots the guest or restarts sshd",
    });
  if (failed) throw new BuildError("PROVISION_FAILED", `${ctx.label}: command \`${failed.command}\` failed with exit code ${failed.rc}`);
  const what = p.script ? `script ${basename(p.script)}` : "script";
  throw new BuildError("PROVISION_FAILED", `${ctx.label}: ${what} exited with code ${r.exitCode ?? r.signal}`);
}
