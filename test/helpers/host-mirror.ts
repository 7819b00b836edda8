// The Debian mirror this host's apt uses (never a hostname written into code: the test network may
// reach only that mirror). Reads deb822 *.sources files, then the one-line sources.list.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";

export interface HostMirror {
  url: string;
  host: string;
  /** Path part, e.g. "/debian". */
  directory: string;
}

export function hostDebianMirror(suite = "bookworm"): HostMirror {
  const uris: Array<{ uri: string; suites: string[]; components: string[] }> = [];
  const dir = "/etc/apt/sources.list.d";
  for (const f of existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith(".sources")).sort() : []) {
    for (const stanza of readFileSync(`${dir}/${f}`, "utf8").split(/\n\s*\n/)) {
      const field = (k: string) => new RegExp(`^${k}:\\s*(.+)$`, "mi").exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      if (!field("Types").includes("deb")) continue;
      for (const uri of field("URIs")) uris.push({ uri, suites: field("Suites"), components: field("Components") });
    }
  }
  if (existsSync("/etc/apt/sources.list")) {
    for (const line of readFileSync("/etc/apt/sources.list", "utf8").split("\n")) {
      const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$/.exec(line);
      if (m) uris.push({ uri: m[1]!, suites: [m[2]!], components: m[3]!.trim().split(/\s+/) });
    }
  }
  const hit = uris.find((u) => u.suites.includes(suite) && u.components.includes("main") && /^https?:\/\//.test(u.uri));
  if (!hit) throw new Error(`no apt source for ${suite}/main found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list`);
  const u = new URL(hit.uri);
  return { url: hit.uri, host: u.host, directory: u.pathname.replace(/\/+$/, "") || "/" };
}

/**
 * Whether the mirror serves the installer's own components (udebs under debian-installer/): a
 * netboot install downloads most of the installer from there. Some package proxies serve only the
 * regular archive; then a netboot install stops at "Download installer components". Returns the
 * reason it cannot, or undefined when a sample udeb downloads.
 */
export async function installerComponentsProblem(mirror: HostMirror, suite = "bookworm"): Promise<string | undefined> {
  const index = `${mirror.url.replace(/\/+$/, "")}/dists/${suite}/main/debian-installer/binary-amd64/Packages.xz`;
  const r = await fetch(index);
  if (!r.ok) return `GET ${index} → ${r.status}`;
  const text = spawnSync("xz", ["-dc"], { input: Buffer.from(await r.arrayBuffer()), encoding: "utf8", maxBuffer: 64 << 20 }).stdout;
  const file = /^Package: apt-mirror-setup\n(?:.+\n)*?Filename: (\S+)$/m.exec(text)?.[1];
  if (!file) return `${index} lists no apt-mirror-setup udeb`;
  const url = `${mirror.url.replace(/\/+$/, "")}/${file}`;
  const u = await fetch(url);
  await u.arrayBuffer();
  return u.ok ? undefined : `GET ${url} → ${u.status}`;
}
