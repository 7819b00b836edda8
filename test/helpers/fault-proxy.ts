// An HTTPS proxy in front of the test registry that records every request and can make the registry
// die at a chosen request, deterministically: on the Nth PATCH it kills the registry before
// forwarding (the registry never sees that chunk), or after forwarding half of the chunk's bytes (the
// registry has stored part of it). It keeps the Host header, so the registry's Location headers point
// back at the proxy. A test helper; it only listens on 127.0.0.1.
import { readFileSync } from "node:fs";
import { createServer, request, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TestRegistry } from "./registry.js";

export interface Seen {
  method: string;
  path: string;
  bytes: number;
  status?: number;
  /** Content-Range of a PATCH. */
  range?: string;
}

export interface FaultPlan {
  /** Kill the registry when this PATCH (1-based) arrives. */
  killOnPatch?: number;
  /** Forward this many bytes of that PATCH's body first (0: none). */
  forwardBytes?: number;
  /** Start the registry again this long after killing it (undefined: leave it dead). */
  restartAfterMs?: number;
  /** Hold this PATCH (1-based): take its bytes, forward nothing, never answer (a client interrupted mid-chunk). */
  stallOnPatch?: number;
}

export interface FaultProxy {
  host: string;
  seen: Seen[];
  plan: FaultPlan;
  events: string[];
  /** Resolves when the PATCH named by stallOnPatch has arrived and is being held. */
  stalled: Promise<void>;
  close(): Promise<void>;
}

export async function startFaultProxy(reg: TestRegistry, plan: FaultPlan = {}): Promise<FaultProxy> {
  const seen: Seen[] = [];
  const events: string[] = [];
  const ca = readFileSync(reg.caFile);
  let patches = 0;
  let markStalled = () => {};
  const stalled = new Promise<void>((r) => (markStalled = r));
  const proxy: FaultProxy = { host: "", seen, plan, events, stalled, close: async () => {} };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const s: Seen = { method: req.method ?? "", path: (req.url ?? "").split("?")[0]!, bytes: 0, ...(req.headers["content-range"] ? { range: String(req.headers["content-range"]) } : {}) };
    seen.push(s);
    const isPatch = req.method === "PATCH";
    const n = isPatch ? ++patches : 0;
    const fault = isPatch && proxy.plan.killOnPatch === n;
    const limit = fault ? (proxy.plan.forwardBytes ?? 0) : Infinity;
    const die = async () => {
      events.push(`killed registry at PATCH #${n} after ${s.bytes} bytes`);
      await reg.kill("SIGKILL");
      req.socket.destroy();
      const after = proxy.plan.restartAfterMs;
      if (after !== undefined) {
        setTimeout(() => {
          void reg.start().then(() => events.push("registry restarted"));
        }, after);
      }
    };
    if (isPatch && proxy.plan.stallOnPatch === n) {
      events.push(`holding PATCH #${n}`);
      req.on("data", (c: Buffer) => (s.bytes += c.length));
      markStalled();
      return;
    }
    if (fault && limit === 0) {
      void die();
      return;
    }
    const up = request(
      { host: "127.0.0.1", port: reg.port, method: req.method, path: req.url, headers: req.headers, ca },
      (ur) => {
        s.status = ur.statusCode ?? 0;
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      },
    );
    up.on("error", () => {
      if (!res.headersSent) {
        res.writeHead(502);
        res.end();
      } else res.destroy();
    });
    req.on("data", (c: Buffer) => {
      if (s.bytes + c.length >= limit) {
        up.write(c.subarray(0, limit - s.bytes));
        s.bytes = limit;
        req.pause();
        // Let the registry write what it got, then kill it mid-request.
        setTimeout(() => void die(), 300);
        return;
      }
      s.bytes += c.length;
      up.write(c);
    });
    req.on("end", () => {
      if (s.bytes < limit) up.end();
    });
  };
  const server: Server = createServer({ cert: readFileSync(reg.certFile), key: readFileSync(reg.keyFile) }, handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const a = server.address();
  proxy.host = `127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
  proxy.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return proxy;
}
