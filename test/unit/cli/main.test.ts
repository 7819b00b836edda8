// The CLI contract for bad input: a clear one-line error naming the field or file, exit 2, no stack.
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "../../helpers/main-cli.js";

const BAD = fileURLToPath(new URL("../../fixtures/templates/bad/", import.meta.url));


describe("vmkiln validate on bad templates", async () => {
  const files = (await readdir(BAD)).filter((f) => f.endsWith(".yaml") || f.endsWith(".json"));
  it("has at least 10 bad templates", () => expect(files.length).toBeGreaterThanOrEqual(10));
  for (const f of files) {
    it(`${f}: exit 2, names the field, no stack`, async () => {
      const text = await readFile(join(BAD, f), "utf8");
      const expected = /^# expect: (.+)$/m.exec(text)?.[1]?.trim();
      expect(expected).toBeDefined();
      const r = await cli(["validate", join(BAD, f)]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(expected!);
      expect(r.stderr).toMatch(/^vmkiln: error: /);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace without --debug
    });
  }
  it("reports every problem at once", async () => {
    const r = await cli(["validate", join(BAD, "many-problems.yaml")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\d+ problems/);
  });
});

describe("CLI basics", () => {
  it("a missing template file: exit 2, names the file", async () => {
    const r = await cli(["validate", "/nonexistent/t.yaml"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("/nonexistent/t.yaml");
  });
  it("an unknown option: exit 2", async () => {
    const r = await cli(["build", "--frobnicate", "x.yaml"]);
    expect(r.code).toBe(2);
  });
  it("schema prints a JSON Schema", async () => {
    const r = await cli(["schema"]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.properties.source).toBeDefined();
    expect(s.properties.provision).toBeDefined();
  });
  it("-var is accepted in Packer's spelling", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmkiln-cli-"));
    try {
      await writeFile(join(dir, "img.qcow2"), "x");
      await writeFile(join(dir, "t.yaml"), "name: ${var.n}\nsource: { cloud_image: { path: ./img.qcow2, checksum: none } }\ndrivers: { qemu: {} }\n");
      const r = await cli(["validate", "-var", "n=from-var", join(dir, "t.yaml")]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("from-var");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("checksum mismatch on build", () => {
  let server: Server;
  let port = 0;
  const body = Buffer.alloc(256 * 1024, 7);
  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { "content-length": body.length });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("exit 2, one line naming the source, cache unchanged, no output", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmkiln-cli-"));
    const cache = join(dir, "cache");
    const prev = process.env.VMKILN_CACHE_DIR;
    process.env.VMKILN_CACHE_DIR = cache;
    try {
      const wrong = createHash("sha256").update("something else").digest("hex");
      await writeFile(
        join(dir, "t.yaml"),
        `name: mismatch\nsource: { cloud_image: { url: "http://127.0.0.1:${port}/disk.qcow2", checksum: "sha256:${wrong}" } }\ndrivers: { qemu: {} }\noutput: { directory: ./out }\n`,
      );
      // A cache that already holds an entry: the failed build must leave it exactly as it was.
      await mkdir(join(cache, "sources"), { recursive: true });
      await writeFile(join(cache, "sources", `sha256-${"0".repeat(64)}`), "older entry");
      const listing = async () => (await readdir(cache, { recursive: true })).sort();
      const before = await listing();
      const r = await cli(["build", join(dir, "t.yaml")]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/checksum mismatch for http:\/\/127\.0\.0\.1:\d+\/disk\.qcow2/);
      expect(r.stderr).toContain(wrong);
      expect(await listing()).toEqual(before);
      expect(before.length).toBeGreaterThan(0);
      expect((await readdir(dir)).sort()).toEqual(["cache", "t.yaml"]); // no output dir
    } finally {
      if (prev === undefined) delete process.env.VMKILN_CACHE_DIR;
      else process.env.VMKILN_CACHE_DIR = prev;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
