// pack-ova reads only the OVF's directory and writes only its output (issue 12, independent review):
// it followed a symlinked disk out of the directory, wrote through a planted `*.partial` symlink,
// replaced an existing -o file silently, could overwrite its own input, and an empty OVF or a
// missing/directory -o ended in "internal error". Each case runs the CLI entry in-process.
import { createHash } from "node:crypto";
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { cli, tmp } from "./helpers.js";

const FIXTURE = fileURLToPath(new URL("../../fixtures/ova/virtualbox-ovf20.ovf", import.meta.url));
const DISK = "tiny-disk001.vmdk";
const t = tmp("vmkiln-pack-safety-");
afterAll(() => t.cleanup());
const hex = (d: Buffer | string) => createHash("sha256").update(d).digest("hex");
const disk = Buffer.alloc(4096, 0x5a);
let n = 0;

/** A VirtualBox-style export dir (OVF 2.0 + SHA256 manifest) in its own parent dir. */
function exportDir(opts: { manifest?: boolean } = {}): { root: string; dir: string; ovf: string } {
  const root = join(t.dir, `case-${++n}`);
  const dir = join(root, "export");
  mkdirSync(dir, { recursive: true });
  const ovfText = readFileSync(FIXTURE, "utf8").replace("@CAPACITY@", String(32 * 1024 * 1024));
  writeFileSync(join(dir, "tiny.ovf"), ovfText);
  writeFileSync(join(dir, DISK), disk);
  if (opts.manifest !== false) writeFileSync(join(dir, "tiny.mf"), `SHA256 (tiny.ovf) = ${hex(ovfText)}\nSHA256 (${DISK}) = ${hex(disk)}\n`);
  return { root, dir, ovf: join(dir, "tiny.ovf") };
}

function expectUserError(r: { code: number; stderr: string }, message: RegExp): void {
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  expect(r.stderr).toMatch(message);
  expect(r.code).toBe(2);
}

describe("pack-ova reads only inside the OVF's directory", () => {
  it("refuses a disk that is a symlink leading out of the directory", async () => {
    const { root, dir } = exportDir({ manifest: false });
    const secret = join(root, "secret.bin");
    writeFileSync(secret, "SECRET-BYTES-OUTSIDE-THE-EXPORT");
    rmSync(join(dir, DISK));
    symlinkSync(secret, join(dir, DISK));
    const r = await cli(["pack-ova", dir]);
    expectUserError(r, /tiny-disk001\.vmdk is a symbolic link to .*secret\.bin, outside the OVF's directory/);
    expect(readdirSync(dir).filter((f) => f.includes(".ova"))).toEqual([]);
  });

  it("refuses a manifest that is a symlink leading out of the directory", async () => {
    const { root, dir } = exportDir();
    renameSync(join(dir, "tiny.mf"), join(root, "elsewhere.mf"));
    symlinkSync(join(root, "elsewhere.mf"), join(dir, "tiny.mf"));
    expectUserError(await cli(["pack-ova", dir]), /tiny\.mf is a symbolic link .*outside the OVF's directory/);
  });

  it("still follows a symlink that stays inside the directory", async () => {
    const { dir } = exportDir({ manifest: false });
    mkdirSync(join(dir, "disks"));
    renameSync(join(dir, DISK), join(dir, "disks", "real.vmdk"));
    symlinkSync("disks/real.vmdk", join(dir, DISK));
    const r = await cli(["pack-ova", dir]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
  });
});

describe("pack-ova writes only its output", () => {
  it("never writes through a planted .partial symlink (old temp name) and leaves no temp file", async () => {
    const { root, dir } = exportDir();
    const victim = join(root, "victim.txt");
    writeFileSync(victim, "do not touch");
    symlinkSync(victim, join(dir, "tiny.ova.partial"));
    symlinkSync(join(root, "victim-sum.txt"), join(dir, "tiny.ova.sha256.partial"));
    const r = await cli(["pack-ova", dir]);
    expect(r.code).toBe(0);
    expect(readFileSync(victim, "utf8")).toBe("do not touch");
    expect(existsSync(join(root, "victim-sum.txt"))).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(["tiny-disk001.vmdk", "tiny.mf", "tiny.ova", "tiny.ova.partial", "tiny.ova.sha256", "tiny.ova.sha256.partial", "tiny.ovf"]);
  });

  it("refuses to replace an existing -o file without --force, replaces it with --force", async () => {
    const { root, dir } = exportDir();
    const out = join(root, "out.ova");
    writeFileSync(out, "an OVA somebody made earlier");
    expectUserError(await cli(["pack-ova", dir, "-o", out]), /-o .*out\.ova already exists/);
    expect(readFileSync(out, "utf8")).toBe("an OVA somebody made earlier");
    expect(await cli(["pack-ova", dir, "-o", out, "--force"])).toMatchObject({ code: 0 });
    expect(readFileSync(out).subarray(0, 8).toString()).toBe("tiny.ovf");
  });

  it("refuses to replace an existing .ova.sha256 without --force", async () => {
    const { root, dir } = exportDir();
    writeFileSync(join(root, "out.ova.sha256"), "mine\n");
    expectUserError(await cli(["pack-ova", dir, "-o", join(root, "out.ova")]), /out\.ova\.sha256 already exists/);
    expect(existsSync(join(root, "out.ova"))).toBe(false);
  });

  it("never overwrites its own input, by path or by inode, even with --force", async () => {
    const { root, dir, ovf } = exportDir();
    const before = readFileSync(ovf);
    expectUserError(await cli(["pack-ova", dir, "-o", ovf, "--force"]), /one of the files being packed/);
    expectUserError(await cli(["pack-ova", ovf, "-o", join(dir, DISK), "--force"]), /one of the files being packed/);
    linkSync(join(dir, DISK), join(root, "alias.ova"));
    expectUserError(await cli(["pack-ova", dir, "-o", join(root, "alias.ova"), "--force"]), /alias\.ova is one of the files being packed/);
    symlinkSync(ovf, join(root, "link.ova"));
    expectUserError(await cli(["pack-ova", dir, "-o", join(root, "link.ova"), "--force"]), /link\.ova is one of the files being packed/);
    expect(readFileSync(ovf)).toEqual(before);
    expect(readFileSync(join(dir, DISK))).toEqual(disk);
  });
});

describe("pack-ova's long names", () => {
  it("an -o name near NAME_MAX still packs (the temp file's name is kept short)", async () => {
    const { root, dir } = exportDir();
    const out = join(root, `${"o".repeat(240)}.ova`); // 244 bytes: "<name>.partial" would pass 255
    const r = await cli(["pack-ova", dir, "-o", out]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(existsSync(out)).toBe(true);
  });
});

describe("pack-ova's bad arguments are exit-2 errors naming them", () => {
  it("an empty OVF", async () => {
    const { dir, ovf } = exportDir();
    writeFileSync(ovf, "");
    expectUserError(await cli(["pack-ova", ovf]), /tiny\.ovf: the OVF descriptor is empty/);
    expectUserError(await cli(["pack-ova", dir]), /tiny\.ovf: the OVF descriptor is empty/);
  });

  it("an OVF that is not XML", async () => {
    const { ovf } = exportDir();
    writeFileSync(ovf, "\u0000\u0001 not xml");
    expectUserError(await cli(["pack-ova", ovf]), /tiny\.ovf: OVF descriptor is not well-formed XML/);
  });

  it("-o in a directory that does not exist", async () => {
    const { root, dir } = exportDir();
    expectUserError(await cli(["pack-ova", dir, "-o", join(root, "nodir", "x.ova")]), /-o .*x\.ova: directory .*nodir does not exist/);
  });

  it("-o that is a directory", async () => {
    const { root, dir } = exportDir();
    mkdirSync(join(root, "d"));
    expectUserError(await cli(["pack-ova", dir, "-o", join(root, "d")]), /-o .*\/d is a directory/);
    expectUserError(await cli(["pack-ova", dir, "-o", join(root, "d"), "--force"]), /-o .*\/d is a directory/);
  });

  it("-o empty", async () => {
    const { dir } = exportDir();
    expectUserError(await cli(["pack-ova", dir, "-o", ""]), /-o: the output file name is empty/);
  });

  it("an input that does not exist", async () => {
    expectUserError(await cli(["pack-ova", join(t.dir, "nope.ovf")]), /nope\.ovf: no such file or directory/);
  });
});

describe("pack-ova: regressions found by fuzzing (test/unit/fuzz/pack-ova.fuzz.test.ts)", () => {
  // Counterexample {output: "the-mf", force: true}: the manifest is read as an input, but only the
  // OVF and the referenced files were protected, so the OVA replaced the export's own manifest.
  it("-o naming the export's manifest is refused, even with --force", async () => {
    const { dir } = exportDir();
    const mf = readFileSync(join(dir, "tiny.mf"));
    expectUserError(await cli(["pack-ova", dir, "-o", join(dir, "tiny.mf"), "--force"]), /tiny\.mf is one of the files being packed/);
    expect(readFileSync(join(dir, "tiny.mf"))).toEqual(mf);
  });
});
