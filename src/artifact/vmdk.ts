// Disk → streamOptimized VMDK with qemu-img, and the VMDK's SHA-256 for the OVA manifest.
//
// Why the digest is computed here (issue 3, "each byte of the disk is read once"): in the OVA the .mf
// comes right after the OVF and *before* the disks (ova.md "Tar"), so every disk digest must be known
// before the first disk byte enters the tar; SHA-256 state cannot be patched afterwards, and the
// OVA's own digest (for <name>.ova.sha256) is computed over the final bytes as they are written.
// qemu-img cannot write a VMDK to a pipe (it creates the file, reopens it and seeks), so we cannot
// tee its output. The cheapest honest order is: qemu-img writes the VMDK; we read it once right away
// (hot in the page cache) for its digest and note its identity; writeOva() then streams it once into
// the tar, hashing the OVA output and checking the identity before and after (a disk changed in
// between is caught and the OVA deleted). The source disk is read once (by qemu-img); the VMDK is
// read once to hash, once to pack.
import { rm } from "node:fs/promises";
import { BuildError, throwIfAborted } from "../errors.js";
import type { EventBus } from "../log/events.js";
import { digestFile, type FileIdentity } from "./digest.js";
import { convert, imageInfo } from "./qemu-img.js";

export { parseProgress } from "./qemu-img.js";

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
  /** The VMDK's identity when it was hashed (lets writeOva skip a second hash). */
  identity: FileIdentity | undefined;
  virtualSize: number;
  durationMs: number;
}

export async function convertToStreamOptimized(src: string, dst: string, opts: ConvertOptions): Promise<ConvertResult> {
  const { signal, events } = opts;
  const started = Date.now();
  throwIfAborted(signal);
  const sourceFormat = opts.sourceFormat ?? (await imageInfo(src, signal)).format;
  const task = `convert ${dst.split("/").pop()} (vmdk)`;
  try {
    await convert(
      { src, srcFormat: sourceFormat, dst, format: "vmdk", subformat: "streamOptimized", adapterType: "lsilogic", ...(opts.hwVersion !== undefined ? { hwVersion: opts.hwVersion } : {}) },
      events,
      task,
      signal,
    );
    const info = await imageInfo(dst, signal, "vmdk");
    if (info.format !== "vmdk" || info.createType !== "streamOptimized") {
      throw new BuildError("VMDK_INVALID", `${dst}: qemu-img wrote ${info.format}/${info.createType ?? "?"}, not a streamOptimized vmdk`);
    }
    const { size, digests, head, identity } = await digestFile(dst, ["sha256"], { signal, headBytes: 4 });
    if (head.toString("latin1") !== "KDMV") throw new BuildError("VMDK_INVALID", `${dst}: missing KDMV magic`);
    return { path: dst, size, sha256: digests["sha256"]!, identity, virtualSize: info.virtualSize, durationMs: Date.now() - started };
  } catch (err) {
    await rm(dst, { force: true });
    throw err;
  }
}
