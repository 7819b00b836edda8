// The file provisioner: SFTP into a staging dir under /tmp, then copy into place — with sudo when
// the destination is not writable by the build user (e.g. /opt), which plain SFTP cannot do.
import { mkdir, readdir, stat } from "node:fs/promises";
import { basename, join, posix } from "node:path";
import { randomBytes } from "node:crypto";
import { BuildError, UserError } from "../errors.js";
import type { FileProvisioner } from "../template/spec.js";
import { shq } from "../ssh/session.js";
import type { ProvisionContext } from "./types.js";

export async function runFile(p: FileProvisioner, ctx: ProvisionContext): Promise<void> {
  if (p.direction === "download") return downloadFile(p, ctx);
  const st = await stat(p.source).catch(() => {
    throw new UserError("FILE_NOT_FOUND", `${ctx.label}: source not found: ${p.source}`);
  });
  const stage = `/tmp/vmkiln-upload-${randomBytes(4).toString("hex")}`;
  await ctx.ssh.capture(`mkdir -p ${shq(stage)}`, { signal: ctx.signal });
  let count = 0;
  let copy: string;
  if (st.isDirectory()) {
    // rsync/Packer convention: "dir/" uploads the contents, "dir" uploads the directory itself.
    const contentsOnly = p.source.endsWith("/");
    const root = contentsOnly ? stage : posix.join(stage, basename(p.source));
    count = await uploadTree(p.source, root, ctx);
    const dest = p.destination;
    copy = `mkdir -p ${shq(dest)} && cp -R ${shq(stage)}/. ${shq(dest)}/`;
  } else {
    const dest = p.destination.endsWith("/") ? p.destination + basename(p.source) : p.destination;
    await ctx.ssh.upload(p.source, posix.join(stage, "f"), { signal: ctx.signal, mode: st.mode & 0o777 });
    count = 1;
    copy = `mkdir -p ${shq(posix.dirname(dest))} && cp ${shq(stage)}/f ${shq(dest)}`;
  }
  const asUser = `( ${copy} ) 2>/dev/null`;
  const asRoot = ctx.username === "root" ? copy : `sudo -n sh -c ${shq(copy)}`;
  await ctx.ssh.capture(`${asUser} || ${asRoot}; rc=$?; rm -rf ${shq(stage)}; exit $rc`, { signal: ctx.signal });
  ctx.events.info(`${ctx.label}: uploaded ${count} file(s) to ${p.destination}`, ctx.label);
}

/**
 * direction: download — one file out of the guest (a package list, an SBOM) into the build dir; the
 * export step moves it into the output dir with the artifacts and lists it in manifest.json and
 * SHA256SUMS. Files only root can read are copied to a staging file with sudo first.
 */
async function downloadFile(p: FileProvisioner, ctx: ProvisionContext): Promise<void> {
  if (!ctx.buildDir || !ctx.addDownload) throw new BuildError("INTERNAL", `${ctx.label}: downloads need a build dir`);
  const dir = join(ctx.buildDir, "downloads");
  await mkdir(dir, { recursive: true });
  const local = join(dir, `${randomBytes(4).toString("hex")}-${basename(p.destination)}`);
  const kind = (await ctx.ssh.capture(`if [ -d ${shq(p.source)} ]; then echo dir; elif [ -e ${shq(p.source)} ]; then echo file; else sudo -n test -e ${shq(p.source)} && echo root-only || echo missing; fi`, { signal: ctx.signal })).trim();
  if (kind === "missing") throw new BuildError("FILE_NOT_FOUND", `${ctx.label}: ${p.source} does not exist in the guest`);
  if (kind === "dir") throw new UserError("FILE_IS_DIRECTORY", `${ctx.label}: ${p.source} is a directory; download takes one file (archive it first with a shell provisioner)`);
  const readable = kind === "file" && (await ctx.ssh.exec(`test -r ${shq(p.source)}`, { signal: ctx.signal })).exitCode === 0;
  if (readable) await ctx.ssh.download(p.source, local, { signal: ctx.signal });
  else {
    const stage = `/tmp/vmkiln-download-${randomBytes(4).toString("hex")}`;
    const sudo = ctx.username === "root" ? "" : "sudo -n ";
    await ctx.ssh.capture(`${sudo}cp ${shq(p.source)} ${stage} && ${sudo}chown ${shq(ctx.username)} ${stage}`, { signal: ctx.signal });
    try {
      await ctx.ssh.download(stage, local, { signal: ctx.signal });
    } finally {
      await ctx.ssh.capture(`rm -f ${stage}`, { signal: ctx.signal }).catch(() => undefined);
    }
  }
  ctx.addDownload(p.destination, local);
  const { size } = await stat(local);
  ctx.events.info(`${ctx.label}: downloaded ${p.source} (${size} bytes) → ${p.destination} in the output directory`, ctx.label);
}

export async function uploadTree(local: string, remote: string, ctx: ProvisionContext): Promise<number> {
  await ctx.ssh.capture(`mkdir -p ${shq(remote)}`, { signal: ctx.signal });
  let n = 0;
  for (const ent of await readdir(local, { withFileTypes: true })) {
    const lp = join(local, ent.name);
    const rp = posix.join(remote, ent.name);
    if (ent.isDirectory()) n += await uploadTree(lp, rp, ctx);
    else if (ent.isFile()) {
      const st = await stat(lp);
      await ctx.ssh.upload(lp, rp, { signal: ctx.signal, mode: st.mode & 0o777 });
      n++;
    }
  }
  return n;
}
