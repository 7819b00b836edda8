// The qcow2 artifact of a build: zlib-compressed exports go through our flattener (it copies the
// cloud image's compressed clusters as they are and compresses only what the build changed: ~1 s
// instead of ~9 s for the fixture, issue 7); every other case, and any chain the flattener cannot
// reproduce exactly, through `qemu-img convert`, saying why.
import type { EventBus } from "../log/events.js";
import { progressReporter } from "../log/events.js";
import { flattenToCompressedQcow2 } from "./qcow2/flatten.js";
import { convert } from "./qemu-img.js";

export interface Qcow2ExportOptions {
  /** The build disk (a qcow2, usually an overlay on the cached source image). */
  src: string;
  dst: string;
  compression: "zlib" | "zstd" | "none";
  events: EventBus;
  signal: AbortSignal;
}

export interface Qcow2ExportResult {
  method: "flatten" | "qemu-img";
}

export async function exportQcow2(o: Qcow2ExportOptions): Promise<Qcow2ExportResult> {
  const task = "convert to qcow2";
  if (o.compression === "zlib") {
    // The total (the disk's virtual size) is known once the chain is open: the bar starts then.
    let progress: ReturnType<typeof progressReporter> | undefined;
    let r;
    try {
      r = await flattenToCompressedQcow2({
        src: o.src,
        dst: o.dst,
        signal: o.signal,
        onProgress: (done, total) => (progress ??= progressReporter(o.events, task, total)).set(done),
      });
    } finally {
      progress?.end();
    }
    if (r.kind === "flattened") {
      const c = r.clusters;
      o.events.info(`qcow2 written in ${(r.durationMs / 1000).toFixed(1)} s: ${c.copied} compressed clusters of the source reused as they were, ${c.compressed} compressed, ${c.raw} stored uncompressed`, "export");
      return { method: "flatten" };
    }
    o.events.info(`qcow2 export through qemu-img convert: ${r.reason}`, "export");
  }
  await convert({ src: o.src, srcFormat: "qcow2", dst: o.dst, format: "qcow2", compression: o.compression }, o.events, task, o.signal);
  return { method: "qemu-img" };
}
