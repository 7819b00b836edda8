// Positional writes that finish: FileHandle.write may write less than asked, so the rest is written
// again from where it stopped; a write that makes no progress at all ends with an error instead of
// looping forever.
import type { FileHandle } from "node:fs/promises";
import { BuildError } from "../errors.js";

/** Writes all of `buf` at `position`. */
export async function writeAllAt(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten === 0) throw new BuildError("WRITE_NO_PROGRESS", `a write of ${buf.length - done} bytes at offset ${position + done} made no progress`);
    done += bytesWritten;
  }
}
