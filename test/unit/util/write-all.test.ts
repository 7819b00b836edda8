// writeAllAt: short writes are continued where they stopped; a write that makes no progress ends
// with an error instead of an endless loop.
import type { FileHandle } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { writeAllAt } from "../../../src/util/write-all.js";

/** A file handle whose writes take at most `step` bytes each, into `file`. */
function shortWriter(file: Buffer, step: number) {
  const calls: Array<[number, number]> = [];
  const fh = {
    write(buf: Buffer, offset: number, length: number, position: number) {
      const n = Math.min(step, length);
      buf.copy(file, position, offset, offset + n);
      calls.push([position, n]);
      return Promise.resolve({ bytesWritten: n, buffer: buf });
    },
  } as unknown as FileHandle;
  return { fh, calls };
}

describe("writeAllAt", () => {
  it("finishes a buffer that the file takes a few bytes at a time, at the right offsets", async () => {
    const file = Buffer.alloc(16, 0x2e);
    const { fh, calls } = shortWriter(file, 3);
    await writeAllAt(fh, Buffer.from("abcdefgh"), 4);
    expect(file.toString()).toBe("....abcdefgh....");
    expect(calls).toEqual([[4, 3], [7, 3], [10, 2]]);
  });

  it("a write of nothing is an error, not a loop", async () => {
    const { fh } = shortWriter(Buffer.alloc(8), 0);
    await expect(writeAllAt(fh, Buffer.from("ab"), 0)).rejects.toMatchObject({ code: "WRITE_NO_PROGRESS" });
  });
});
