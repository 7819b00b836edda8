import { execFileSync } from "node:child_process";
import { closeSync, openSync, ftruncateSync, writeSync } from "node:fs";
import { join } from "node:path";
import tar from "tar-stream";
import { afterAll, describe, expect, it } from "vitest";
import { BLOCK, MAX_OCTAL_SIZE, decodeSize, encodeGnuHeader, paddingFor } from "../../../src/artifact/tar-header.js";
import { tmp } from "./helpers.js";

/** tar-stream's extract as an independent reader: feed it only the header, take the entry header. */
function decodeWithTarStream(header: Buffer): Promise<tar.Header> {
  return new Promise((resolve, reject) => {
    const ex = tar.extract();
    ex.on("entry", (h) => {
      resolve(h);
      ex.destroy();
    });
    ex.on("error", reject);
    ex.write(header);
  });
}

const NINE_GIB = 9 * 1024 ** 3;
const t = tmp();
afterAll(() => t.cleanup());

describe("GNU tar header", () => {
  it("encodes a 9 GiB member with a base-256 size field", async () => {
    const h = encodeGnuHeader({ name: "disk-1.vmdk", size: NINE_GIB, mtime: 1_700_000_000 });
    expect(h.length).toBe(BLOCK);
    expect(h[124]).toBe(0x80); // base-256 marker
    expect(h.subarray(257, 265).toString("latin1")).toBe("ustar  \0"); // GNU magic, not POSIX
    expect(decodeSize(h)).toBe(NINE_GIB);
    const d = await decodeWithTarStream(h);
    expect(d).toMatchObject({ name: "disk-1.vmdk", size: NINE_GIB, uid: 0, gid: 0, mode: 0o644, type: "file" });
  });

  it("uses octal up to 8 GiB - 1", () => {
    const h = encodeGnuHeader({ name: "a.vmdk", size: MAX_OCTAL_SIZE, mtime: 0 });
    expect(h.subarray(124, 136).toString("latin1")).toBe("77777777777\0");
    expect(decodeSize(encodeGnuHeader({ name: "a", size: MAX_OCTAL_SIZE + 1, mtime: 0 }))).toBe(MAX_OCTAL_SIZE + 1);
  });

  it("GNU tar lists a (sparse) archive whose member claims 9 GiB", () => {
    const path = join(t.dir, "big.tar");
    const fd = openSync(path, "w");
    writeSync(fd, encodeGnuHeader({ name: "big.vmdk", size: NINE_GIB, mtime: 1_700_000_000 }));
    ftruncateSync(fd, BLOCK + NINE_GIB + paddingFor(NINE_GIB).length + 2 * BLOCK); // zeros, no disk used
    closeSync(fd);
    const out = execFileSync("tar", ["--numeric-owner", "-tvf", path], { encoding: "utf8" });
    expect(out).toMatch(/^-rw-r--r-- 0\/0 +9663676416 .* big\.vmdk$/m);
  });

  it("refuses names an OVA must not carry instead of falling back to PAX", () => {
    for (const name of ["../x", "/abs", "dir/x", "é.vmdk", "x".repeat(101), ""]) {
      expect(() => encodeGnuHeader({ name, size: 1, mtime: 0 })).toThrow();
    }
  });
});
