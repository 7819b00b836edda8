// The inventory as an SPDX 2.3 JSON document (spdx.github.io/spdx-spec/v2.3: clause 6 "Document
// creation information", 7 "Package information", 11 "Relationships"): one package for the image
// itself, which the document DESCRIBES and which CONTAINS one package per installed package; each
// with its version, supplier, NOASSERTION where vmkiln cannot know (download location, licenses,
// copyright), and a purl (package-url/purl-spec: `pkg:deb/<distro id>/<name>@<version>?arch=…`,
// `pkg:rpm/<distro id>/<name>@<version>?arch=…&epoch=…`) as a PACKAGE-MANAGER external reference,
// which scanners (grype, trivy, OSV) match vulnerabilities on.
import { randomUUID } from "node:crypto";
import type { Inventory, InstalledPackage } from "./inventory.js";

export interface SpdxOptions {
  /** The image's name (output.basename) and the build it came from. */
  name: string;
  buildId: string;
  toolVersion: string;
  /** ISO time; defaults to now. */
  created?: string;
  /** documentNamespace's unique part; defaults to a random UUID (unique per build). */
  uuid?: string;
}

export interface SpdxDocument {
  spdxVersion: "SPDX-2.3";
  dataLicense: "CC0-1.0";
  SPDXID: "SPDXRef-DOCUMENT";
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[]; comment?: string };
  packages: SpdxPackage[];
  relationships: Array<{ spdxElementId: string; relationshipType: string; relatedSpdxElement: string }>;
}

export interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  supplier?: string;
  downloadLocation: string;
  filesAnalyzed: boolean;
  licenseConcluded: string;
  licenseDeclared: string;
  copyrightText: string;
  primaryPackagePurpose?: string;
  sourceInfo?: string;
  comment?: string;
  externalRefs?: Array<{ referenceCategory: string; referenceType: string; referenceLocator: string }>;
}

const NOASSERTION = "NOASSERTION";

export function toSpdx(inv: Inventory, o: SpdxOptions): SpdxDocument {
  // SPDX times are UTC without fractions: YYYY-MM-DDThh:mm:ssZ (clause 6.9).
  const created = (o.created ?? new Date().toISOString()).replace(/\.\d+Z$/, "Z");
  const imageId = `SPDXRef-Image-${idPart(o.name)}`;
  const image: SpdxPackage = {
    SPDXID: imageId,
    name: o.name,
    versionInfo: o.buildId,
    downloadLocation: NOASSERTION,
    filesAnalyzed: false,
    licenseConcluded: NOASSERTION,
    licenseDeclared: NOASSERTION,
    copyrightText: NOASSERTION,
    primaryPackagePurpose: "OPERATING_SYSTEM",
    comment: `VM image built by vmkiln (build ${o.buildId})${inv.osName ? ` from ${inv.osName}` : ""}; packages listed by ${inv.manager}`,
  };
  const seen = new Set<string>([imageId]);
  const packages = inv.packages.map((p, i) => toPackage(p, i, inv, seen));
  return {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: `${o.name}-${o.buildId}`,
    // Unique per build (clause 6.5): a URN with a fresh UUID needs no host vmkiln does not own.
    documentNamespace: `urn:uuid:${o.uuid ?? randomUUID()}`,
    creationInfo: { created, creators: [`Tool: vmkiln-${o.toolVersion}`] },
    packages: [image, ...packages],
    relationships: [
      { spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: imageId },
      ...packages.map((p) => ({ spdxElementId: imageId, relationshipType: "CONTAINS", relatedSpdxElement: p.SPDXID })),
    ],
  };
}

function toPackage(p: InstalledPackage, i: number, inv: Inventory, seen: Set<string>): SpdxPackage {
  let id = `SPDXRef-Package-${inv.manager}-${idPart(p.name)}${p.arch ? `-${idPart(p.arch)}` : ""}`;
  if (seen.has(id)) id = `${id}-${i}`;
  seen.add(id);
  const out: SpdxPackage = {
    SPDXID: id,
    name: p.name,
    versionInfo: p.version,
    supplier: supplier(p.supplier),
    downloadLocation: NOASSERTION,
    filesAnalyzed: false,
    licenseConcluded: NOASSERTION,
    // rpm's License tag is often not an SPDX expression (EL's "GPLv2+"): it goes to the comment, the
    // field stays NOASSERTION rather than carrying an invalid expression.
    licenseDeclared: NOASSERTION,
    copyrightText: NOASSERTION,
    externalRefs: [{ referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: purl(p, inv) }],
  };
  if (p.source) out.sourceInfo = `built from the ${inv.manager === "dpkg" ? "Debian source" : "source"} package ${p.source}${p.sourceVersion ? ` ${p.sourceVersion}` : ""}`;
  if (p.license) out.comment = `License tag: ${p.license}`;
  return out;
}

/** SPDXID characters are letters, digits, "." and "-" (clause 3.2). */
function idPart(s: string): string {
  return s.replace(/\+/g, "-plus-").replace(/[^A-Za-z0-9.-]+/g, "-").replace(/^-+|-+$/g, "") || "x";
}

/**
 * Clause 7.5: "Person: name (email)" or "Organization: name (email)". A Maintainer field is
 * "Name <email>"; a team ("Debian X Maintainers", "… Team", a list address) is an organization.
 */
export function supplier(s: string): string {
  const t = s.trim();
  if (t === "") return NOASSERTION;
  const m = /^(.*?)\s*<([^>]*)>\s*$/.exec(t);
  const name = (m ? m[1]! : t).replace(/[()]/g, "").trim();
  const email = m ? m[2]!.trim() : "";
  if (name === "") return NOASSERTION;
  const org = /maintainers|team|project|packagers|developers|inc\.?$|llc|ltd|gmbh|foundation|corporation|red hat|suse|fedora|centos|rocky|alma|oracle|ubuntu|canonical|debian/i.test(name) || /lists\./i.test(email);
  return `${org ? "Organization" : "Person"}: ${name}${email ? ` (${email})` : ""}`;
}

/** package-url for the package: type deb or rpm, the distro's os-release ID as namespace. */
export function purl(p: InstalledPackage, inv: Inventory): string {
  const type = inv.manager === "dpkg" ? "deb" : "rpm";
  const ns = encodeURIComponent((inv.osId || (type === "deb" ? "debian" : "linux")).toLowerCase());
  let version = p.version;
  const q: string[] = [];
  if (p.arch) q.push(`arch=${encodeURIComponent(p.arch)}`);
  if (type === "rpm") {
    const m = /^(\d+):(.*)$/.exec(version);
    if (m) {
      version = m[2]!;
      q.push(`epoch=${m[1]}`);
    }
  }
  if (inv.osId && inv.osVersion) q.push(`distro=${encodeURIComponent(`${inv.osId}-${inv.osVersion}`)}`);
  return `pkg:${type}/${ns}/${encodeURIComponent(p.name)}@${encodeURIComponent(version)}${q.length ? `?${q.join("&")}` : ""}`;
}
