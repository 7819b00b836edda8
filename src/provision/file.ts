// The file provisioner: SFTP into a staging dir under /tmp, then copy into place — with sudo when
// the destination is not writable by the build user (e.g. /opt), which plain SFTP cannot do.
import { readdir, stat } from "node:fs/promises";
import { basename, join, posix } from "node:path";
import { randomBytes } from "node:crypto";
import { UserError } from "../errors.js";
import type { FileProvisioner } from "../template/spec.js";
import { shq } from "../ssh/session.js";
import type { ProvisionContext } from "./types.js";

export async function runFile(p: FileProvisioner, ctx: ProvisionContext): Promise<void> {
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

async function uploadTree(local: string, remote: string, ctx: ProvisionContext): Promise<number> {
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
