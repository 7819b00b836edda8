// Namespace-aware OVF reader for verify and pack-ova, on the bounded element tree of xml-tree.ts
// (the descriptor comes from untrusted OVAs). Producers bind prefixes differently (ovf:, ovf1:,
// default namespace), so everything is matched by namespace URI, never by prefix. Reads OVF 0.9,
// 1.0 and 2.0.
import { parseXmlTree, type XAttr, type XNode } from "./xml-tree.js";

export type { XAttr, XNode };

export const OVF_NAMESPACES: Readonly<Record<string, "0.9" | "1.0" | "2.0">> = {
  "http://www.vmware.com/schema/ovf/1/envelope": "0.9",
  "http://schemas.dmtf.org/ovf/envelope/1": "1.0",
  "http://schemas.dmtf.org/ovf/envelope/2": "2.0",
};
export const VMW_NS = "http://www.vmware.com/schema/ovf";
const RASD_NS = /CIM_ResourceAllocationSettingData/;
const SASD_NS = /CIM_StorageAllocationSettingData/;
const EPASD_NS = /CIM_EthernetPortAllocationSettingData/;
const VSSD_NS = /CIM_VirtualSystemSettingData/;

export interface OvfFile {
  id: string;
  href: string;
  /** ovf:size as written (undefined when absent). */
  size?: number;
  sizeText?: string;
}
export interface OvfDisk {
  diskId: string;
  fileRef?: string;
  capacity?: string;
  capacityUnits?: string;
  format?: string;
  populatedSize?: string;
}
export interface OvfItem {
  element: string;
  /** ovf:required (default true). */
  required: boolean;
  /** Local names of the settings-data children, in document order. */
  order: string[];
  fields: Record<string, string[]>;
  resourceType?: number;
  resourceSubType?: string;
  instanceId?: string;
  parent?: string;
  hostResources: string[];
  allocationUnits?: string;
  virtualQuantity?: string;
}
export interface OvfVirtualSystem {
  id: string;
  name?: string;
  osId?: string;
  vmwOsType?: string;
  hasHardwareSection: boolean;
  /** Each VirtualSystemType text (one per VirtualHardwareSection), split on whitespace. */
  systemTypes: string[];
  /** Order of vssd children of each System element. */
  systemOrder: string[][];
  items: OvfItem[];
}
export interface ParsedOvf {
  version: "0.9" | "1.0" | "2.0" | undefined;
  envelopeUri: string;
  envelopeLocal: string;
  /** prefix → URI declared on the Envelope ("" is the default namespace). */
  namespaces: Record<string, string>;
  usesVmw: boolean;
  files: OvfFile[];
  disks: OvfDisk[];
  virtualSystems: OvfVirtualSystem[];
  root: XNode;
}

/** Throws a UserError (OVF_MALFORMED, OVF_NAMESPACE_UNDECLARED, OVF_TOO_COMPLEX) for a bad descriptor. */
export async function parseOvf(xml: string): Promise<ParsedOvf> {
  const root = parseXmlTree(xml);
  const namespaces: Record<string, string> = {};
  for (const a of root.attrs) {
    if (a.qname === "xmlns") namespaces[""] = a.value;
    else if (a.qname.startsWith("xmlns:")) namespaces[a.qname.slice(6)] = a.value;
  }
  const version = OVF_NAMESPACES[root.uri];
  const ovfUri = root.uri;
  const files: OvfFile[] = [];
  const disks: OvfDisk[] = [];
  const virtualSystems: OvfVirtualSystem[] = [];
  for (const refs of kids(root, "References")) {
    for (const f of kids(refs, "File")) {
      const sizeText = attr(f, "size", ovfUri);
      const file: OvfFile = { id: attr(f, "id", ovfUri) ?? "", href: attr(f, "href", ovfUri) ?? "" };
      if (sizeText !== undefined) {
        file.sizeText = sizeText;
        if (/^\d+$/.test(sizeText.trim())) file.size = Number(sizeText.trim());
      }
      files.push(file);
    }
  }
  for (const sec of kids(root, "DiskSection").concat(kids(root, "Section").filter(isDiskSection))) {
    for (const d of kids(sec, "Disk")) {
      disks.push(
        compact({
          diskId: attr(d, "diskId", ovfUri) ?? "",
          fileRef: attr(d, "fileRef", ovfUri),
          capacity: attr(d, "capacity", ovfUri),
          capacityUnits: attr(d, "capacityAllocationUnits", ovfUri),
          format: attr(d, "format", ovfUri),
          populatedSize: attr(d, "populatedSize", ovfUri),
        }) as OvfDisk,
      );
    }
  }
  collectSystems(root, ovfUri, virtualSystems);
  return {
    version,
    envelopeUri: root.uri,
    envelopeLocal: root.local,
    namespaces,
    usesVmw: usesNamespace(root, VMW_NS),
    files,
    disks,
    virtualSystems,
    root,
  };
}

function collectSystems(node: XNode, ovfUri: string, out: OvfVirtualSystem[]): void {
  for (const c of node.children) {
    if (c.local === "VirtualSystemCollection") collectSystems(c, ovfUri, out);
    if (c.local !== "VirtualSystem") continue;
    const os = kids(c, "OperatingSystemSection")[0];
    const hw = kids(c, "VirtualHardwareSection");
    const vs: OvfVirtualSystem = {
      id: attr(c, "id", ovfUri) ?? "",
      hasHardwareSection: hw.length > 0,
      systemTypes: [],
      systemOrder: [],
      items: [],
    };
    const name = kids(c, "Name")[0]?.text;
    if (name !== undefined) vs.name = name;
    if (os) {
      const id = attr(os, "id", ovfUri);
      if (id !== undefined) vs.osId = id;
      const vmw = os.attrs.find((a) => a.uri === VMW_NS && a.local === "osType")?.value;
      if (vmw !== undefined) vs.vmwOsType = vmw;
    }
    for (const h of hw) {
      for (const sys of kids(h, "System")) {
        vs.systemOrder.push(sys.children.filter((k) => VSSD_NS.test(k.uri)).map((k) => k.local));
        for (const t of sys.children.filter((k) => k.local === "VirtualSystemType")) {
          vs.systemTypes.push(...t.text.trim().split(/\s+/).filter(Boolean));
        }
      }
      for (const it of h.children.filter((k) => ["Item", "StorageItem", "EthernetPortItem"].includes(k.local))) {
        vs.items.push(toItem(it, ovfUri));
      }
    }
    out.push(vs);
  }
}

function toItem(it: XNode, ovfUri: string): OvfItem {
  const dataKids = it.children.filter((k) => RASD_NS.test(k.uri) || SASD_NS.test(k.uri) || EPASD_NS.test(k.uri));
  const fields: Record<string, string[]> = {};
  for (const k of dataKids) (fields[k.local] ??= []).push(k.text.trim());
  const first = (n: string) => fields[n]?.[0];
  const item: OvfItem = {
    element: it.local,
    required: (attr(it, "required", ovfUri) ?? "true").trim() !== "false",
    order: dataKids.map((k) => k.local),
    fields,
    hostResources: fields["HostResource"] ?? [],
  };
  const rt = first("ResourceType");
  if (rt !== undefined && /^\d+$/.test(rt)) item.resourceType = Number(rt);
  const set = <K extends keyof OvfItem>(key: K, v: OvfItem[K] | undefined) => {
    if (v !== undefined) item[key] = v;
  };
  set("resourceSubType", first("ResourceSubType"));
  set("instanceId", first("InstanceID"));
  set("parent", first("Parent"));
  set("allocationUnits", first("AllocationUnits"));
  set("virtualQuantity", first("VirtualQuantity"));
  return item;
}

export function kids(node: XNode, local: string): XNode[] {
  return node.children.filter((c) => c.local === local);
}

/** An OVF attribute: qualified with the envelope namespace, or unqualified (some writers omit it). */
export function attr(node: XNode, local: string, ovfUri: string): string | undefined {
  return (node.attrs.find((a) => a.local === local && a.uri === ovfUri) ?? node.attrs.find((a) => a.qname === local))?.value;
}

function usesNamespace(node: XNode, uri: string): boolean {
  if (node.uri === uri || node.attrs.some((a) => a.uri === uri && !a.qname.startsWith("xmlns"))) return true;
  return node.children.some((c) => usesNamespace(c, uri));
}

function isDiskSection(n: XNode): boolean {
  return n.attrs.some((a) => a.local === "type" && /DiskSection_Type$/.test(a.value));
}

function compact<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}
