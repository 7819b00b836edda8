// The descriptor rules both VirtualBox's reader and vSphere enforce (ova.md "Descriptor"). Used by
// verify, by pack-ova's self-check and by buildOvf's tests, so the writer and the checker agree.
import { finding, type Finding } from "./findings.js";
import { VMW_NS, type ParsedOvf, type XNode } from "./ovf-parse.js";

/** Units VirtualBox accepts for memory (anything else is an import error there). */
const MEMORY_UNITS = new Set(["megabytes", "mb", "byte*2^20"]);
/** SCSI controllers VirtualBox maps; all three exist on vSphere. pvscsi/VirtualSCSI are not portable. */
const SCSI_SUBTYPES = new Set(["lsilogic", "buslogic", "lsilogicsas"]);
/** ResourceType 20 subtypes VirtualBox accepts; anything else is an error there. */
const OTHER_STORAGE_SUBTYPES = new Set(["ahci", "vmware.sata.ahci", "virtioscsi", "nvme"]);
/** ResourceTypes VirtualBox's reader maps; others must be ovf:required="false". */
const KNOWN_RESOURCE_TYPES = new Set([3, 4, 5, 6, 10, 14, 15, 16, 17, 20, 23, 35]);
const HOST_RESOURCE = /^(?:ovf:\/\/?|\/)(disk|file)\/(.+)$/;

export interface OvfRuleOptions {
  /** Real sizes of the files beside the descriptor (OVA members or directory files). */
  fileSizes?: ReadonlyMap<string, number>;
  /** Name used in findings (the .ovf member). */
  member?: string;
}

export function checkOvfRules(ovf: ParsedOvf, opts: OvfRuleOptions = {}): Finding[] {
  const out: Finding[] = [];
  const m = opts.member;
  const add = (code: string, message: string, member = m) => out.push(finding(code, message, member));

  if (ovf.envelopeLocal !== "Envelope" || ovf.version === undefined) {
    add("OVF_NAMESPACE", `root element is {${ovf.envelopeUri}}${ovf.envelopeLocal}, not an OVF 0.9/1.0/2.0 Envelope`);
  }
  if (ovf.namespaces["vmw"] !== undefined && ovf.namespaces["vmw"] !== VMW_NS) {
    add("OVF_NAMESPACE_VMW", `prefix vmw is bound to ${ovf.namespaces["vmw"]}, not ${VMW_NS}`);
  }

  // References
  const fileIds = new Map<string, string>();
  const hrefs = new Set<string>();
  for (const f of ovf.files) {
    if (!f.id) add("OVF_FILE_ID", `File ${f.href || "(no href)"} has no ovf:id`);
    else if (fileIds.has(f.id)) add("OVF_FILE_ID", `File id ${f.id} is used twice`);
    fileIds.set(f.id, f.href);
    if (!f.href) {
      add("OVF_FILE_HREF", `File ${f.id} has no ovf:href`);
      continue;
    }
    const hrefProblem = badHref(f.href);
    if (hrefProblem) add("OVF_FILE_HREF", `File ${f.id} href ${JSON.stringify(f.href)} ${hrefProblem}`);
    if (hrefs.has(f.href)) add("OVF_FILE_HREF", `href ${f.href} is referenced twice`);
    hrefs.add(f.href);
    if (f.sizeText !== undefined && f.size === undefined) add("OVF_FILE_SIZE", `File ${f.href} ovf:size ${JSON.stringify(f.sizeText)} is not a byte count`);
    if (opts.fileSizes) {
      const real = opts.fileSizes.get(f.href);
      if (real === undefined) add("OVF_FILE_MISSING", `referenced file ${f.href} is not in the package`, f.href);
      else if (f.size !== undefined && f.size !== real) {
        add("OVF_FILE_SIZE", `File ${f.href} ovf:size=${f.size} but the file has ${real} bytes`, f.href);
      }
    }
  }

  // DiskSection
  const diskIds = new Set<string>();
  for (const d of ovf.disks) {
    const missing = (["diskId", "capacity", "format"] as const).filter((k) => !d[k]);
    if (missing.length) add("OVF_DISK_FIELDS", `Disk ${d.diskId || "(no id)"} lacks ${missing.map((k) => `ovf:${k}`).join(", ")}`);
    if (d.capacity && !/^\d+$/.test(d.capacity.trim())) add("OVF_DISK_FIELDS", `Disk ${d.diskId} capacity ${d.capacity} is not a number`);
    if (d.fileRef !== undefined && !fileIds.has(d.fileRef)) add("OVF_DISK_FILEREF", `Disk ${d.diskId} references unknown file ${d.fileRef}`);
    diskIds.add(d.diskId);
  }

  if (ovf.virtualSystems.length === 0) add("OVF_NO_VIRTUAL_SYSTEM", "no VirtualSystem element");
  for (const vs of ovf.virtualSystems) {
    const who = `VirtualSystem ${vs.id || "(no id)"}`;
    if (!vs.hasHardwareSection) add("OVF_NO_HARDWARE", `${who} has no VirtualHardwareSection (vSphere requires one)`);
    if (vs.systemTypes.length === 0) add("OVF_SYSTEM_TYPE", `${who} has no vssd:VirtualSystemType (vSphere needs vmx-NN)`);
    for (const t of vs.systemTypes) {
      if (!/^vmx-\d{2,}$/.test(t)) add("OVF_SYSTEM_TYPE", `${who} VirtualSystemType ${t} is not vmx-NN (vSphere rejects it)`);
    }
    for (const order of vs.systemOrder) {
      if (!isSorted(order)) add("OVF_VSSD_ORDER", `${who} System children are not in schema order: ${order.join(", ")}`);
    }
    for (const item of vs.items) {
      const label = `${item.element} ${item.instanceId ?? "?"} (ResourceType ${item.resourceType ?? "?"})`;
      if (!isSorted(item.order)) {
        add("OVF_RASD_ORDER", `${label}: children not in schema (alphabetical) order: ${item.order.join(", ")}`);
      }
      const sub = (item.resourceSubType ?? "").trim();
      switch (item.resourceType) {
        case 4: {
          const units = (item.allocationUnits ?? "").replace(/\s+/g, "").toLowerCase();
          if (!MEMORY_UNITS.has(units)) {
            add("OVF_MEMORY_UNITS", `${label}: memory AllocationUnits ${JSON.stringify(item.allocationUnits ?? "")} (use "byte * 2^20" or MegaBytes)`);
          }
          break;
        }
        case 6:
          if (!SCSI_SUBTYPES.has(sub.toLowerCase())) {
            add("OVF_SCSI_SUBTYPE", `${label}: SCSI controller subtype ${JSON.stringify(sub)} is not portable (use lsilogic)`);
          }
          break;
        case 20:
          if (!OTHER_STORAGE_SUBTYPES.has(sub.toLowerCase())) {
            add("OVF_STORAGE_SUBTYPE", `${label}: subtype ${JSON.stringify(sub)} (VirtualBox accepts AHCI, vmware.sata.ahci, VirtioSCSI, NVMe)`);
          }
          break;
        case 17:
          if (item.hostResources.length === 0) add("OVF_HOST_RESOURCE", `${label}: disk without HostResource`);
          for (const hr of item.hostResources) {
            const mm = HOST_RESOURCE.exec(hr);
            const ok = mm && (mm[1] === "disk" ? diskIds.has(mm[2]!) : fileIds.has(mm[2]!));
            if (!ok) add("OVF_HOST_RESOURCE", `${label}: HostResource ${hr} does not name a Disk in DiskSection`);
          }
          break;
        default:
          break;
      }
      if (item.required && (item.resourceType === undefined || !KNOWN_RESOURCE_TYPES.has(item.resourceType))) {
        add("OVF_UNKNOWN_REQUIRED", `${label}: VirtualBox does not know this ResourceType; mark it ovf:required="false"`);
      }
    }
  }
  checkVmwRequired(ovf, add);
  return out;
}

/** VMware-only elements (vmw:Config, vmw:BootOrderSection...) must say ovf:required="false". */
function checkVmwRequired(ovf: ParsedOvf, add: (code: string, message: string) => void): void {
  const walk = (n: XNode) => {
    for (const c of n.children) {
      if (c.uri === VMW_NS) {
        const req = c.attrs.find((a) => a.local === "required" && a.uri === ovf.envelopeUri)?.value;
        if ((req ?? "true").trim() !== "false") add("OVF_VMW_REQUIRED", `${c.qname} lacks ovf:required="false" (other readers must be free to skip it)`);
        continue;
      }
      if (["VirtualSystem", "VirtualSystemCollection", "VirtualHardwareSection"].includes(c.local)) walk(c);
    }
  };
  walk(ovf.root);
}

/** Schema order of the CIM settings-data XSDs is alphabetical by element name (code-point order). */
export function isSorted(names: readonly string[]): boolean {
  for (let i = 1; i < names.length; i++) if (names[i - 1]! > names[i]!) return false;
  return true;
}

export function badHref(href: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(href)) return "is a URL, not a file in the package";
  if (href.startsWith("/")) return "is absolute";
  if (href.includes("/") || href.includes("\\")) return "is not a bare file name";
  if (href === "." || href === "..") return "is not a file name";
  return undefined;
}
