// The NoCloud seed: a build user with the build key and passwordless sudo, merged with the
// template's own cloud-config.
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
    users: ssh.username === "root" ? ["default", ...extraUsers] : ["default", user, ...extraUsers],
    ssh_pwauth: ssh.password !== undefined,
  };
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
