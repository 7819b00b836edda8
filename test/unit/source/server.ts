// A real HTTP server on 127.0.0.1 for the source tests: Range support that can be switched off,
// a connection cut after N bytes, stalls, redirects, and a log of every request it saw.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { readdir, stat } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export interface Route {
  body?: Buffer;
  etag?: string;
  lastModified?: string;
  /** Answer 200 with the whole body even to a Range request. */
  ignoreRange?: boolean;
  /** Cut the connection after this many body bytes, on the next `cutTimes` requests (default 1). */
  cutAfter?: number;
  cutTimes?: number;
  /** With cutAfter: cut only once a `.part` file in this directory holds every byte sent (else after 30 ms). */
  cutWhenPartIn?: string;
  /** Send this many bytes, then hold the connection open without sending more. */
  stallAfter?: number;
  /** Delay between 16 KiB chunks, to keep a download in flight for a while. */
  chunkDelayMs?: number;
  redirectTo?: string;
  status?: number;
}

/** Resolves when a `.part` file in `dir` has at least `bytes` bytes (polled; at most 10 s), or after 30 ms without `dir`. */
async function waitForPart(dir: string | undefined, bytes: number): Promise<void> {
  if (!dir) return new Promise((ok) => setTimeout(ok, 30));
  for (let i = 0; i < 1000; i++) {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const n of names.filter((x) => x.endsWith(".part"))) {
      if (((await stat(join(dir, n)).catch(() => undefined))?.size ?? 0) >= bytes) return;
    }
    await new Promise((ok) => setTimeout(ok, 10));
  }
}

export interface SeenRequest {
  path: string;
  range: string | undefined;
  ifRange: string | undefined;
}

export interface TestServer {
  url(path: string): string;
  routes: Map<string, Route>;
  seen: SeenRequest[];
  /** Requests that reached the body of `path` (redirects and errors excluded). */
  bodyGets(path: string): number;
  close(): Promise<void>;
}

export async function startServer(): Promise<TestServer> {
  const routes = new Map<string, Route>();
  const seen: SeenRequest[] = [];
  const bodyCount = new Map<string, number>();

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const range = req.headers.range;
    const ifRange = req.headers["if-range"] as string | undefined;
    seen.push({ path, range, ifRange });
    const route = routes.get(path);
    if (!route) {
      res.writeHead(404).end("not found");
      return;
    }
    if (route.redirectTo) {
      res.writeHead(302, { location: route.redirectTo }).end();
      return;
    }
    if (route.status) {
      res.writeHead(route.status).end("error");
      return;
    }
    const body = route.body ?? Buffer.alloc(0);
    const headers: Record<string, string> = {};
    if (route.etag) headers.etag = route.etag;
    if (route.lastModified) headers["last-modified"] = route.lastModified;

    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(range ?? "");
    const validatorOk = ifRange === undefined || ifRange === route.etag || ifRange === route.lastModified;
    if (m && !route.ignoreRange && validatorOk) {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { "content-range": `bytes */${body.length}` }).end();
        return;
      }
      headers["content-range"] = `bytes ${start}-${body.length - 1}/${body.length}`;
      res.writeHead(206, { ...headers, "content-length": String(body.length - start) });
    } else {
      res.writeHead(200, { ...headers, "content-length": String(body.length) });
    }
    bodyCount.set(path, (bodyCount.get(path) ?? 0) + 1);

    let limit = body.length;
    let cut = false;
    if (route.cutAfter !== undefined && (route.cutTimes ?? 1) > 0) {
      route.cutTimes = (route.cutTimes ?? 1) - 1;
      limit = Math.min(limit, start + route.cutAfter);
      cut = true;
    }
    let stall = false;
    if (route.stallAfter !== undefined) {
      limit = Math.min(limit, start + route.stallAfter);
      stall = true;
    }
    let pos = start;
    const CHUNK = 16 * 1024;
    const pump = () => {
      if (res.destroyed) return;
      if (pos >= limit) {
        if (cut) {
          // The socket goes away once the client has the bytes: with `cutWhenPartIn`, when its part
          // file holds them (a fixed 30 ms was too short on a loaded machine: the client had not
          // consumed them yet, lost them with the connection, and resumed before the cut).
          void waitForPart(route.cutWhenPartIn, limit).then(() => res.socket?.destroy());
        } else if (!stall) {
          res.end();
        }
        return;
      }
      const end = Math.min(limit, pos + CHUNK);
      const chunk = body.subarray(pos, end);
      pos = end;
      res.write(chunk, () => {
        if (route.chunkDelayMs) setTimeout(pump, route.chunkDelayMs);
        else pump();
      });
    };
    pump();
  };

  const server: Server = createServer(handle);
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: (p) => `http://127.0.0.1:${port}${p}`,
    routes,
    seen,
    bodyGets: (p) => bodyCount.get(p) ?? 0,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
