// Fuzz target: `vmkiln cache import` on damaged bundles (issue 17). Whatever bytes are flipped or cut,
// the import either installs exactly the bundle's entries with their original bytes (a change that
// hit only padding or the tar headers' unused fields) or refuses with a UserError and installs
// nothing; it never writes outside the cache and never leaves its work directory behind.
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { exportBundle, importBundle } from "../../../src/layers/bundle.js";
import { commitStage, listStages, lookupStage, makeTmp, stageDirs } from "../../../src/layers/store.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";

const RUNS = 60;
const signal = new AbortController().signal;
let work: string;
let bundle: Buffer;
const KEY = "c".repeat(64);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "vmkiln-fuzz-bundle-"));
  const a = join(work, "a");
  const dirs = stageDirs(a);
  const tmp = await makeTmp(dirs, KEY);
  await mkdir(join(tmp, "files"));
  await writeFile(join(tmp, "files", "disk.qcow2"), Buffer.alloc(3000, 7));
  await commitStage(dirs, tmp, { schema: 1, key: KEY, stage: "s", template: "/t", driver: "qemu", vmkiln_version: "0", created: "c", source: { digest: "d", location: "l" }, inputs: [], spec: {}, disk: "disk.qcow2" }, signal);
  await mkdir(join(a, "sources"));
  const img = Buffer.from("img");
  const sha = createHash("sha256").update(img).digest("hex");
  await writeFile(join(a, "sources", `sha256-${sha}`), img);
  await writeFile(join(a, "sources", `sha256-${sha}.json`), JSON.stringify({ url: "u", size: 3, fetchedAt: "t", sha256: sha }));
  await exportBundle(join(work, "b.tar"), { cacheDir: a, force: false, signal });
  bundle = await readFile(join(work, "b.tar"));
});
afterAll(() => rm(work, { recursive: true, force: true }));

describe("fuzz: cache import of damaged bundles", () => {
  it(
    "installs the original entries or nothing",
    async () => {
      let n = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
            fc.record({ kind: fc.constant("cut" as const), at: fc.nat(), byte: fc.constant(0) }),
          ),
          async (m) => {
            const bytes = Buffer.from(bundle);
            const at = m.at % bytes.length;
            const data = m.kind === "cut" ? bytes.subarray(0, at) : (bytes.writeUInt8(m.byte, at), bytes);
            const root = join(work, `r${n++}`);
            const file = join(work, `m${n}.tar`);
            await writeFile(file, data);
            try {
              await importBundle(file, { cacheDir: root, signal });
              const hit = await lookupStage(stageDirs(root), KEY, signal);
              expect(hit).toBeDefined();
              expect(await readFile(join(hit!.dir, "files", "disk.qcow2"))).toEqual(Buffer.alloc(3000, 7));
            } catch (err) {
              expect(err).toBeInstanceOf(UserError);
              expect(await listStages(stageDirs(root))).toEqual([]);
              const sources = await readdir(join(root, "sources")).catch(() => [] as string[]);
              expect(sources).toEqual([]);
            }
            expect((await readdir(root)).filter((x) => x.startsWith(".import"))).toEqual([]);
            expect((await readdir(root)).every((x) => x === "sources" || x === "stages")).toBe(true);
            await rm(root, { recursive: true, force: true });
            await rm(file, { force: true });
          },
        ),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeoutMs(RUNS, 50),
  );
});
