// pack-ova on a VirtualBox-style OVF 2.0 export (fixture shape: test/fixtures/ova/README.md).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packOva } from "../../../src/artifact/pack-ova.js";
import { verifyOva } from "../../../src/artifact/verify-ova.js";
import { packOvaCommand } from "../../../src/cli/pack-ova.js";
import { UserError } from "../../../src/errors.js";
import { bus, sh, tmp } from "./helpers.js";

const FIXTURE = fileURLToPath(new URL("../../fixtures/ova/virtualbox-ovf20.ovf", import.meta.url));
const t = tmp();
const signal = new AbortController().signal;
const DISK = "tiny-disk001.vmdk";
const hex = (algo: string, data: Buffer | string) => createHash(algo).update(data).digest("hex");
let vmdk: Buffer;

/** A fresh VirtualBox-style export directory: OVF 2.0, streamOptimized vmdk, `ALGO (x) = y` manifest. */
function exportDir(name: string, algo: "SHA256" | "SHA1" = "SHA256"): { dir: string; ovf: string } {
  const dir = join(t.dir, name);
  mkdirSync(dir);
  const ovfText = readFileSync(FIXTURE, "utf8").replace("@CAPACITY@", String(32 * 1024 * 1024));
  writeFileSync(join(dir, "tiny.ovf"), ovfText);
  writeFileSync(join(dir, DISK), vmdk);
  const a = algo.toLowerCase();
  writeFileSync(join(dir, "tiny.mf"), `${algo} (tiny.ovf) = ${hex(a, ovfText)}\n${algo} (${DISK}) = ${hex(a, vmdk)}\n`);
  return { dir, ovf: join(dir, "tiny.ovf") };
}

beforeAll(() => {
  const p = join(t.dir, "d.vmdk");
  sh("qemu-img", ["create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", p, "32M"]);
  sh("qemu-io", ["-c", "write -P 0x11 0 2M", p]);
  vmdk = readFileSync(p);
});
afterAll(() => t.cleanup());

describe("packOva", () => {
  it("repacks a VirtualBox OVF 2.0 export into an OVA verify accepts", async () => {
    const { dir } = exportDir("vbox");
    const before = await verifyOva(dir, { signal });
    expect(before.findings.map((f) => f.code)).toEqual(expect.arrayContaining(["OVF_SYSTEM_TYPE", "MF_SPELLING"]));

    const { events } = bus();
    const r = await packOva(dir, { events, signal });
    expect(r.path).toBe(join(dir, "tiny.ova"));
    expect(r.members).toEqual(["tiny.ovf", "tiny.mf", DISK]);
    expect(r.fixes.join("\n")).toMatch(/added ovf:size=\d+ to tiny-disk001\.vmdk/);
    expect(r.fixes.join("\n")).toMatch(/virtualbox-2\.2 → vmx-13/);
    expect(r.warnings).toEqual([]);

    const v = await verifyOva(r.path, { signal });
    expect(v.findings).toEqual([]);
    expect(v.sha256).toBe(r.sha256);
    expect(sh("sha256sum", ["-c", "tiny.ova.sha256"], dir)).toContain("OK");
    const x = join(dir, "x");
    mkdirSync(x);
    sh("tar", ["-xf", r.path, "-C", x]);
    expect(readFileSync(join(x, "tiny.mf"), "utf8")).toMatch(/^SHA256\(tiny\.ovf\)= [0-9a-f]{64}\nSHA256\(tiny-disk001\.vmdk\)= [0-9a-f]{64}\n$/);
    const ovf = readFileSync(join(x, "tiny.ovf"), "utf8");
    expect(ovf).toContain(`<File ovf:id="file1" ovf:href="${DISK}" ovf:size="${vmdk.length}"/>`);
    expect(ovf).toContain("xmlns=\"http://schemas.dmtf.org/ovf/envelope/2\""); // otherwise untouched
  });

  it("reads a SHA1 manifest (VirtualBox OVF 1.0 spelling) and writes SHA256", async () => {
    const { ovf, dir } = exportDir("sha1", "SHA1");
    const out = join(dir, "out.ova");
    const r = await packOva(ovf, { out, events: bus().events, signal });
    expect(r.path).toBe(out);
    expect((await verifyOva(out, { signal })).findings).toEqual([]);
  });

  it("fails on a digest mismatch and leaves nothing behind", async () => {
    for (const algo of ["SHA256", "SHA1"] as const) {
      const { dir } = exportDir(`bad-${algo}`, algo);
      writeFileSync(join(dir, DISK), Buffer.concat([vmdk.subarray(0, -1), Buffer.from([1])]));
      await expect(packOva(dir, { events: bus().events, signal })).rejects.toMatchObject({ code: "MF_DIGEST_MISMATCH", exitCode: 2 });
      expect(existsSync(join(dir, "tiny.ova"))).toBe(false);
      expect(readdirSync(dir).filter((f) => f.endsWith(".partial"))).toEqual([]);
    }
  });

  it("a missing referenced file is an error", async () => {
    const { dir } = exportDir("missing");
    rmSync(join(dir, DISK));
    await expect(packOva(dir, { events: bus().events, signal })).rejects.toThrow(/tiny-disk001\.vmdk is missing/);
    await expect(packOva(join(dir, "nope.ovf"), { events: bus().events, signal })).rejects.toBeInstanceOf(UserError);
  });

  it("refuses a wrong ovf:size no digest vouches for", async () => {
    const { dir } = exportDir("size");
    const p = join(dir, "tiny.ovf");
    writeFileSync(p, readFileSync(p, "utf8").replace(`ovf:href="${DISK}"`, `ovf:href="${DISK}" ovf:size="12"`));
    rmSync(join(dir, "tiny.mf"));
    await expect(packOva(dir, { events: bus().events, signal })).rejects.toMatchObject({ code: "OVF_FILE_SIZE" });
  });

  it("CLI prints the result", async () => {
    const { dir } = exportDir("cli");
    const out: string[] = [];
    const code = await packOvaCommand(dir, { output: join(dir, "c.ova") }, { out: (l) => out.push(l), err: () => {}, events: bus().events, signal });
    expect(code).toBe(0);
    expect(out.at(-1)).toMatch(/c\.ova: \d+ bytes, sha256 [0-9a-f]{64}/);
  });
});
