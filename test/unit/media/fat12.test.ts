import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { buildFloppy, FLOPPY_CAPACITY, FLOPPY_SIZE } from "../../../src/media/fat12.js";
import { requireTools } from "./readers.js";

// mtools, dosfstools and blkid are test tools (.ci/install-deps.sh installs them): the read-back
// checks fail, loudly, when one is missing (readers.ts).

const dir = mkdtempSync(join(tmpdir(), "vmkiln-fat12-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bigPreseed = Array.from({ length: 400 }, (_, i) => `d-i line/${i} string value ${i}`).join("\n") + "\n";
const FILES = [
  { name: "ks.cfg", content: "text\nreboot\n" },
  { name: "preseed.cfg", content: bigPreseed }, // spans many clusters
  { name: "user-data", content: "#cloud-config\nhostname: x\n" },
  { name: "meta-data", content: "" }, // empty file: no cluster
  { name: "README.TXT", content: "upper-case 8.3 name: no long name needed\n" },
  { name: "a rather long file name, with spaces.yaml", content: Buffer.from([0, 1, 2, 255]) },
];

function writeImage(name: string, img: Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, img);
  return p;
}

// mtools checks the BPB geometry against the size (no MTOOLS_SKIP_CHECK), a free extra test.
const MENV = { ...process.env, MTOOLS_SKIP_CHECK: "0" };
const mtools = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { env: MENV, encoding: "utf8" });

describe("buildFloppy", () => {
  const img = buildFloppy(FILES, { label: "OEMDRV" });
  const path = writeImage("test.img", img);

  it("is a 1.44 MB image with a FAT12 BPB", () => {
    expect(img.length).toBe(FLOPPY_SIZE);
    expect(FLOPPY_SIZE).toBe(1_474_560);
    expect(img.readUInt16LE(11)).toBe(512); // bytes per sector
    expect(img[13]).toBe(1); // sectors per cluster
    expect(img.readUInt16LE(14)).toBe(1); // reserved
    expect(img[16]).toBe(2); // FATs
    expect(img.readUInt16LE(17)).toBe(224); // root entries
    expect(img.readUInt16LE(19)).toBe(2880);
    expect(img[21]).toBe(0xf0);
    expect(img.readUInt16LE(22)).toBe(9); // sectors per FAT
    expect(img.readUInt16LE(24)).toBe(18);
    expect(img.readUInt16LE(26)).toBe(2);
    expect(img[38]).toBe(0x29);
    expect(img.toString("ascii", 43, 54)).toBe("OEMDRV     ");
    expect(img.toString("ascii", 54, 62)).toBe("FAT12   ");
    expect(img.readUInt16LE(510)).toBe(0xaa55);
    // FAT[0] = media | 0xF00, FAT[1] = EOC; both FAT copies identical.
    expect([...img.subarray(512, 515)]).toEqual([0xf0, 0xff, 0xff]);
    expect(img.subarray(512, 512 + 9 * 512).equals(img.subarray(512 + 9 * 512, 512 + 18 * 512))).toBe(true);
  });

  it("is deterministic", () => {
    expect(buildFloppy(FILES, { label: "OEMDRV" }).equals(img)).toBe(true);
    expect(buildFloppy(FILES, { label: "OEMDRV", serial: 1 }).equals(img)).toBe(false);
  });

  it("has the independent readers (mtools, fsck.fat, blkid)", () => requireTools("mdir", "mtype", "mlabel", "fsck.fat", "blkid"));

  it("mdir lists the long names", () => {
    const out = mtools("mdir", "-i", path, "::");
    expect(out).toContain("Volume in drive : is OEMDRV");
    for (const f of FILES.filter((f) => f.name !== "README.TXT")) expect(out).toContain(` ${f.name}\n`);
    expect(out).toMatch(/^KS {7}CFG {8}12 .* ks\.cfg$/m);
    expect(out).toMatch(/^USER-D~1 {12}26 .* user-data$/m);
    expect(out).toMatch(/^ARATHE~1 YAM {9}4 .* a rather long file name, with spaces\.yaml$/m);
    // An upper-case 8.3 name is stored without a long name.
    expect(out).toMatch(/^README {3}TXT {8}41 \S+ +\S+ *$/m);
    expect(out).toContain("6 files");
  });

  it("mtype reads every file back byte for byte", () => {
    for (const f of FILES) {
      const got = execFileSync("mtype", ["-i", path, `::/${f.name}`], { env: MENV });
      expect(got.equals(typeof f.content === "string" ? Buffer.from(f.content) : f.content)).toBe(true);
    }
  });

  it("mlabel shows the label", () => {
    expect(mtools("mlabel", "-i", path, "-s", "::").trim()).toBe("Volume label is OEMDRV");
  });

  it("blkid sees vfat with the label", () => {
    const out = execFileSync("blkid", ["-p", "-o", "export", path], { encoding: "utf8" });
    expect(out).toMatch(/^TYPE=vfat$/m);
    expect(out).toMatch(/^LABEL=OEMDRV$/m);
    expect(out).toMatch(/^VERSION=FAT12$/m);
  });

  it("fsck.fat finds no errors", () => {
    const r = spawnSync("fsck.fat", ["-n", "-v", path], { encoding: "utf8" });
    expect(r.stdout + r.stderr).not.toMatch(/differ|invalid|bad|error|wrong|broken/i);
    expect(r.status).toBe(0);
  });

  it("a lower-case label is stored upper-case, like DOS tools do", () => {
    const p = writeImage("cidata.img", buildFloppy([{ name: "user-data", content: "#cloud-config\n" }], { label: "cidata" }));
    expect(mtools("mlabel", "-i", p, "-s", "::").trim()).toBe("Volume label is CIDATA");
  });

  it("fills the disk exactly to capacity", () => {
    const p = writeImage("full.img", buildFloppy([{ name: "big.bin", content: Buffer.alloc(FLOPPY_CAPACITY, 7) }], { label: "FULL" }));
    expect(execFileSync("mtype", ["-i", p, "::/big.bin"], { env: MENV, maxBuffer: 4 << 20 }).length).toBe(FLOPPY_CAPACITY);
    expect(spawnSync("fsck.fat", ["-n", p]).status).toBe(0);
  });

  it("gives clashing aliases distinct ~N tails", () => {
    const names = ["meta-data-1", "meta-data-2", "meta-data-3"];
    const p = writeImage("alias.img", buildFloppy(names.map((name) => ({ name, content: name })), { label: "X" }));
    const out = mtools("mdir", "-i", p, "::");
    expect(out).toMatch(/META-D~1/);
    expect(out).toMatch(/META-D~2/);
    expect(out).toMatch(/META-D~3/);
    for (const n of names) expect(mtools("mtype", "-i", p, `::/${n}`)).toBe(n);
    expect(spawnSync("fsck.fat", ["-n", p]).status).toBe(0);
  });

  it("rejects what FAT cannot hold", () => {
    const bad = (files: Array<{ name: string; content: string | Buffer }>, label = "X") => () => buildFloppy(files, { label });
    expect(bad([{ name: "a/b", content: "" }])).toThrow(UserError);
    expect(bad([{ name: "x?", content: "" }])).toThrow(/invalid file name "x\?"/);
    expect(bad([{ name: "trailing.", content: "" }])).toThrow(UserError);
    expect(bad([{ name: "ks.cfg", content: "" }, { name: "KS.CFG", content: "" }])).toThrow(/duplicate file name/);
    expect(bad([{ name: "big", content: Buffer.alloc(FLOPPY_CAPACITY + 1) }])).toThrow(/do not fit/);
    expect(bad([], "TWELVE CHARS")).toThrow(/invalid volume label/);
    expect(bad([], "A*B")).toThrow(/invalid volume label/);
    // 224 root entries: the label plus 223 short names fit; one more does not.
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `F${i}.TXT`, content: "" }));
    expect(() => buildFloppy(many(223), { label: "X" })).not.toThrow();
    expect(bad(many(224))).toThrow(/root directory holds 224 entries/);
  });
});
