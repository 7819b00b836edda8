// Reads a disk image offline with libguestfs (Debian's libguestfs-tools), never through vmkiln:
// one guestfish session copies the given directories out of the image as tar files (tar-out keeps
// empty files, modes, owners and symlinks as they are), which are then unpacked into a scratch
// directory on the host for the checks. Booting the libguestfs appliance under TCG takes a while,
// so a test opens each image once and reads everything it needs in that session.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { execFileSync } from "node:child_process";

/**
 * Copies `dirs` (absolute guest paths; a missing one is skipped) out of `image` into `dest`, so that
 * the guest's /etc is `dest/etc`. Resolves with `dest`.
 */
export async function readImageTrees(image: string, dirs: string[], dest: string, opts: { format?: string; timeoutMs?: number } = {}): Promise<string> {
  const tars = join(dest, ".tars");
  await mkdir(tars, { recursive: true });
  const script = dirs
    .map((d, i) => `-tar-out "${d}" "${join(tars, `${i}.tar`)}" numericowner:true xattrs:false`)
    .join("\n");
  await guestfish(["--ro", "--format=" + (opts.format ?? "qcow2"), "-a", image, "-i"], script, opts.timeoutMs ?? 600_000);
  for (const [i, d] of dirs.entries()) {
    const tar = join(tars, `${i}.tar`);
    if (!existsSync(tar)) continue;
    const into = join(dest, d);
    await mkdir(into, { recursive: true });
    // Owners are kept (tests run as root) so a check can tell who owns what.
    execFileSync("tar", ["-xf", tar, "-C", into, "--numeric-owner"]);
  }
  return dest;
}

/** A directory's entries in the extracted tree, or undefined when the guest had no such directory. */
export async function entries(root: string, dir: string): Promise<string[] | undefined> {
  const p = join(root, dir);
  if (!existsSync(p)) return undefined;
  return (await readdir(p)).sort();
}

function guestfish(args: string[], script: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    // direct: no libvirt here. force_tcg: this host's /dev/kvm (kvm-pvm) crashes stock guests.
    const child = spawn("guestfish", args, {
      env: { ...process.env, LIBGUESTFS_BACKEND: "direct", LIBGUESTFS_BACKEND_SETTINGS: "force_tcg" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout.resume();
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`guestfish ${args.join(" ")} exited with ${code ?? signal}: ${err.slice(-2000)}`));
    });
    child.stdin.end(script + "\n");
  });
}
