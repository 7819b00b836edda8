// The installer's HTTP server (Packer's http_directory / http_content): rendered content first,
// then a directory served verbatim. Every request is logged as an event and recorded, so a build
// can fail with "the VM never fetched /ks.cfg" instead of waiting for an install that never starts.
import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { posix, resolve, sep } from "node:path";
import { BuildError, UserError, asAbortError } from "../errors.js";
import type { EventBus } from "../log/events.js";

export interface HttpRequestRecord {
  method: string;
  path: string;
  status: number;
  bytes: number;
  remote: string;
  /** Milliseconds since the server started. */
  atMs: number;
}

export interface InstallerHttpOptions {
  bindAddress: string;
  /** 0 picks a free port. */
  port: number;
  /** URL path → body, served first. */
  content: ReadonlyMap<string, string | Buffer>;
  /** Absolute directory served verbatim after content. */
  directory?: string | undefined;
  events: EventBus;
}

export class InstallerHttpServer {
  readonly requests: HttpRequestRecord[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly started = performance.now();

  private constructor(
    private readonly server: Server,
    readonly address: string,
    readonly port: number,
    private readonly opts: InstallerHttpOptions,
  ) {}

  static async start(opts: InstallerHttpOptions): Promise<InstallerHttpServer> {
    const server = createServer();
    await new Promise<void>((ok, fail) => {
      server.once("error", (err: NodeJS.ErrnoException) =>
        fail(new UserError("HTTP_BIND", `http.bind_address: cannot listen on ${opts.bindAddress}:${opts.port}: ${err.code ?? err.message}`, { cause: err })),
      );
      server.listen(opts.port, opts.bindAddress, () => ok());
    });
    const addr = server.address();
    const port = typeof addr === "object" && addr ? addr.port : opts.port;
    const srv = new InstallerHttpServer(server, opts.bindAddress, port, opts);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => void srv.handle(req, res));
    return srv;
  }

  /** Paths requested successfully so far. */
  fetched(path: string): boolean {
    return this.requests.some((r) => r.path === path && r.status === 200 && r.method === "GET");
  }

  /**
   * Resolves once every path in `paths` was fetched (GET, 200); rejects after `timeoutMs` naming
   * the paths the VM never fetched and what it did request.
   */
  waitForRequests(paths: readonly string[], timeoutMs: number, signal: AbortSignal): Promise<void> {
    const missing = () => paths.filter((p) => !this.fetched(p));
    if (missing().length === 0) return Promise.resolve();
    return new Promise<void>((ok, fail) => {
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
        signal.removeEventListener("abort", onAbort);
      };
      const check = () => {
        if (missing().length > 0) return;
        done();
        ok();
      };
      const onAbort = () => {
        done();
        fail(asAbortError(signal.reason));
      };
      const timer = setTimeout(() => {
        done();
        const seen = this.requests.map((r) => `${r.method} ${r.path} ${r.status}`);
        fail(
          new BuildError(
            "HTTP_NOT_FETCHED",
            `the VM never fetched ${missing().join(", ")} from http://${this.address}:${this.port} within ${formatMs(timeoutMs)}`,
            {
              hint:
                seen.length === 0
                  ? "no request reached the server: check the boot command (was it typed at the boot prompt? boot.wait too short?) and the URL it names"
                  : `requests so far: ${seen.slice(-10).join(", ")}`,
            },
          ),
        );
      }, timeoutMs);
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.listeners.add(check);
    });
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((ok) => this.server.close(() => ok()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    let path = "/";
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    } catch {
      path = req.url ?? "/";
    }
    let status = 200;
    let bytes = 0;
    try {
      if (method !== "GET" && method !== "HEAD") {
        status = 405;
        res.writeHead(status, { allow: "GET, HEAD" }).end();
        return;
      }
      const body = this.opts.content.get(path);
      if (body !== undefined) {
        bytes = Buffer.byteLength(body);
        res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": bytes });
        res.end(method === "HEAD" ? undefined : body);
        return;
      }
      const file = await this.fileFor(path);
      if (!file) {
        status = 404;
        res.writeHead(status, { "content-type": "text/plain" }).end("not found\n");
        return;
      }
      bytes = file.size;
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": file.size });
      if (method === "HEAD") res.end();
      else createReadStream(file.path).on("error", () => res.destroy()).pipe(res);
    } catch {
      status = 500;
      if (!res.headersSent) res.writeHead(status).end();
    } finally {
      const rec: HttpRequestRecord = { method, path, status, bytes, remote: req.socket.remoteAddress ?? "?", atMs: Math.round(performance.now() - this.started) };
      this.requests.push(rec);
      this.opts.events.info(`${method} ${path} → ${status}${status === 200 ? ` (${bytes} bytes)` : ""} from ${rec.remote}`, "http");
      for (const l of [...this.listeners]) l();
    }
  }

  /** A regular file under the directory, never outside it (`..` and symlinks out are refused). */
  private async fileFor(urlPath: string): Promise<{ path: string; size: number } | undefined> {
    const dir = this.opts.directory;
    if (!dir || urlPath.includes("\0")) return undefined;
    const rel = posix.normalize(urlPath).replace(/^\/+/, "");
    if (rel === "" || rel.startsWith("..")) return undefined;
    const abs = resolve(dir, rel);
    if (!abs.startsWith(resolve(dir) + sep)) return undefined;
    try {
      const [real, root] = await Promise.all([realpath(abs), realpath(dir)]);
      if (!real.startsWith(root + sep)) return undefined;
      const st = await stat(real);
      return st.isFile() ? { path: real, size: st.size } : undefined;
    } catch {
      return undefined;
    }
  }
}

function formatMs(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${Math.round(ms / 100) / 10}s`;
  return `${ms}ms`;
}
