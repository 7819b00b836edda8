// Atomic small-file writes: temp file in the same directory, fsync, rename, fsync the directory,
// so a crash leaves either the old file or the new one, never a torn one.
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { link, lstat, open, rename, rm, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Writes a small file atomically: temp in the same dir, fsync, rename, fsync the dir. */
export async function writeFileAtomic(path: string, data: string | Buffer, dir = dirname(path)): Promise<void> {
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fh = await open(tmp, "wx", 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

export async function fsyncDir(dir: string): Promise<void> {
  // Makes the rename durable; some filesystems refuse fsync on a directory, which is harmless.
  try {
    const fh = await open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort */
  }
}

/**
 * A new temp file beside `dest`, opened exclusively: O_CREAT|O_EXCL never opens an existing file and
 * never follows a symlink planted at the name (O_NOFOLLOW says so twice), and the name is
 * unpredictable. Publish it with `publishFile`.
 */
export async function createTempBeside(dest: string, mode = 0o644): Promise<{ path: string; fh: FileHandle }> {
  // The name's start only: a destination near NAME_MAX (255 bytes) must still get a temp name.
  const path = join(dirname(dest), `.${basename(dest).slice(0, 100)}.${randomBytes(8).toString("hex")}.partial`);
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  return { path, fh };
}

/** Thrown by publishFile when `dest` exists and replacing was not asked for. */
export class DestinationExistsError extends Error {
  constructor(readonly dest: string) {
    super(`${dest} already exists`);
  }
}

/**
 * Moves a finished temp file to `dest`. With `replace` this is rename (which replaces a file or a
 * symlink itself, never what a symlink points to); without it the move must not replace anything:
 * link() fails with EEXIST when `dest` exists, atomically, then the temp name is removed.
 * File systems without hard links fall back to check-then-rename.
 */
export async function publishFile(tmp: string, dest: string, opts: { replace: boolean }): Promise<void> {
  if (opts.replace) {
    await rename(tmp, dest);
    return;
  }
  try {
    await link(tmp, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new DestinationExistsError(dest);
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw err;
    if (await lstat(dest).then(() => true, () => false)) throw new DestinationExistsError(dest);
    await rename(tmp, dest);
    return;
  }
  await unlink(tmp);
}
