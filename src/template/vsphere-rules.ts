// Cross-field rules for source.clone and drivers.vsphere. Reads the interpolated raw tree
// defensively, like rules.ts: a field of the wrong type is the schema's to report.
import { statSync } from "node:fs";
import { resolveLocalPath } from "./normalize.js";
import type { PathSegment } from "./paths.js";

type Rec = Record<string, unknown>;
type Add = (path: PathSegment[], message: string) => void;
const isRec = (v: unknown): v is Rec => v !== null && typeof v === "object" && !Array.isArray(v);

export function checkVsphere(raw: Rec, ctx: { baseDir: string }, add: Add): void {
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
