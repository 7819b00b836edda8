// Starts the installer's HTTP server (http.directory / http.content) before the VM exists, so the
// boot command can name its address. Content is rendered once here, when http.ip/http.port are known.
import { InstallerHttpServer } from "../http/server.js";
import { renderEntry } from "../http/render.js";
import type { Step } from "../pipeline/step.js";
import { renderScope } from "./render-scope.js";

export const serveHttpStep: Step = {
  name: "serve http",
  async run(ctx) {
    const h = ctx.spec.http;
    if (!h) return;
    const content = new Map<string, string>();
    // Listen first (the port is part of what content may render), then fill the map it serves.
    const server = await InstallerHttpServer.start({ bindAddress: h.bindAddress, port: h.port, content, directory: h.directory, events: ctx.events });
    ctx.defer(`stop http server on ${h.bindAddress}:${server.port}`, () => server.close());
    const guestIp = h.guestAddress ?? (await ctx.driver.guestHostAddress?.(h.bindAddress)) ?? h.bindAddress;
    const host = guestIp.includes(":") ? `[${guestIp}]` : guestIp; // an IPv6 address in a URL
    ctx.http = { server, guestIp, port: server.port, url: `http://${host}:${server.port}` };
    const scope = renderScope(ctx);
    for (const [path, entry] of Object.entries(h.content)) content.set(path, await renderEntry(entry, scope, `http.content["${path}"]`));
    ctx.events.info(
      `serving ${[...content.keys(), ...(h.directory ? [`${h.directory}/`] : [])].join(", ")} on ${h.bindAddress}:${server.port} (the guest uses ${ctx.http.url})`,
      "http",
    );
  },
};
