// qemu-img through the exec wrapper, shared by the drivers (disks) and artifact code (VMDK for
// OVF/OVA). Argv builders are pure and table-tested.
import { run } from "../exec/run.js";
import type { EventBus } from "../log/events.js";
import { progressReporter } from "../log/events.js";

const INSTALL_HINT = "apt-get install qemu-utils";

export interface ImageInfo {
  format: string;
  virtualSize: number;
  actualSize: number;
  backingFile?: string;
  compressionType?: string;
  createType?: string;
}

export function overlayArgs(base: string, baseFormat: string, overlay: string, sizeBytes?: number): string[] {
  const args = ["create", "-f", "qcow2", "-b", base, "-F", baseFormat, overlay];
  if (sizeBytes !== undefined) args.push(String(sizeBytes));
  return args;
}

export interface ConvertOptions {
  src: string;
  srcFormat?: string;
  dst: string;
  format: "qcow2" | "raw" | "vmdk" | "vdi";
  compression?: "zlib" | "zstd" | "none";
  /** vmdk subformat, e.g. streamOptimized */
  subformat?: string;
  /** vmdk descriptor ddb.adapterType (lsilogic matches the OVF's SCSI controller; default ide). */
  adapterType?: string;
  /** vmdk descriptor virtualHWVersion. */
  hwVersion?: number;
  /** Parallel coroutines with out-of-order writes: about 2x faster for compressed qcow2 here. */
  parallel?: boolean;
}

export function convertArgs(o: ConvertOptions): string[] {
  const args = ["convert", "-p"];
  if (o.srcFormat) args.push("-f", o.srcFormat);
  args.push("-O", o.format);
  const opts: string[] = [];
  if (o.format === "qcow2" && o.compression && o.compression !== "none") {
    args.push("-c");
    opts.push(`compression_type=${o.compression}`);
  }
  if (o.format === "vmdk" && o.subformat) opts.push(`subformat=${o.subformat}`);
  if (o.format === "vmdk" && o.adapterType) opts.push(`adapter_type=${o.adapterType}`);
  if (o.format === "vmdk" && o.hwVersion !== undefined) opts.push(`hwversion=${o.hwVersion}`);
  if (opts.length) args.push("-o", opts.join(","));
  // -W (out-of-order writes) is not allowed for streamOptimized VMDK, which must be written in order.
  if (o.parallel !== false && !(o.format === "vmdk" && o.subformat === "streamOptimized")) args.push("-m", "8", "-W");
  args.push(o.src, o.dst);
  return args;
}

export async function imageInfo(path: string, signal: AbortSignal, format?: string): Promise<ImageInfo> {
  const args = ["info", "--output=json"];
  if (format) args.push("-f", format);
  args.push(path);
  const r = await run("qemu-img", args, { signal, timeoutMs: 60_000, installHint: INSTALL_HINT });
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  const spec = (j["format-specific"] as { data?: Record<string, unknown> } | undefined)?.data ?? {};
  const info: ImageInfo = {
    format: String(j.format),
    virtualSize: Number(j["virtual-size"]),
    actualSize: Number(j["actual-size"] ?? 0),
  };
  if (typeof j["backing-filename"] === "string") info.backingFile = j["backing-filename"];
  if (typeof spec["compression-type"] === "string") info.compressionType = spec["compression-type"];
  if (typeof spec["create-type"] === "string") info.createType = spec["create-type"];
  return info;
}

export async function createOverlay(base: string, baseFormat: string, overlay: string, sizeBytes: number | undefined, signal: AbortSignal): Promise<void> {
  await run("qemu-img", overlayArgs(base, baseFormat, overlay, sizeBytes), { signal, timeoutMs: 60_000, installHint: INSTALL_HINT });
}

export async function createDisk(path: string, sizeBytes: number, signal: AbortSignal): Promise<void> {
  await run("qemu-img", ["create", "-f", "qcow2", path, String(sizeBytes)], { signal, timeoutMs: 60_000, installHint: INSTALL_HINT });
}

export async function resize(path: string, format: string, sizeBytes: number, signal: AbortSignal): Promise<void> {
  await run("qemu-img", ["resize", "-f", format, path, String(sizeBytes)], { signal, timeoutMs: 60_000, installHint: INSTALL_HINT });
}

/** Converts with a progress bar fed from `qemu-img convert -p` ("    (12.34/100%)" lines). */
export async function convert(o: ConvertOptions, events: EventBus, task: string, signal: AbortSignal): Promise<number> {
  const started = performance.now();
  const progress = progressReporter(events, task, 100, "percent");
  try {
    await run("qemu-img", convertArgs(o), {
      signal,
      timeoutMs: 0,
      installHint: INSTALL_HINT,
      onLine: (_s, line) => {
        const pct = parseProgress(line);
        if (pct !== undefined) progress.set(pct);
      },
    });
  } finally {
    progress.end();
  }
  return Math.round(performance.now() - started);
}

/** `qemu-img convert -p` prints `    (12.34/100%)` followed by `\r`; returns the percentage. */
export function parseProgress(line: string): number | undefined {
  const m = /\(\s*(\d+(?:\.\d+)?)\s*\/\s*100%\)/.exec(line);
  return m ? Number(m[1]) : undefined;
}

/** `qemu-img check`: exit 0 clean, 3 leaks only; anything else is corruption. */
export async function check(path: string, signal: AbortSignal): Promise<{ exitCode: number; output: string }> {
  const r = await run("qemu-img", ["check", path], { signal, timeoutMs: 120_000, reject: false, installHint: INSTALL_HINT });
  return { exitCode: r.exitCode, output: r.stdout + r.stderr };
}

/**
 * QEMU's name for a disk that is a byte range of a file: the format driver over a `raw` driver with
 * offset and size over the file (QEMU block/raw-format.c raw_open: "offset", "size"), written as a
 * `json:` pseudo-filename so it can be a qcow2 overlay's backing file. QEMU 7.2 reads a
 * streamOptimized VMDK (compressed grains) through it.
 */
export function sliceFilename(path: string, format: string, slice: { offset: number; size: number }): string {
  return "json:" + JSON.stringify({ driver: format, file: { driver: "raw", offset: slice.offset, size: slice.size, file: { driver: "file", filename: path } } });
}
