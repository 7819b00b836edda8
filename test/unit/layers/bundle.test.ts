// cache export/import (issue 17): a round trip carries every entry; a bundle that was changed, that
// names a place outside the cache, or that holds a link is refused whole, and nothing is installed.
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { exportBundle, importBundle } from "../../../src/layers/bundle.js";
import { commitStage, listStages, lookupStage, makeTmp, stageDirs } from "../../../src/layers/store.js";
import { BLOCK, END_OF_ARCHIVE, encodeGnuHeader, paddingFor } from "../../../src/artifact/tar-header.js";
import { UserError } from "../../../src/errors.js";

let work: string;
const signal = new AbortController().signal;
const a = () => join(work, "a");
const b = () => join(work, "b");
const sha = (s: string | Buffer) => createHash("sha256").update(s).digest("hex");

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), "vmkiln-bundle-"));
  const dirs = stageDirs(a());
  const key = "e".repeat(64);
  const tmp = await makeTmp(dirs, key);
  await mkdir(join(tmp, "files"));
  await writeFile(join(tmp, "files", "disk.qcow2"), "disk bytes");
  await commitStage(dirs, tmp, { schema: 1, key, stage: "base", template: "/t.yaml", driver: "qemu", vmkiln_version: "0", created: "now", source: { digest: "d", location: "l" }, inputs: [], spec: {}, disk: "disk.qcow2" }, signal);
  const src = join(a(), "sources");
  await mkdir(src, { recursive: true });
  const img = "image bytes";
  await writeFile(join(src, `sha256-${sha(img)}`), img);
  await writeFile(join(src, `sha256-${sha(img)}.json`), JSON.stringify({ url: "https://x/img", size: img.length, fetchedAt: "t", sha256: sha(img) }));
});
afterEach(() => rm(work, { recursive: true, force: true }));

/** A tar in the bundle's shape from explicit members (to forge bad ones). */
function tar(members: Array<{ name: string; data: Buffer; type?: string }>): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const h = encodeGnuHeader({ name: m.name, size: m.data.length, mtime: 0 });
    if (m.type) {
      h[156] = m.type.charCodeAt(0);
      h.fill(0x20, 148, 156);
      let sum = 0;
      for (const x of h) sum += x;
      h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
    }
    parts.push(h, m.data, paddingFor(m.data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

async function refused(bytes: Buffer, pattern: RegExp) {
  const f = join(work, "bad.tar");
  await writeFile(f, bytes);
  const err = await importBundle(f, { cacheDir: b(), signal }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UserError);
  expect((err as Error).message).toMatch(pattern);
  expect(await readdir(b()).catch(() => [])).toEqual(expect.not.arrayContaining(["sources"]));
  expect(await listStages(stageDirs(b()))).toEqual([]);
  // No import work dir is left behind.
  expect((await readdir(b()).catch(() => [] as string[])).filter((n) => n.startsWith(".import"))).toEqual([]);
}

describe("cache bundle", () => {
  it("round trip: every source and stage arrives, verified, and a second import adds nothing", async () => {
    const f = join(work, "bundle.tar");
    const r = await exportBundle(f, { cacheDir: a(), force: false, signal });
    expect([r.sources, r.stages]).toEqual([1, 1]);
    const i1 = await importBundle(f, { cacheDir: b(), signal });
    expect(i1).toEqual({ sources: { added: 1, present: 0 }, stages: { added: 1, present: 0 } });
    const hit = await lookupStage(stageDirs(b()), "e".repeat(64), signal);
    expect(await readFile(join(hit!.dir, "files", "disk.qcow2"), "utf8")).toBe("disk bytes");
    expect(await readFile(join(b(), "sources", `sha256-${sha("image bytes")}`), "utf8")).toBe("image bytes");
    expect(await importBundle(f, { cacheDir: b(), signal })).toEqual({ sources: { added: 0, present: 1 }, stages: { added: 0, present: 1 } });
    // -o onto an existing file needs --force.
    await expect(exportBundle(f, { cacheDir: a(), force: false, signal })).rejects.toThrow(/already exists/);
  });

  it("a flipped byte in a member is refused, nothing installed", async () => {
    const f = join(work, "bundle.tar");
    await exportBundle(f, { cacheDir: a(), force: false, signal });
    const bytes = await readFile(f);
    const at = bytes.indexOf("disk bytes");
    bytes[at] = "D".charCodeAt(0);
    await refused(bytes, /sha256 .* where index\.json says/);
  });

  it("refuses an index path that escapes the cache", async () => {
    for (const path of ["../../etc/x", "stages/" + "e".repeat(64) + "/files/../../../x", "/etc/passwd", "sources/../x"]) {
      const data = Buffer.from("x");
      const index = Buffer.from(JSON.stringify({ format: "vmkiln-cache-bundle", version: 1, members: [{ member: "m000001", path, size: 1, sha256: sha(data) }] }));
      await refused(tar([{ name: "index.json", data: index }, { name: "m000001", data }]), /not a cache entry's path/);
    }
  });

  it("a source sidecar that is not JSON, or not an object, is refused as a bad bundle (it crashed with SyntaxError/TypeError)", async () => {
    const img = Buffer.from("disk bytes");
    const name = `sha256-${sha(img)}`;
    for (const side of ["{not json", "null", "[1]"]) {
      const sidecar = Buffer.from(side);
      const index = Buffer.from(
        JSON.stringify({
          format: "vmkiln-cache-bundle",
          version: 1,
          members: [
            { member: "m000001", path: `sources/${name}`, size: img.length, sha256: sha(img) },
            { member: "m000002", path: `sources/${name}.json`, size: sidecar.length, sha256: sha(sidecar) },
          ],
        }),
      );
      await refused(tar([{ name: "index.json", data: index }, { name: "m000001", data: img }, { name: "m000002", data: sidecar }]), /sidecar is not (JSON|a JSON object)/);
    }
  });

  it("refuses links, directories and path member names in the tar", async () => {
    const data = Buffer.from("x");
    const index = Buffer.from(JSON.stringify({ format: "vmkiln-cache-bundle", version: 1, members: [{ member: "m000001", path: `stages/${"e".repeat(64)}/entry.json`, size: 1, sha256: sha(data) }] }));
    await refused(tar([{ name: "index.json", data: index }, { name: "m000001", data, type: "2" }]), /not a regular file/);
    await refused(tar([{ name: "index.json", data: index }, { name: "m000001", data, type: "1" }]), /not a regular file/);
    await refused(tar([{ name: "index.json", data: index }, { name: "m000001", data, type: "5" }]), /not a regular file/);
  });

  it("refuses an unlisted member, a truncated tar, a non-bundle, and an entry whose files disagree with it", async () => {
    const data = Buffer.from("x");
    const empty = Buffer.from(JSON.stringify({ format: "vmkiln-cache-bundle", version: 1, members: [] }));
    await refused(tar([{ name: "index.json", data: empty }, { name: "m000001", data }]), /not in index\.json/);
    const whole = tar([{ name: "index.json", data: empty }]);
    await refused(whole.subarray(0, BLOCK + 10), /truncated/);
    await refused(tar([{ name: "README", data }]), /not a vmkiln cache bundle/);
    const entry = Buffer.from(JSON.stringify({ schema: 1, key: "e".repeat(64), files: [{ name: "disk.qcow2", size: 1, sha256: sha("y") }] }));
    const idx = Buffer.from(
      JSON.stringify({
        format: "vmkiln-cache-bundle",
        version: 1,
        members: [
          { member: "m000001", path: `stages/${"e".repeat(64)}/files/disk.qcow2`, size: 1, sha256: sha(data) },
          { member: "m000002", path: `stages/${"e".repeat(64)}/entry.json`, size: entry.length, sha256: sha(entry) },
        ],
      }),
    );
    await refused(tar([{ name: "index.json", data: idx }, { name: "m000001", data }, { name: "m000002", data: entry }]), /do not match its entry\.json/);
  });
});
