// Independent readers for the ISO and FAT writers' tests: genisoimage's isoinfo, xorriso (libisofs),
// util-linux's blkid, mtools and dosfstools' fsck.fat. They are test dependencies like any other
// (.ci/install-deps.sh installs them): a machine without one fails those tests, loudly, rather than
// skipping the only checks that read our images with someone else's code.
import { execFileSync } from "node:child_process";
import { accessSync, constants, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";

const SEARCH = (process.env.PATH ?? "").split(delimiter).concat(["/usr/sbin", "/sbin"]);

/** Absolute path of a program (blkid lives in /usr/sbin, which a non-root PATH may lack). */
function findTool(name: string): string | undefined {
  for (const dir of SEARCH) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // keep looking
    }
  }
  return undefined;
}

export function hasTool(name: string): boolean {
  return findTool(name) !== undefined;
}

/** Fails (with the install hint) when any of `names` is missing; call it inside a test. */
export function requireTools(...names: string[]): void {
  const missing = names.filter((n) => !hasTool(n));
  if (missing.length > 0) {
    throw new Error(`missing test tools: ${missing.join(", ")}; install them with: bash .ci/install-deps.sh (Debian: genisoimage xorriso mtools dosfstools util-linux)`);
  }
}

function toolPath(name: string): string {
  return findTool(name) ?? name;
}

const MAX = 64 * 1024 * 1024;

export function tool(name: string, args: string[]): string {
  return execFileSync(toolPath(name), args, {
    encoding: "utf8",
    maxBuffer: MAX,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LC_ALL: "C.UTF-8" },
  });
}

export function toolBytes(name: string, args: string[]): Buffer {
  return execFileSync(toolPath(name), args, { maxBuffer: MAX, stdio: ["ignore", "pipe", "pipe"] });
}

/** `isoinfo -l` listing: the file names (without `.` and `..`). */
export function isoinfoNames(iso: string, mode: "-J" | "-R" | "primary"): string[] {
  const args = mode === "primary" ? ["-l", "-i", iso] : [mode, "-l", "-i", iso];
  return tool("isoinfo", args)
    .split("\n")
    .map((l) => /^[-d][-rwx]{9}\s.*\]\s\s(.*?) ?$/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && n !== "." && n !== "..");
}

/** Extracts the whole tree with xorriso's osirrox and returns name -> content. */
export function xorrisoExtract(iso: string, into: string): Map<string, Buffer> {
  mkdirSync(into, { recursive: true });
  tool("xorriso", ["-osirrox", "on", "-indev", iso, "-extract", "/", into]);
  return new Map(readdirSync(into).map((n) => [n, readFileSync(join(into, n))]));
}

/** Parses `blkid -p -o export` into key/value pairs. */
export function blkid(iso: string): Record<string, string> {
  const out = tool("blkid", ["-p", "-o", "export", iso]);
  return Object.fromEntries(
    out
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
}
