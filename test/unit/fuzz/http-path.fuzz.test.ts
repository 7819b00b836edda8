// Fuzz target: the installer HTTP server's request path handling (src/http/server.ts). Request
// targets are built from the pieces attacks are made of (`..`, `%2e%2e`, encoded slashes and
// backslashes, NUL, double encoding, `//`, overlong and non-UTF-8 segments, absolute-form URLs)
// and sent raw over TCP to a server whose http.directory holds symlinks pointing outside it.
// Whatever the target: the server answers and keeps answering, never serves a byte from outside
// the directory, and serves a file only under the path prefix.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InstallerHttpServer, requestPath, stripPrefix } from "../../../src/http/server.js";
import { EventBus } from "../../../src/log/events.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";

const SECRET = "SECRET-outside-the-directory";
const SERVED = new Map([
  ["A", "a.txt"],
  ["B", "sub/b.txt"],
  ["KS", "content /ks.cfg"],
]);

const attack = fc.constantFrom(
  "..", ".", "%2e%2e", "%2E%2e", ".%2e", "%2e.", "%252e%252e", "..%2f", "%2f", "%2F..", "%5c", "\\", "..\\..", "%00", "%0a", "%ff", "%", "%2",
  "", "é", "%C3%A9", "x".repeat(3000), "?q=..", "#frag", "//",
);
const names = fc.constantFrom("a.txt", "sub", "b.txt", "link-in", "link-out", "dirlink-out", "up", "up2", "s.txt", "secret", "www", "pfx", "%70fx", "ks.cfg", "%61.txt");
const piece = fc.oneof({ arbitrary: names, weight: 3 }, { arbitrary: attack, weight: 2 });

const target = fc
  .tuple(
    fc.array(piece, { maxLength: 8 }),
    fc.oneof({ arbitrary: fc.constant("/pfx/"), weight: 4 }, { arbitrary: fc.constantFrom("/", "//", "", "http://h/pfx/", "/pfx/../", "/pfx/%2e%2e/", "/pfx/sub/up/", "/pfx/sub/up2/"), weight: 3 }),
  )
  .map(([parts, lead]) => lead + parts.join("/"));

/** One raw HTTP/1.1 request; resolves with the status and body (or 0 when the server just closed). */
function rawGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let data = "";
    s.setEncoding("latin1");
    s.on("data", (d: string) => (data += d));
    s.on("error", reject);
    s.on("close", () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      const i = data.indexOf("\r\n\r\n");
      resolve({ status: m ? Number(m[1]) : 0, body: i >= 0 ? data.slice(i + 4) : "" });
    });
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, "latin1");
  });
}

describe("fuzz: installer HTTP server request paths", () => {
  let root: string;
  let server: InstallerHttpServer;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "vmkiln-http-fuzz-"));
    const www = join(root, "www");
    mkdirSync(join(www, "sub"), { recursive: true });
    mkdirSync(join(root, "secret"));
    writeFileSync(join(root, "secret", "s.txt"), SECRET);
    writeFileSync(join(root, "s.txt"), SECRET);
    writeFileSync(join(www, "a.txt"), "A");
    writeFileSync(join(www, "sub", "b.txt"), "B");
    symlinkSync("a.txt", join(www, "link-in"));
    symlinkSync("../secret/s.txt", join(www, "link-out"));
    symlinkSync(join(root, "secret"), join(www, "dirlink-out"));
    symlinkSync("..", join(www, "sub", "up")); // the directory itself: inside
    symlinkSync("../..", join(www, "sub", "up2")); // its parent: outside
    server = await InstallerHttpServer.start({ bindAddress: "127.0.0.1", port: 0, content: new Map([["/ks.cfg", "KS"]]), directory: www, prefix: "/pfx", events: new EventBus() });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const runs = 400;
  it(
    "never serves a file outside http.directory, nor anything outside the prefix",
    async () => {
      let cases = 0;
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(target, async (t) => {
          cases++;
          const r = await rawGet(server.port, t);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          expect(r.body).not.toContain("SECRET");
          if (r.status === 200) {
            expect([...SERVED.keys()]).toContain(r.body);
            // Served only under the prefix: the decoded, normalized path starts with /pfx/.
            const p = requestPath(t);
            expect(p.ok && stripPrefix(p.path, "/pfx")).toBeTruthy();
          }
        }),
        fuzzParams(runs),
      );
      // The server still answers.
      expect((await rawGet(server.port, "/pfx/a.txt")).body).toBe("A");
      console.log(`fuzz http-path (server): ${cases} cases, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    },
    fuzzTimeoutMs(runs, 50),
  );

  it("the served names work, so the property above is not vacuous", async () => {
    expect(await rawGet(server.port, "/pfx/a.txt")).toEqual({ status: 200, body: "A" });
    expect(await rawGet(server.port, "/pfx/sub/b.txt")).toEqual({ status: 200, body: "B" });
    expect(await rawGet(server.port, "/pfx/link-in")).toEqual({ status: 200, body: "A" });
    expect(await rawGet(server.port, "/pfx/ks.cfg")).toEqual({ status: 200, body: "KS" });
    expect((await rawGet(server.port, "/pfx/link-out")).status).toBe(404);
    expect((await rawGet(server.port, "/pfx/dirlink-out/s.txt")).status).toBe(404);
    expect(await rawGet(server.port, "/pfx/sub/up/a.txt")).toEqual({ status: 200, body: "A" }); // a symlink that stays inside
    expect((await rawGet(server.port, "/pfx/sub/up2/s.txt")).status).toBe(404); // one that leaves
    expect((await rawGet(server.port, "/a.txt")).status).toBe(404);
  });

  const pureRuns = 10000;
  it(
    "requestPath: any string; when accepted, a normalized absolute path with no control character, backslash or `..`",
    () => {
      let cases = 0;
      fc.assert(
        fc.property(fc.oneof(target, fc.string({ unit: "binary", maxLength: 300 })), (t) => {
          cases++;
          const r = requestPath(t);
          if (!r.ok) return;
          expect(r.path.startsWith("/")).toBe(true);
          expect(r.path).not.toMatch(/[\0-\x1f\x7f\\]/);
          expect(r.path.split("/")).not.toContain("..");
        }),
        fuzzParams(pureRuns),
      );
      console.log(`fuzz http-path (requestPath): ${cases} cases`);
    },
    fuzzTimeoutMs(pureRuns, 1),
  );
});
