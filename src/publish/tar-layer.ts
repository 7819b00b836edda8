// The containerDisk layer: a tar holding `disk/` and `disk/<name>` owned by 107:107, the qemu user
// KubeVirt's launcher reads the disk as (kubevirt/kubevirt docs/container-register-disks.md: `FROM
// scratch` + `ADD --chown=107:107 <disk> /disk/`). Written as segments (headers in memory, the disk
// as a byte range of the file) so the layer is never materialized on disk or in memory.
//
// Uncompressed on purpose: the qcow2 is already compressed cluster by cluster, gzip over it gains a
// few percent for a full extra CPU pass on push and pull; and an uncompressed layer can be resumed
// from any byte. OCI's `application/vnd.oci.image.layer.v1.tar` is the media type; its diff_id is
// its own digest. GNU headers (base-256 size above 8 GiB), as Go's archive/tar (containers/image,
// containerd) reads them.
import type { Segment } from "./blob.js";

const BLOCK = 512;
const MAX_OCTAL = 0o77777777777;
export const QEMU_UID = 107;

export interface TarMember {
  name: string;
  type: "file" | "dir";
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** file only */
  size?: number;
  path?: string;
}

export function tarHeader(m: TarMember): Buffer {
  if (Buffer.byteLength(m.name) > 100 || !/^[\x21-\x7e]+$/.test(m.name)) throw new Error(`tar member name ${JSON.stringify(m.name)} must be printable ASCII of at most 100 bytes`);
  const b = Buffer.alloc(BLOCK);
  b.write(m.name, 0, "ascii");
  octal(b, 100, 8, m.mode);
  octal(b, 108, 8, m.uid);
  octal(b, 116, 8, m.gid);
  const size = m.type === "file" ? m.size ?? 0 : 0;
  if (size <= MAX_OCTAL) octal(b, 124, 12, size);
  else {
    b[124] = 0x80;
    let n = size;
    for (let i = 11; i >= 1; i--) {
      b[124 + i] = n % 256;
      n = Math.floor(n / 256);
    }
  }
  octal(b, 136, 12, Math.max(0, Math.floor(m.mtime)));
  b[156] = m.type === "dir" ? 0x35 : 0x30;
  b.write("ustar  \0", 257, "ascii");
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "ascii");
  return b;
}

function octal(b: Buffer, off: number, len: number, v: number): void {
  const s = v.toString(8).padStart(len - 1, "0");
  if (s.length > len - 1) throw new Error(`tar field overflow: ${v}`);
  b.write(s + "\0", off, "ascii");
}

/** The layer's segments: headers, the disk's bytes, padding, the two zero blocks that end a tar. */
export function containerDiskSegments(disk: { path: string; size: number; name: string }, mtime: number): Segment[] {
  const dir: TarMember = { name: "disk/", type: "dir", mode: 0o755, uid: QEMU_UID, gid: QEMU_UID, mtime };
  const file: TarMember = { name: `disk/${disk.name}`, type: "file", mode: 0o644, uid: QEMU_UID, gid: QEMU_UID, mtime, size: disk.size, path: disk.path };
  const pad = disk.size % BLOCK === 0 ? 0 : BLOCK - (disk.size % BLOCK);
  return [
    { data: tarHeader(dir) },
    { data: tarHeader(file) },
    { path: disk.path, start: 0, length: disk.size },
    { data: Buffer.alloc(pad + 2 * BLOCK) },
  ];
}
