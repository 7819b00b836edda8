// Where each member of a tar (an OVA) lies in the file, found by reading the headers only and
// seeking past the data: `vmkiln test` boots the VMDK inside an OVA through QEMU's raw driver at
// that offset (no second copy of the disk). Sizes are read with tar-header.ts decodeSize; GNU long
// names ('L') and PAX `path` records ('x') are honoured, as POSIX.1-2001 pax and GNU tar write them.
import { open } from "node:fs/promises";
import { UserError } from "../errors.js";
import { BLOCK, decodeSize } from "./tar-header.js";

export interface TarMember {
  name: string;
  /** The header's type flag ("0" regular file, "5" directory…). */
  type: string;
  /** Byte offset of the member's data in the archive. */
  offset: number;
  size: number;
}

const MAX_META = 1024 * 1024;

function field(h: Buffer, start: number, len: number): string {
  const raw = h.subarray(start, start + len);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? len : nul).toString("utf8");
}

function checksumOk(h: Buffer): boolean {
  const stored = parseInt(field(h, 148, 8).trim() || "x", 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return stored === sum;
}

/** Lists the archive's members with their data offsets. Throws a UserError naming the file on a damaged header. */
export async function tarIndex(path: string): Promise<TarMember[]> {
  const fh = await open(path, "r").catch((err: NodeJS.ErrnoException) => {
    throw new UserError("ARTIFACT_UNREADABLE", `${path}: ${err.code === "ENOENT" ? "no such file" : err.message}`);
  });
  try {
    const { size: fileSize } = await fh.stat();
    const out: TarMember[] = [];
    const h = Buffer.alloc(BLOCK);
    let pos = 0;
    let longName: string | undefined;
    let paxPath: string | undefined;
    for (;;) {
      if (pos + BLOCK > fileSize) throw new UserError("OVA_TRUNCATED", `${path}: the archive ends inside a header at byte ${pos} (no end-of-archive marker)`);
      await fh.read(h, 0, BLOCK, pos);
      if (h.every((b) => b === 0)) return out;
      if (!checksumOk(h)) throw new UserError("OVA_BAD_HEADER", `${path}: the tar header at byte ${pos} has a bad checksum: not a tar archive, or damaged`);
      let size: number;
      try {
        size = decodeSize(h);
      } catch (err) {
        throw new UserError("OVA_BAD_HEADER", `${path}: the tar header at byte ${pos}: ${(err as Error).message}`);
      }
      const type = String.fromCharCode(h[156]! || 0x30);
      const dataAt = pos + BLOCK;
      if (dataAt + size > fileSize) throw new UserError("OVA_TRUNCATED", `${path}: member at byte ${pos} claims ${size} bytes but the file ends at ${fileSize}`);
      if (type === "L" || type === "x") {
        if (size > MAX_META) throw new UserError("OVA_BAD_HEADER", `${path}: a ${type === "L" ? "long-name" : "pax"} record of ${size} bytes at byte ${pos}`);
        const buf = Buffer.alloc(size);
        await fh.read(buf, 0, size, dataAt);
        if (type === "L") longName = buf.toString("utf8").replace(/\0+$/, "");
        else {
          // "%d path=value\n" records (POSIX pax "extended header").
          for (const m of buf.toString("utf8").matchAll(/^\d+ ([^=]+)=(.*)$/gm)) if (m[1] === "path") paxPath = m[2];
        }
      } else if (type !== "g") {
        const prefix = field(h, 345, 155);
        const base = field(h, 0, 100);
        const name = paxPath ?? longName ?? (prefix && h.subarray(257, 262).toString("latin1") === "ustar" ? `${prefix}/${base}` : base);
        out.push({ name, type, offset: dataAt, size });
        longName = undefined;
        paxPath = undefined;
      }
      pos = dataAt + Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    await fh.close();
  }
}
