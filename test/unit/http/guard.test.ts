// Issue 12 item 5: answer files (keys, password hashes) are served only to the build VM: under a
// random path prefix by default, and only to the guest's peer address where the driver knows it
// (QEMU and VirtualBox NAT: 127.0.0.1). Driven through the serve-http step, as a build runs it.
import { request } from "node:http";
import { join } from "node:path";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { QemuDriver } from "../../../drivers/qemu/index.js";
import { EventBus } from "../../../src/log/events.js";
import type { BuildContext } from "../../../src/pipeline/context.js";
import type { Driver } from "../../../src/pipeline/driver.js";
import { serveHttpStep } from "../../../src/steps/serve-http.js";
import { specFromObject } from "../../../src/template/load.js";

const GOOD = path.resolve(import.meta.dirname, "../../fixtures/templates/good");
const undos: Array<() => unknown> = [];
afterEach(async () => {
  for (const u of undos.splice(0).reverse()) await u();
});

function driver(peer?: string): Driver {
  return {
    name: "qemu",
    capabilities: { sources: ["iso"], keystrokes: true, exports: ["qcow2"] },
    guestHostAddress: (bind: string) => (bind === "127.0.0.1" ? "10.0.2.2" : bind),
    ...(peer ? { guestPeerAddress: (g: string) => (g === "10.0.2.2" ? peer : undefined) } : {}),
  } as unknown as Driver;
}

async function serve(http: Record<string, unknown>, d: Driver) {
  const spec = specFromObject(
    { name: "inst", source: { iso: { path: "./images/installer-iso.stub", checksum: "none" } }, drivers: { qemu: { disk_size: "4G" } }, http },
    { baseDir: GOOD, env: {} },
  );
  const events = new EventBus();
  const logs: string[] = [];
  events.subscribe((e) => e.type === "log" && logs.push(`${e.level} ${e.message}`));
  const ctx = {
    spec,
    driver: d,
    events,
    sshKey: { privateKey: "k", publicKey: "ssh-ed25519 AAAAbuild vmkiln", privateKeyPath: "/k" },
    defer: (_what: string, fn: () => unknown) => undos.push(fn),
  } as unknown as BuildContext;
  await serveHttpStep.run(ctx, new AbortController().signal);
  const port = ctx.http!.port;
  /** GET from 127.0.0.1 (or another loopback address) as the guest's NAT would, or anyone on this host. */
  const get = (p: string, localAddress = "127.0.0.1") =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: p, localAddress }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.end();
    });
  return { ctx, logs, get, port };
}

const KS = { "/ks.cfg": "url ${http.url}/repo\nfrom-packer http://{{ .HTTPIP }}:{{ .HTTPPort }}/extra.cfg\nrootpw --iscrypted $6$hash\n" };

describe("the installer HTTP server serves only the build VM", () => {
  it("by default, everything is under a random path prefix that ${http.url} includes", async () => {
    const { ctx, get, port } = await serve({ content: KS }, driver());
    const prefix = new URL(ctx.http!.url).pathname;
    expect(prefix).toMatch(/^\/[a-z2-7]{20}$/);
    expect(await get("/ks.cfg")).toEqual({ status: 404, body: "not found\n" });
    const r = await get(`${prefix}/ks.cfg`);
    expect(r.status).toBe(200);
    // Both spellings of the URL carry the prefix: ${http.url}, and a Packer URL built from the port.
    expect(r.body).toBe(`url http://10.0.2.2:${port}${prefix}/repo\nfrom-packer http://10.0.2.2:${port}${prefix}/extra.cfg\nrootpw --iscrypted $6$hash\n`);
    // A fresh prefix per build.
    const other = await serve({ content: KS }, driver());
    expect(new URL(other.ctx.http!.url).pathname).not.toBe(prefix);
  });

  it("a request without the prefix is logged as refused, with the fix when it named a served file", async () => {
    const { get, logs } = await serve({ content: KS }, driver());
    await get("/ks.cfg");
    await get("/nothing-here");
    expect(logs).toContain("warn GET /ks.cfg → 404 from 127.0.0.1: refused, not under the build's path prefix: use ${http.url} or {{ .HTTPPrefix }} in the URL (or set http.path_prefix: false)");
    expect(logs).toContain("warn GET /nothing-here → 404 from 127.0.0.1: refused, not under the build's path prefix");
  });

  it("the prefix stays out of the logs", async () => {
    const { ctx, get, logs } = await serve({ content: KS }, driver());
    const prefix = new URL(ctx.http!.url).pathname;
    await get(`${prefix}/ks.cfg`);
    expect(logs.join("\n")).not.toContain(prefix.slice(1));
    expect(logs).toContain(`info GET /ks.cfg → 200 (${Buffer.byteLength((await get(`${prefix}/ks.cfg`)).body)} bytes) from 127.0.0.1`);
    expect(logs.some((l) => /^info serving \/ks\.cfg on 127\.0\.0\.1:\d+ \(the guest uses http:\/\/10\.0\.2\.2:\d+\/\*\*\*; any address may connect, under a random path prefix\)$/.test(l))).toBe(true);
  });

  it("where the driver knows the guest's peer address, nobody else is served, prefix or not", async () => {
    const { ctx, get, logs } = await serve({ content: KS }, driver("127.0.0.2"));
    const prefix = new URL(ctx.http!.url).pathname;
    expect(await get(`${prefix}/ks.cfg`, "127.0.0.1")).toEqual({ status: 403, body: "forbidden\n" });
    expect(logs).toContain("warn GET /***/ks.cfg → 403 from 127.0.0.1: refused, only the build VM (127.0.0.2) is served");
    expect((await get(`${prefix}/ks.cfg`, "127.0.0.2")).status).toBe(200);
  });

  it("QEMU's guest, through 10.0.2.2, is 127.0.0.1; another guest address is not known", () => {
    const q = Object.create(QemuDriver.prototype) as QemuDriver;
    expect(q.guestPeerAddress("10.0.2.2")).toBe("127.0.0.1");
    expect(q.guestPeerAddress("192.168.1.5")).toBeUndefined();
  });

  it("http.path_prefix: false serves at the root (installers with short command lines)", async () => {
    const { ctx, get, port, logs } = await serve({ content: KS, path_prefix: false }, driver());
    expect(ctx.http!.url).toBe(`http://10.0.2.2:${port}`);
    const r = await get("/ks.cfg");
    expect(r.status).toBe(200);
    expect(r.body).toContain(`from-packer http://10.0.2.2:${port}/extra.cfg`);
    expect(logs.some((l) => / with no path prefix\)$/.test(l))).toBe(true);
  });

  it("serves the http.directory under the prefix too", async () => {
    const { ctx, get } = await serve({ directory: join(GOOD, "files") }, driver());
    const prefix = new URL(ctx.http!.url).pathname;
    const name = "hello.txt";
    expect((await get(`/${name}`)).status).toBe(404);
    expect((await get(`${prefix}/${name}`)).status).toBe(200);
  });
});

describe("http.path_prefix and the prefix values in templates", () => {
  const raw = (extra: Record<string, unknown>) => ({
    name: "inst",
    source: { iso: { path: "./images/installer-iso.stub", checksum: "none" } },
    drivers: { qemu: { disk_size: "4G" } },
    ...extra,
  });

  it("validates ${http.prefix} and {{ .HTTPPrefix }} in the boot command and answer files; defaults path_prefix to true", () => {
    const spec = specFromObject(
      raw({
        boot: { command: ["ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}{{ .HTTPPrefix }}/ks.cfg ${http.prefix}<enter>"] },
        http: { content: { "/ks.cfg": "url ${http.url}/x ${http.prefix} {{ .HTTPPrefix }}" } },
      }),
      { baseDir: GOOD, env: {} },
    );
    expect(spec.http?.pathPrefix).toBe(true);
  });

  it.each([
    [false, false],
    ["false", false],
    [true, true],
  ])("path_prefix: %j", (v, want) => {
    expect(specFromObject(raw({ http: { content: { "/ks.cfg": "x" }, path_prefix: v } }), { baseDir: GOOD, env: {} }).http?.pathPrefix).toBe(want);
  });

  it("path_prefix of the wrong type is named", () => {
    expect(() => specFromObject(raw({ http: { content: { "/ks.cfg": "x" }, path_prefix: "no" } }), { baseDir: GOOD, env: {} })).toThrow(/http\.path_prefix: expected true or false/);
  });
});
