import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BuildError, UserError } from "../../../src/errors.js";
import { buildIso, writeIsoFile, type IsoFile } from "../../../src/media/iso9660.js";
import { blkid, isoinfoNames, requireTools, tool, toolBytes, xorrisoExtract } from "./readers.js";

const DATE = new Date("2024-05-06T07:08:09Z");
const SECTOR = 2048;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vmkiln-iso-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let counter = 0;
function writeImage(files: IsoFile[], volumeId = "cidata"): string {
  const p = join(dir, `img-${++counter}.iso`);
  writeFileSync(p, buildIso(files, { volumeId, date: DATE }));
  return p;
}

/** Deterministic bytes that are not all alike, so misplaced sectors show up. */
function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const SEED: IsoFile[] = [
  { name: "meta-data", content: "instance-id: iid-1\nlocal-hostname: kiln\n" },
  { name: "user-data", content: "#cloud-config\nusers: []\n" },
  { name: "network-config", content: "" },
];

interface RawRecord {
  sector: number;
  offset: number;
  length: number;
  extent: number;
  size: number;
  flags: number;
  id: Buffer;
  su: Buffer;
}

/** A minimal directory walker, here only to check layout rules the readers tolerate silently. */
function walkDirectory(img: Buffer, extent: number, size: number): RawRecord[] {
  const out: RawRecord[] = [];
  for (let s = 0; s < size / SECTOR; s++) {
    const base = (extent + s) * SECTOR;
    let off = 0;
    while (off < SECTOR && img[base + off]! !== 0) {
      const at = base + off;
      const length = img[at]!;
      const idLen = img[at + 32]!;
      const suStart = 33 + idLen + (idLen % 2 === 0 ? 1 : 0);
      out.push({
        sector: s,
        offset: off,
        length,
        extent: img.readUInt32LE(at + 2),
        size: img.readUInt32LE(at + 10),
        flags: img[at + 25]!,
        id: img.subarray(at + 33, at + 33 + idLen),
        su: img.subarray(at + suStart, at + length),
      });
      off += length;
    }
  }
  return out;
}

function rootOf(img: Buffer, descriptorSector: number): { extent: number; size: number } {
  const at = descriptorSector * SECTOR + 156;
  return { extent: img.readUInt32LE(at + 2), size: img.readUInt32LE(at + 10) };
}

function expectBothEndian32(img: Buffer, at: number, value: number): void {
  expect(img.readUInt32LE(at)).toBe(value);
  expect(img.readUInt32BE(at + 4)).toBe(value);
}

describe("buildIso: on-disk structures (ECMA-119 / Joliet)", () => {
  const img = buildIso(SEED, { volumeId: "cidata", date: DATE });

  it("has a zero system area, PVD, Joliet SVD and terminator in sectors 16-18", () => {
    expect(img.length % SECTOR).toBe(0);
    expect(img.subarray(0, 16 * SECTOR).every((b) => b === 0)).toBe(true);
    for (const [sector, type] of [
      [16, 1],
      [17, 2],
      [18, 255],
    ] as const) {
      expect(img[sector * SECTOR]).toBe(type);
      expect(img.toString("ascii", sector * SECTOR + 1, sector * SECTOR + 6)).toBe("CD001");
      expect(img[sector * SECTOR + 6]).toBe(1);
    }
    expect(img.toString("ascii", 17 * SECTOR + 88, 17 * SECTOR + 91)).toBe("%/E");
  });

  it("space-pads the volume id in both descriptors (ASCII and UCS-2), never NUL-pads", () => {
    expect(img.toString("ascii", 16 * SECTOR + 40, 16 * SECTOR + 72)).toBe("cidata".padEnd(32, " "));
    const joliet = img.subarray(17 * SECTOR + 40, 17 * SECTOR + 72);
    expect(Buffer.from(joliet).swap16().toString("utf16le")).toBe("cidata".padEnd(16, " "));
  });

  it("records sizes both-endian and path tables L little-endian, M big-endian", () => {
    for (const d of [16, 17]) {
      const at = d * SECTOR;
      expectBothEndian32(img, at + 80, img.length / SECTOR);
      expect(img.readUInt16LE(at + 128)).toBe(SECTOR);
      expect(img.readUInt16BE(at + 130)).toBe(SECTOR);
      expectBothEndian32(img, at + 132, 10);
      const root = rootOf(img, d);
      expectBothEndian32(img, at + 156 + 2, root.extent);
      const l = img.readUInt32LE(at + 140) * SECTOR;
      const m = img.readUInt32BE(at + 148) * SECTOR;
      expect(img.readUInt32LE(l + 2)).toBe(root.extent);
      expect(img.readUInt16LE(l + 6)).toBe(1);
      expect(img.readUInt32BE(m + 2)).toBe(root.extent);
      expect(img.readUInt16BE(m + 6)).toBe(1);
    }
  });

  it("writes 8.3 d-character names with ;1 in the primary tree and UCS-2 names in Joliet", () => {
    const primary = walkDirectory(img, rootOf(img, 16).extent, rootOf(img, 16).size);
    expect(primary.slice(2).map((r) => r.id.toString("ascii"))).toEqual([
      "META_DAT.;1",
      "NETWORK_.;1",
      "USER_DAT.;1",
    ]);
    const joliet = walkDirectory(img, rootOf(img, 17).extent, rootOf(img, 17).size);
    expect(joliet.slice(2).map((r) => Buffer.from(r.id).swap16().toString("utf16le"))).toEqual([
      "meta-data",
      "network-config",
      "user-data",
    ]);
  });

  it("opens the root's '.' record with SUSP SP, and gives files PX/TF/NM", () => {
    const [self, , file] = walkDirectory(img, rootOf(img, 16).extent, rootOf(img, 16).size);
    expect([...self!.su.subarray(0, 7)]).toEqual([0x53, 0x50, 7, 1, 0xbe, 0xef, 0]);
    const sigs: string[] = [];
    for (let p = 0; p + 4 <= file!.su.length && file!.su[p + 2]! > 0; p += file!.su[p + 2]!) {
      sigs.push(file!.su.toString("ascii", p, p + 2));
    }
    expect(sigs).toEqual(["PX", "TF", "NM"]);
  });

  it("sector-aligns file data and shares it between the two trees", () => {
    const primary = walkDirectory(img, rootOf(img, 16).extent, rootOf(img, 16).size).slice(2);
    const joliet = walkDirectory(img, rootOf(img, 17).extent, rootOf(img, 17).size).slice(2);
    expect(joliet.map((r) => [r.extent, r.size])).toEqual(primary.map((r) => [r.extent, r.size]));
    const meta = primary[0]!;
    expect(img.subarray(meta.extent * SECTOR, meta.extent * SECTOR + meta.size).toString()).toBe(
      SEED[0]!.content,
    );
  });

  it("is deterministic for a given date and independent of input order", () => {
    const again = buildIso([...SEED].reverse(), { volumeId: "cidata", date: DATE });
    expect(again.equals(img)).toBe(true);
    const later = buildIso(SEED, { volumeId: "cidata", date: new Date("2025-01-01T00:00:00Z") });
    expect(later.equals(img)).toBe(false);
  });

  it("never lets a directory record cross a sector boundary, even over several sectors", () => {
    const files = Array.from({ length: 60 }, (_, i) => ({
      name: `a-fairly-long-file-name-to-fill-directory-sectors-${String(i).padStart(2, "0")}.yaml`,
      content: `n${i}`,
    }));
    const big = buildIso(files, { volumeId: "cidata", date: DATE });
    for (const d of [16, 17]) {
      const root = rootOf(big, d);
      expect(root.size).toBeGreaterThan(SECTOR);
      const recs = walkDirectory(big, root.extent, root.size);
      expect(recs).toHaveLength(62);
      for (const r of recs) expect(r.offset + r.length).toBeLessThanOrEqual(SECTOR);
      expect(new Set(recs.map((r) => r.sector)).size).toBe(root.size / SECTOR);
    }
  });
});

describe("read back with isoinfo (genisoimage)", () => {
  it("has isoinfo", () => requireTools("isoinfo"));

  it("detects the volume id exactly, Joliet level 3 and Rock Ridge", () => {
    const iso = writeImage(SEED);
    const info = tool("isoinfo", ["-d", "-i", iso]);
    expect(info).toMatch(/^Volume id: cidata$/m);
    expect(info).toContain("Joliet with UCS level 3 found");
    expect(info).toContain("Rock Ridge signatures version 1 found");
    expect(info).toMatch(/^Logical block size is: 2048$/m);
  });

  it("lists 8.3 names in the primary tree and real names through Joliet and Rock Ridge", () => {
    const iso = writeImage(SEED);
    expect(isoinfoNames(iso, "primary")).toEqual(["META_DAT.;1", "NETWORK_.;1", "USER_DAT.;1"]);
    expect(isoinfoNames(iso, "-J")).toEqual(["meta-data", "network-config", "user-data"]);
    expect(isoinfoNames(iso, "-R")).toEqual(["meta-data", "network-config", "user-data"]);
    expect(tool("isoinfo", ["-R", "-l", "-i", iso])).toMatch(/^-r--r--r-- +1 +0 +0 +\d+ .*meta-data $/m);
  });

  it("extracts content byte-exact through every tree", () => {
    const iso = writeImage(SEED);
    const want = Buffer.from(SEED[0]!.content as string);
    expect(toolBytes("isoinfo", ["-J", "-x", "/meta-data", "-i", iso]).equals(want)).toBe(true);
    expect(toolBytes("isoinfo", ["-R", "-x", "/meta-data", "-i", iso]).equals(want)).toBe(true);
    expect(toolBytes("isoinfo", ["-x", "/META_DAT.;1", "-i", iso]).equals(want)).toBe(true);
    expect(toolBytes("isoinfo", ["-J", "-x", "/network-config", "-i", iso])).toHaveLength(0);
  });

  it("round-trips an empty file, a file over one sector and one over 64 KiB", () => {
    const files = [
      { name: "empty", content: "" },
      { name: "two-sectors.bin", content: pattern(SECTOR + 1, 1) },
      { name: "big.bin", content: pattern(64 * 1024 + 12345, 2) },
      { name: "exactly-one-sector", content: pattern(SECTOR, 3) },
      { name: "zz-empty-last", content: "" },
    ];
    const iso = writeImage(files);
    for (const f of files) {
      for (const mode of ["-J", "-R"]) {
        const got = toolBytes("isoinfo", [mode, "-x", `/${f.name}`, "-i", iso]);
        expect(got.equals(Buffer.from(f.content)), `${mode} ${f.name}`).toBe(true);
      }
    }
  });

  it("reads back a directory of 60 long names spanning several sectors", () => {
    const files = Array.from({ length: 60 }, (_, i) => ({
      name: `a-fairly-long-file-name-to-fill-directory-sectors-${String(i).padStart(2, "0")}.yaml`,
      content: `content ${i}\n`,
    }));
    const iso = writeImage(files);
    const names = files.map((f) => f.name).sort();
    expect(isoinfoNames(iso, "-J")).toEqual(names);
    // Rock Ridge names ride on the primary records, which are ordered by their mangled 8.3 names.
    expect(isoinfoNames(iso, "-R").sort()).toEqual(names);
    const primary = isoinfoNames(iso, "primary");
    expect(new Set(primary).size).toBe(60);
    for (const n of primary) expect(n).toMatch(/^[A-Z0-9_]{1,8}\.[A-Z0-9_]{0,3};1$/);
    const last = files[59]!;
    expect(tool("isoinfo", ["-J", "-x", `/${last.name}`, "-i", iso])).toBe(last.content);
  });

  it("mangles colliding primary names to distinct 8.3 identifiers", () => {
    const iso = writeImage([
      { name: "user-data", content: "1" },
      { name: "user-data-2", content: "2" },
      { name: "USER_DAT", content: "3" },
      { name: "a", content: "4" },
      { name: "A", content: "5" },
      { name: ".profile", content: "6" },
    ]);
    const primary = isoinfoNames(iso, "primary");
    expect(primary).toHaveLength(6);
    expect(new Set(primary).size).toBe(6);
    expect(primary).toContain("_PROFILE.;1");
    expect(isoinfoNames(iso, "-R").sort()).toEqual([".profile", "A", "USER_DAT", "a", "user-data", "user-data-2"]);
    expect(tool("isoinfo", ["-R", "-x", "/A", "-i", iso])).toBe("5");
    expect(tool("isoinfo", ["-J", "-x", "/a", "-i", iso])).toBe("4");
  });
});

describe("read back with xorriso (libisofs)", () => {
  it("has xorriso", () => requireTools("xorriso"));

  it("lists and finds the real names", () => {
    const iso = writeImage(SEED);
    const ls = tool("xorriso", ["-indev", iso, "-ls", "/"]);
    expect(ls.trim().split("\n")).toEqual(["'meta-data'", "'network-config'", "'user-data'"]);
    const found = tool("xorriso", ["-indev", iso, "-find", "/", "-type", "f"]);
    expect(found.trim().split("\n").sort()).toEqual(["'/meta-data'", "'/network-config'", "'/user-data'"]);
  });

  it("reads the same names from the Joliet tree and 8.3 names from the bare ECMA-119 tree", () => {
    const iso = writeImage(SEED);
    expect(tool("xorriso", ["-read_fs", "norock", "-indev", iso, "-ls", "/"]).trim().split("\n")).toEqual([
      "'meta-data'",
      "'network-config'",
      "'user-data'",
    ]);
    expect(tool("xorriso", ["-read_fs", "ecma119", "-indev", iso, "-ls", "/"]).trim().split("\n")).toEqual([
      "'META_DAT'",
      "'NETWORK_'",
      "'USER_DAT'",
    ]);
  });

  it("extracts every file byte-exact, including large, empty and non-ASCII-named ones", () => {
    const files: IsoFile[] = [
      ...SEED,
      { name: "big.bin", content: pattern(200_001, 7) },
      { name: "two-sectors.bin", content: pattern(SECTOR + 7, 8) },
      { name: "zero", content: Buffer.alloc(0) },
      // 64 three-byte UTF-8 characters: the NM entry no longer fits the 255-byte record and goes
      // to a SUSP continuation area.
      { name: "日".repeat(64), content: "cjk\n" },
      { name: "ünïcödé names.txt", content: "latin\n" },
    ];
    const iso = writeImage(files);
    const got = xorrisoExtract(iso, join(dir, `x-${++counter}`));
    expect([...got.keys()].sort()).toEqual(files.map((f) => f.name).sort());
    for (const f of files) expect(got.get(f.name)!.equals(Buffer.from(f.content)), f.name).toBe(true);
    const joliet = tool("xorriso", ["-read_fs", "norock", "-indev", iso, "-ls", "/"]);
    expect(joliet).toContain(`'${"日".repeat(64)}'`);
    expect(joliet).toContain("'ünïcödé names.txt'");
  });
});

describe("probe with blkid", () => {
  it("has blkid", () => requireTools("blkid"));

  it("reports TYPE=iso9660 and LABEL=cidata", () => {
    const iso = writeImage(SEED);
    const probe = blkid(iso);
    expect(probe.TYPE).toBe("iso9660");
    expect(probe.LABEL).toBe("cidata");
  });

  it("takes the label from the Joliet descriptor without NULs or padding", () => {
    const iso = writeImage(SEED, "CIDATA");
    expect(blkid(iso).LABEL).toBe("CIDATA");
  });
});

describe("name and option validation", () => {
  const cases: Array<[string, string, string]> = [
    ["empty", "", "ISO_NAME_INVALID"],
    ["dot", ".", "ISO_NAME_INVALID"],
    ["dot-dot", "..", "ISO_NAME_INVALID"],
    ["slash", "dir/file", "ISO_NAME_INVALID"],
    ["backslash", "a\\b", "ISO_NAME_INVALID"],
    ["colon", "a:b", "ISO_NAME_INVALID"],
    ["semicolon", "a;1", "ISO_NAME_INVALID"],
    ["control character", "a\nb", "ISO_NAME_INVALID"],
    ["NUL", "a\0b", "ISO_NAME_INVALID"],
    ["outside the BMP", "emoji-😀", "ISO_NAME_INVALID"],
    ["65 characters", "x".repeat(65), "ISO_NAME_TOO_LONG"],
  ];
  it.each(cases)("rejects a name that is %s", (_what, name, code) => {
    let caught: unknown;
    try {
      buildIso([{ name, content: "x" }], { volumeId: "cidata" });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UserError);
    expect((caught as UserError).code).toBe(code);
  });

  it("accepts a name of exactly 64 characters", () => {
    expect(() => buildIso([{ name: "y".repeat(64), content: "x" }], { volumeId: "cidata" })).not.toThrow();
  });

  it("rejects duplicate names", () => {
    expect(() =>
      buildIso(
        [
          { name: "meta-data", content: "a" },
          { name: "meta-data", content: "b" },
        ],
        { volumeId: "cidata" },
      ),
    ).toThrow(expect.objectContaining({ code: "ISO_NAME_DUPLICATE" }));
  });

  it.each(["", " cidata", "cidata ", "x".repeat(17), "ci/data", "é"])("rejects volume id %j", (volumeId) => {
    expect(() => buildIso(SEED, { volumeId })).toThrow(expect.objectContaining({ code: "ISO_VOLUME_ID_INVALID" }));
  });

  it("rejects dates a directory record cannot hold", () => {
    expect(() => buildIso(SEED, { volumeId: "cidata", date: new Date("1899-12-31T00:00:00Z") })).toThrow(
      expect.objectContaining({ code: "ISO_DATE_INVALID" }),
    );
    expect(() => buildIso(SEED, { volumeId: "cidata", date: new Date(Number.NaN) })).toThrow(UserError);
  });

  it("builds an image with no files", () => {
    const img = buildIso([], { volumeId: "cidata", date: DATE });
    const recs = walkDirectory(img, rootOf(img, 16).extent, rootOf(img, 16).size);
    expect(recs.map((r) => [...r.id])).toEqual([[0], [1]]);
  });
});

describe("writeIsoFile", () => {
  it("writes the image atomically and leaves no temp file", async () => {
    const out = mkdtempSync(join(dir, "w-"));
    const path = join(out, "seed.iso");
    writeFileSync(path, "old contents");
    await writeIsoFile(path, SEED, { volumeId: "cidata", date: DATE });
    expect(readFileSync(path).equals(buildIso(SEED, { volumeId: "cidata", date: DATE }))).toBe(true);
    expect(readdirSync(out)).toEqual(["seed.iso"]);
  });

  it("validates before touching the disk", async () => {
    const out = mkdtempSync(join(dir, "w-"));
    const path = join(out, "seed.iso");
    await expect(writeIsoFile(path, [{ name: "a/b", content: "" }], { volumeId: "cidata" })).rejects.toBeInstanceOf(
      UserError,
    );
    expect(readdirSync(out)).toEqual([]);
  });

  it("reports a missing directory as a BuildError", async () => {
    const path = join(dir, "no-such-dir", "seed.iso");
    await expect(writeIsoFile(path, SEED, { volumeId: "cidata" })).rejects.toMatchObject({
      code: "ISO_WRITE_FAILED",
    });
    await expect(writeIsoFile(path, SEED, { volumeId: "cidata" })).rejects.toBeInstanceOf(BuildError);
    expect(existsSync(join(dir, "no-such-dir"))).toBe(false);
  });
});

// Read by the Linux kernel's isofs: test/integration/media/iso-kernel.test.ts (a loop mount, or the
// libguestfs appliance's kernel where this host's kernel has no isofs).
