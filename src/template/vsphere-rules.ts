// Cross-field rules for source.clone and drivers.vsphere. Reads the interpolated raw tree
// defensively, like rules.ts: a field of the wrong type is the schema's to report.
import { statSync } from "node:fs";
import { resolveLocalPath } from "./normalize.js";
import type { PathSegment } from "./paths.js";

type Rec = Record<string, unknown>;
type Add = (path: PathSegment[], message: string) => void;
const isRec = (v: unknown): v is Rec => v !== null && typeof v === "object" && !Array.isArray(v);

export function checkVsphere(raw: Rec, ctx: { baseDir: string; env?: NodeJS.ProcessEnv | undefined }, add: Add): void {
  const drivers = isRec(raw.drivers) ? raw.drivers : {};
  const source = isRec(raw.source) ? raw.source : {};
  if (source.clone !== undefined) {
    for (const d of Object.keys(drivers)) {
      if (d !== "vsphere") add(["drivers", d], "cannot build from source.clone (only vsphere clones an existing VM)");
    }
  }
  if (isRec(source.clone)) {
    const c = source.clone;
    if (c.template === undefined && c.content_library === undefined) add(["source", "clone"], "one of template or content_library is required");
    if (c.template !== undefined && c.content_library !== undefined) add(["source", "clone"], "only one of template or content_library may be given");
    if (c.content_library !== undefined && (c.linked === true || c.linked === "true"))
      add(["source", "clone", "linked"], "a content-library OVF template is deployed as a new VM; a linked clone needs a VM with a snapshot (source.clone.template)");
  }
  if (isRec(source.iso) && source.iso.content_library !== undefined) {
    const others = Object.keys(drivers).filter((d) => d !== "vsphere");
    if (others.length > 0) add(["source", "iso", "content_library"], `only the vsphere driver reads content libraries (drivers.${others.join(", drivers.")} cannot); use path or url`);
    if (source.iso.checksum !== undefined) add(["source", "iso", "checksum"], "not used with content_library: the ISO is already on vSphere (remove it)");
  }
  const v = drivers.vsphere;
  if (!isRec(v)) return;
  checkConnection(v, ctx.env ?? process.env, add);
  if (v.after === "library" && !isRec(v.library_destination)) add(["drivers", "vsphere", "library_destination"], "required with after: library (the content library to capture into)");
  if (v.library_destination !== undefined && v.after !== "library") add(["drivers", "vsphere", "library_destination"], "only used with after: library");
  // vSphere does not expand a disk that has a parent, and a linked clone's disk is a delta disk on
  // the source's snapshot ("Disks with parents cannot be expanded"); Packer refuses the pair too.
  if (isRec(source.clone) && (source.clone.linked === true || source.clone.linked === "true") && v.disk_size !== undefined) {
    add(["drivers", "vsphere", "disk_size"], "cannot grow a linked clone's disk (a delta disk on the source's snapshot); remove disk_size or set source.clone.linked: false");
  }
  if (source.iso !== undefined && v.disk_size === undefined) {
    add(["drivers", "vsphere", "disk_size"], "required for an installer build (source.iso): the size of the thin disk to install on");
  }
  if (source.cloud_image !== undefined) add(["source", "cloud_image"], "the vsphere driver builds from source.iso or source.clone, not a cloud image");
  if (typeof v.ca_file === "string" && v.ca_file !== "") {
    const abs = resolveLocalPath(ctx.baseDir, v.ca_file);
    let ok = false;
    try {
      ok = statSync(abs).isFile();
    } catch {
      ok = false;
    }
    if (!ok) add(["drivers", "vsphere", "ca_file"], `file not found: ${abs}`);
  }
  if ((v.insecure === true || v.insecure === "true") && typeof v.ca_file === "string") {
    add(["drivers", "vsphere", "insecure"], "insecure: true turns verification off, so ca_file would be ignored; use one of them");
  }
  const after = v.after ?? "export";
  const output = isRec(raw.output) ? raw.output : {};
  if (after !== "export" && Array.isArray(output.formats) && output.formats.length > 0) {
    const keeps = after === "library" ? "captures the VM into a content library" : "keeps the VM on vSphere";
    add(["drivers", "vsphere", "after"], `after: ${String(after)} ${keeps} and exports nothing; remove output.formats or use after: export`);
  }
}

/**
 * The connection is checked before any work (issue 12): a bad URL or missing credentials used to
 * surface only when the driver connected, after the source was fetched. Messages never echo the URL
 * or a credential (a URL may carry `user:password@`).
 */
function checkConnection(v: Rec, env: NodeJS.ProcessEnv, add: Add): void {
  if (typeof v.url === "string" && v.url !== "") {
    let u: URL | undefined;
    try {
      u = new URL(v.url);
    } catch {
      add(["drivers", "vsphere", "url"], "not a URL: expected https://<vCenter or ESXi host>");
    }
    // The driver speaks to /sdk (SOAP) and /api or /rest on the same origin, always over TLS.
    if (u && u.protocol !== "https:") add(["drivers", "vsphere", "url"], `must be https:// (got ${u.protocol}//): vSphere serves its API over TLS`);
    else if (u && (u.username !== "" || u.password !== ""))
      add(["drivers", "vsphere", "url"], "must not carry credentials (user:password@): use drivers.vsphere.username/password or VSPHERE_USERNAME/VSPHERE_PASSWORD");
  }
  // Interpolation already ran: `${env.X}` in the template is a value here; unset falls back to the
  // variables the driver and `vmkiln gc` read.
  for (const [field, variable] of [["username", "VSPHERE_USERNAME"], ["password", "VSPHERE_PASSWORD"]] as const) {
    const given = v[field];
    if (given === undefined) {
      if (!env[variable]) add(["drivers", "vsphere", field], `required: set drivers.vsphere.${field} (e.g. "\${env.X}") or ${variable}`);
    } else if (given === "") add(["drivers", "vsphere", field], `must not be empty (unset it to use ${variable})`);
  }
}
