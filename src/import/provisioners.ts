// Packer provisioners → vmkiln provision entries: shell (hashicorp/packer provisioner/shell/provisioner.go
// Config), file (provisioner/file/provisioner.go), ansible and ansible-local
// (hashicorp/packer-plugin-ansible provisioner/ansible/provisioner.go, provisioner/ansible-local/),
// shell-local (provisioner/shell-local + packer-plugin-sdk shell-local/config.go), breakpoint.

import path from "node:path";
import type { PackerBlock } from "./model.js";
import type { PathMapper } from "./paths.js";
import { Body, type Report } from "./report.js";
import { asText, concrete, isObj, setOwn, type Val } from "./values.js";

export type Entry = Record<string, Record<string, unknown>>;

export interface ProvCtx {
  report: Report;
  paths: PathMapper;
  vars: Record<string, string>;
  /** The build user (ssh.username) of the source being mapped. */
  sshUser: string | undefined;
}

/** `["K=V", …]` → `{ K: "V" }`. */
function envList(b: Body, key: string): Record<string, string> | undefined {
  const list = b.list(key);
  if (!list) return undefined;
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf("=");
    const k = eq < 0 ? "" : item.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) b.report.notMapped(b.at(key), `${item}: expected NAME=VALUE`);
    else setOwn(out, k, item.slice(eq + 1));
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function envMap(b: Body, key: string): Record<string, string> | undefined {
  const v = b.take(key);
  if (!isObj(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    const t = asText(x);
    if (t === undefined || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) b.report.notMapped(`${b.at(key)}.${k}`, "expected NAME = text");
    else setOwn(out, k, t);
  }
  return out;
}

/** pause_before, max_retries, timeout: the same options in vmkiln. */
function options(b: Body, out: Record<string, unknown>): void {
  const pause = b.text("pause_before");
  if (pause !== undefined) out.pause_before = pause;
  const retries = b.text("max_retries");
  if (retries !== undefined) out.max_retries = /^\d+$/.test(retries) ? Number(retries) : retries;
  const timeout = b.text("timeout");
  if (timeout !== undefined) out.timeout = timeout;
  const name = b.text("name");
  if (name !== undefined) out.name = name;
  b.same("only");
  b.same("except");
  b.same("override");
}

/**
 * execute_command: vmkiln runs the uploaded script itself, so only what the command adds around it can
 * be kept, and sudo is the one thing vmkiln has (`sudo: true`). Returns undefined when the command
 * does more than run the script (with or without sudo, env vars, an interpreter).
 */
export function executeCommandSudo(cmd: string): { sudo: boolean; dropped: string[] } | undefined {
  let s = cmd.replace(/\{\{\s*\.(\w+)\s*\}\}/g, "{{.$1}}").trim();
  const dropped: string[] = [];
  s = s.replace(/^chmod\s+(\+x|[0-7]{3,4})\s+['"]?\{\{\.Path\}\}['"]?\s*(;|&&)\s*/, "");
  const pw = /^echo\s+('[^']*'|"[^"]*"|\S+)\s*\|\s*/.exec(s);
  if (pw) s = s.slice(pw[0].length);
  s = s.replace(/^\{\{\.Vars\}\}\s+/, "");
  let sudo = false;
  const su = /^sudo((?:\s+-[A-Za-z]+)*)\s+/.exec(s);
  if (su) {
    sudo = true;
    s = s.slice(su[0].length);
    const flags = su[1]!.trim();
    if (flags && !/^(-[SEnH]+\s*)+$/.test(flags)) dropped.push(`sudo ${flags}`);
  }
  if (pw && !sudo) return undefined;
  s = s.replace(/^(env\s+)?\{\{\.Vars\}\}\s+/, "");
  const sh = /^(?:\/usr)?(?:\/bin\/)?(?:env\s+)?(ba)?sh((?:\s+-[a-zA-Z]+)*)\s+/.exec(s);
  if (sh) {
    s = s.slice(sh[0].length);
    const flags = sh[2]!.trim().split(/\s+/).filter((f) => f !== "" && f !== "-c");
    if (flags.length > 0) dropped.push(`${sh[1] ? "bash" : "sh"} ${flags.join(" ")}`);
    if (/^-c\s+/.test(s)) s = s.replace(/^-c\s+/, "");
  }
  s = s.replace(/^(['"])(.*)\1$/s, "$2").trim();
  s = s.replace(/^(env\s+)?\{\{\.Vars\}\}\s+/, "");
  if (s !== "{{.Path}}") return undefined;
  return { sudo, dropped };
}

function shellLike(b: Body, ctx: ProvCtx, kind: "shell" | "shell_local"): Entry[] {
  const base: Record<string, unknown> = {};
  const env = { ...(envList(b, "environment_vars") ?? {}), ...(envMap(b, "env") ?? {}) };
  if (Object.keys(env).length > 0) base.env = env;
  options(b, base);
  const inline = b.list("inline");
  const script = b.text("script");
  const scripts = b.list("scripts");
  const command = kind === "shell_local" ? b.text("command") : undefined;
  if (kind === "shell") {
    const exec = b.text("execute_command");
    if (exec !== undefined) {
      const r = executeCommandSudo(exec);
      if (!r) ctx.report.notMapped(b.at("execute_command"), `${exec}: vmkiln runs the script itself (as the build user, or as root with sudo: true); other wrappers are not supported`);
      else {
        if (r.sudo) base.sudo = true;
        if (r.dropped.length > 0) ctx.report.note(b.at("execute_command"), `${r.dropped.join(", ")} dropped: vmkiln runs inline commands with bash -eE and a script by its #! line`);
      }
    }
    const ed = b.bool("expect_disconnect");
    if (ed !== undefined) base.expect_disconnect = ed;
    const shebang = b.text("inline_shebang");
    if (shebang !== undefined) {
      if (/^\/bin\/(ba)?sh( -[ex]+)?$/.test(shebang)) ctx.report.note(b.at("inline_shebang"), "vmkiln runs inline commands with /bin/bash -eE (stops at the first failure)");
      else ctx.report.notMapped(b.at("inline_shebang"), `${shebang}: vmkiln runs inline commands with bash`);
    }
    b.same("start_retry_timeout", "vmkiln runs provisioners once SSH is up");
    b.same("skip_clean", "vmkiln removes its uploaded script");
    b.notMapped("remote_folder", "vmkiln uploads scripts to /tmp");
    b.notMapped("remote_path", "vmkiln uploads scripts to /tmp");
    b.notMapped("remote_file", "vmkiln uploads scripts to /tmp");
    b.notMapped("valid_exit_codes", "vmkiln fails a script on any non-zero exit");
    b.notMapped("binary", "vmkiln uploads scripts as text");
    b.notMapped("env_var_format", "vmkiln passes env with `env K=V`");
    b.notMapped("use_env_var_file", "vmkiln passes env on the command line of the sudo'd command");
  } else {
    const exec = b.take("execute_command");
    if (exec !== undefined) {
      const t = Array.isArray(exec) ? exec.map((x) => asText(x) ?? "").join(" ") : asText(exec) ?? "";
      if (/^\/bin\/(ba)?sh -c \{\{\s*\.Vars\s*\}\} \{\{\s*\.Script\s*\}\}$/.test(t.trim())) ctx.report.note(b.at("execute_command"), "Packer's default: vmkiln runs scripts the same way");
      else ctx.report.notMapped(b.at("execute_command"), `${t}: vmkiln runs the script with bash`);
    }
    b.notMapped("only_on", "vmkiln runs on Linux hosts");
    b.same("use_linux_pathing");
    const shebang = b.text("inline_shebang");
    if (shebang !== undefined) ctx.report.note(b.at("inline_shebang"), "vmkiln runs inline commands with bash");
  }
  const out: Entry[] = [];
  const lines = [...(command !== undefined ? [command] : []), ...(inline ?? [])];
  const leftover = (t: string) => /\{\{/.test(t);
  if (lines.length > 0) {
    if (lines.some(leftover)) ctx.report.notMapped(b.at(command !== undefined ? "command" : "inline"), "uses Packer's build values ({{ build `Host` }}, {{ .Path }}…): in vmkiln use $VMKILN_SSH_HOST/PORT/USER/KEY (shell_local)");
    out.push({ [kind]: { ...base, inline: lines } });
  }
  for (const s of [...(script !== undefined ? [script] : []), ...(scripts ?? [])])
    out.push({ [kind]: { ...base, script: ctx.paths.map(s, b.at(script !== undefined ? "script" : "scripts"), ctx.report) } });
  if (out.length === 0) ctx.report.notMapped(b.path, "no inline, script or scripts: nothing to run");
  return out;
}

function fileProv(b: Body, ctx: ProvCtx): Entry[] {
  const base: Record<string, unknown> = {};
  options(b, base);
  const dir = b.text("direction");
  const download = dir !== undefined && concrete(dir, ctx.vars) === "download";
  const dest = b.text("destination");
  const sources = [...(b.list("source") ?? []), ...(b.list("sources") ?? [])];
  b.notMapped("generated", "vmkiln checks that the source exists when the template is loaded");
  b.notMapped("content", "vmkiln uploads files; write the content to a file next to the template");
  if (dest === undefined || sources.length === 0) {
    ctx.report.notMapped(b.path, "needs source and destination");
    return [];
  }
  if (download) {
    return sources.map((src) => {
      const name = dest.endsWith("/") ? path.posix.basename(concrete(src, ctx.vars)) : path.posix.basename(concrete(dest, ctx.vars));
      ctx.report.note(b.at("destination"), `${dest}: vmkiln downloads into output.directory, as ${name} (listed in manifest.json and SHA256SUMS)`);
      return { file: { ...base, direction: "download", source: src, destination: name } };
    });
  }
  return sources.map((src) => ({ file: { ...base, source: ctx.paths.map(src, b.at("source"), ctx.report), destination: dest } }));
}

function ansible(b: Body, ctx: ProvCtx): Entry[] {
  const out: Record<string, unknown> = {};
  options(b, out);
  const pb = b.text("playbook_file");
  if (pb === undefined) {
    ctx.report.notMapped(b.path, "no playbook_file");
    return [];
  }
  out.playbook = ctx.paths.map(pb, b.at("playbook_file"), ctx.report);
  const cmd = b.text("command");
  if (cmd !== undefined) out.command = cmd;
  const groups = b.list("groups");
  if (groups) out.groups = groups;
  const alias = b.text("host_alias");
  if (alias !== undefined) out.host_alias = alias;
  const args = b.list("extra_arguments");
  if (args) out.extra_arguments = args;
  const env = envList(b, "ansible_env_vars");
  if (env) out.env = env;
  // Packer's ansible provisioner does not become root unless the playbook or --become says so.
  out.become = false;
  const user = b.text("user");
  if (user !== undefined && user !== ctx.sshUser) ctx.report.notMapped(b.at("user"), `vmkiln connects Ansible as the build user (${ctx.sshUser ?? "ssh.username"}), not ${user}`);
  else if (user !== undefined) ctx.report.note(b.at("user"), "the build user: vmkiln's default");
  b.same("use_proxy", "vmkiln connects Ansible straight to the VM's forwarded SSH port");
  b.same("use_sftp");
  b.same("sftp_command");
  b.same("skip_version_check");
  b.same("keep_inventory_file", "vmkiln writes the inventory into the build dir");
  b.notMapped("empty_groups", "vmkiln's inventory names only the build VM's groups");
  b.notMapped("inventory_file", "vmkiln writes its own inventory");
  b.notMapped("inventory_directory", "vmkiln writes its own inventory");
  b.notMapped("inventory_file_template", "vmkiln writes its own inventory");
  b.notMapped("local_port", "vmkiln connects to the VM's forwarded SSH port");
  b.notMapped("ssh_host_key_file", "vmkiln checks the guest's pinned host key");
  b.notMapped("ssh_authorized_key_file", "vmkiln uses the build key");
  b.notMapped("ansible_ssh_extra_args", "vmkiln sets Ansible's SSH options (pinned known_hosts); add others to extra_arguments as --ssh-extra-args");
  for (const k of ["galaxy_file", "galaxy_command", "galaxy_force_install", "galaxy_force_with_deps", "roles_path", "collections_path"])
    b.notMapped(k, "vmkiln does not run ansible-galaxy: install roles and collections before the build (or in a shell_local step)");
  b.notMapped("winrm_use_http", "no WinRM");
  return [{ ansible: out }];
}

function ansibleLocal(b: Body, ctx: ProvCtx): Entry[] {
  const out: Record<string, unknown> = {};
  options(b, out);
  const pb = b.text("playbook_file");
  if (pb === undefined) {
    ctx.report.notMapped(b.path, "no playbook_file (playbook_files lists are not supported)");
    b.notMapped("playbook_files", "vmkiln runs one playbook per ansible_local step");
    return [];
  }
  out.playbook = ctx.paths.map(pb, b.at("playbook_file"), ctx.report);
  const dir = b.text("playbook_dir");
  if (dir !== undefined) out.playbook_dir = ctx.paths.map(dir, b.at("playbook_dir"), ctx.report);
  // Packer runs `command` as the SSH user; a leading sudo or VAR=value prefix is taken apart.
  const cmd = b.text("command");
  out.sudo = false;
  if (cmd !== undefined) {
    let rest = cmd.trim();
    const env: Record<string, string> = {};
    for (;;) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)\s+/.exec(rest);
      if (m) {
        env[m[1]!] = m[2]!;
        rest = rest.slice(m[0].length);
        continue;
      }
      const s = /^sudo(\s+-[A-Za-z]+)*\s+/.exec(rest);
      if (s) {
        out.sudo = true;
        rest = rest.slice(s[0].length);
        continue;
      }
      break;
    }
    if (Object.keys(env).length > 0) out.env = env;
    if (rest !== "ansible-playbook") out.command = rest;
  }
  const args = b.list("extra_arguments");
  if (args) out.extra_arguments = args;
  b.notMapped("playbook_files", "vmkiln runs one playbook per ansible_local step");
  for (const k of ["inventory_groups", "inventory_file"]) b.notMapped(k, "vmkiln runs the playbook against localhost");
  for (const k of ["playbook_paths", "role_paths", "group_vars", "host_vars"]) b.notMapped(k, "vmkiln uploads playbook_dir only: put roles and vars in it");
  for (const k of ["galaxy_file", "galaxy_command", "galaxy_roles_path", "galaxy_collections_path", "galaxy_force_install"]) b.notMapped(k, "vmkiln does not run ansible-galaxy");
  b.same("staging_directory", "vmkiln uploads to its own staging directory");
  b.same("clean_staging_directory", "vmkiln removes its staging directory");
  return [{ ansible_local: out }];
}

function breakpoint(b: Body): Entry[] {
  const out: Record<string, unknown> = {};
  options(b, out);
  const note = b.text("note");
  if (note !== undefined) out.note = note;
  const disable = b.bool("disable");
  if (disable !== undefined) out.disable = disable;
  return [{ breakpoint: out }];
}

export function mapProvisioner(block: PackerBlock, override: Record<string, Val> | undefined, ctx: ProvCtx): Entry[] {
  const body = new Body({ ...block.body, ...(override ?? {}) }, block.path, ctx.report);
  for (const f of block.findings) ctx.report.findings.push(f);
  let out: Entry[];
  switch (block.type) {
    case "shell":
      out = shellLike(body, ctx, "shell");
      break;
    case "shell-local":
      out = shellLike(body, ctx, "shell_local");
      break;
    case "file":
      out = fileProv(body, ctx);
      break;
    case "ansible":
      out = ansible(body, ctx);
      break;
    case "ansible-local":
      out = ansibleLocal(body, ctx);
      break;
    case "breakpoint":
      out = breakpoint(body);
      break;
    default:
      ctx.report.notMapped(block.path, `provisioner "${block.type}" has no vmkiln equivalent`);
      return [];
  }
  body.rest(`not a ${block.type} setting vmkiln knows`);
  return out;
}
