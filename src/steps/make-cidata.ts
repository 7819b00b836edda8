// The NoCloud seed: a build user with the build key and passwordless sudo, merged with the
// template's own cloud-config.
//
// It asks cloud-init for nothing the image would keep and its first real boot would redo: no
// distribution default user (`users:` lists only the build user, so cloud.cfg's `users: [default]`
// does not apply; a template's own `cloud_init.user_data.users` may still ask for `default`), and no
// `ssh_pwauth` unless the build logs in with a password (`ssh_pwauth: false` made cloud-init write
// /etc/ssh/sshd_config.d/50-cloud-init.conf into the image).
import { join } from "node:path";
import { stringify } from "yaml";
import { writeCidataIso } from "../media/cidata.js";
import type { Step } from "../pipeline/step.js";
import type { BuildContext } from "../pipeline/context.js";

export function cloudConfig(ctx: Pick<BuildContext, "spec" | "sshKey">): Record<string, unknown> {
  const { ssh, cloudInit } = ctx.spec;
  const user: Record<string, unknown> = {
    name: ssh.username,
    shell: "/bin/bash",
    sudo: "ALL=(ALL) NOPASSWD:ALL",
    lock_passwd: ssh.password === undefined,
  };
  if (ctx.sshKey?.publicKey) user.ssh_authorized_keys = [ctx.sshKey.publicKey];
  if (ssh.password !== undefined) user.plain_text_passwd = ssh.password;
  const extra = { ...cloudInit.userData };
  const extraUsers = Array.isArray(extra.users) ? (extra.users as unknown[]) : [];
  delete extra.users;
  const base: Record<string, unknown> = {
    users: ssh.username === "root" ? extraUsers : [user, ...extraUsers],
  };
  if (ssh.password !== undefined) base.ssh_pwauth = true;
  if (ssh.username === "root") {
    base.disable_root = false;
    if (ctx.sshKey?.publicKey) base.ssh_authorized_keys = [ctx.sshKey.publicKey];
  }
  return { ...base, ...extra };
}

export const makeCidataStep: Step = {
  name: "cidata",
  async run(ctx) {
    const path = join(ctx.buildDir, "cidata.iso");
    const meta = { "instance-id": `vmkiln-${ctx.buildId}`, "local-hostname": ctx.spec.name, ...ctx.spec.cloudInit.metaData };
    await writeCidataIso(path, {
      userData: "#cloud-config\n" + stringify(cloudConfig(ctx)),
      metaData: stringify(meta),
      networkConfig: ctx.spec.cloudInit.networkConfig ? stringify(ctx.spec.cloudInit.networkConfig) : "",
      ...(ctx.spec.cloudInit.vendorData !== undefined ? { vendorData: ctx.spec.cloudInit.vendorData } : {}),
    });
    ctx.cidataIso = path;
  },
};
