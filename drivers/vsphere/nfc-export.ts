// OVF export without ovftool (what `govc export.ovf` does): ExportVm → wait for the HttpNfcLease
// to leave `initializing` → download each disk (vSphere serves streamOptimized VMDKs) with
// progress, calling HttpNfcLeaseProgress well within the lease's own timeout so vSphere does not
// end it → HttpNfcLeaseComplete → OvfManager.CreateDescriptor for the descriptor. On any failure
// the lease is aborted so vCenter releases the VM.
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
  /** How often to renew the lease while downloading; by default keepAlivePeriodMs(info.leaseTimeout). */
  keepAliveMs?: number;
}

export interface ExportResult {
  disks: ExportedDisk[];
  /** OvfManager.CreateDescriptor's descriptor for the downloaded disks. */
  ovfXml: string;
}

/**
 * How often to call HttpNfcLeaseProgress on a lease that times out after `leaseTimeoutS` seconds
 * without one (HttpNfcLeaseInfo.leaseTimeout, 300 on vSphere): a third of it, so two calls may be
 * late before the lease is lost, and at most 20 s (govc renews every 2 s: govmomi nfc/lease_updater.go
 * LeaseUpdater.run). 20 s when the lease names no timeout.
 */
export function keepAlivePeriodMs(leaseTimeoutS: number | undefined): number {
  if (leaseTimeoutS === undefined || !Number.isFinite(leaseTimeoutS) || leaseTimeoutS <= 0) return 20_000;
  return Math.max(200, Math.min(20_000, Math.floor((leaseTimeoutS * 1000) / 3)));
}

export async function exportVm(s: VimSession, vm: MoRef, o: ExportOptions): Promise<ExportResult> {
  const { events } = o;
  const [rv] = await s.call("ExportVm", vm, [], o.signal);
  const lease = refOf(rv)!;
  // A keep-alive the server refuses (the lease timed out, or is gone) ends the download at once.
  const lost = new AbortController();
  const signal = AbortSignal.any([o.signal, lost.signal]);
  let percent = 0;
  let done = false;
  let keepAlive: ReturnType<typeof setInterval> | undefined;
  let timeoutS: number | undefined;
  try {
    const info = await waitLeaseReady(s, lease, o.signal);
    const t = Number(textOf(info, "leaseTimeout"));
    timeoutS = Number.isFinite(t) && t > 0 ? t : undefined;
    // The lease times out from the moment it is ready: renew it from then on, whatever the download does.
    keepAlive = setInterval(() => {
      void s.call("HttpNfcLeaseProgress", lease, [["percent", percent]], AbortSignal.timeout(30_000)).catch((err: unknown) => {
        events.debug(`HttpNfcLeaseProgress: ${(err as Error).message}`, "vsphere");
        if (err instanceof SoapFault) lost.abort(err);
      });
    }, o.keepAliveMs ?? keepAlivePeriodMs(timeoutS));
    const devices = parseDevices(info).filter((d) => d.disk);
    if (devices.length === 0) throw new BuildError("VSPHERE_EXPORT", "the export lease lists no disks");
    const total = devices.reduce((n, d) => n + (d.fileSize ?? 0), 0) || undefined;
    let before = 0;
    const disks: ExportedDisk[] = [];
    for (const [i, dev] of devices.entries()) {
      const name = `${o.basename}-disk${i + 1}.vmdk`;
      const path = join(o.dir, name);
      try {
        const { size, sha256 } = await download(s, deviceUrl(dev.url, s.origin), path, {
          events,
          signal,
          userSignal: o.signal,
          task: `download ${name}`,
          onBytes: (n) => {
            if (total) percent = Math.min(99, Math.floor(((before + n) * 100) / total));
          },
        });
        before += size;
        disks.push({ deviceKey: dev.key, name, path, size, sha256, capacity: await vmdkCapacity(path) });
        await s.call("HttpNfcLeaseProgress", lease, [["percent", percent]], signal);
      } catch (err) {
        throw await leaseFailure(s, lease, err, o.signal, timeoutS);
      }
    }
    clearInterval(keepAlive);
    await s.call("HttpNfcLeaseComplete", lease, [], o.signal);
    done = true;
    return { disks, ovfXml: await createDescriptor(s, vm, o.basename, disks, o.signal) };
  } finally {
    clearInterval(keepAlive);
    if (!done) await s.call("HttpNfcLeaseAbort", lease, [], AbortSignal.timeout(30_000)).catch(() => undefined);
  }
}

/**
 * The error for a download that failed: when vSphere has put the lease in the error state (it timed
 * out, or the server ended it), that is what the user must read, not the broken connection it caused.
 */
async function leaseFailure(s: VimSession, lease: MoRef, err: unknown, userSignal: AbortSignal, timeoutS: number | undefined): Promise<unknown> {
  if (userSignal.aborted) return asAbortError(userSignal.reason);
  const p = await s.props(lease, ["state", "error"], AbortSignal.timeout(30_000)).catch(() => undefined);
  const refused = err instanceof SoapFault && err.method === "HttpNfcLeaseProgress" ? err : undefined;
  if (p?.get("state")?.text !== "error" && !refused) return err;
  const fault = child(p?.get("error"), "fault")?.xsiType ?? refused?.faultType ?? "error";
  const message = textOf(p?.get("error"), "localizedMessage") ?? refused?.faultString ?? "";
  return new BuildError("VSPHERE_EXPORT_LEASE", `the export lease ended before the disks were downloaded: vSphere reports ${fault}${message ? ` (${message})` : ""}`, {
    hint:
      fault === "Timedout"
        ? `vSphere ends a lease that gets no HttpNfcLeaseProgress within its leaseTimeout (${timeoutS ?? "?"} s): the connection to vSphere may have stalled`
        : undefined,
    cause: err,
  });
}

async function download(
  s: VimSession,
  url: URL,
  path: string,
  o: { events: EventBus; signal: AbortSignal; userSignal: AbortSignal; task: string; onBytes: (n: number) => void },
): Promise<{ size: number; sha256: string }> {
  try {
    // The disk URL is authorized by the SOAP session, as every vSphere client sends it (govmomi's
    // soap.Client.DownloadRequest through its cookie jar; VMware's export_vm.py sample).
    const res = await request(url, {
      method: "GET",
      dispatcher: s.dispatcher,
      signal: o.signal,
      headers: s.soap.sessionCookie ? { cookie: `vmware_soap_session=${s.soap.sessionCookie}` } : {},
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      const why = res.statusCode === 401 || res.statusCode === 403 ? " (the host did not accept the vSphere session)" : "";
      throw new BuildError("VSPHERE_EXPORT", `download ${url.pathname}: HTTP ${res.statusCode}${why}`);
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
    if (o.userSignal.aborted) throw asAbortError(o.userSignal.reason);
    if (o.signal.aborted) throw o.signal.reason;
    throw err;
  }
}

/**
 * vSphere's descriptor for the downloaded disks (OvfManager.CreateDescriptor, after
 * HttpNfcLeaseComplete, as govc export.ovf does it: govmomi cli/export/ovf.go ovfx.Run). The
 * References name the files by the lease's device keys. There is no other source of the
 * descriptor: a server without CreateDescriptor cannot be exported from.
 */
async function createDescriptor(s: VimSession, vm: MoRef, name: string, disks: ExportedDisk[], signal: AbortSignal): Promise<string> {
  let rv: XNode | undefined;
  try {
    [rv] = await s.call(
      "CreateDescriptor",
      s.sc.ovfManager,
      [
        ["obj", vm],
        ["cdp", { ovfFiles: disks.map((d) => ({ deviceId: d.deviceKey, path: d.name, size: d.size })), name, includeImageFiles: false }],
      ],
      signal,
    );
  } catch (err) {
    if (err instanceof SoapFault && isNotImplemented(err)) {
      throw new BuildError("VSPHERE_EXPORT", `this vSphere server has no OvfManager.CreateDescriptor (${err.faultType}): the OVF descriptor of an export comes from vSphere`, { cause: err });
    }
    throw err;
  }
  const errors = children(rv, "error");
  if (errors.length > 0) throw new BuildError("VSPHERE_EXPORT", `CreateDescriptor: ${errors.map((e) => child(e, "fault")?.xsiType ?? "error").join(", ")}`);
  const xml = textOf(rv, "ovfDescriptor");
  if (!xml) throw new BuildError("VSPHERE_EXPORT", "CreateDescriptor returned no OVF descriptor");
  return xml;
}

export function isNotImplemented(err: SoapFault): boolean {
  return err.faultType === "NotImplemented" || err.faultType === "MethodNotFound" || /does not implement|not implemented/i.test(err.faultString);
}
