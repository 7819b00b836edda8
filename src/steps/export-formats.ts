// How each output format is produced from the stopped VM. The export step calls these in the
// order of output.formats and hashes whatever they return without a sha256.
import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import { formatManifest } from "../artifact/manifest-mf.js";
import { buildOvf } from "../artifact/ovf.js";
import { writeOva } from "../artifact/ova.js";
import { convertToStreamOptimized } from "../artifact/vmdk.js";
import { measureStreamOptimizedVmdk, writeStreamOptimizedVmdk, type VmdkExportOptions } from "../artifact/vmdk/export.js";
import type { VmdkStats } from "../artifact/vmdk/stream.js";
import { sha256File } from "../artifact/sums.js";
import { digestFile, type FileIdentity } from "../artifact/digest.js";
import type { BuildContext } from "../pipeline/context.js";
import type { OutputFormat } from "../template/spec.js";
import { applianceOva, applianceOvf } from "./export-appliance.js";
import { ovaSigner } from "./ova-signer.js";

export interface ExportedFile {
  path: string;
  format: string;
  sha256?: string;
  /** Listed in SHA256SUMS and the manifest (false for helper files like `.ova.sha256`). */
  artifact?: boolean;
}

export type FormatExporter = (ctx: BuildContext, stagingDir: string, signal: AbortSignal) => Promise<ExportedFile[]>;

interface Vmdk {
  path: string;
  size: number;
  sha256: string;
  identity: FileIdentity | undefined;
  virtualSize: number;
}

// One streamOptimized VMDK serves the vmdk, ovf and ova formats of a build.
const vmdks = new WeakMap<BuildContext, Promise<Vmdk>>();

function vmdkName(ctx: BuildContext): string {
  return `${ctx.spec.output.basename}-disk1.vmdk`;
}

function streamOptimized(ctx: BuildContext, dir: string, signal: AbortSignal): Promise<Vmdk> {
  let p = vmdks.get(ctx);
  if (!p) {
    p = (async () => {
      const dst = join(dir, vmdkName(ctx));
      const disk = ctx.vm?.diskPath;
      if (disk) {
        // A local disk: vmkiln's own writer (vmdk/export.ts), hashing as it writes; qemu-img for
        // what it does not take, saying why. Both write the LSI Logic adapter type the OVF names.
        const own = await writeStreamOptimizedVmdk(dst, vmdkOptions(ctx, disk, signal));
        if (own.kind === "written") {
          ctx.durations["convert_vmdk_ms"] = own.durationMs;
          logVmdk(ctx, own.stats, own.durationMs);
          return { path: dst, size: own.size, sha256: own.sha256, identity: own.identity, virtualSize: own.virtualSize };
        }
        ctx.events.info(`VMDK export through qemu-img convert: ${own.reason}`, "export");
        const r = await convertToStreamOptimized(disk, dst, { signal, events: ctx.events, sourceFormat: "qcow2" });
        ctx.durations["convert_vmdk_ms"] = r.durationMs;
        return { path: dst, size: r.size, sha256: r.sha256, identity: r.identity, virtualSize: r.virtualSize };
      }
      const started = performance.now();
      const f = await ctx.driver.exportDisk(ctx.vm!, { format: "vmdk", subformat: "streamOptimized", path: dst, compression: "none" }, signal);
      ctx.durations["convert_vmdk_ms"] = Math.round(performance.now() - started);
      const d = await digestFile(dst, ["sha256"], { signal });
      return { path: dst, size: f.size, sha256: d.digests["sha256"]!, identity: d.identity, virtualSize: f.virtualSize };
    })();
    vmdks.set(ctx, p);
  }
  return p;
}

function vmdkOptions(ctx: BuildContext, disk: string, signal: AbortSignal): VmdkExportOptions {
  return { src: disk, fileName: vmdkName(ctx), signal, events: ctx.events };
}

function logVmdk(ctx: BuildContext, s: VmdkStats, ms: number): void {
  const c = s.clusters;
  ctx.events.info(`VMDK written in ${(ms / 1000).toFixed(1)} s: ${c.copied} compressed clusters of the source wrapped as they were, ${c.compressed} compressed`, "export");
}

function ovfXml(ctx: BuildContext, vmdk: Pick<Vmdk, "size" | "virtualSize">): string {
  const q = ctx.spec.drivers.qemu;
  return buildOvf({
    name: ctx.spec.output.basename,
    cpus: q?.cpus ?? 2,
    memoryMiB: q?.memory ?? 1024,
    firmware: q?.firmware ?? "bios",
    osType: ctx.spec.output.ova.osType,
    vmxVersion: ctx.spec.output.ova.vmxVersion,
    disks: [{ fileName: vmdkName(ctx), fileSize: vmdk.size, capacityBytes: vmdk.virtualSize }],
  });
}

const exportQcow2: FormatExporter = async (ctx, dir, signal) => {
  const path = join(dir, `${ctx.spec.output.basename}.qcow2`);
  const started = performance.now();
  await ctx.driver.exportDisk(ctx.vm!, { format: "qcow2", path, compression: ctx.spec.output.compression }, signal);
  ctx.durations["convert_qcow2_ms"] = Math.round(performance.now() - started);
  return [{ path, format: "qcow2" }];
};

const exportRaw: FormatExporter = async (ctx, dir, signal) => {
  const path = join(dir, `${ctx.spec.output.basename}.raw`);
  await ctx.driver.exportDisk(ctx.vm!, { format: "raw", path, compression: "none" }, signal);
  return [{ path, format: "raw" }];
};

const exportVmdk: FormatExporter = async (ctx, dir, signal) => {
  const v = await streamOptimized(ctx, dir, signal);
  return [{ path: v.path, format: "vmdk", sha256: v.sha256 }];
};

/** OVF directory form: descriptor, SHA256 manifest and the disk side by side. */
const exportOvf: FormatExporter = async (ctx, dir, signal) => {
  if (ctx.driver.exportAppliance) return applianceOvf(ctx, dir, signal);
  const v = await streamOptimized(ctx, dir, signal);
  const name = ctx.spec.output.basename;
  const ovfPath = join(dir, `${name}.ovf`);
  const xml = ovfXml(ctx, v);
  await writeFile(ovfPath, xml);
  const ovfSha = await sha256File(ovfPath, signal);
  const mfPath = join(dir, `${name}.mf`);
  await writeFile(mfPath, formatManifest([{ name: `${name}.ovf`, sha256: ovfSha }, { name: vmdkName(ctx), sha256: v.sha256 }]));
  return [{ path: ovfPath, format: "ovf", sha256: ovfSha }, { path: mfPath, format: "mf" }, { path: v.path, format: "vmdk", sha256: v.sha256 }];
};

const exportOva: FormatExporter = async (ctx, dir, signal) => {
  if (ctx.driver.exportAppliance) return applianceOva(ctx, dir, signal);
  // Without the vmdk/ovf formats the VMDK is only an intermediate: it goes straight into the tar.
  const keepVmdk = ctx.spec.output.formats.includes("vmdk") || ctx.spec.output.formats.includes("ovf");
  const name = ctx.spec.output.basename;
  const disk = ctx.vm?.diskPath;
  if (!keepVmdk && disk) {
    // The spill file of pass 1 (changed clusters' deflated bytes) goes into the build dir; m.close()
    // removes it on every way out, and the build dir's own undo is the net behind that.
    const m = await measureStreamOptimizedVmdk({ ...vmdkOptions(ctx, disk, signal), spillDir: ctx.buildDir });
    if (m.kind === "measured") {
      try {
        const started = performance.now();
        const r = await writeOva({
          out: join(dir, `${name}.ova`),
          ovfName: `${name}.ovf`,
          ovfXml: ovfXml(ctx, m),
          disks: [{ name: vmdkName(ctx), stream: m.stream, sha256: m.sha256, size: m.size }],
          events: ctx.events,
          signal,
          sign: await ovaSigner(ctx),
        });
        ctx.durations["convert_vmdk_ms"] = m.measureMs;
        ctx.durations["pack_ova_ms"] = r.durationMs;
        logVmdk(ctx, m.stats, m.measureMs + Math.round(performance.now() - started));
        return [{ path: r.path, format: "ova", sha256: r.sha256 }, { path: `${r.path}.sha256`, format: "sha256", artifact: false }];
      } finally {
        await m.close();
      }
    }
    ctx.events.info(`VMDK export through qemu-img convert: ${m.reason}`, "export");
  }
  const v = await streamOptimized(ctx, keepVmdk ? dir : ctx.buildDir, signal);
  const r = await writeOva({
    out: join(dir, `${name}.ova`),
    ovfName: `${name}.ovf`,
    ovfXml: ovfXml(ctx, v),
    disks: [{ name: vmdkName(ctx), path: v.path, sha256: v.sha256, size: v.size, identity: v.identity }],
    events: ctx.events,
    signal,
    sign: await ovaSigner(ctx),
  });
  ctx.durations["pack_ova_ms"] = r.durationMs;
  return [{ path: r.path, format: "ova", sha256: r.sha256 }, { path: `${r.path}.sha256`, format: "sha256", artifact: false }];
};

export const EXPORTERS: Record<OutputFormat, FormatExporter> = {
  qcow2: exportQcow2,
  raw: exportRaw,
  vmdk: exportVmdk,
  ovf: exportOvf,
  ova: exportOva,
};
