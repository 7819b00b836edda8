// The SBOM step (issue 18 item 2): at the end of provisioning, before generalize removes the build
// user, the guest's package manager lists what is installed; the list becomes
// `<basename>.spdx.json` (SPDX 2.3) in the output directory, in SHA256SUMS and manifest.json, through
// the same path as a file the build downloads. Driver-blind: it needs only the SSH session.
import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import { VMKILN_VERSION } from "../artifact/manifest.js";
import { BuildError } from "../errors.js";
import type { Step } from "../pipeline/step.js";
import { shq } from "../ssh/session.js";
import { inventoryScript, parseInventory } from "../sbom/inventory.js";
import { toSpdx } from "../sbom/spdx.js";

export const sbomStep: Step = {
  name: "sbom",
  async run(ctx, signal) {
    if (!ctx.spec.output.sbom) return;
    const text = await ctx.ssh!.capture(`sh -c ${shq(inventoryScript())}`, { signal, timeoutMs: 120_000 });
    let inv;
    try {
      inv = parseInventory(text);
    } catch (err) {
      throw new BuildError("SBOM_LISTING", `sbom: could not read the guest's package list: ${(err as Error).message}`);
    }
    if (!inv) {
      ctx.events.warn("sbom: the guest has neither dpkg-query nor rpm: no SBOM written (set output.sbom: false to silence this)", "sbom");
      return;
    }
    const doc = toSpdx(inv, { name: ctx.spec.output.basename, buildId: ctx.buildId, toolVersion: VMKILN_VERSION });
    const name = `${ctx.spec.output.basename}.spdx.json`;
    const path = join(ctx.buildDir, name);
    await writeFile(path, JSON.stringify(doc, null, 2) + "\n");
    (ctx.downloads ??= []).push({ name, path, format: "spdx" });
    ctx.events.info(`sbom: ${inv.packages.length} ${inv.manager} packages${inv.osName ? ` (${inv.osName})` : ""} → ${name}`, "sbom");
  },
};
