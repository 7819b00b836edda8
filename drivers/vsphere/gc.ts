// `vmkiln gc` for vSphere journal entries: a VM (by inventory path; names are unique per build), an
// uploaded datastore file/folder, or a content-library item a capture was creating (by library id
// and name: the capture refuses names that exist, so the name is this build's). The journal holds
// where to connect (url, ca_file, insecure), never credentials: those come from VSPHERE_USERNAME /
// VSPHERE_PASSWORD.
import { UserError } from "../../src/errors.js";
import type { DriverGc } from "../../src/pipeline/driver.js";
import { ContentLibrary } from "./library.js";
import { RestSession } from "./rest.js";
import { VimSession } from "./session.js";
import { SoapFault } from "./soap.js";

export const gcVsphereEntry: DriverGc = async (entry, signal) => {
  const d = entry.detail ?? {};
  const username = process.env.VSPHERE_USERNAME;
  const password = process.env.VSPHERE_PASSWORD;
  if (!d.url) throw new UserError("VSPHERE_GC", `journal entry for ${entry.id} has no vSphere URL`);
  if (!username || !password) throw new UserError("VSPHERE_CREDENTIALS", `set VSPHERE_USERNAME and VSPHERE_PASSWORD to remove ${entry.id} from ${d.url}`);
  const s = await VimSession.login({ url: d.url, username, password, caFile: d.ca_file, insecure: d.insecure === "true" }, signal);
  try {
    if (d.kind === "vm") {
      await destroyVmAt(s, entry.id, signal);
      return;
    }
    if (d.kind === "library-item") {
      const rest = await RestSession.login(s.origin, s.dispatcher, username, password, signal);
      if (!rest) throw new UserError("VSPHERE_NO_REST", `${d.url} has no REST API to remove library item ${entry.id} with`);
      try {
        await new ContentLibrary(rest).deleteItemsNamed(d.library_id ?? "", d.name ?? "", signal);
      } finally {
        await rest.logout();
      }
      return;
    }
    const dc = d.datacenter ? await s.findByInventoryPath(d.datacenter, signal) : undefined;
    try {
      await s.task("DeleteDatastoreFile_Task", s.sc.fileManager, [["name", entry.id], ["datacenter", dc]], signal);
    } catch (err) {
      if (!(err instanceof SoapFault && /FileNotFound|NotFound/.test(err.faultType))) throw err;
    }
  } finally {
    await s.logout();
  }
};

/** Powers off (if on) and destroys the VM at `path`; a VM that is gone already is fine. */
export async function destroyVmAt(s: VimSession, path: string, signal: AbortSignal): Promise<boolean> {
  const ref = await s.findByInventoryPath(path, signal);
  if (!ref) return false;
  const state = (await s.prop(ref, "runtime.powerState", signal))?.text;
  if (state === "poweredOn" || state === "suspended") {
    try {
      await s.task("PowerOffVM_Task", ref, [], signal);
    } catch (err) {
      if (!(err instanceof SoapFault && err.faultType === "InvalidPowerState")) throw err;
    }
  }
  await s.task("Destroy_Task", ref, [], signal);
  return true;
}

