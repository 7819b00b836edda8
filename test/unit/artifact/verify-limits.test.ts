// verify reads untrusted archives: each cap of ovf-limits.ts ends in a finding or a clear exit-2
// error, quickly, never in minutes of work or a crash (issue 12). The memory figures for big
// descriptors are measured in a child process by test/integration/artifact-memory.test.ts.
import { createWriteStream, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MAX_OVA_MEMBERS, MAX_OVF_BYTES } from "../../../src/artifact/ovf-limits.js";
import { parseOvf } from "../../../src/artifact/ovf-parse.js";
import { END_OF_ARCHIVE, encodeGnuHeader, paddingFor } from "../../../src/artifact/tar-header.js";
import { verifyOva } from "../../../src/artifact/verify-ova.js";
import { parseXmlTree } from "../../../src/artifact/xml-tree.js";
import { cli, makeTar, tmp } from "./helpers.js";

const t = tmp("vmkiln-verify-limits-");
afterAll(() => t.cleanup());
const signal = new AbortController().signal;
const ENVELOPE = (inner: string) => `<?xml version="1.0"?>\n<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">${inner}</Envelope>\n`;

/** A tar of `n` empty members after a small descriptor, written header by header (fast, small). */
async function manyMembers(path: string, n: number): Promise<void> {
  const ws = createWriteStream(path);
  const w = (b: Buffer) => new Promise<void>((r) => (ws.write(b) ? r() : ws.once("drain", () => r())));
  const ovf = Buffer.from(ENVELOPE("<References/>"));
  await w(encodeGnuHeader({ name: "x.ovf", size: ovf.length, mtime: 0 }));
  await w(ovf);
  await w(paddingFor(ovf.length));
  for (let i = 0; i < n; i++) await w(encodeGnuHeader({ name: `m${i}`, size: 0, mtime: 0 }));
  await w(END_OF_ARCHIVE);
  await new Promise<void>((r) => ws.end(() => r()));
}

describe("the descriptor parser's caps", () => {
  it("too many elements, too deep, too many attributes, too long a name: OVF_TOO_COMPLEX", () => {
    const limits = { elements: 10, elementAttributes: 5, attributes: 10, depth: 4, nameLength: 16 };
    const code = (xml: string) => {
      try {
        parseXmlTree(xml, limits);
        return "ok";
      } catch (err) {
        return (err as { code: string }).code;
      }
    };
    expect(code(`<a>${"<b/>".repeat(9)}</a>`)).toBe("ok");
    expect(code(`<a>${"<b/>".repeat(10)}</a>`)).toBe("OVF_TOO_COMPLEX");
    expect(code("<a><b><c><d/></c></b></a>")).toBe("ok");
    expect(code("<a><b><c><d><e/></d></c></b></a>")).toBe("OVF_TOO_COMPLEX");
    const attrs = (n: number) => Array.from({ length: n }, (_, i) => `x${i}="1"`).join(" ");
    expect(code(`<a ${attrs(5)}><b ${attrs(4)}/></a>`)).toBe("ok");
    expect(code(`<a ${attrs(6)}/>`)).toBe("OVF_TOO_COMPLEX");
    expect(code(`<a ${attrs(5)}><b ${attrs(5)}/><c x="1"/></a>`)).toBe("OVF_TOO_COMPLEX");
    expect(code(`<${"n".repeat(17)}/>`)).toBe("OVF_TOO_COMPLEX");
    expect(code("")).toBe("OVF_MALFORMED");
    expect(code("<a><b></a>")).toBe("OVF_MALFORMED");
    expect(code("<x:a/>")).toBe("OVF_NAMESPACE_UNDECLARED");
  });

  it("one element with 400,000 attributes is refused within seconds (sax compares each with all before it)", async () => {
    const xml = `<Envelope ${Array.from({ length: 400_000 }, (_, i) => `a${i}=""`).join(" ")}/>`;
    const started = Date.now();
    await expect(parseOvf(xml)).rejects.toMatchObject({ code: "OVF_TOO_COMPLEX" });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("nesting 100,000 deep is refused, not a stack overflow", async () => {
    const xml = "<a>".repeat(100_000) + "</a>".repeat(100_000);
    await expect(parseOvf(xml)).rejects.toMatchObject({ code: "OVF_TOO_COMPLEX", message: expect.stringMatching(/more than 64 deep/) });
  });

  it("entities a DTD declares are not expanded (billion laughs)", async () => {
    const lol = `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1">&b;</Envelope>`;
    await expect(parseOvf(lol)).rejects.toMatchObject({ code: "OVF_MALFORMED" });
  });
});

describe("verify on hostile OVAs", () => {
  it(`stops reading after ${MAX_OVA_MEMBERS} members, quickly (a list scan per member was quadratic)`, async () => {
    const path = join(t.dir, "members.ova");
    await manyMembers(path, 30_000);
    const started = Date.now();
    const r = await verifyOva(path, { signal });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.findings.map((f) => f.code)).toContain("TAR_TOO_MANY_MEMBERS");
    expect(r.members).toHaveLength(MAX_OVA_MEMBERS);
    expect(r.sha256).toBeUndefined(); // only read in part
  }, 60_000);

  it("a descriptor over the size cap is a finding, and is not parsed", async () => {
    const big = ENVELOPE(`<References/><Annotation>${"x".repeat(MAX_OVF_BYTES)}</Annotation>`);
    const path = join(t.dir, "bigovf.ova");
    writeFileSync(path, await makeTar([{ name: "big.ovf", data: big }]));
    const r = await verifyOva(path, { signal });
    expect(r.findings.map((f) => f.code)).toEqual(["OVF_TOO_LARGE"]);
  });

  it("a 5,000-character member name is shown clipped, and said to be too long", async () => {
    const path = join(t.dir, "longname.ova");
    writeFileSync(path, await makeTar([{ name: "x.ovf", data: ENVELOPE("<References/>") }, { name: "n".repeat(5000), data: "x" }]));
    const r = await verifyOva(path, { signal });
    expect(r.findings.map((f) => f.code)).toContain("MEMBER_NAME_LONG");
    expect(Math.max(...r.members.map((m) => m.name.length))).toBeLessThanOrEqual(1025);
  });

  it("a huge .ova.sha256 beside it is a finding, not read", async () => {
    const path = join(t.dir, "sum.ova");
    writeFileSync(path, await makeTar([{ name: "x.ovf", data: ENVELOPE("<References/>") }]));
    writeFileSync(`${path}.sha256`, Buffer.alloc(1024 * 1024, 0x61));
    expect((await verifyOva(path, { signal })).findings.map((f) => f.code)).toContain("SHA256_FILE_FORMAT");
  });

  it("in directory mode, a referenced file that is a symlink out of the directory is not read", async () => {
    const dir = join(t.dir, "dirmode");
    mkdirSync(dir);
    writeFileSync(join(t.dir, "outside.bin"), "secret");
    symlinkSync(join(t.dir, "outside.bin"), join(dir, "disk.vmdk"));
    writeFileSync(join(dir, "x.ovf"), ENVELOPE(`<References><File ovf:id="f" ovf:href="disk.vmdk"/></References>`));
    const r = await verifyOva(dir, { signal });
    expect(r.findings.find((f) => f.code === "MEMBER_LINK")?.message).toMatch(/outside the directory; not read/);
    expect(r.members.map((m) => m.name)).toEqual(["x.ovf"]);
  });

  it("an empty .ovf exits 2 or 1 with a message, never an internal error", async () => {
    const dir = join(t.dir, "empty");
    mkdirSync(dir);
    writeFileSync(join(dir, "e.ovf"), "");
    const r = await cli(["verify", join(dir, "e.ovf")]);
    expect([1, 2]).toContain(r.code);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.stdout).toMatch(/OVF_MALFORMED: e\.ovf: OVF descriptor is empty/);
  });
});

describe("parseOvf: regressions found by fuzzing (test/unit/fuzz/ovf-parse.fuzz.test.ts)", () => {
  // Counterexamples on the xml2js-based parser: a document without an element made xml2js return
  // null, which ended in "TypeError: Cannot convert undefined or null to object" (an internal error
  // in pack-ova and verify).
  it.each([[""], ['<?xml version="1.0"?>\n'], ["   "], ["<!-- only a comment -->"]])("%j is OVF_MALFORMED, not a TypeError", async (xml) => {
    await expect(parseOvf(xml)).rejects.toMatchObject({ code: "OVF_MALFORMED", exitCode: 2 });
  });
});
