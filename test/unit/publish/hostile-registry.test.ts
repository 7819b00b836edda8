// A registry that misbehaves on purpose (issue 18, adversarial): one that lies about digests, one
// that answers 401 forever, a huge or hostile WWW-Authenticate, a realm or Location that would move
// the credentials to plain HTTP or another host, a body that never ends, a token that expires in the
// middle of a streamed chunk. Each ends in a clear, bounded error (or a correct push), no manifest
// tagged after a lie, no secret in any message. A fake on 127.0.0.1 (plain HTTP with --insecure, or
// HTTPS with a CA made by openssl here); the real registry is in test/integration/registry-push.test.ts.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttps } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EventBus } from "../../../src/log/events.js";
import { push } from "../../../src/publish/push.js";
import { makeTlsFiles } from "../../helpers/registry.js";

const USER = "alice";
const PASS = "s3cret-pass-77";
const dir = mkdtempSync(join(tmpdir(), "vmkiln-hostile-"));
const disk = join(dir, "d.qcow2");
const out = join(dir, "out");
let tls: ReturnType<typeof makeTlsFiles>;

type Mode =
  | "honest"
  | "lie-head"
  | "lie-put"
  | "lie-manifest"
  | "401-forever"
  | "huge-challenge"
  | "header-overflow"
  | "http-realm"
  | "endless-body"
  | "location-other-host"
  | "location-downgrade"
  | "expire-on-patch";

interface Fake {
  server: Server;
  port: number;
  base: string;
  log: string[];
  /** Authorization headers seen, by request line (values never asserted on, only presence). */
  auth: string[];
}

let mode: Mode = "honest";
let tokens = 0;
let expiredOnce = false;
const blobs = new Map<string, Buffer>();
const uploads = new Map<string, Buffer[]>();
let other: Fake;

function challenge(f: Fake): string {
  return `Bearer realm="${f.base}/token",service="fake",scope="repository:vm/x:pull"`;
}

function handler(f: Fake) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", f.base);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", () => {});
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      f.log.push(`${req.method} ${url.pathname}`);
      if (req.headers.authorization) f.auth.push(`${req.method} ${url.pathname}`);
      if (f === other) return void res.writeHead(202, { location: `${other.base}/elsewhere/2` }).end();
      if (url.pathname === "/token") {
        if (req.headers.authorization !== `Basic ${Buffer.from(`${USER}:${PASS}`).toString("base64")}`) return void res.writeHead(401).end();
        tokens++;
        return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: `tok-${tokens}-secret` }));
      }
      const authed = req.headers.authorization === `Bearer tok-${tokens}-secret`;
      if (mode === "endless-body" && url.pathname === "/v2/") {
        res.writeHead(401, { "content-type": "application/octet-stream" });
        const junk = Buffer.alloc(64 * 1024, 0x41);
        const pump = () => {
          while (res.write(junk)) {
            /* fill the socket */
          }
        };
        res.on("drain", pump);
        res.on("close", () => res.off("drain", pump));
        pump();
        return;
      }
      if (mode === "huge-challenge") {
        // 12 KiB of tokens, quotes and terminal escapes (a C1 CSI: Node will not send C0 or DEL in a header), no usable scheme.
        const evil = 'Negotiate x="\u009b31mred\u009b0m", ' + "a=b, ".repeat(2400) + '"';
        return void res.writeHead(401, { "www-authenticate": evil }).end();
      }
      if (mode === "header-overflow") return void res.writeHead(401, { "www-authenticate": `Bearer realm="${f.base}/token",x="${"y".repeat(200_000)}"` }).end();
      if (mode === "http-realm") return void res.writeHead(401, { "www-authenticate": `Bearer realm="http://127.0.0.1:${other.port}/token",service="fake"` }).end();
      if (mode === "401-forever" && url.pathname !== "/v2/") {
        return void res.writeHead(401, { "www-authenticate": challenge(f) }).end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "no" }] }));
      }
      if (mode === "expire-on-patch" && req.method === "PATCH" && !expiredOnce) {
        expiredOnce = true;
        return void res.writeHead(401, { "www-authenticate": challenge(f) }).end();
      }
      if (!authed) return void res.writeHead(401, { "www-authenticate": challenge(f) }).end();
      if (url.pathname === "/v2/") return void res.writeHead(200).end("{}");
      const m = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
      if (m && req.method === "HEAD") {
        if (mode === "lie-head") return void res.writeHead(200, { "docker-content-digest": `sha256:${"0".repeat(64)}`, "content-length": "3" }).end();
        const b = blobs.get(m[2]!);
        return void res.writeHead(b ? 200 : 404, b ? { "docker-content-digest": m[2]!, "content-length": String(b.length) } : {}).end();
      }
      if (url.pathname.endsWith("/blobs/uploads/") && req.method === "POST") {
        const id = String(uploads.size + 1);
        uploads.set(id, []);
        if (mode === "location-other-host") return void res.writeHead(202, { location: `${other.base}/elsewhere/${id}` }).end();
        if (mode === "location-downgrade") return void res.writeHead(202, { location: `http://127.0.0.1:${f.port}/upload/${id}` }).end();
        return void res.writeHead(202, { location: `/upload/${id}?_state=s${id}` }).end();
      }
      const up = /^\/upload\/(\d+)$/.exec(url.pathname);
      if (up && req.method === "PATCH") {
        const parts = uploads.get(up[1]!)!;
        parts.push(body);
        const n = parts.reduce((a, b) => a + b.length, 0);
        return void res.writeHead(202, { location: `/upload/${up[1]}?_state=s${up[1]}`, range: `0-${n - 1}` }).end();
      }
      if (up && req.method === "PUT") {
        const all = Buffer.concat([...(uploads.get(up[1]!) ?? []), body]);
        const d = `sha256:${createHash("sha256").update(all).digest("hex")}`;
        if (d !== url.searchParams.get("digest")) return void res.writeHead(400).end(JSON.stringify({ errors: [{ code: "DIGEST_INVALID" }] }));
        blobs.set(d, all);
        return void res.writeHead(201, { "docker-content-digest": mode === "lie-put" ? `sha256:${"f".repeat(64)}` : d }).end();
      }
      if (url.pathname.includes("/manifests/") && req.method === "PUT") {
        const d = `sha256:${createHash("sha256").update(body).digest("hex")}`;
        return void res.writeHead(201, { "docker-content-digest": mode === "lie-manifest" ? `sha256:${"e".repeat(64)}` : d }).end();
      }
      res.writeHead(404).end();
    });
  };
}

async function listen(kind: "http" | "https"): Promise<Fake> {
  const f: Fake = { server: undefined as unknown as Server, port: 0, base: "", log: [], auth: [] };
  f.server = kind === "https" ? createHttps({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, handler(f)) : createHttp(handler(f));
  await new Promise<void>((r) => f.server.listen(0, "127.0.0.1", () => r()));
  f.port = (f.server.address() as { port: number }).port;
  f.base = `${kind}://127.0.0.1:${f.port}`;
  return f;
}

let plain: Fake;
let secure: Fake;

beforeAll(async () => {
  tls = makeTlsFiles(dir);
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", disk, "4M"]);
  // ~200 KiB of data so that a 64 KiB chunk size makes several PATCHes.
  execFileSync("qemu-io", ["-c", "write -P 0x5a 0 192k", disk], { stdio: "ignore" });
  execFileSync("mkdir", ["-p", out]);
  plain = await listen("http");
  secure = await listen("https");
  other = await listen("http");
}, 60_000);

afterAll(async () => {
  for (const f of [plain, secure, other]) {
    f?.server.closeAllConnections?.();
    await new Promise<void>((r) => (f ? f.server.close(() => r()) : r()));
  }
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  blobs.clear();
  uploads.clear();
  expiredOnce = false;
  for (const f of [plain, secure, other]) {
    f.log.length = 0;
    f.auth.length = 0;
  }
});

async function pushTo(f: Fake, extra: { chunkSize?: number; artifact?: string } = {}) {
  const events = new EventBus();
  const seen: string[] = [];
  events.subscribe((e) => seen.push(JSON.stringify(e)));
  const started = Date.now();
  const r = await push({
    artifact: extra.artifact ?? disk,
    to: `oci://127.0.0.1:${f.port}/vm/x:1`,
    layout: "artifact",
    ...(f === secure ? { caFile: tls.caFile } : { insecure: true }),
    events,
    signal: AbortSignal.timeout(30_000),
    env: { VMKILN_REGISTRY_USERNAME: USER, VMKILN_REGISTRY_PASSWORD: PASS },
    ...(extra.chunkSize ? { chunkSize: extra.chunkSize } : {}),
    maxRetries: 1,
    backoffMs: 10,
  }).then(
    (v) => ({ ok: true as const, v }),
    (e: Error & { exitCode?: number; code?: string }) => ({ ok: false as const, e }),
  );
  const text = seen.join("\n") + (r.ok ? "" : `\n${r.e.message}\n${(r.e as { hint?: string }).hint ?? ""}`);
  expect(text).not.toContain(PASS);
  expect(text).not.toMatch(/tok-\d+-secret/);
  expect(text).not.toContain(Buffer.from(`${USER}:${PASS}`).toString("base64"));
  return { r, ms: Date.now() - started, text };
}

const manifestPuts = (f: Fake) => f.log.filter((l) => l.startsWith("PUT /v2/vm/x/manifests/"));

describe("a registry that lies about digests", () => {
  it("HEAD says it has the blob under another digest and size: refused, nothing tagged", async () => {
    mode = "lie-head";
    const { r } = await pushTo(plain);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.e.message).toMatch(/^127\.0\.0\.1:\d+\/vm\/x: HEAD disk d\.qcow2 sha256:[0-9a-f]{12} answered 200 for "sha256:0{64}" of 3 bytes \(expected \d+\); refusing to trust it$/);
    expect(manifestPuts(plain)).toEqual([]);
  });

  it("the blob PUT answers another Docker-Content-Digest: refused, nothing tagged", async () => {
    mode = "lie-put";
    const { r } = await pushTo(plain);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.e.message).toMatch(/stored disk d\.qcow2 as "sha256:f{64}", expected sha256:[0-9a-f]{64}$/);
    expect(manifestPuts(plain)).toEqual([]);
  });

  it("the manifest PUT answers another digest: an error, and manifest.json does not record it", async () => {
    mode = "lie-manifest";
    const size = readFileSync(disk).length;
    writeFileSync(join(out, "d.qcow2"), readFileSync(disk));
    const mj = JSON.stringify({ build_id: "t", artifacts: [{ name: "d.qcow2", format: "qcow2", size }] });
    writeFileSync(join(out, "manifest.json"), mj);
    const { r } = await pushTo(plain, { artifact: out });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.e.message).toMatch(/stored the manifest as "sha256:e{64}", expected sha256:[0-9a-f]{64}$/);
    expect(readFileSync(join(out, "manifest.json"), "utf8")).toBe(mj);
  });
});

describe("authentication a registry can abuse", () => {
  it("401 for every request however fresh the token: the credentials are refused after one new login, no loop", async () => {
    mode = "401-forever";
    const { r, ms } = await pushTo(plain);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.e.message).toMatch(/^127\.0\.0\.1:\d+: the registry refused the credentials \(credentials from \$VMKILN_REGISTRY_USERNAME\/\$VMKILN_REGISTRY_PASSWORD\): HTTP 401( UNAUTHORIZED: no)?$/);
    expect(r.e.exitCode).toBe(2);
    expect(plain.log.filter((l) => l === "GET /token").length).toBeLessThanOrEqual(2);
    expect(plain.log.length).toBeLessThanOrEqual(6);
    expect(ms).toBeLessThan(5000);
  });

  it("a 12 KiB WWW-Authenticate with terminal escapes and no usable scheme: a one-line error, clipped, escapes shown not sent", async () => {
    mode = "huge-challenge";
    const { r } = await pushTo(plain);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.e.message).toMatch(/answered 401 with no Basic or Bearer challenge \(WWW-Authenticate: "Negotiate x=\\"\\u009b31mred\\u009b0m/);
    expect(r.e.message).toMatch(/… \(\d{5} characters\)\)$/);
    expect(r.e.message.length).toBeLessThan(400);
    expect(r.e.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
    expect(r.e.message).not.toContain("\n");
  });

  it("a WWW-Authenticate larger than HTTP headers may be: a clear error, not a hang or a crash", async () => {
    mode = "header-overflow";
    const { r, ms } = await pushTo(plain);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.e.message).toMatch(/^127\.0\.0\.1:\d+: GET http:\/\/127\.0\.0\.1:\d+\/v2\/ failed: UND_ERR_HEADERS_OVERFLOW/);
    expect(ms).toBeLessThan(5000);
  });

  it("an HTTPS registry whose realm is plain HTTP: refused before the credentials are sent", async () => {
    mode = "http-realm";
    const { r } = await pushTo(secure);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.e.message).toMatch(/the Bearer challenge sends the credentials to a plain-HTTP token server \(127\.0\.0\.1:\d+\); refusing$/);
    expect(other.log).toEqual([]);
  });

  it("a token that expires during a streamed chunk: one new token, the chunk sent again, the push completes", async () => {
    mode = "expire-on-patch";
    const { r } = await pushTo(plain, { chunkSize: 64 * 1024 });
    expect(r.ok, r.ok ? "" : r.e.message).toBe(true);
    if (!r.ok) return;
    const patches = plain.log.filter((l) => l.startsWith("PATCH"));
    expect(patches.length).toBeGreaterThanOrEqual(4);
    expect(plain.log.filter((l) => l === "GET /token")).toHaveLength(2);
    // The stored blob is the disk: the first, refused, PATCH was not appended.
    const layer = [...blobs.values()].find((b) => b.length === readFileSync(disk).length);
    expect(layer?.equals(readFileSync(disk))).toBe(true);
  });
});

describe("where a registry sends the bytes", () => {
  it("a Location on another host gets the upload without the registry's token", async () => {
    mode = "location-other-host";
    await pushTo(plain);
    expect(other.log.length).toBeGreaterThan(0);
    expect(other.auth).toEqual([]);
    expect(plain.auth.length).toBeGreaterThan(0);
  });

  it("an HTTPS registry sending the upload to plain HTTP: refused", async () => {
    mode = "location-downgrade";
    const { r } = await pushTo(secure);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.e.message).toMatch(/^127\.0\.0\.1:\d+: sent the upload from HTTPS to plain HTTP \(http:\/\/127\.0\.0\.1:\d+\/upload\/1\); refusing$/);
  });

  it("a response body that never ends is cut off: the push fails in bounded time", async () => {
    mode = "endless-body";
    const { r, ms } = await pushTo(plain);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.e.message).toMatch(/answered 401 with no Basic or Bearer challenge/);
    expect(ms).toBeLessThan(5000);
  });

  it("an honest registry, for contrast: the push completes over several chunks", async () => {
    mode = "honest";
    const { r } = await pushTo(secure, { chunkSize: 64 * 1024 });
    expect(r.ok, r.ok ? "" : r.e.message).toBe(true);
    expect(manifestPuts(secure)).toHaveLength(1);
  });
});
