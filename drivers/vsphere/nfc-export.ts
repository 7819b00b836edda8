// OVF export without ovftool (what `govc export.ovf` does): ExportVm → wait for the HttpNfcLease →
// download each disk (vSphere serves streamOptimized VMDKs) with progress, calling
// HttpNfcLeaseProgress so the lease does not time out → HttpNfcLeaseComplete →
// OvfManager.CreateDescriptor for the descriptor. On any failure the lease is aborted so vCenter
// releases the VM.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { request } from "undici";
import { BuildError, asAbortError } from "../../src/errors.js";
import { progressReporter, type EventBus } from "../../src/log/events.js";
import { sleep } from "../../src/util/abort.js";
import { MoRef, SoapFault, child, children, refOf, textOf, type XNode } from "./soap.js";
import type { VimSession } from "./session.js";

export interface LeaseDevice {
  key: string;
  url: string;
  targetId: string | undefined;
  disk: boolean;
  fileSize: number | undefined;
}

export interface ExportedDisk {
  /** The device key (CreateDescriptor's OvfFile.deviceId). */
  deviceKey: string;
  name: string;
  path: string;
  size: number;
  sha256: string;
  /** Virtual size in bytes, from the streamOptimized header. */
  capacity: number;
}

/** Lease device URLs name the host as "*": the client substitutes the address it connected to. */
export function deviceUrl(raw: string, origin: URL): URL {
  const m = /^(https?:\/\/)\*(:\d+)?(\/.*)?$/.exec(raw);
  if (!m) return new URL(raw);
  return new URL(`${m[1]}${m[2] ? origin.hostname + m[2] : origin.host}${m[3] ?? "/"}`);
}

export function parseDevices(info: XNode | undefined): LeaseDevice[] {
  return children(info, "deviceUrl").map((d) => {
    const size = textOf(d, "fileSize");
    return {
      key: textOf(d, "key") ?? "",
      url: textOf(d, "url") ?? "",
      targetId: textOf(d, "targetId"),
      disk: textOf(d, "disk") === "true",
      fileSize: size === undefined ? undefined : Number(size),
    };
  });
}

/** Capacity (bytes) from a sparse/streamOptimized VMDK header: "KDMV", capacity in sectors at 12. */
export async function vmdkCapacity(path: string): Promise<number> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(20);
    await fh.read(buf, 0, 20, 0);
    if (buf.toString("latin1", 0, 4) !== "KDMV") throw new BuildError("VMDK_HEADER", `${path}: not a sparse VMDK (no KDMV magic)`);
    return Number(buf.readBigUInt64LE(12)) * 512;
  } finally {
    await fh.close();
  }
}

async function waitLeaseReady(s: VimSession, lease: MoRef, signal: AbortSignal): Promise<XNode | undefined> {
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    const p = await s.props(lease, ["state", "error", "info"], signal);
    const state = p.get("state")?.text;
    if (state === "ready") return p.get("info");
    if (state === "error") {
      const fault = child(p.get("error"), "fault");
      throw new SoapFault(fault?.xsiType ?? "LeaseError", textOf(p.get("error"), "localizedMessage") ?? "", "HttpNfcLease");
    }
    await sleep(delay, signal);
  }
}

export interface ExportOptions {
  dir: string;
  basename: string;
  events: EventBus;
  signal: AbortSignal;
  /** How often to renew the lease while downloading (vSphere's lease times out after ~5 min idle). */
  keepAliveMs?: number;
}

export interface ExportResult {
  disks: ExportedDisk[];
  /** OvfManager.CreateDescriptor's descriptor, or undefined when the server lacks it. */
  ovfXml: string | undefined;
}

export async function exportVm(s: VimSession, vm: MoRef, o: ExportOptions): Promise<ExportResult> {
  const { signal, events } = o;
  const [rv] = await s.call("ExportVm", vm, [], signal);
  const lease = refOf(rv)!;
  let percent = 0;
  let done = false;
  const keepAlive = setInterval(() => {
    void s.call("HttpNfcLeaseProgress", lease, [["percent", percent]], AbortSignal.timeout(30_000)).catch((err: unknown) => {
      events.debug(`HttpNfcLeaseProgress: ${(err as Error).message}`, "vsphere");
    });
  }, o.keepAliveMs ?? 20_000);
  try {
    const info = await waitLeaseReady(s, lease, signal);
    const devices = parseDevices(info).filter((d) => d.disk);
    if (devices.length === 0) throw new BuildError("VSPHERE_EXPORT", "the export lease lists no disks");
    const total = devices.reduce((n, d) => n + (d.fileSize ?? 0), 0) || undefined;
    let before = 0;
    const disks: ExportedDisk[] = [];
    for (const [i, dev] of devices.entries()) {
      const name = `${o.basename}-disk${i + 1}.vmdk`;
      const path = join(o.dir, name);
      const { size, sha256 } = await download(s, deviceUrl(dev.url, s.origin), path, {
        events,
        signal,
        task: `download ${name}`,
        onBytes: (n) => {
          if (total) percent = Math.min(99, Math.floor(((before + n) * 100) / total));
        },
      });
      before += size;
      disks.push({ deviceKey: dev.key, name, path, size, sha256, capacity: await vmdkCapacity(path) });
      await s.call("HttpNfcLeaseProgress", lease, [["percent", percent]], signal);
    }
    clearInterval(keepAlive);
    await s.call("HttpNfcLeaseComplete", lease, [], signal);
    done = true;
    return { disks, ovfXml: await createDescriptor(s, vm, o.basename, disks, events, signal) };
  } finally {
    clearInterval(keepAlive);
    if (!done) await s.call("HttpNfcLeaseAbort", lease, [], AbortSignal.timeout(30_000)).catch(() => undefined);
  }
}

async function download(
  s: VimSession,
  url: URL,
  path: string,
  o: { events: EventBus; signal: AbortSignal; task: string; onBytes: (n: number) => void },
): Promise<{ size: number; sha256: string }> {
  try {
    const res = await request(url, {
      method: "GET",
      dispatcher: s.dispatcher,
      signal: o.signal,
      headers: s.soap.sessionCookie ? { cookie: `vmware_soap_session=${s.soap.sessionCookie}` } : {},
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new BuildError("VSPHERE_EXPORT", `download ${url.pathname}: HTTP ${res.statusCode}`);
    }
    const len = Number(res.headers["content-length"] ?? NaN);
    const p = progressReporter(o.events, o.task, Number.isFinite(len) ? len : undefined);
    const hash = createHash("sha256");
    let size = 0;
    // One read of the network stream feeds the file and the digest (the .mf needs it before packing).
    res.body.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      size += chunk.length;
      p.add(chunk.length);
      o.onBytes(size);
    });
    await pipeline(res.body, createWriteStream(path));
    p.end();
    return { size, sha256: hash.digest("hex") };
  } catch (err) {
    if (o.signal.aborted) throw asAbortError(o.signal.reason);
    throw err;
  }
}

/**
 * The vSphere-made descriptor for the downloaded disks. Simulators (vcsim 0.24.2) lack
 * CreateDescriptor: then undefined, and the caller writes its own from the VM's hardware.
 */
async function createDescriptor(s: VimSession, vm: MoRef, name: string, disks: ExportedDisk[], events: EventBus, signal: AbortSignal): Promise<string | undefined> {
  try {
    const [rv] = await s.call(
      "CreateDescriptor",
      s.sc.ovfManager,
      [
        ["obj", vm],
        ["cdp", { ovfFiles: disks.map((d) => ({ deviceId: d.deviceKey, path: d.name, size: d.size })), name, includeImageFiles: false }],
      ],
      signal,
    );
    const errors = children(rv, "error");
    if (errors.length > 0) throw new BuildError("VSPHERE_EXPORT", `CreateDescriptor: ${errors.map((e) => child(e, "fault")?.xsiType ?? "error").join(", ")}`);
    return textOf(rv, "ovfDescriptor");
  } catch (err) {
    if (err instanceof SoapFault && isNotImplemented(err)) {
      events.warn("this server has no OvfManager.CreateDescriptor: writing the OVF descriptor from the VM's hardware", "vsphere");
      return undefined;
    }
    throw err;
  }
}

export function isNotImplemented(err: SoapFault): boolean {
  return err.faultType === "NotImplemented" || err.faultType === "MethodNotFound" || /does not implement|not implemented/i.test(err.faultString);
}
