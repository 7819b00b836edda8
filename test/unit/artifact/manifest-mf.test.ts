import { describe, expect, it } from "vitest";
import { formatManifest, parseManifest } from "../../../src/artifact/manifest-mf.js";

const H256 = "ab".repeat(32);
const H1 = "cd".repeat(20);

describe("manifest", () => {
  it.each([
    [`SHA256(a.vmdk)= ${H256}`, "sha256", true],
    [`SHA256 (a.vmdk) = ${H256}`, "sha256", false],
    [`SHA256(a.vmdk) = ${H256.toUpperCase()}`, "sha256", false],
    [`SHA2-256(a.vmdk)= ${H256}`, "sha256", false],
    [`SHA1(a.vmdk)= ${H1}`, "sha1", false],
    [`SHA1 (a.vmdk) = ${H1}`, "sha1", false],
  ])("reads %s", (line, algorithm, canonical) => {
    const m = parseManifest(line + "\n");
    expect(m.bad).toEqual([]);
    expect(m.entries[0]).toMatchObject({ algorithm, file: "a.vmdk", canonical });
    expect(m.entries[0]!.digest).toBe(algorithm === "sha1" ? H1 : H256);
  });

  it("reports junk and wrong digest lengths", () => {
    const m = parseManifest(`hello\nSHA256(a)= ${H1}\n`);
    expect(m.bad.map((b) => b.line)).toEqual([1, 2]);
  });

  it("writes the canonical form with \\n endings", () => {
    expect(formatManifest([{ name: "x.ovf", sha256: H256.toUpperCase() }, { name: "d.vmdk", sha256: H256 }])).toBe(
      `SHA256(x.ovf)= ${H256}\nSHA256(d.vmdk)= ${H256}\n`,
    );
  });
});
