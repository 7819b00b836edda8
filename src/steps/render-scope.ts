// The values installer files and boot commands are rendered with, in one place.
import type { BuildContext } from "../pipeline/context.js";
import type { RenderScope } from "../http/render.js";

export function renderScope(ctx: Pick<BuildContext, "spec" | "http" | "sshKey">): RenderScope {
  const values: Record<string, string> = {};
  if (ctx.http) {
    values["http.ip"] = ctx.http.guestIp;
    values["http.port"] = String(ctx.http.port);
    values["http.url"] = ctx.http.url;
    values["http.prefix"] = ctx.http.prefix;
  }
  if (ctx.sshKey?.publicKey) values["ssh.public_key"] = ctx.sshKey.publicKey;
  return { variables: ctx.spec.variables, env: process.env, name: ctx.spec.name, values };
}
