// The installer HTTP server: rendered content, the verbatim directory, request logging, 404s,
// path traversal, and the "never fetched" deadline.
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BuildError, UserError } from "../../../src/errors.js";
import { renderEntry, renderText } from "../../../src/http/render.js";
import { InstallerHttpServer } from "../../../src/http/server.js";
import { EventBus } from "../../../src/log/events.js";
import { tempDir } from "../../helpers/tmp.js";

const scope = {
  variables: { mirror: "deb.example.invalid" },
  env: { HOME_DIR: "/home/x" },
  name: "web",
  values: { "http.ip": "10.0.2.2", "http.port": "8123", "http.url": "http://10.0.2.2:8123", "ssh.public_key": "ssh-ed25519 AAAAkey build" },
};

describe("renderText", () => {
  it.each([
    ["url ${http.url}/ks.cfg", "url http://10.0.2.2:8123/ks.cfg"],
    ["{{ .HTTPIP }}:{{.HTTPPort}} {{ .Name }}", "10.0.2.2:8123 web"],
    ["mirror ${var.mirror} home ${env.HOME_DIR} name ${name}", "mirror deb.example.invalid home /home/x name web"],
    ["echo '${ssh.public_key}' >> authorized_keys", "echo 'ssh-ed25519 AAAAkey build' >> authorized_keys"],
    ["shell $${HOME} stays", "shell ${HOME} stays"],
    ["jinja {{ ds.meta_data.x }} and {{ .Other }} stay", "jinja {{ ds.meta_data.x }} and {{ .Other }} stay"],
  ])("%s", (text, want) => {
    expect(renderText(text, scope, "t")).toBe(want);
  });

  it("names the field and the bad reference", () => {
    expect(() => renderText("x ${http.address}", scope, 'http.content["/ks.cfg"]')).toThrow(UserError);
    expect(() => renderText("x ${http.address}", scope, 'http.content["/ks.cfg"]')).toThrow(
      /^http\.content\["\/ks\.cfg"\]: unknown reference "\$\{http\.address\}" \(use var\.NAME, env\.NAME, name, http\.ip, http\.port, http\.url or ssh\.public_key\)$/,
    );
  });

  it("reads { file } entries and names the file when it is missing", async () => {
    const dir = tempDir("vmkiln-render-");
    writeFileSync(join(dir, "ks.cfg"), "url --url=http://${var.mirror}/\n");
    await expect(renderEntry({ file: join(dir, "ks.cfg") }, scope, "c")).resolves.toBe("url --url=http://deb.example.invalid/\n");
    await expect(renderEntry({ file: join(dir, "nope.cfg") }, scope, "c")).rejects.toThrow(/^c: cannot read .*nope\.cfg: ENOENT$/);
  });
});

describe("InstallerHttpServer", () => {
  const servers: InstallerHttpServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function start(directory?: string) {
    const events = new EventBus();
    const logs: string[] = [];
    events.subscribe((e) => e.type === "log" && e.source === "http" && logs.push(e.message));
    const content = new Map([["/preseed.cfg", "d-i x string y\n"]]);
    const server = await InstallerHttpServer.start({ bindAddress: "127.0.0.1", port: 0, content, directory, events });
    servers.push(server);
    const base = `http://127.0.0.1:${server.port}`;
    return { server, logs, base };
  }

  it("serves content, then the directory, and logs every request", async () => {
    const dir = tempDir("vmkiln-www-");
    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "sub", "late.sh"), "echo late\n");
    const { server, logs, base } = await start(dir);
    expect(server.port).toBeGreaterThan(0);

    const a = await fetch(`${base}/preseed.cfg`);
    expect(a.status).toBe(200);
    expect(await a.text()).toBe("d-i x string y\n");
    const b = await fetch(`${base}/sub/late.sh`);
    expect(await b.text()).toBe("echo late\n");
    const c = await fetch(`${base}/missing.cfg`);
    expect(c.status).toBe(404);
    await c.text();
    const d = await fetch(`${base}/preseed.cfg`, { method: "POST", body: "x" });
    expect(d.status).toBe(405);
    await d.text();

    expect(logs).toEqual([
      "GET /preseed.cfg → 200 (15 bytes) from 127.0.0.1",
      "GET /sub/late.sh → 200 (10 bytes) from 127.0.0.1",
      "GET /missing.cfg → 404 from 127.0.0.1",
      "POST /preseed.cfg → 405 from 127.0.0.1",
    ]);
    expect(server.requests.map((r) => [r.method, r.path, r.status])).toEqual([
      ["GET", "/preseed.cfg", 200],
      ["GET", "/sub/late.sh", 200],
      ["GET", "/missing.cfg", 404],
      ["POST", "/preseed.cfg", 405],
    ]);
    expect(server.fetched("/preseed.cfg")).toBe(true);
    expect(server.fetched("/missing.cfg")).toBe(false);
  });

  it("never serves outside the directory (.., encoded .., symlinks)", async () => {
    const root = tempDir("vmkiln-www-");
    const dir = join(root, "www");
    mkdirSync(dir);
    writeFileSync(join(root, "secret.txt"), "secret\n");
    symlinkSync(join(root, "secret.txt"), join(dir, "link.txt"));
    const { base } = await start(dir);
    for (const p of ["/../secret.txt", "/%2e%2e/secret.txt", "/link.txt", "/"]) {
      const r = await fetch(`${base}${p}`);
      expect(r.status, p).toBe(404);
      expect(await r.text()).not.toContain("secret");
    }
  });

  it("waitForRequests resolves once the paths are fetched", async () => {
    const { server, base } = await start();
    const waiting = server.waitForRequests(["/preseed.cfg"], 10_000, new AbortController().signal);
    await (await fetch(`${base}/preseed.cfg`)).text();
    await expect(waiting).resolves.toBeUndefined();
  });

  it("fails naming the file the VM never fetched and what it did request", async () => {
    const { server, base } = await start();
    await (await fetch(`${base}/other.cfg`)).text();
    const err = await server.waitForRequests(["/preseed.cfg"], 200, new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).message).toBe(`the VM never fetched /preseed.cfg from http://127.0.0.1:${server.port} within 200ms`);
    expect((err as BuildError).hint).toBe("requests so far: GET /other.cfg 404");
  });

  it("says no request arrived at all, and stops waiting on abort", async () => {
    const { server } = await start();
    const err = await server.waitForRequests(["/ks.cfg"], 100, new AbortController().signal).catch((e: unknown) => e);
    expect((err as BuildError).hint).toMatch(/^no request reached the server: check the boot command/);
    const ac = new AbortController();
    const p = server.waitForRequests(["/ks.cfg"], 60_000, ac.signal);
    ac.abort();
    await expect(p).rejects.toMatchObject({ name: expect.stringMatching(/Abort/) });
  });

  it("reports a bind failure as a user error naming http.bind_address", async () => {
    const { server } = await start();
    await expect(
      InstallerHttpServer.start({ bindAddress: "127.0.0.1", port: server.port, content: new Map(), events: new EventBus() }),
    ).rejects.toThrow(/^http\.bind_address: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE$/);
  });
});
