// Installer media for installs without network: a CD or floppy image with the kickstart/preseed/
// autoinstall files, labelled as the installer expects (OEMDRV for Anaconda, cidata for subiquity).
import { readFile, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { UserError } from "../errors.js";
import { renderEntry } from "../http/render.js";
import { buildFloppy } from "../media/fat12.js";
import { writeIsoFile } from "../media/iso9660.js";
import type { Step } from "../pipeline/step.js";
import { renderScope } from "./render-scope.js";

export const installerMediaStep: Step = {
  name: "installer media",
  async run(ctx) {
    const m = ctx.spec.install?.media;
    if (!m) return;
    const files: Array<{ name: string; content: Buffer | string }> = [];
    for (const f of m.files) {
      const content = await readFile(f).catch((err: NodeJS.ErrnoException) => {
        throw new UserError("FILE_NOT_FOUND", `install_media: cannot read ${f}: ${err.code ?? "error"}`, { cause: err });
      });
      files.push({ name: basename(f), content });
    }
    const scope = renderScope(ctx);
    for (const [name, entry] of Object.entries(m.content)) files.push({ name, content: await renderEntry(entry, scope, `install_media.content["${name}"]`) });
    const dupe = files.map((f) => f.name).find((n, i, all) => all.indexOf(n) !== i);
    if (dupe) throw new UserError("MEDIA_DUPLICATE", `install_media: two files named ${dupe}`);

    const path = join(ctx.buildDir, m.type === "floppy" ? "install-media.img" : "install-media.iso");
    if (m.type === "floppy") await writeFile(path, buildFloppy(files, { label: m.label }));
    else await writeIsoFile(path, files, { volumeId: m.label });
    ctx.installerMedia = { path, kind: m.type };
    ctx.events.info(`${m.type} "${m.label}" with ${files.map((f) => f.name).join(", ")}`, "media");
  },
};
