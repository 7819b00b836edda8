// The ansible provisioner, run from the host like Packer's: a generated inventory for the build VM
// (127.0.0.1, the forwarded port, the build user and key, ansible_become), ansible-playbook through
// src/exec/run.ts, every output line streamed into the build's events. Host key checking stays on:
// OpenSSH checks the guest against a known_hosts file in the build dir holding only the key pinned at
// first connect, so nothing reads or writes ~/.ssh/known_hosts.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { BuildError, UserError } from "../errors.js";
import { run } from "../exec/run.js";
import { ToolMissingError } from "../exec/tool-error.js";
import { strictHostKeyOptions } from "../ssh/known-hosts.js";
import type { AnsibleProvisioner } from "../template/spec.js";
import type { ProvisionContext, SshAccess } from "./types.js";

export const ANSIBLE_INSTALL_HINT = "install Ansible on the build host: apt-get install ansible-core (Debian/Ubuntu), or pipx install ansible-core";

/** Where ansible writes its temp files in the guest: under /tmp/vmkiln-*, which generalize removes. */
export const ANSIBLE_REMOTE_TMP = "/tmp/vmkiln-ansible";

export interface InventoryInput {
  hostAlias: string;
  groups: string[];
  access: SshAccess;
  become: boolean;
}

/** The YAML inventory: one host (the build VM) in `all` and in every group of `groups`. */
export function ansibleInventory(i: InventoryInput): string {
  const hostVars: Record<string, unknown> = {
    ansible_host: i.access.host,
    ansible_port: i.access.port,
    ansible_user: i.access.username,
    ansible_ssh_private_key_file: i.access.privateKeyPath,
    ansible_become: i.become,
    // The guest's python3 (cloud-init needs one); no discovery warning in the output.
    ansible_python_interpreter: "auto_silent",
  };
  // In the inventory too, so someone who reuses it by hand (--debug) keeps host key checking.
  if (i.access.knownHostsPath) hostVars.ansible_ssh_common_args = sshOptionString(strictHostKeyOptions(i.access.knownHostsPath));
  const children: Record<string, unknown> = {};
  for (const g of i.groups) children[g] = { hosts: { [i.hostAlias]: null } };
  const all: Record<string, unknown> = { hosts: { [i.hostAlias]: hostVars } };
  if (i.groups.length) all.children = children;
  return stringify({ all }, { nullStr: "", lineWidth: 0 });
}

/**
 * ANSIBLE_SSH_ARGS replaces ansible's default "-C -o ControlMaster=auto -o ControlPersist=60s": a
 * persisted master would outlive the build (a leaked ssh process holding the VM's port) and live in
 * ~/.ansible/cp. Pipelining instead keeps it to one connection per task.
 */
export function ansibleSshArgs(knownHostsPath: string | undefined): string {
  const hk = knownHostsPath ? strictHostKeyOptions(knownHostsPath) : [];
  return sshOptionString(["-o", "ControlMaster=no", "-o", "IdentitiesOnly=yes", "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=6", ...hk]);
}

export function ansibleEnv(o: { buildDir: string; knownHostsPath: string | undefined; userEnv: Record<string, string> }): Record<string, string> {
  return {
    ANSIBLE_HOST_KEY_CHECKING: "True",
    ANSIBLE_SSH_ARGS: ansibleSshArgs(o.knownHostsPath),
    ANSIBLE_PIPELINING: "True",
    ANSIBLE_LOCAL_TEMP: join(o.buildDir, "ansible-tmp"),
    ANSIBLE_REMOTE_TEMP: ANSIBLE_REMOTE_TMP,
    ANSIBLE_SSH_CONTROL_PATH_DIR: join(o.buildDir, "ansible-cp"),
    ANSIBLE_RETRY_FILES_ENABLED: "False",
    ANSIBLE_NOCOLOR: "1",
    ANSIBLE_FORCE_COLOR: "0",
    // Line by line, as it happens, into the build's events.
    PYTHONUNBUFFERED: "1",
    // The user's own env last: ANSIBLE_ROLES_PATH, ANSIBLE_CONFIG, or an override of the above.
    ...o.userEnv,
  };
}

/** ansible-playbook argv: inventory, vars files (in order; later wins), the user's arguments, the playbook. */
export function ansiblePlaybookArgs(o: { inventoryPath: string; varFiles: string[]; extraArguments: string[]; playbook: string }): string[] {
  return ["-i", o.inventoryPath, ...o.varFiles.flatMap((f) => ["-e", f.startsWith("@") ? f : `@${f}`]), ...o.extraArguments, o.playbook];
}

/**
 * Variables vmkiln passes to every playbook (Packer passes packer_build_name and friends); written
 * first so the template's extra_vars can override them.
 */
export function vmkilnVars(o: { buildName: string; driver: string; hostAlias: string }): Record<string, string> {
  return { vmkiln_build_name: o.buildName, vmkiln_driver: o.driver, vmkiln_host_alias: o.hostAlias };
}

export async function runAnsible(p: AnsibleProvisioner, ctx: ProvisionContext, index: number): Promise<void> {
  const { access, buildDir } = need(ctx);
  const base = join(buildDir, `ansible-${index}`);
  const inventoryPath = `${base}-inventory.yml`;
  await writeFile(inventoryPath, ansibleInventory({ hostAlias: p.hostAlias, groups: p.groups, access, become: p.become }), { mode: 0o600 });
  // Maps go into files (0600, in the build dir), never onto the command line where `ps` shows them.
  const varFiles: string[] = [];
  const own = `${base}-vmkiln-vars.json`;
  await writeFile(own, JSON.stringify(vmkilnVars({ buildName: ctx.buildName ?? "", driver: ctx.driverName ?? "", hostAlias: p.hostAlias })), { mode: 0o600 });
  varFiles.push(own);
  for (const [j, v] of p.extraVars.entries()) {
    if (typeof v === "string") varFiles.push(v);
    else {
      const f = `${base}-extra-vars-${j}.json`;
      await writeFile(f, JSON.stringify(v), { mode: 0o600 });
      varFiles.push(f);
    }
  }
  const args = ansiblePlaybookArgs({ inventoryPath, varFiles, extraArguments: p.extraArguments, playbook: p.playbook });
  const tail: string[] = [];
  ctx.events.info(`${ctx.label}: ${p.command} ${args.join(" ")}`, ctx.label);
  let r;
  try {
    r = await run(p.command, args, {
      signal: ctx.signal,
      timeoutMs: 0, // the provisioner's `timeout` option ends it through the signal
      // Relative paths in extra_arguments (--vault-password-file ./pw) and ansible.cfg are the template's.
      cwd: ctx.templateDir,
      env: ansibleEnv({ buildDir, knownHostsPath: access.knownHostsPath, userEnv: p.env }),
      reject: false,
      installHint: ANSIBLE_INSTALL_HINT,
      onLine: (stream, line) => {
        if (line.trim()) tail.push(line);
        if (tail.length > 40) tail.shift();
        ctx.events.emit({ type: "output", source: ctx.label, stream, line });
      },
    });
  } catch (err) {
    if (err instanceof ToolMissingError) throw ansibleMissing(ctx.label, p.command);
    throw err;
  }
  if (r.exitCode !== 0) {
    const why = tail.filter((l) => /^(fatal|ERROR!|failed:)|UNREACHABLE|Host key verification failed/.test(l.trim())).slice(-3);
    throw new BuildError("ANSIBLE_FAILED", `${ctx.label}: ${p.command} exited with code ${r.exitCode}${why.length ? `: ${why.join(" | ")}` : ""}`, {
      hint: "the playbook output is in the build's events above",
    });
  }
}

export function ansibleMissing(label: string, command: string): UserError {
  return new UserError("ANSIBLE_MISSING", `${label}: ${command} not found on PATH`, { hint: ANSIBLE_INSTALL_HINT });
}

function need(ctx: ProvisionContext): { access: SshAccess; buildDir: string } {
  if (!ctx.access || !ctx.buildDir) throw new BuildError("INTERNAL", `${ctx.label}: no SSH access details for host-side tools`);
  return { access: ctx.access, buildDir: ctx.buildDir };
}

/** Joins ssh options into one string for ansible (it splits it with shlex). */
function sshOptionString(opts: string[]): string {
  return opts.map((o) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(o) ? o : `'${o.replace(/'/g, `'"'"'`)}'`)).join(" ");
}
