import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cidataFiles, writeCidataIso } from "../../../src/media/cidata.js";
import { blkid, isoinfoNames, requireTools, toolBytes, xorrisoExtract } from "./readers.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vmkiln-cidata-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const DOCS = {
  userData: "#cloud-config\nhostname: kiln\n",
  metaData: "instance-id: iid-42\nlocal-hostname: kiln\n",
};

describe("cidataFiles", () => {
  it("always ships network-config (empty when not given) and vendor-data only when given", () => {
    expect(cidataFiles(DOCS).map((f) => [f.name, f.content])).toEqual([
      ["user-data", DOCS.userData],
      ["meta-data", DOCS.metaData],
      ["network-config", ""],
    ]);
    const all = cidataFiles({ ...DOCS, networkConfig: "version: 2\n", vendorData: "#cloud-config\n" });
    expect(all.map((f) => f.name)).toEqual(["user-data", "meta-data", "network-config", "vendor-data"]);
    expect(all.find((f) => f.name === "network-config")?.content).toBe("version: 2\n");
  });
});

describe("writeCidataIso", () => {
  it("has the independent readers (isoinfo, xorriso, blkid)", () => requireTools("isoinfo", "xorriso", "blkid"));

  it("writes a seed that blkid labels cidata and every tree names correctly", async () => {
    const iso = join(dir, "seed.iso");
    await writeCidataIso(iso, DOCS);
    expect(blkid(iso)).toMatchObject({ TYPE: "iso9660", LABEL: "cidata" });
    const names = ["meta-data", "network-config", "user-data"];
    expect(isoinfoNames(iso, "-J")).toEqual(names);
    expect(isoinfoNames(iso, "-R")).toEqual(names);
    expect(toolBytes("isoinfo", ["-J", "-x", "/user-data", "-i", iso]).toString()).toBe(DOCS.userData);
    expect(toolBytes("isoinfo", ["-R", "-x", "/meta-data", "-i", iso]).toString()).toBe(DOCS.metaData);
    expect(toolBytes("isoinfo", ["-J", "-x", "/network-config", "-i", iso])).toHaveLength(0);
  });

  it("adds vendor-data and network-config content when given", async () => {
    const iso = join(dir, "seed-full.iso");
    const docs = { ...DOCS, networkConfig: "network:\n  version: 2\n", vendorData: "#cloud-config\n{}\n" };
    await writeCidataIso(iso, docs, { date: new Date("2024-01-02T03:04:05Z") });
    const got = xorrisoExtract(iso, join(dir, "full"));
    expect(Object.fromEntries([...got].map(([k, v]) => [k, v.toString()]))).toEqual({
      "user-data": docs.userData,
      "meta-data": docs.metaData,
      "network-config": docs.networkConfig,
      "vendor-data": docs.vendorData,
    });
  });
});
