// ansible_local: upload the playbook's directory and run ansible-playbook inside the guest against
// localhost (Packer's ansible-local). Ansible must already be installed in the guest.
import { basename, join, relative } from "node:path";
import { randomBytes } from "node:crypto";
import { BuildError, UserError } from "../errors.js";
import type { AnsibleLocalProvisioner } from "../template/spec.js";
import { shq } from "../ssh/session.js";
import { ANSIBLE_REMOTE_TMP } from "./ansible.js";
import { uploadTree } from "./file.js";
import { envPrefix } from "./shell.js";
import type { ProvisionContext } from "./types.js";

/** The command run in the guest, from the staging dir (so relative vars_files resolve as on the host). */
export function ansibleLocalCommand(o: {
  stage: string;
  playbook: string;
  varFiles: string[];
  extraArguments: string[];
  env: Record<string, string>;
  command: string;
  sudo: boolean;
  username: string;
}): string {
  const argv = [o.command, "-i", "localhost,", "-c", "local", ...o.varFiles.flatMap((f) => ["-e", `@${f}`]), ...o.extraArguments, o.playbook];
  const env = { ANSIBLE_NOCOLOR: "1", ANSIBLE_RETRY_FILES_ENABLED: "False", ANSIBLE_REMOTE_TEMP: ANSIBLE_REMOTE_TMP, PYTHONUNBUFFERED: "1", ...o.env };
  const sudo = o.sudo && o.username !== "root" ? "sudo -n " : "";
  return `cd ${shq(o.stage)} && ${sudo}${envPrefix(env)}${argv.map(shq).join(" ")}`;
}

export async function runAnsibleLocal(p: AnsibleLocalProvisioner, ctx: ProvisionContext): Promise<void> {
  const rel = relative(p.playbookDir, p.playbook);
  if (rel.startsWith("..")) throw new UserError("PLAYBOOK_OUTSIDE_DIR", `${ctx.label}: the playbook ${p.playbook} is not inside playbook_dir ${p.playbookDir}`);
  const probe = await ctx.ssh.exec(`command -v ${shq(p.command)} >/dev/null`, { signal: ctx.signal });
  if (probe.exitCode !== 0) {
    throw new UserError("ANSIBLE_MISSING", `${ctx.label}: ${p.command} not found in the guest`, {
      hint: "install it in the guest first, e.g. a shell provisioner with `apt-get install -y ansible-core` (sudo: true), or use the ansible provisioner, which runs from the host",
    });
  }
  const stage = `/tmp/vmkiln-ansible-local-${randomBytes(4).toString("hex")}`;
  await uploadTree(p.playbookDir, stage, ctx);
  const varFiles: string[] = [];
  for (const [j, v] of p.extraVars.entries()) {
    const name = `.vmkiln-vars-${j}-${typeof v === "string" ? basename(v.slice(1)) : "extra.json"}`;
    if (typeof v === "string") await ctx.ssh.upload(v.slice(1), join(stage, name), { signal: ctx.signal, mode: 0o600 });
    else await ctx.ssh.uploadContent(JSON.stringify(v), join(stage, name), { signal: ctx.signal, mode: 0o600 });
    varFiles.push(name);
  }
  const cmd = ansibleLocalCommand({ stage, playbook: rel, varFiles, extraArguments: p.extraArguments, env: p.env, command: p.command, sudo: p.sudo, username: ctx.username });
  const r = await ctx.ssh.exec(`${cmd}; rc=$?; rm -rf ${shq(stage)}; exit $rc`, {
    signal: ctx.signal,
    onLine: (stream, line) => ctx.events.emit({ type: "output", source: ctx.label, stream, line }),
  });
  if (r.exitCode !== 0) throw new BuildError("ANSIBLE_FAILED", `${ctx.label}: ansible-playbook in the guest exited with ${r.exitCode ?? r.signal ?? "a dropped connection"}`);
}
