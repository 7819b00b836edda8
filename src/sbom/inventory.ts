// What is installed in the guest, asked of its package manager over the build's SSH session:
// dpkg-query (Debian, Ubuntu) or rpm (Fedora, EL, SUSE). One command prints a marker line, the
// package manager's own listing (tab-separated fields in a fixed order) and /etc/os-release, so one
// round trip does it. Only installed packages count: dpkg's db:Status-Abbrev must be "ii" (a removed
// package whose config files remain is "rc").

export interface InstalledPackage {
  name: string;
  version: string;
  arch: string;
  /** Maintainer (dpkg) or Vendor (rpm), as the package states it; "" when absent. */
  supplier: string;
  /** Source package and version (dpkg), when they differ from the binary's. */
  source?: string;
  sourceVersion?: string;
  /** rpm's License tag (dpkg has no machine-readable license field). */
  license?: string;
}

export interface Inventory {
  manager: "dpkg" | "rpm";
  /** /etc/os-release ID and VERSION_ID ("debian", "12"). */
  osId: string;
  osVersion: string;
  osName: string;
  packages: InstalledPackage[];
}

const DPKG_FORMAT = "${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\t${Maintainer}\\t${source:Package}\\t${source:Version}\\n";
const RPM_FORMAT = "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{VENDOR}\\t%{LICENSE}\\n";

/** A POSIX sh script: a marker line, the listing, then os-release after a second marker. */
export function inventoryScript(): string {
  return [
    "if command -v dpkg-query >/dev/null 2>&1; then",
    "  echo '@@vmkiln-sbom dpkg'",
    `  dpkg-query -W -f '${DPKG_FORMAT}'`,
    "elif command -v rpm >/dev/null 2>&1; then",
    "  echo '@@vmkiln-sbom rpm'",
    `  rpm -qa --queryformat '${RPM_FORMAT}'`,
    "else",
    "  echo '@@vmkiln-sbom none'",
    "fi",
    "echo '@@vmkiln-sbom os-release'",
    "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null || true",
  ].join("\n");
}

/** Parses the script's output; undefined when the guest has neither dpkg nor rpm. */
export function parseInventory(text: string): Inventory | undefined {
  const lines = text.split("\n");
  const head = lines.findIndex((l) => l.startsWith("@@vmkiln-sbom "));
  if (head < 0) throw new Error("the package listing did not start with its marker");
  const manager = lines[head]!.slice("@@vmkiln-sbom ".length).trim();
  const osAt = lines.findIndex((l, i) => i > head && l.trim() === "@@vmkiln-sbom os-release");
  const body = lines.slice(head + 1, osAt < 0 ? undefined : osAt);
  const os = parseOsRelease(osAt < 0 ? "" : lines.slice(osAt + 1).join("\n"));
  if (manager !== "dpkg" && manager !== "rpm") return undefined;
  const packages: InstalledPackage[] = [];
  for (const line of body) {
    if (line.trim() === "") continue;
    const f = line.split("\t");
    if (manager === "dpkg") {
      const [status, name, version, arch, maintainer, src, srcVersion] = f;
      if (!status || !status.startsWith("ii") || !name || !version) continue;
      const p: InstalledPackage = { name, version, arch: arch ?? "", supplier: maintainer ?? "" };
      if (src && (src !== name || (srcVersion && srcVersion !== version))) {
        p.source = src;
        if (srcVersion) p.sourceVersion = srcVersion;
      }
      packages.push(p);
    } else {
      const [name, evr, arch, vendor, license] = f;
      if (!name || !evr || name === "gpg-pubkey") continue;
      // EPOCHNUM is 0 without an epoch: show "1:2.3-4" only when there is one.
      const version = evr.startsWith("0:") ? evr.slice(2) : evr;
      const p: InstalledPackage = { name, version, arch: arch === "(none)" ? "" : (arch ?? ""), supplier: vendor === "(none)" ? "" : (vendor ?? "") };
      if (license && license !== "(none)") p.license = license;
      packages.push(p);
    }
  }
  packages.sort((a, b) => (a.name === b.name ? (a.arch < b.arch ? -1 : 1) : a.name < b.name ? -1 : 1));
  return { manager, osId: os["ID"] ?? "", osVersion: os["VERSION_ID"] ?? "", osName: os["PRETTY_NAME"] ?? os["NAME"] ?? "", packages };
}

export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!;
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1).replace(/\\(["\\$`])/g, "$1");
    out[m[1]!] = v;
  }
  return out;
}
