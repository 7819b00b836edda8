// The fixture guests for integration tests, built (or reused from the cache) by their scripts:
// fixtures/guest/build.sh (Debian 12, MBR + extlinux) and fixtures/guest-gpt/build.sh (Debian 12
// shaped like Debian's genericcloud image: GPT, BIOS boot partition, ESP, GRUB for BIOS and EFI).
// A test helper, so it spawns directly instead of going through src/exec/run.ts: it is not product
// code and must not depend on the code under test.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const MBR_SCRIPT = fileURLToPath(new URL("../../fixtures/guest/build.sh", import.meta.url));
const GPT_SCRIPT = fileURLToPath(new URL("../../fixtures/guest-gpt/build.sh", import.meta.url));

const pending = new Map<string, Promise<string>>();

/**
 * Absolute path of the fixture qcow2 (a read-only base: start guests on an overlay). The first call
 * in a process runs the build script (about 90 s when the recipe changed, instant otherwise); later
 * calls share its promise. The script holds a file lock, so parallel processes build only once.
 */
export function ensureFixtureGuest(): Promise<string> {
  return ensure(MBR_SCRIPT);
}

/** The GPT fixture (boots under BIOS and under UEFI), as ensureFixtureGuest does it. */
export function ensureGptFixtureGuest(): Promise<string> {
  return ensure(GPT_SCRIPT);
}

function ensure(script: string): Promise<string> {
  let p = pending.get(script);
  if (!p) {
    p = runBuild(script).catch((err: unknown) => {
      pending.delete(script); // let a later call retry instead of caching the failure
      throw err;
    });
    pending.set(script, p);
  }
  return p;
}

function runBuild(buildScript: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [buildScript], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "inherit"], // progress (stderr) goes straight to the test output
    });
    let stdout = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code !== 0) {
        reject(new Error(`bash ${buildScript} failed (${signal ?? `exit ${code}`}); see its stderr above`));
        return;
      }
      const lines = stdout.trimEnd().split("\n");
      const image = lines[lines.length - 1]?.trim() ?? "";
      if (!image.startsWith("/")) {
        reject(new Error(`bash ${buildScript}: expected the image path as the last stdout line, got ${JSON.stringify(image)}`));
        return;
      }
      resolve(image);
    });
  });
}
