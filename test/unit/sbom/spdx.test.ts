// SBOM (issue 18 item 2) without a VM: the guest script's output as dpkg and rpm print it, parsed and
// turned into SPDX 2.3, validated against the SPDX 2.3 JSON schema by Python's jsonschema (an
// implementation independent of vmkiln). The real guest's SBOM is validated in test/integration/qemu-build.test.ts.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { inventoryScript, parseInventory } from "../../../src/sbom/inventory.js";
import { purl, supplier, toSpdx } from "../../../src/sbom/spdx.js";
import { spdxSchemaErrors } from "../../helpers/spdx.js";

const TAB = "\t";
const dpkgOut = [
  "@@vmkiln-sbom dpkg",
  ["ii ", "bash", "5.2.15-2+b7", "amd64", "Matthias Klose <doko@debian.org>", "bash", "5.2.15-2"].join(TAB),
  ["ii ", "libstdc++6", "12.2.0-14", "amd64", "Debian GCC Maintainers <debian-gcc@lists.debian.org>", "gcc-12", "12.2.0-14"].join(TAB),
  ["rc ", "oldpkg", "1.0", "amd64", "X <x@y>", "oldpkg", ""].join(TAB),
  ["ii ", "tzdata", "2024a-0+deb12u1", "all", "GNU Libc Maintainers <debian-glibc@lists.debian.org>", "tzdata", ""].join(TAB),
  ["ii ", "base-files", "12.4+deb12u5", "amd64", "Santiago Vila <sanvila@debian.org>", "", ""].join(TAB),
  "@@vmkiln-sbom os-release",
  'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"',
  "ID=debian",
  'VERSION_ID="12"',
].join("\n");

const rpmOut = [
  "@@vmkiln-sbom rpm",
  ["bash", "0:5.1.8-9.el9", "x86_64", "Rocky Enterprise Software Foundation", "GPLv3+"].join(TAB),
  ["shadow-utils", "2:4.9-8.el9", "x86_64", "Rocky Enterprise Software Foundation", "BSD and GPLv2+"].join(TAB),
  ["gpg-pubkey", "0:350d275d-6279464b", "(none)", "(none)", "pubkey"].join(TAB),
  "@@vmkiln-sbom os-release",
  'NAME="Rocky Linux"',
  'ID="rocky"',
  'VERSION_ID="9.4"',
].join("\n");

describe("inventory", () => {
  it("dpkg: only installed packages, source packages kept, os-release read", () => {
    const inv = parseInventory(dpkgOut)!;
    expect(inv).toMatchObject({ manager: "dpkg", osId: "debian", osVersion: "12", osName: "Debian GNU/Linux 12 (bookworm)" });
    expect(inv.packages.map((p) => p.name)).toEqual(["base-files", "bash", "libstdc++6", "tzdata"]);
    expect(inv.packages.find((p) => p.name === "libstdc++6")).toMatchObject({ source: "gcc-12", sourceVersion: "12.2.0-14" });
    expect(inv.packages.find((p) => p.name === "tzdata")!.source).toBeUndefined();
  });

  it("rpm: epochs kept only when set, gpg-pubkey left out", () => {
    const inv = parseInventory(rpmOut)!;
    expect(inv.packages.map((p) => [p.name, p.version])).toEqual([
      ["bash", "5.1.8-9.el9"],
      ["shadow-utils", "2:4.9-8.el9"],
    ]);
  });

  it("neither: undefined; garbage: an error", () => {
    expect(parseInventory("@@vmkiln-sbom none\n@@vmkiln-sbom os-release\nID=alpine\n")).toBeUndefined();
    expect(() => parseInventory("sh: 1: oops\n")).toThrow(/marker/);
  });

  it("the script is plain POSIX sh (dash parses it)", () => {
    execFileSync("dash", ["-n", "-c", inventoryScript()]);
    // And it runs here (this host is Debian): real dpkg-query output parses.
    const inv = parseInventory(execFileSync("sh", ["-c", inventoryScript()], { encoding: "utf8" }))!;
    expect(inv.manager).toBe("dpkg");
    expect(inv.packages.length).toBeGreaterThan(50);
    expect(inv.packages.some((p) => p.name === "dpkg")).toBe(true);
  });
});

describe("SPDX 2.3", () => {
  it("a dpkg inventory validates against the SPDX 2.3 JSON schema and has the expected shape", () => {
    const doc = toSpdx(parseInventory(dpkgOut)!, { name: "node", buildId: "20261205-abc", toolVersion: "0.1.0", created: "2026-12-05T10:11:12.345Z", uuid: "0b5c4e5e-7a49-4a8f-9f32-3f8f3b8d1c11" });
    expect(spdxSchemaErrors(doc)).toEqual([]);
    expect(doc).toMatchObject({ spdxVersion: "SPDX-2.3", dataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT", documentNamespace: "urn:uuid:0b5c4e5e-7a49-4a8f-9f32-3f8f3b8d1c11" });
    expect(doc.creationInfo).toEqual({ created: "2026-12-05T10:11:12Z", creators: ["Tool: vmkiln-0.1.0"] });
    const lib = doc.packages.find((p) => p.name === "libstdc++6")!;
    expect(lib).toMatchObject({
      SPDXID: "SPDXRef-Package-dpkg-libstdc-plus--plus-6-amd64",
      versionInfo: "12.2.0-14",
      supplier: "Organization: Debian GCC Maintainers (debian-gcc@lists.debian.org)",
      downloadLocation: "NOASSERTION",
      externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64&distro=debian-12" }],
    });
    expect(doc.relationships[0]).toEqual({ spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: "SPDXRef-Image-node" });
    expect(doc.relationships.filter((r) => r.relationshipType === "CONTAINS")).toHaveLength(4);
    expect(new Set(doc.packages.map((p) => p.SPDXID)).size).toBe(doc.packages.length);
  });

  it("an rpm inventory validates too; the epoch goes to the purl's qualifier", () => {
    const inv = parseInventory(rpmOut)!;
    const doc = toSpdx(inv, { name: "el9", buildId: "b", toolVersion: "0.1.0" });
    expect(spdxSchemaErrors(doc)).toEqual([]);
    expect(purl(inv.packages[1]!, inv)).toBe("pkg:rpm/rocky/shadow-utils@4.9-8.el9?arch=x86_64&epoch=2&distro=rocky-9.4");
    expect(doc.packages.find((p) => p.name === "bash")!.comment).toBe("License tag: GPLv3+");
  });

  it("the schema check can fail: a wrong purpose, a missing field and an unknown relationship are caught", () => {
    const doc = toSpdx(parseInventory(dpkgOut)!, { name: "n", buildId: "b", toolVersion: "0" }) as unknown as Record<string, unknown> & { packages: Array<Record<string, unknown>>; relationships: Array<Record<string, unknown>> };
    doc.packages[0]!.primaryPackagePurpose = "OPERATING-SYSTEM"; // the prose spelling, not JSON's
    delete doc.packages[1]!.downloadLocation;
    doc.relationships[0]!.relationshipType = "INCLUDES";
    const errors = spdxSchemaErrors(doc);
    expect(errors.some((e) => e.startsWith("packages/0/primaryPackagePurpose"))).toBe(true);
    expect(errors.some((e) => /'downloadLocation' is a required property/.test(e))).toBe(true);
    expect(errors.some((e) => e.startsWith("relationships/0/relationshipType"))).toBe(true);
  });

  it("suppliers: people, teams, nothing", () => {
    expect(supplier("Matthias Klose <doko@debian.org>")).toBe("Person: Matthias Klose (doko@debian.org)");
    expect(supplier("Red Hat, Inc.")).toBe("Organization: Red Hat, Inc.");
    expect(supplier("")).toBe("NOASSERTION");
    expect(supplier("<x@y>")).toBe("NOASSERTION");
    expect(supplier("Odd (Name) <a@b>")).toBe("Person: Odd Name (a@b)");
  });
});
