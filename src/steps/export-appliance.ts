// The ovf/ova formats for drivers with their own OVF export (VirtualBox's `VBoxManage export`): the
// hypervisor writes the descriptor, disks and manifest; the OVA packer then rewrites the manifest in
// the canonical SHA256 form vSphere accepts and fixes what importers reject (pack-ova.ts).
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { formatManifest } from "../artifact/manifest-mf.js";
import { packOva } from "../artifact/pack-ova.js";
import { ovaSigner } from "./ova-signer.js";
import { sha256File } from "../artifact/sums.js";
import type { BuildContext } from "../pipeline/context.js";
import type { ExportedFile } from "./export-formats.js";

export async function applianceOva(ctx: BuildContext, stagingDir: string, signal: AbortSignal): Promise<ExportedFile[]> {
  const name = ctx.spec.output.basename;
  const work = join(ctx.buildDir, "appliance-ova");
  await rm(work, { recursive: true, force: true });
  const started = performance.now();
  const a = await ctx.driver.exportAppliance!(ctx.vm!, { dir: work, basename: name }, signal);
  ctx.durations["export_appliance_ms"] = Math.round(performance.now() - started);
  const r = await packOva(a.ovf, { out: join(stagingDir, `${name}.ova`), events: ctx.events, signal, vmxVersion: ctx.spec.output.ova.vmxVersion, sign: await ovaSigner(ctx) });
  ctx.durations["pack_ova_ms"] = r.durationMs;
  await rm(work, { recursive: true, force: true });
  return [{ path: r.path, format: "ova", sha256: r.sha256 }, { path: `${r.path}.sha256`, format: "sha256", artifact: false }];
}

/** OVF directory form: as exported, with the manifest rewritten as canonical SHA256 lines. */
export async function applianceOvf(ctx: BuildContext, stagingDir: string, signal: AbortSignal): Promise<ExportedFile[]> {
  const name = ctx.spec.output.basename;
  const work = join(ctx.buildDir, "appliance-ovf");
  await rm(work, { recursive: true, force: true });
  const a = await ctx.driver.exportAppliance!(ctx.vm!, { dir: work, basename: name }, signal);
  const out: ExportedFile[] = [];
  const digests: Array<{ name: string; sha256: string }> = [];
  for (const [i, f] of [a.ovf, ...a.files].entries()) {
    const dst = join(stagingDir, basename(f));
    await rename(f, dst);
    const sha256 = await sha256File(dst, signal);
    digests.push({ name: basename(f), sha256 });
    out.push({ path: dst, format: i === 0 ? "ovf" : "vmdk", sha256 });
  }
  const mf = join(stagingDir, `${name}.mf`);
  await writeFile(mf, formatManifest(digests));
  if (a.manifest) ctx.events.debug(`replaced ${basename(a.manifest)}: ${(await readFile(a.manifest, "utf8")).trim().split("\n")[0]} …`, "export");
  await rm(work, { recursive: true, force: true });
  return [out[0]!, { path: mf, format: "mf" }, ...out.slice(1)];
}
