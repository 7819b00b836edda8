// vSphere-specific steps of the plan (plan.ts). The ISO-install steps of issue 4 (boot command,
// installer media) are written against the same spec sections (boot, install_media); these are the
// vSphere forms: media are uploaded to the datastore, and power-on does not wait for SSH.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseBootCommand } from "../../src/bootcommand/parse.js";
import { buildFloppy } from "../../src/media/fat12.js";
import { writeIsoFile } from "../../src/media/iso9660.js";
import type { BuildContext } from "../../src/pipeline/context.js";
import type { Step } from "../../src/pipeline/step.js";
import type { RenderedText } from "../../src/template/spec.js";
import { sleep } from "../../src/util/abort.js";
import { writeFile } from "node:fs/promises";
import type { VsphereDriver } from "./index.js";

const media = new WeakMap<BuildContext, { path: string; kind: "cd" | "floppy" }>();

async function text(t: RenderedText): Promise<string> {
  return "text" in t ? t.text : readFile(t.file, "utf8");
}

/** install_media → a floppy (FAT12) or CD (ISO 9660) image in the build dir, uploaded by createVm. */
export const installMediaStep: Step = {
  name: "installer media",
  async run(ctx) {
    const m = ctx.spec.install?.media;
    if (!m) return;
    const files: Array<{ name: string; content: Buffer | string }> = [];
    for (const f of m.files) files.push({ name: f.split("/").pop()!, content: await readFile(f) });
    for (const [name, t] of Object.entries(m.content)) files.push({ name, content: await text(t) });
    if (m.type === "floppy") {
      const path = join(ctx.buildDir, "install.flp");
      await writeFile(path, buildFloppy(files, { label: m.label }));
      media.set(ctx, { path, kind: "floppy" });
    } else {
      const path = join(ctx.buildDir, "install.iso");
      await writeIsoFile(path, files, { volumeId: m.label });
      media.set(ctx, { path, kind: "cd" });
    }
  },
};

export const createVsphereVmStep: Step = {
  name: "create vm",
  async run(ctx, signal) {
    const spec = ctx.spec;
    const vm = await ctx.driver.createVm(
      {
        name: `vmkiln-${ctx.buildId}`,
        buildId: ctx.buildId,
        buildDir: ctx.buildDir,
        sourceDisk: undefined,
        installerIso: spec.source.kind === "iso" ? ctx.source?.path : undefined,
        installerMedia: media.get(ctx),
        cidataIso: undefined,
        diskSize: spec.drivers.vsphere?.diskSize,
        firmware: spec.drivers.vsphere?.firmware ?? "bios",
      },
      signal,
    );
    ctx.defer(`destroy vm ${vm.id}`, () => ctx.driver.destroyVm(vm));
    ctx.vm = vm;
  },
};

export const powerOnStep: Step = {
  name: "power on",
  run: (ctx, signal) => ctx.driver.start(ctx.vm!, signal),
};

export const bootCommandStep: Step = {
  name: "boot command",
  async run(ctx, signal) {
    const boot = ctx.spec.install?.boot;
    if (!boot || boot.command.length === 0) return;
    await sleep(boot.waitMs, signal);
    const events = parseBootCommand(boot.command, { values: { name: `vmkiln-${ctx.buildId}`, "ssh.public_key": ctx.sshKey?.publicKey } });
    await ctx.driver.sendKeys!(ctx.vm!, events, signal);
  },
};

export function finishStep(driver: VsphereDriver, after: "template" | "snapshot" | "none"): Step {
  return {
    name: `keep vm (${after})`,
    async run(ctx, signal) {
      const path = await driver.finish(ctx.vm!, after, ctx.buildId, signal);
      ctx.events.info(after === "template" ? `converted ${path} to a template` : after === "snapshot" ? `took snapshot vmkiln-${ctx.buildId} of ${path}` : `left ${path} on vSphere`, "vsphere");
    },
  };
}
