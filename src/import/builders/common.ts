// Fields every builder shares (Packer's common configs in hashicorp/packer-plugin-sdk: ISOConfig
// multistep/commonsteps/iso_config.go, HTTPConfig http_config.go, FloppyConfig floppy_config.go,
// CDConfig extra_iso_config.go, bootcommand/config.go BootConfig, shutdowncommand/config.go,
// communicator/config.go) → the matching vmkiln sections.

import { existsSync } from "node:fs";
import path from "node:path";
import { parseChecksum } from "../../template/schema.js";
import type { PackerSource } from "../model.js";
import { isHttpUrl, type PathMapper } from "../paths.js";
import type { Body, Report } from "../report.js";
import { asText, concrete, hasRef, isObj, setOwn, singleVar, varsIn, type Val } from "../values.js";

export type Doc = Record<string, unknown>;

export interface BuilderCtx {
  source: PackerSource;
  body: Body;
  report: Report;
  paths: PathMapper;
  /** Variables' current values, for decisions that depend on what a reference holds. */
  vars: Record<string, string>;
  /** Variables' values as the YAML writes them (an environment reference not yet read). */
  rawVars: Record<string, string>;
}

/**
 * Packer reads an empty string as "not set"; vmkiln refuses an empty name. An empty literal, or a
 * variable the template sets to "", is left out (vmkiln's default applies) with a note; a value that
 * comes from the environment is kept, since it is read again when vmkiln builds.
 */
export function unset(ctx: BuilderCtx, key: string, v: string | undefined): boolean {
  if (v === undefined) return true;
  const name = singleVar(v);
  const empty = v === "" || (name !== undefined && ctx.rawVars[name] === "");
  if (empty) ctx.report.note(ctx.body.at(key), `${v === "" ? '""' : v + ' is ""'}: unset in Packer, left out`);
  return empty;
}

export interface BuilderResult {
  driver: "qemu" | "virtualbox" | "vsphere";
  driverBody: Doc;
  /** Top-level vmkiln sections (source, ssh, boot, http, install_media, install, shutdown, output). */
  doc: Doc;
  /** Variables the mapping introduced without a value (the user passes them with -var). */
  required?: string[];
}

export const numOrText = (t: string): number | string => (/^\d+$/.test(t) ? Number(t) : t);

/** The value a vmkiln text has with the current variables. */
export const valueOf = (ctx: BuilderCtx, t: string) => concrete(t, ctx.vars);

/**
 * A size Packer reads in MiB when it has no unit (qemu disk_size, virtualbox disk_size, vSphere
 * disk_size and RAM): vmkiln reads a bare number as bytes, so the unit is written out.
 */
export function mibSize(ctx: BuilderCtx, key: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const now = valueOf(ctx, v).trim();
  if (/^\d+$/.test(now)) {
    if (hasRef(v)) {
      ctx.report.note(ctx.body.at(key), `${v} holds MiB (${now}); written as ${v}M, so a value with a unit passed later must leave the unit off`);
      return `${v}M`;
    }
    const n = Number(now);
    return n % 1024 === 0 && n > 0 ? `${n / 1024}G` : `${n}M`;
  }
  if (/^\d+(?:\.\d+)?\s*[kmgtKMGT]?[bB]?$/.test(now)) return v;
  ctx.report.notMapped(ctx.body.at(key), `"${now}" is not a size vmkiln reads`);
  return undefined;
}

/** ISO or disk-image location: iso_url / iso_urls → url or path. */
export function mapIsoLocation(ctx: BuilderCtx): Doc | undefined {
  const b = ctx.body;
  const url = b.text("iso_url");
  const urls = b.list("iso_urls");
  const candidates = [...(url !== undefined ? [url] : []), ...(urls ?? [])];
  if (candidates.length === 0) return undefined;
  // Packer tries each in turn: a local copy that exists here, else the first URL, else the first.
  const now = (c: string) => valueOf(ctx, c);
  const first =
    candidates.find((c) => !/^[a-z][a-z0-9+.-]*:/i.test(now(c)) && existsSync(path.resolve(ctx.paths.templateDir, now(c)))) ??
    candidates.find((c) => isHttpUrl(now(c))) ??
    candidates[0]!;
  if (candidates.length > 1)
    ctx.report.notMapped(b.at(urls && urls.length > 0 ? "iso_urls" : "iso_url"), `vmkiln downloads from one location; kept ${first}, dropped ${candidates.filter((c) => c !== first).join(", ")}`);
  return location(ctx, first, b.at(url !== undefined ? "iso_url" : "iso_urls"));
}

export function location(ctx: BuilderCtx, loc: string, field: string): Doc | undefined {
  const now = valueOf(ctx, loc);
  if (isHttpUrl(now)) return { url: loc };
  if (/^file:/i.test(now)) {
    // file:///abs, file://rel (Packer's getter accepts both), file:rel
    const p = now.replace(/^file:(\/\/)?/i, "");
    if (hasRef(loc)) ctx.report.note(field, `${loc} is a file: URL; its current value ${now} is written as a path`);
    return { path: ctx.paths.map(p, field, ctx.report) };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(now)) {
    ctx.report.notMapped(field, `vmkiln downloads http(s) URLs and reads local files; ${now.split("://")[0]}:// is not supported`);
    return undefined;
  }
  return { path: ctx.paths.map(loc, field, ctx.report) };
}

/** iso_checksum (+ the Packer 1.5 era iso_checksum_type / iso_checksum_url). */
export function mapChecksum(ctx: BuilderCtx, keys = { value: "iso_checksum", type: "iso_checksum_type", url: "iso_checksum_url" }): string {
  const b = ctx.body;
  const value = b.text(keys.value);
  const type = b.text(keys.type);
  const url = b.text(keys.url);
  const field = b.at(keys.value);
  const typeNow = type === undefined ? undefined : valueOf(ctx, type).toLowerCase();
  if (typeNow === "none") return "none";
  if (url !== undefined) {
    const loc = isHttpUrl(valueOf(ctx, url)) ? url : ctx.paths.map(url.replace(/^file:(\/\/)?/i, ""), b.at(keys.url), ctx.report);
    if (typeNow !== undefined && typeNow !== "sha256" && typeNow !== "sha512") {
      ctx.report.notMapped(b.at(keys.type), `vmkiln verifies SHA-256 and SHA-512 only; ${typeNow} checksums are not checked`);
      return "none";
    }
    return `file:${loc}`;
  }
  if (value === undefined) {
    ctx.report.note(field, "no checksum in the Packer template: the image is not verified (checksum: none)");
    return "none";
  }
  const combined = type !== undefined ? `${type}:${value}` : value;
  const missing = varsIn(combined).filter((v) => ctx.vars[v] === undefined);
  if (missing.length > 0) {
    ctx.report.note(field, `${combined}: var.${missing.join(", var.")} has no value yet, so the checksum form is checked when vmkiln validates`);
    return combined;
  }
  const now = valueOf(ctx, combined).trim();
  const lower = now.toLowerCase();
  if (lower.startsWith("file:")) {
    const loc = now.slice(5);
    if (isHttpUrl(loc)) return hasRef(combined) ? combined : `file:${loc}`;
    return `file:${ctx.paths.map(hasRef(combined) && valueOf(ctx, combined) === now ? loc : loc, field, ctx.report)}`;
  }
  const algo = /^([a-z0-9]+):/.exec(lower)?.[1];
  const hex = now.replace(/^[a-z0-9]+:/i, "");
  const len = hex.length;
  if ((algo && algo !== "sha256" && algo !== "sha512") || (!algo && (len === 32 || len === 40))) {
    ctx.report.notMapped(field, `vmkiln verifies SHA-256 and SHA-512 only; this ${algo ?? (len === 32 ? "md5" : "sha1")} checksum is not checked (checksum: none)`);
    return "none";
  }
  if (!parseChecksum(now)) {
    ctx.report.notMapped(field, `"${now}" is not a checksum vmkiln reads (checksum: none)`);
    return "none";
  }
  return combined;
}

/** http_directory, http_content, http_port_min/max, http_bind_address, http_ip → http. */
export function mapHttp(ctx: BuilderCtx): Doc | undefined {
  const b = ctx.body;
  const http: Doc = {};
  const dir = b.text("http_directory");
  if (dir !== undefined && dir !== "") http.directory = ctx.paths.map(dir, b.at("http_directory"), ctx.report);
  const content = b.take("http_content");
  if (isObj(content)) {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(content)) {
      const t = asText(v);
      if (t === undefined) ctx.report.notMapped(`${b.at("http_content")}.${k}`, "expected text");
      else out[k.startsWith("/") ? k : `/${k}`] = t;
    }
    if (Object.keys(out).length > 0) http.content = out;
  }
  const min = b.text("http_port_min");
  const max = b.text("http_port_max");
  if (min !== undefined && min === max) http.port = numOrText(min);
  else if (min !== undefined || max !== undefined) ctx.report.note(b.at("http_port_min"), "vmkiln listens on a free port it picks ({{ .HTTPPort }} is that port)");
  const bind = b.text("http_bind_address");
  if (bind !== undefined) http.bind_address = bind;
  const ip = b.text("http_ip");
  if (!unset(ctx, "http_ip", ip)) http.guest_address = ip;
  b.notMapped("http_network_protocol", "vmkiln serves over TCP on the bind address");
  b.notMapped("http_interface", "vmkiln takes the address (http.bind_address), not an interface name");
  if (http.directory === undefined && http.content === undefined) {
    for (const k of ["port", "bind_address", "guest_address"]) if (http[k] !== undefined) ctx.report.note(b.at(`http_${k}`), "nothing to serve: dropped");
    return undefined;
  }
  return http;
}

/** boot_command (a list, or one long string), boot_wait, boot_key_interval. */
export function mapBoot(ctx: BuilderCtx): Doc | undefined {
  const b = ctx.body;
  const cmd = b.take("boot_command");
  const wait = b.text("boot_wait");
  const interval = b.text("boot_key_interval");
  b.notMapped("boot_keygroup_interval", "vmkiln paces every key by boot.key_interval");
  b.notMapped("boot_steps", "boot steps with descriptions: use boot_command");
  if (cmd === undefined || cmd === null) {
    if (wait !== undefined) ctx.report.note(b.at("boot_wait"), "no boot_command: nothing to wait for");
    return undefined;
  }
  // Packer takes one long string as well as a list (its decoder makes a one-item list).
  const list = (Array.isArray(cmd) ? cmd : [cmd]).map(asText);
  if (list.some((x) => x === undefined)) {
    ctx.report.notMapped(b.at("boot_command"), "expected a list of strings");
    return undefined;
  }
  if (list.every((x) => x === "")) {
    ctx.report.note(b.at("boot_command"), "empty: nothing is typed");
    return undefined;
  }
  const out: Doc = { command: list };
  if (wait !== undefined) out.wait = wait === "-1s" ? "0s" : wait;
  if (interval !== undefined) out.key_interval = interval;
  return out;
}

/** cd_files/cd_content/cd_label, floppy_files/floppy_content/floppy_label → install_media. */
export function mapMedia(ctx: BuilderCtx): Doc | undefined {
  const b = ctx.body;
  const cd = { files: b.list("cd_files"), content: b.take("cd_content"), label: b.text("cd_label") };
  const fl = { files: b.list("floppy_files"), content: b.take("floppy_content"), label: b.text("floppy_label") };
  b.notMapped("floppy_dirs", "vmkiln's floppy takes files (floppy_files), not directory trees");
  const content = (v: Val | undefined, key: string): Record<string, string> | undefined => {
    if (!isObj(v)) return undefined;
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) {
      const t = asText(x);
      if (t === undefined) ctx.report.notMapped(`${b.at(key)}.${k}`, "expected text");
      else if (k.includes("/")) ctx.report.notMapped(`${b.at(key)}.${k}`, "vmkiln puts content in the medium's root (no directories)");
      else setOwn(out, k, t);
    }
    return Object.keys(out).length > 0 ? out : undefined;
  };
  const hasCd = (cd.files?.length ?? 0) > 0 || isObj(cd.content);
  const hasFl = (fl.files?.length ?? 0) > 0 || isObj(fl.content);
  if (hasCd && hasFl) {
    ctx.report.notMapped(b.at("floppy_files"), "vmkiln attaches one installer medium: the CD (cd_files/cd_content) is kept, the floppy dropped");
  }
  const pick = hasCd ? { ...cd, type: "cd", keys: ["cd_files", "cd_content"] } : hasFl ? { ...fl, type: "floppy", keys: ["floppy_files", "floppy_content"] } : undefined;
  if (!pick) return undefined;
  const out: Doc = {};
  const files = pick.files?.filter((f) => {
    if (/[*?[]/.test(valueOf(ctx, f))) {
      ctx.report.notMapped(b.at(pick.keys[0]!), `${f}: globs are not expanded by vmkiln; list the files`);
      return false;
    }
    return true;
  });
  if (files && files.length > 0) out[`${pick.type}_files`] = files.map((f) => ctx.paths.map(f, b.at(pick.keys[0]!), ctx.report));
  const c = content(pick.content, pick.keys[1]!);
  if (c) out.content = c;
  if (!out.cd_files && !out.floppy_files) out.type = pick.type;
  // Packer's CD has no label unless cd_label says so; vmkiln's default is OEMDRV: keep Packer's.
  out.label = pick.label ?? (pick.type === "cd" ? "CDROM" : "packer");
  return out;
}

/** communicator + ssh_* → ssh (winrm and the proxy/bastion settings are reported). */
export function mapSsh(ctx: BuilderCtx): Doc {
  const b = ctx.body;
  const ssh: Doc = {};
  const comm = b.text("communicator");
  const commNow = comm === undefined ? "ssh" : valueOf(ctx, comm);
  if (commNow !== "ssh") {
    ctx.report.notMapped(b.at("communicator"), commNow === "winrm" ? "vmkiln reaches the guest over SSH only (no WinRM)" : `communicator ${commNow}: vmkiln always connects over SSH`);
  }
  for (const k of Object.keys(b.values)) if (k.startsWith("winrm_")) b.notMapped(k, "vmkiln reaches the guest over SSH only (no WinRM)");
  const user = b.text("ssh_username") ?? b.text("ssh_user");
  if (user !== undefined) ssh.username = user;
  const pw = b.text("ssh_password");
  if (pw !== undefined) ssh.password = pw;
  const key = b.text("ssh_private_key_file");
  if (key !== undefined) ssh.private_key_file = ctx.paths.map(key, b.at("ssh_private_key_file"), ctx.report);
  const port = b.text("ssh_port");
  if (port !== undefined) ssh.port = numOrText(port);
  const timeout = b.text("ssh_timeout") ?? b.text("ssh_wait_timeout");
  if (timeout !== undefined) ssh.timeout = timeout;
  b.same("ssh_handshake_attempts", "vmkiln retries the login until ssh.timeout");
  b.same("ssh_pty");
  b.same("ssh_file_transfer_method", "vmkiln sends files over the SSH session itself");
  b.same("ssh_disable_agent_forwarding");
  b.notMapped("ssh_agent_auth", "vmkiln logs in with a key file or password, not an agent");
  b.notMapped("ssh_keypair_name", "vmkiln makes its own ephemeral key (or ssh.private_key_file)");
  b.notMapped("ssh_temporary_key_pair_type", "vmkiln's ephemeral key is ed25519");
  b.notMapped("ssh_temporary_key_pair_bits", "vmkiln's ephemeral key is ed25519");
  b.notMapped("temporary_key_pair_type", "vmkiln's ephemeral key is ed25519");
  b.notMapped("ssh_clear_authorized_keys", "use generalize (build_user removes the build user and its keys)");
  b.notMapped("ssh_keep_alive_interval", "vmkiln's SSH keep-alive is fixed");
  b.notMapped("ssh_read_write_timeout", "vmkiln has no per-read timeout; provisioners take timeout");
  b.notMapped("ssh_ciphers", "vmkiln uses the SSH library's defaults");
  b.notMapped("ssh_key_exchange_algorithms", "vmkiln uses the SSH library's defaults");
  b.notMapped("ssh_certificate_file", "SSH certificates are not supported");
  b.notMapped("ssh_local_tunnels", "SSH tunnels are not supported");
  b.notMapped("ssh_remote_tunnels", "SSH tunnels are not supported");
  b.notMapped("ssh_interface", "vmkiln picks the guest address itself");
  b.notMapped("ssh_ip_version", "vmkiln picks the guest address itself");
  for (const k of Object.keys(b.values)) {
    if (k.startsWith("ssh_bastion_")) b.notMapped(k, "no bastion/jump host: vmkiln connects directly");
    if (k.startsWith("ssh_proxy_")) b.notMapped(k, "no SOCKS proxy: vmkiln connects directly");
  }
  b.notMapped("pause_before_connecting", "vmkiln connects as soon as SSH answers");
  return ssh;
}

/** shutdown_command (vmkiln runs it as root: a leading sudo / `echo pw | sudo -S` is dropped), shutdown_timeout. */
export function mapShutdown(ctx: BuilderCtx): Doc | undefined {
  const b = ctx.body;
  const cmd = b.text("shutdown_command");
  const timeout = b.text("shutdown_timeout");
  const out: Doc = {};
  if (cmd !== undefined && cmd !== "") {
    const stripped = stripSudo(cmd);
    if (stripped !== cmd) ctx.report.note(b.at("shutdown_command"), "sudo dropped: vmkiln runs the shutdown command as root");
    out.command = stripped;
  }
  if (timeout !== undefined) out.timeout = timeout;
  b.notMapped("post_shutdown_delay", "vmkiln goes on as soon as the VM is off");
  b.same("disable_shutdown"); // reported below when true
  if (ctx.body.values.disable_shutdown === true) ctx.report.notMapped(b.at("disable_shutdown"), "vmkiln always powers the guest off itself");
  return Object.keys(out).length > 0 ? out : undefined;
}

/** `echo 'pw' | sudo -S -E sh -c '…'`, `sudo -n …`, `sudo …` → the command itself. */
export function stripSudo(cmd: string): string {
  const m = /^\s*(?:echo\s+(?:'[^']*'|"[^"]*"|\S+)\s*\|\s*)?sudo(?:\s+-[A-Za-z]+)*\s+(.*)$/s.exec(cmd);
  if (!m) return cmd;
  const rest = m[1]!.trim();
  const sh = /^(?:ba)?sh\s+-c\s+(['"])(.*)\1$/s.exec(rest);
  return sh ? sh[2]! : rest;
}

/** output_directory, vm_name → output.directory, output.basename. */
export function mapOutput(ctx: BuilderCtx, ext: RegExp): Doc {
  const b = ctx.body;
  const out: Doc = {};
  const dir = b.text("output_directory");
  if (dir !== undefined) out.directory = ctx.paths.map(dir, b.at("output_directory"), ctx.report);
  const vm = b.text("vm_name");
  if (vm !== undefined) {
    const base = vm.replace(ext, "");
    if (/^[A-Za-z0-9._-]+$/.test(valueOf(ctx, base)) || singleVar(base)) {
      out.basename = base;
      if (base !== vm) ctx.report.note(b.at("vm_name"), `the extension is vmkiln's: basename ${base}`);
    } else ctx.report.notMapped(b.at("vm_name"), `"${valueOf(ctx, vm)}" is not a file base name vmkiln takes (letters, digits, ".", "_", "-")`);
  }
  return out;
}

/** cpus, memory, disk_size in Packer's units (MiB) → the driver's. */
export function mapShape(ctx: BuilderCtx, driver: Doc, keys = { cpus: "cpus", memory: "memory", disk: "disk_size" }): void {
  const b = ctx.body;
  const cpus = b.text(keys.cpus);
  if (cpus !== undefined) driver.cpus = numOrText(cpus);
  const mem = b.text(keys.memory);
  if (mem !== undefined) driver.memory = numOrText(mem);
  const disk = mibSize(ctx, keys.disk, b.text(keys.disk));
  if (disk !== undefined) driver.disk_size = disk;
}

/**
 * A boolean field: true/false, or a reference whose value is one. Packer reads "" (an unset
 * variable) as false; vmkiln wants true or false, so that is written in place, with a note.
 */
export function boolOf(ctx: BuilderCtx, key: string): boolean | string | undefined {
  const v = ctx.body.bool(key);
  if (typeof v !== "string") return v;
  const now = valueOf(ctx, v).trim().toLowerCase();
  if (now === "true" || now === "false") return v;
  if (now === "" || now === "0" || now === "1") {
    ctx.report.note(ctx.body.at(key), `${v} is "${now}", which Packer reads as ${now === "1"}; written as ${now === "1"}`);
    return now === "1";
  }
  ctx.report.notMapped(ctx.body.at(key), `"${now}" is not true or false`);
  return undefined;
}

/**
 * A boolean that decides how the template is written (which source kind, which after:): its value now.
 * A reference is decided at import, with a note, since vmkiln's structure cannot depend on a variable.
 */
export function decide(ctx: BuilderCtx, body: BuilderCtx["body"], key: string): boolean | undefined {
  const v = body.bool(key);
  if (v === undefined || typeof v === "boolean") return v;
  const now = valueOf(ctx, v).trim().toLowerCase();
  const out = now === "true" || now === "1";
  if (!["true", "false", "", "0", "1"].includes(now)) ctx.report.notMapped(body.at(key), `"${now}" is not true or false`);
  else ctx.report.note(body.at(key), `${v} decided at import (${out}): the template's structure cannot depend on a variable`);
  return out;
}

/** headless → driver.headless. */
export function mapHeadless(ctx: BuilderCtx, driver: Doc): void {
  const h = boolOf(ctx, "headless");
  if (h !== undefined) driver.headless = h;
}

/** Settings Packer has on every builder that vmkiln handles itself. */
export function commonNotMapped(ctx: BuilderCtx): void {
  const b = ctx.body;
  b.notMapped("iso_target_path", "vmkiln caches downloads by digest in ~/.cache/vmkiln");
  b.notMapped("iso_target_extension", "vmkiln caches downloads by digest in ~/.cache/vmkiln");
  b.same("iso_skip_cache");
  b.notMapped("cd_content_path", "not a Packer setting vmkiln knows");
}

/** The sections ISO and image builds share across builders. */
export function mapCommon(ctx: BuilderCtx, doc: Doc, isImage: boolean, installs = true): void {
  const b = ctx.body;
  const boot = mapBoot(ctx);
  const http = mapHttp(ctx);
  const media = mapMedia(ctx);
  if (isImage) {
    if (boot) ctx.report.notMapped(b.at("boot_command"), "a cloud image boots without typing: vmkiln configures it through cloud-init");
    if (media) ctx.report.notMapped(b.at(media.floppy_files || media.type === "floppy" ? "floppy_files" : "cd_files"), mediaOnImage(media));
    if (http) doc.http = http;
  } else {
    if (boot) doc.boot = boot;
    if (http) doc.http = http;
    if (media) doc.install_media = media;
  }
  doc.ssh = mapSsh(ctx);
  // Packer waits for SSH while the installer runs and reboots into the disk; vmkiln runs the
  // installer until it reboots (-no-reboot), then boots the installed disk: the same wait, in two parts.
  if (!isImage && installs) doc.install = { wait_for: "reboot", ...((doc.ssh as Doc).timeout !== undefined ? { timeout: (doc.ssh as Doc).timeout } : {}) };
  const shutdown = mapShutdown(ctx);
  if (shutdown) doc.shutdown = shutdown;
}

function mediaOnImage(media: Doc): string {
  if (typeof media.label === "string" && media.label.toLowerCase() === "cidata")
    return "a cidata seed: vmkiln writes its own (the build user ssh.username with its key); put extra cloud-config under cloud_init.user_data";
  return "installer media are for ISO installs; a cloud image takes cloud_init";
}
