// Starts the installer's HTTP server (http.directory / http.content) before the VM exists, so the
// boot command can name its address. Content is rendered once here, when http.ip/http.port are known.
import { InstallerHttpServer } from "../http/server.js";
import { newPathPrefix } from "../http/prefix.js";
import { renderEntry } from "../http/render.js";
import type { Step } from "../pipeline/step.js";
import { renderScope } from "./render-scope.js";

export const serveHttpStep: Step = {
  name: "serve http",
  async run(ctx) {
    const h = ctx.spec.http;
    if (!h) return;
    const content = new Map<string, string>();
    const guestIp = h.guestAddress ?? (await ctx.driver.guestHostAddress?.(h.bindAddress)) ?? h.bindAddress;
    // Where the driver knows where the guest's requests come from, nobody else is served.
    const peer = ctx.driver.guestPeerAddress?.(guestIp);
    const prefix = h.pathPrefix ? newPathPrefix() : "";
    ctx.events.addSecret(prefix.slice(1)); // a secret while the build runs: kept out of logs
    // Listen first (the port is part of what content may render), then fill the map it serves.
    const server = await InstallerHttpServer.start({ bindAddress: h.bindAddress, port: h.port, content, directory: h.directory, prefix: prefix || undefined, peer, events: ctx.events });
    ctx.defer(`stop http server on ${h.bindAddress}:${server.port}`, () => server.close());
    const host = guestIp.includes(":") ? `[${guestIp}]` : guestIp; // an IPv6 address in a URL
    ctx.http = { server, guestIp, port: server.port, prefix, url: `http://${host}:${server.port}${prefix}` };
    const scope = renderScope(ctx);
    for (const [path, entry] of Object.entries(h.content)) content.set(path, await renderEntry(entry, scope, `http.content["${path}"]`));
    const guard = [peer ? `only ${peer} is served` : "any address may connect", prefix ? "under a random path prefix" : "with no path prefix"].join(", ");
    ctx.events.info(
      `serving ${[...content.keys(), ...(h.directory ? [`${h.directory}/`] : [])].join(", ")} on ${h.bindAddress}:${server.port} (the guest uses ${ctx.http.url}; ${guard})`,
      "http",
    );
  },
};
