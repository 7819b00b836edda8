// The token flow (distribution docs/spec/auth/token.md) against a small fake registry: GET /v2/ is
// challenged with Bearer, the token server takes the credentials as Basic and hands out a token for
// repository:<name>:pull,push, every later request carries it, and an expired token is fetched again.
// Also --insecure's fallback to plain HTTP. The real registry (Basic auth, TLS) is in
// test/integration/registry-push.test.ts.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventBus } from "../../../src/log/events.js";
import { push } from "../../../src/publish/push.js";

const dir = mkdtempSync(join(tmpdir(), "vmkiln-bearer-"));
let port = 0;
const log: string[] = [];
const blobs = new Map<string, Buffer>();
let tokensIssued = 0;
let expireNext = false;
let server: ReturnType<typeof createServer>;

function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? "/", `http://127.0.0.1:${port}`);
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    log.push(`${req.method} ${url.pathname}${url.pathname === "/token" ? `?${url.searchParams.toString()}` : ""} ${req.headers.authorization?.split(" ")[0] ?? "-"}`);
    if (url.pathname === "/token") {
      if (req.headers.authorization !== `Basic ${Buffer.from("alice:s3cret").toString("base64")}`) return void res.writeHead(401).end();
      tokensIssued++;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: `tok-${tokensIssued}` }));
      return;
    }
    const valid = req.headers.authorization === `Bearer tok-${tokensIssued}` && !(expireNext && req.method === "PUT" && url.pathname.includes("/manifests/"));
    if (!valid) {
      if (expireNext && req.method === "PUT") expireNext = false;
      res.writeHead(401, { "www-authenticate": `Bearer realm="http://127.0.0.1:${port}/token",service="fake",scope="repository:vm/x:pull"` });
      res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
      return;
    }
    if (url.pathname === "/v2/") return void res.writeHead(200).end("{}");
    const m = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (m && req.method === "HEAD") return void res.writeHead(blobs.has(m[2]!) ? 200 : 404).end();
    if (url.pathname.endsWith("/blobs/uploads/") && req.method === "POST") return void res.writeHead(202, { location: `/upload/1?_state=abc` }).end();
    if (url.pathname === "/upload/1" && req.method === "PUT") {
      const d = url.searchParams.get("digest")!;
      if (`sha256:${createHash("sha256").update(body).digest("hex")}` !== d || url.searchParams.get("_state") !== "abc") return void res.writeHead(400).end();
      blobs.set(d, body);
      return void res.writeHead(201, { "docker-content-digest": d }).end();
    }
    if (url.pathname.includes("/manifests/") && req.method === "PUT") {
      return void res.writeHead(201, { "docker-content-digest": `sha256:${createHash("sha256").update(body).digest("hex")}` }).end();
    }
    res.writeHead(404).end();
  });
}

beforeAll(async () => {
  server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  port = (server.address() as { port: number }).port;
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", join(dir, "d.qcow2"), "1M"]);
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

describe("Bearer token flow over plain HTTP (--insecure)", () => {
  it("logs in at the realm with Basic credentials, pushes with the token, refreshes an expired one", async () => {
    const events = new EventBus();
    const seen: string[] = [];
    events.subscribe((e) => seen.push(JSON.stringify(e)));
    expireNext = true;
    const r = await push({
      artifact: join(dir, "d.qcow2"),
      to: `oci://127.0.0.1:${port}/vm/x:1`,
      layout: "artifact",
      insecure: true,
      events,
      signal: new AbortController().signal,
      env: { VMKILN_REGISTRY_USERNAME: "alice", VMKILN_REGISTRY_PASSWORD: "s3cret" },
    });
    expect(r.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(log[0]).toBe("GET /v2/ -");
    expect(log[1]).toBe("GET /token?service=fake&scope=repository%3Avm%2Fx%3Apull%2Cpush&scope=repository%3Avm%2Fx%3Apull Basic");
    expect(log.filter((l) => l.startsWith("GET /token"))).toHaveLength(2); // the manifest PUT's 401 fetched a new one
    expect(log.filter((l) => !l.startsWith("GET /token") && l !== "GET /v2/ -" && !l.endsWith("Bearer") && !l.startsWith("PUT /v2/vm/x/manifests"))).toEqual([]);
    expect(seen.join("\n")).toMatch(/does not speak TLS: using plain HTTP/);
    expect(seen.join("\n")).not.toContain("s3cret");
    expect(seen.join("\n")).not.toMatch(/tok-\d/);
  });

  it("a token server refusing the credentials is exit 2 with where they came from", async () => {
    const e = await push({
      artifact: join(dir, "d.qcow2"),
      to: `oci://127.0.0.1:${port}/vm/x:1`,
      layout: "artifact",
      insecure: true,
      events: new EventBus(),
      signal: new AbortController().signal,
      env: { VMKILN_REGISTRY_USERNAME: "alice", VMKILN_REGISTRY_PASSWORD: "nope-nope" },
    }).catch((x: Error & { exitCode?: number }) => x);
    expect((e as Error).message).toMatch(/token server 127\.0\.0\.1:\d+ refused the credentials \(credentials from \$VMKILN_REGISTRY_USERNAME\/\$VMKILN_REGISTRY_PASSWORD\): HTTP 401/);
    expect((e as { exitCode?: number }).exitCode).toBe(2);
    expect((e as Error).message).not.toContain("nope-nope");
  });

  it("refuses what is not a qcow2, a directory without manifest.json, an absurd chunk size", async () => {
    writeFileSync(join(dir, "not.qcow2"), "hello");
    const base = { to: `oci://127.0.0.1:${port}/vm/x:1`, layout: "artifact" as const, insecure: true, events: new EventBus(), signal: new AbortController().signal, env: {} };
    await expect(push({ ...base, artifact: join(dir, "not.qcow2") })).rejects.toThrow(/not a qcow2 image/);
    await expect(push({ ...base, artifact: dir })).rejects.toThrow(/must be a vmkiln output directory/);
    await expect(push({ ...base, artifact: join(dir, "missing.qcow2") })).rejects.toThrow(/no such file or directory/);
    await expect(push({ ...base, artifact: join(dir, "d.qcow2"), chunkSize: 10 })).rejects.toThrow(/--chunk-size must be between 64K and 4G/);
    await expect(push({ ...base, artifact: join(dir, "d.qcow2"), to: "oci://h/UP" })).rejects.toThrow(/repository "UP"/);
  });
});
