// The installer's HTTP server (Packer's http_directory / http_content): rendered content first,
// then a directory served verbatim. Every request is logged as an event and recorded, so a build
// can fail with "the VM never fetched /ks.cfg" instead of waiting for an install that never starts.
// Answer files hold keys and password hashes, so what is served is guarded twice: only the build
// VM's peer address where the driver knows it (guestPeerAddress), and only under the build's random
// path prefix (src/http/prefix.ts). Refused requests are logged as warnings.
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
  /** Everything is served under this path ("/k3…", src/http/prefix.ts); other paths are 404. */
  prefix?: string | undefined;
  /** Only this peer address is served (the build VM's, when the driver knows it); others get 403. */
  peer?: string | undefined;
  events: EventBus;
}

/** Longest request target served; an installer's URLs are far shorter. */
export const MAX_URL_LENGTH = 2048;

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
    const remote = peerAddress(req.socket.remoteAddress);
    const target = requestPath(req.url ?? "/");
    // What is recorded and logged is escaped: the path also reaches error hints on a terminal.
    let path = shown(target.ok ? target.path : (req.url ?? ""));
    let status = 200;
    let bytes = 0;
    let refused: string | undefined;
    try {
      if (this.opts.peer !== undefined && remote !== this.opts.peer) {
        // Answer files hold keys and password hashes: only the build VM may have them.
        status = 403;
        refused = `only the build VM (${this.opts.peer}) is served`;
        res.writeHead(status, { "content-type": "text/plain" }).end("forbidden\n");
        return;
      }
      if (!target.ok) {
        status = target.status;
        refused = target.why;
        res.writeHead(status, { "content-type": "text/plain" }).end("bad request\n");
        return;
      }
      if (method !== "GET" && method !== "HEAD") {
        status = 405;
        res.writeHead(status, { allow: "GET, HEAD" }).end();
        return;
      }
      const inside = stripPrefix(target.path, this.opts.prefix);
      if (inside === undefined) {
        status = 404;
        refused = this.servable(target.path)
          ? "not under the build's path prefix: use ${http.url} or {{ .HTTPPrefix }} in the URL (or set http.path_prefix: false)"
          : "not under the build's path prefix";
        res.writeHead(status, { "content-type": "text/plain" }).end("not found\n");
        return;
      }
      path = shown(inside);
      const body = this.opts.content.get(inside);
      if (body !== undefined) {
        bytes = Buffer.byteLength(body);
        res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": bytes });
        res.end(method === "HEAD" ? undefined : body);
        return;
      }
      const file = await this.fileFor(inside);
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
      const rec: HttpRequestRecord = { method: shown(method, 16), path, status, bytes, remote, atMs: Math.round(performance.now() - this.started) };
      this.requests.push(rec);
      const line = `${rec.method} ${path} → ${status}${status === 200 ? ` (${bytes} bytes)` : ""} from ${remote}`;
      if (refused) this.opts.events.warn(`${line}: refused, ${refused}`, "http");
      else this.opts.events.info(line, "http");
      for (const l of [...this.listeners]) l();
    }
  }

  /** Whether `path` is one of the content paths (a request for it without the prefix is a template mistake). */
  private servable(path: string): boolean {
    return this.opts.content.has(path);
  }

  /** A regular file under the directory, never outside it (`..` and symlinks out are refused). */
  private async fileFor(urlPath: string): Promise<{ path: string; size: number } | undefined> {
    const dir = this.opts.directory;
    if (!dir || urlPath.includes("\0") || urlPath.includes("\\")) return undefined;
    const rel = posix.normalize(urlPath).replace(/^\/+/, "");
    if (rel === "" || rel === "." || rel.split("/").includes("..")) return undefined;
    const root = resolve(dir);
    const abs = resolve(root, rel);
    if (!abs.startsWith(root + sep)) return undefined;
    try {
      const [real, realRoot] = await Promise.all([realpath(abs), realpath(root)]);
      if (!real.startsWith(realRoot + sep)) return undefined;
      const st = await stat(real);
      return st.isFile() ? { path: real, size: st.size } : undefined;
    } catch {
      return undefined;
    }
  }
}

/** The request target's path, percent-decoded; or why it is refused. */
export function requestPath(url: string): { ok: true; path: string } | { ok: false; status: number; why: string } {
  if (url.length > MAX_URL_LENGTH) return { ok: false, status: 414, why: `request target longer than ${MAX_URL_LENGTH} characters` };
  let raw = url;
  if (!raw.startsWith("/")) {
    // absolute-form (a proxy-style request): only its path counts.
    try {
      raw = new URL(raw).pathname;
    } catch {
      return { ok: false, status: 400, why: "not a request path" };
    }
  }
  raw = raw.replace(/[?#].*$/s, "");
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return { ok: false, status: 400, why: "bad percent-encoding" };
  }
  // No name an installer asks for has these; a backslash is a path separator somewhere.
  if (/[\0-\x1f\x7f\\]/.test(path)) return { ok: false, status: 400, why: "control character or backslash in the path" };
  return { ok: true, path: posix.normalize(path) };
}

/** The path inside `prefix`, or undefined when `path` is not under it. */
export function stripPrefix(path: string, prefix: string | undefined): string | undefined {
  if (!prefix) return path;
  if (path === prefix) return "/";
  return path.startsWith(prefix + "/") ? path.slice(prefix.length) : undefined;
}

/** 127.0.0.1 for ::ffff:127.0.0.1 (an IPv4 peer on a dual-stack socket). */
export function peerAddress(a: string | undefined): string {
  if (!a) return "?";
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return m ? m[1]! : a;
}

/** Text from a request, safe to log: control characters escaped, length bounded. */
function shown(s: string, max = 200): string {
  const t = JSON.stringify(s.length > max ? s.slice(0, max) : s).slice(1, -1);
  return s.length > max ? `${t}…` : t;
}

function formatMs(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${Math.round(ms / 100) / 10}s`;
  return `${ms}ms`;
}
