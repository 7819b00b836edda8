// Disk → streamOptimized VMDK with qemu-img, and the VMDK's SHA-256 for the OVA manifest.
//
// Why the digest is computed here (issue 3, "each byte of the disk is read once"): in the OVA the .mf
// comes right after the OVF and *before* the disks (ova.md "Tar"), so every disk digest must be known
// before the first disk byte enters the tar; SHA-256 state cannot be patched afterwards, and the
// OVA's own digest (for <name>.ova.sha256) is computed over the final bytes as they are written.
// qemu-img cannot write a VMDK to a pipe (it creates the file, reopens it and seeks), so we cannot
// tee its output. The cheapest honest order is: qemu-img writes the VMDK; we read it once right away
// (hot in the page cache) for its digest; writeOva() then streams it once into the tar, hashing the
// OVA output and re-checking the disk digest on the fly (a disk changed in between is caught and the
// OVA deleted). The source disk is read once (by qemu-img); the VMDK is read once to hash, once to pack.
import { rm } from "node:fs/promises";
import { BuildError, throwIfAborted } from "../errors.js";
import { run, spawnTool, toToolError } from "../exec/run.js";
import type { EventBus } from "../log/events.js";
import { digestFile } from "./digest.js";

export interface ConvertOptions {
  signal: AbortSignal;
  events: EventBus;
  /** Source format (qcow2, raw...). Probed with `qemu-img info` when omitted. */
  sourceFormat?: string;
  /** Sets the VMDK descriptor's virtualHWVersion (qemu-img hwversion=). */
  hwVersion?: number;
}

export interface ConvertResult {
  path: string;
  /** Real byte size of the VMDK file (what OVF File ovf:size must say). */
  size: number;
  sha256: string;
  virtualSize: number;
  durationMs: number;
}

const QEMU_IMG_HINT = "install qemu-utils (Debian/Ubuntu) or qemu-img (Fedora)";

/** Pure argv builder (DESIGN.md "External processes"). */
export function convertArgs(src: string, dst: string, sourceFormat: string, hwVersion?: number): string[] {
  const opts = ["subformat=streamOptimized", "adapter_type=lsilogic"];
  if (hwVersion !== undefined) opts.push(`hwversion=${hwVersion}`);
  return ["convert", "-p", "-f", sourceFormat, "-O", "vmdk", "-o", opts.join(","), src, dst];
}

/** `qemu-img convert -p` prints `    (12.34/100%)` followed by `\r`; returns the percentage. */
export function parseProgress(text: string): number | undefined {
  const m = /\(\s*(\d+(?:\.\d+)?)\s*\/\s*100%\)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

export async function qemuImgInfo(path: string, signal: AbortSignal): Promise<{ format: string; virtualSize: number; createType?: string }> {
  const r = await run("qemu-img", ["info", "--output=json", path], { signal, timeoutMs: 60_000, installHint: QEMU_IMG_HINT });
  const info = JSON.parse(r.stdout) as { format: string; "virtual-size": number; "format-specific"?: { data?: { "create-type"?: string } } };
  const createType = info["format-specific"]?.data?.["create-type"];
  return { format: info.format, virtualSize: info["virtual-size"], ...(createType ? { createType } : {}) };
}

export async function convertToStreamOptimized(src: string, dst: string, opts: ConvertOptions): Promise<ConvertResult> {
  const { signal, events } = opts;
  const started = Date.now();
  throwIfAborted(signal);
  const sourceFormat = opts.sourceFormat ?? (await qemuImgInfo(src, signal)).format;
  const task = `convert ${dst.split("/").pop()} (vmdk)`;
  try {
    await convertWithProgress(convertArgs(src, dst, sourceFormat, opts.hwVersion), task, opts);
    const info = await qemuImgInfo(dst, signal);
    if (info.format !== "vmdk" || info.createType !== "streamOptimized") {
      throw new BuildError("VMDK_INVALID", `${dst}: qemu-img wrote ${info.format}/${info.createType ?? "?"}, not a streamOptimized vmdk`);
    }
    const { size, digests, head } = await digestFile(dst, ["sha256"], { signal, headBytes: 4 });
    if (head.toString("latin1") !== "KDMV") throw new BuildError("VMDK_INVALID", `${dst}: missing KDMV magic`);
    return { path: dst, size, sha256: digests["sha256"]!, virtualSize: info.virtualSize, durationMs: Date.now() - started };
  } catch (err) {
    await rm(dst, { force: true });
    throw err;
  }
}

/**
 * run() splits output on "\n" only, and qemu-img ends each progress update with "\r", so onLine would
 * see one line at the very end. We start the process through run.ts's spawnTool (still the one place
 * that spawns) and split stdout on "\r" and "\n" ourselves.
 */
async function convertWithProgress(args: string[], task: string, opts: ConvertOptions): Promise<void> {
  const { signal, events } = opts;
  const child = spawnTool("qemu-img", args, { signal, timeoutMs: 0, installHint: QEMU_IMG_HINT });
  let buf = "";
  let last = -1;
  let lastEmit = 0;
  const onText = (text: string) => {
    const pct = parseProgress(text);
    if (pct === undefined || pct === last) return;
    last = pct;
    const now = Date.now();
    if (pct < 100 && now - lastEmit < 100) return;
    lastEmit = now;
    events.emit({ type: "progress", task, done: pct, total: 100, unit: "percent" });
  };
  child.stdout?.on("data", (chunk: Buffer) => {
    buf += chunk.toString("utf8");
    const parts = buf.split(/[\r\n]/);
    buf = parts.pop() ?? "";
    for (const p of parts) onText(p);
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString("utf8").split(/[\r\n]+/)) if (line.trim()) events.debug(line, "qemu-img[stderr]");
  });
  try {
    await child;
  } catch (err) {
    throw toToolError("qemu-img", args, err, { signal, installHint: QEMU_IMG_HINT });
  } finally {
    events.emit({ type: "progress-end", task });
  }
}
