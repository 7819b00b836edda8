// Reading a small file a user names (a CA bundle, a key, a certificate, a passphrase): only a regular
// file, only up to a size no such file reaches, and asynchronously. `--ca-file /dev/zero` read with
// readFileSync took 11 GB and could not be interrupted (the event loop never ran the SIGINT handler);
// readFile filled a 512 MB string before failing.
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { UserError } from "../errors.js";

/** PEM bundles, keys, passphrases: far below this. */
export const MAX_SMALL_FILE_BYTES = 1024 * 1024;

/**
 * The file's text. Errors are UserErrors (exit 2) with `code`, starting with `field` and naming the
 * file, never its content.
 */
export async function readSmallFile(path: string, field: string, code: string, max = MAX_SMALL_FILE_BYTES): Promise<string> {
  let fh;
  try {
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer forever; this way it opens at
    // once and the regular-file check below refuses it. No effect on regular files.
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UserError(code, `${field}: cannot read ${path}: ${e.code === "ENOENT" ? "no such file" : (e.code ?? e.message)}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new UserError(code, `${field}: ${path} is not a regular file`);
    if (st.size > max) throw new UserError(code, `${field}: ${path} is ${st.size} bytes, more than the ${max} such a file holds`);
    return await fh.readFile("utf8");
  } catch (err) {
    if (err instanceof UserError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new UserError(code, `${field}: cannot read ${path}: ${e.code ?? e.message}`);
  } finally {
    await fh.close();
  }
}
