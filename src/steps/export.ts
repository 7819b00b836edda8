// Export: every artifact is written into a staging dir beside the output dir and moved into place
// only when all of them (and SHA256SUMS, manifest.json) are complete, so a failure or Ctrl-C never
// leaves a half-written artifact where a user would pick it up. The hand-over replaces only an
// output dir vmkiln wrote, file by file (output-guard.ts).
import { constants } from "node:fs";
import { copyFile, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { sha256File, sha256sums } from "../artifact/sums.js";
import { buildManifest } from "../artifact/manifest.js";
import { progressReporter } from "../log/events.js";
import { BuildError } from "../errors.js";
import type { BuildContext } from "../pipeline/context.js";
import type { Step } from "../pipeline/step.js";
import { EXPORTERS } from "./export-formats.js";
import { MANIFEST_JSON, SHA256SUMS, downloadName, replaceOutput } from "./output-guard.js";

export function stagingDirFor(outputDir: string, buildId: string): string {
  return join(dirname(outputDir), `.${buildId}.vmkiln-partial`);
}

export const exportStep: Step = {
  name: "export",
  async run(ctx, signal) {
    const out = ctx.spec.output;
    const staging = stagingDirFor(out.directory, ctx.buildId);
    await mkdir(dirname(out.directory), { recursive: true });
    // Exclusive: a directory (or link) already at this name is not ours to write into or remove.
    await mkdir(staging, { mode: 0o755 });
    ctx.journal.add({ kind: "dir", path: staging });
    ctx.defer(`remove ${staging}`, async () => {
      await rm(staging, { recursive: true, force: true });
      ctx.journal.done({ kind: "dir", path: staging });
    });

    for (const format of out.formats) {
      for (const file of await EXPORTERS[format](ctx, staging, signal)) {
        const name = file.path.slice(staging.length + 1);
        if (file.artifact === false || ctx.artifacts.some((a) => a.name === name)) continue;
        const { size } = await stat(file.path);
        let sha256 = file.sha256;
        if (sha256 === undefined) {
          const p = progressReporter(ctx.events, `sha256 ${name}`, size);
          sha256 = await sha256File(file.path, signal, (n) => p.add(n));
          p.end();
        }
        ctx.artifacts.push({ name, path: join(out.directory, name), size, sha256, format: file.format });
      }
    }
    await stageDownloads(ctx, staging, signal);
    // "wx": never over a file a download or an exporter already put there.
    await writeFile(join(staging, SHA256SUMS), sha256sums(ctx.artifacts), { flag: "wx" });
    await writeFile(join(staging, MANIFEST_JSON), JSON.stringify(buildManifest(ctx), null, 2) + "\n", { flag: "wx" });

    // Hand over (--force and ownership were checked in the prepare step; ownership is checked again).
    const r = await replaceOutput(staging, out.directory, ctx.buildId);
    ctx.journal.done({ kind: "dir", path: staging });
    if (r.leftBehind) ctx.events.warn(`files that appeared in the old ${out.directory} during the build were kept in ${r.leftBehind}`);
    for (const a of ctx.artifacts) ctx.events.emit({ type: "artifact", name: a.name, path: a.path, size: a.size, sha256: a.sha256 });
  },
};

/** Files the file provisioner downloaded from the guest: artifacts like the disks (format "download"). */
async function stageDownloads(ctx: BuildContext, staging: string, signal: AbortSignal): Promise<void> {
  for (const d of ctx.downloads ?? []) {
    const name = downloadName(d.name);
    if (ctx.artifacts.some((a) => a.name === name || a.name.startsWith(`${name}/`) || name.startsWith(`${a.name}/`))) {
      throw new BuildError("DOWNLOAD_NAME_TAKEN", `file download to ${d.name}: an artifact of this build has that name; pick another destination`);
    }
    const to = join(staging, name);
    await mkdir(dirname(to), { recursive: true });
    // The download waits in the build dir, which is removed at the end: move it, copy only across
    // file systems. Neither replaces a file already there (rename would; link does not).
    if (await stat(to).then(() => true, () => false)) {
      throw new BuildError("DOWNLOAD_NAME_TAKEN", `file download to ${d.name}: the output already has that file; pick another destination`);
    }
    await rename(d.path, to).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EXDEV") throw err;
      return copyFile(d.path, to, constants.COPYFILE_EXCL);
    });
    const { size } = await stat(to);
    const sha256 = await sha256File(to, signal);
    ctx.artifacts.push({ name, path: join(ctx.spec.output.directory, name), size, sha256, format: "download" });
  }
}
