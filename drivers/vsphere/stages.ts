// Layered templates on vSphere (issue 17: the iso → clone → OVA chain). A stage another stage is built
// on is not exported: its VM is kept as a template in the inventory (after: template), and the next
// stage is a clone of it (CloneVM_Task; a linked one with stage_clone: linked). The stage cache
// records the template's inventory path, moref and instanceUuid instead of a disk file
// (src/layers/build.ts), and trusts a hit only while a template is at that path with that
// instanceUuid: one deleted, renamed away or replaced by another VM of the same name is built again.
import { UserError } from "../../src/errors.js";
import type { EventBus } from "../../src/log/events.js";
import type { KeptResult, StageHandoff } from "../../src/pipeline/driver.js";
import type { BuildSpec, VsphereSpec } from "../../src/template/spec.js";
import { VimSession } from "./session.js";

function vsphereOf(spec: BuildSpec): VsphereSpec {
  const v = spec.drivers.vsphere;
  if (!v) throw new UserError("DRIVER_NOT_CONFIGURED", "drivers.vsphere: not configured in the template");
  return v;
}

export const vsphereStageHandoff: StageHandoff = {
  keepSpec(spec) {
    const v = vsphereOf(spec);
    // Nothing is exported from a kept stage (the rules refuse formats with after: template); no SBOM
    // either: it is written with an export only.
    return { ...spec, drivers: { ...spec.drivers, vsphere: { ...v, after: "template" } }, output: { ...spec.output, formats: [] } };
  },

  fromKept(spec, kept) {
    const v = vsphereOf(spec);
    return {
      ...spec,
      source: { kind: "clone", location: kept.location, checksum: { kind: "none" }, format: undefined, linked: v.stageClone === "linked" },
    };
  },

  async verifyKept(spec, kept, events, signal) {
    const v = vsphereOf(spec);
    if (kept.driver !== "vsphere") return `it was made by the ${kept.driver} driver`;
    if (kept.identity.url !== undefined && kept.identity.url !== v.url) return "it was made on another vSphere server";
    if (!v.username || !v.password) return undefined; // the stage build reports the missing credentials
    events.addSecret(v.password);
    const s = await VimSession.login({ url: v.url, username: v.username, password: v.password, caFile: v.caFile, insecure: v.insecure }, signal);
    try {
      return await check(s, kept, signal);
    } finally {
      await s.logout();
    }
  },
};

async function check(s: VimSession, kept: KeptResult, signal: AbortSignal): Promise<string | undefined> {
  const ref = await s.findByInventoryPath(kept.location, signal);
  if (!ref) return `the template ${kept.location} is gone`;
  const props = await s.props(ref, ["config.instanceUuid", "config.template"], signal);
  const uuid = props.get("config.instanceUuid")?.text ?? "";
  if (uuid !== kept.identity.instanceUuid) return `${kept.location} is not the template this stage made (instanceUuid ${uuid || "none"}, recorded ${kept.identity.instanceUuid})`;
  if (props.get("config.template")?.text !== "true") return `${kept.location} is no longer a template (it was converted back to a VM, and may have changed)`;
  return undefined;
}
