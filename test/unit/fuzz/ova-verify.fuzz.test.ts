// Fuzz target: `vmkiln verify` on broken OVAs and OVF directories (src/artifact/verify-ova.ts with
// tar-stream's reader, ovf-parse.ts, manifest-mf.ts, package-check.ts). The bases are real: an OVA
// vmkiln's own writer makes, and a VirtualBox-style OVF 2.0 export (test/fixtures/ova) repacked by
// pack-ova and also kept as a tar in VirtualBox's member order. Mutations hit tar headers (names
// with "..", "/", link and device type flags, base-256 and garbage sizes, magic), move whole blocks,
// truncate and append. Whatever comes out: the exit code is 0, 1 or 2, nothing reaches stderr as an
// internal error or a stack trace, and verify writes nothing.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildOvf } from "../../../src/artifact/ovf.js";
import { writeOva } from "../../../src/artifact/ova.js";
import { packOva } from "../../../src/artifact/pack-ova.js";
import { EventBus } from "../../../src/log/events.js";
import { fuzzParams, fuzzTimeoutMs } from "../../helpers/fuzz.js";
import { cli, makeTar, tmp } from "../artifact/helpers.js";
import { mutatedBytes, mutatedText } from "./mutate.js";

const RUNS = 100;
const t = tmp("vmkiln-fuzz-verify-");
afterAll(() => t.cleanup());
const signal = new AbortController().signal;
const sha = (algo: string, d: Buffer | string) => createHash(algo).update(d).digest("hex");
const FIXTURE = fileURLToPath(new URL("../../fixtures/ova/virtualbox-ovf20.ovf", import.meta.url));

const bases: Record<string, Buffer> = {};
let vboxOvf: string;
const disk = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff));

beforeAll(async () => {
  const ours = buildOvf({ name: "fz", cpus: 1, memoryMiB: 512, firmware: "bios", osType: "debian12", disks: [{ fileName: "fz-disk1.vmdk", fileSize: disk.length, capacityBytes: 1 << 26 }] });
  writeFileSync(join(t.dir, "fz-disk1.vmdk"), disk);
  const r = await writeOva({ out: join(t.dir, "fz.ova"), ovfName: "fz.ovf", ovfXml: ours, disks: [{ name: "fz-disk1.vmdk", path: join(t.dir, "fz-disk1.vmdk"), sha256: sha("sha256", disk), size: disk.length }], events: new EventBus(), signal, mtime: 0 });
  bases.vmkiln = readFileSync(r.path);

  const dir = join(t.dir, "vbox");
  mkdirSync(dir);
  vboxOvf = readFileSync(FIXTURE, "utf8").replace("@CAPACITY@", String(1 << 26));
  writeFileSync(join(dir, "tiny.ovf"), vboxOvf);
  writeFileSync(join(dir, "tiny-disk001.vmdk"), disk);
  const mf = `SHA1 (tiny.ovf) = ${sha("sha1", vboxOvf)}\nSHA1 (tiny-disk001.vmdk) = ${sha("sha1", disk)}\n`;
  writeFileSync(join(dir, "tiny.mf"), mf);
  bases.packed = readFileSync((await packOva(dir, { events: new EventBus(), signal })).path);
  // As VirtualBox itself would put it in a tar (its own manifest spelling, ustar from tar-stream).
  bases.vboxTar = await makeTar([
    { name: "tiny.ovf", data: vboxOvf },
    { name: "tiny.mf", data: mf },
    { name: "tiny-disk001.vmdk", data: disk },
  ]);
}, 60_000);

let n = 0;
/** A fresh, otherwise empty directory per case, so "verify wrote nothing" is a listing. */
function caseDir(): string {
  const d = join(t.dir, `case-${++n}`);
  mkdirSync(d);
  return d;
}

async function verifyExitsCleanly(target: string, dir: string, expectFiles: string[]): Promise<void> {
  const r = await cli(["verify", target]);
  expect([0, 1, 2], `exit ${r.code}: ${r.stderr}`).toContain(r.code);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  if (r.code === 2) expect(r.stderr).toMatch(/^vmkiln: error: /);
  expect(readdirSync(dir).sort()).toEqual([...expectFiles].sort());
  rmSync(dir, { recursive: true, force: true });
}

describe("fuzz: verify on mutated OVAs", () => {
  it(
    "exit 0, 1 or 2, no internal error, nothing written",
    async () => {
      const ova = fc.oneof(mutatedBytes(bases.vmkiln!), mutatedBytes(bases.packed!), mutatedBytes(bases.vboxTar!));
      const sumFile = fc.option(fc.oneof(fc.constant("good"), fc.string({ maxLength: 90 })), { nil: undefined });
      await fc.assert(
        fc.asyncProperty(ova, sumFile, async (bytes, sum) => {
          const dir = caseDir();
          const p = join(dir, "x.ova");
          writeFileSync(p, bytes);
          if (sum !== undefined) writeFileSync(`${p}.sha256`, sum === "good" ? `${sha("sha256", bytes)}  x.ova\n` : sum);
          await verifyExitsCleanly(p, dir, sum === undefined ? ["x.ova"] : ["x.ova", "x.ova.sha256"]);
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeoutMs(RUNS, 60),
  );

  it(
    "an OVF directory with a mutated descriptor or manifest: exit 0, 1 or 2, no internal error",
    async () => {
      const mf = `SHA256 (tiny.ovf) = ${sha("sha256", vboxOvf)}\nSHA256 (tiny-disk001.vmdk) = ${sha("sha256", disk)}\n`;
      await fc.assert(
        fc.asyncProperty(fc.oneof(mutatedText(vboxOvf), fc.constant(vboxOvf)), fc.oneof(mutatedText(mf), fc.constant(mf)), fc.boolean(), async (ovfText, mfText, byFile) => {
          const dir = caseDir();
          writeFileSync(join(dir, "tiny.ovf"), ovfText);
          writeFileSync(join(dir, "tiny.mf"), mfText);
          writeFileSync(join(dir, "tiny-disk001.vmdk"), disk);
          await verifyExitsCleanly(byFile ? join(dir, "tiny.ovf") : dir, dir, ["tiny.ovf", "tiny.mf", "tiny-disk001.vmdk"]);
        }),
        fuzzParams(RUNS),
      );
    },
    fuzzTimeoutMs(RUNS, 60),
  );
});
