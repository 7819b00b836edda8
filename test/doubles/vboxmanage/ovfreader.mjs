// TEST DOUBLE of VirtualBox's OVF reader (not VirtualBox): the rules of ovf::OVFReader in
// src/VBox/Main/xml/ovfreader.cpp (6.1.38 / 7.0.18), with its error texts:
//   - parse(): the root must be Envelope with a namespace; the OVF version comes from it (…/2 → 2.0,
//     …/1 → 1.0, anything else 0.9);
//   - HandleDiskSection(): each Disk needs diskId, format and capacity ("missing or invalid attribute
//     'X' in 'DiskSection' element"); a fileRef must name a References/File ("cannot find
//     References/File element for ID …"), whose href is required; size optional;
//   - HandleVirtualSystemContent(): vbox:Machine is noted; items are Item, StorageItem and
//     EthernetPortItem; each needs a ResourceType ("Empty element ResourceType under …"), and
//     controllers need an InstanceID ("Element InstanceID is absent under …"); StorageItem's block
//     size / quantity-unit consistency checks; CPU count below 65535; memory units MegaBytes, MB,
//     "byte * 2^20" (7.0 also GigaBytes, GB, "byte * 2^30"), else "Invalid allocation unit";
//     ResourceType 5 IDE, 6 SCSI, 10 Ethernet, 14 floppy, 15 CD, 17 disk, 20 other storage (subtype
//     AHCI / vmware.sata.ahci / VirtioSCSI, and in 7.0 also virtio-scsi / NVMe /
//     vmware.nvme.controller; anything else fails), 23 USB, 35 sound; any other required type
//     fails ("Unknown resource type N in hardware item"), one with ovf:required="false" is skipped;
//     disks need a known parent controller and a host resource naming a Disk ("ovf://disk/…",
//     "ovf:/disk/…" or "/disk/…");
//   - 6.1 reads InstanceID and Parent as numbers (7.0 as strings): a non-numeric InstanceID counts as
//     absent in 6.1;
//   - OperatingSystemSection needs ovf:id; vbox:OSType, Description, AnnotationSection and
//     ProductSection values are kept.
import { kid, kidNs, kids, parseXml, XmlError } from "./xml.mjs";

export class OvfError extends Error {}

const SPECS = "http://schemas.dmtf.org/wbem/cim-html/2/";

export function readOvf(text, path, major) {
  let root;
  try {
    root = parseXml(text);
  } catch (e) {
    if (e instanceof XmlError) throw new OvfError(`Error reading "${path}": ${e.message}`);
    throw e;
  }
  if (root.local !== "Envelope") throw new OvfError(major === "6.1" ? 'Root element in OVF file must be "Envelope".' : "Root element in OVF file must be 'Envelope'.");
  if (!root.ns) throw new OvfError(`Error reading namespace URI in 'Envelope' element, line ${root.line}`);
  const version = "http://schemas.dmtf.org/ovf/envelope/2".startsWith(root.ns) ? "2.0" : "http://schemas.dmtf.org/ovf/envelope/1".startsWith(root.ns) ? "1.0" : "0.9";
  const refs = kid(root, "References");
  const disks = new Map();
  const systems = [];
  loop(root);
  return { version, disks, systems, root };

  function loop(el) {
    for (const c of el.children) {
      const type = c.attrs.type ?? "";
      if (c.local === "DiskSection" || (c.local === "Section" && type === "ovf:DiskSection_Type")) diskSection(c);
      else if (c.local === "VirtualSystem" || (c.local === "Content" && type === "ovf:VirtualSystem_Type")) systems.push(virtualSystem(c));
      else if (c.local === "VirtualSystemCollection" || (c.local === "Content" && type === "ovf:VirtualSystemCollection_Type")) loop(c);
    }
  }

  function diskSection(sec) {
    for (const d of kids(sec, "Disk")) {
      let bad;
      if (d.attrs.diskId === undefined) bad = "diskId";
      else if (d.attrs.format === undefined) bad = "format";
      else if (d.attrs.capacity === undefined || !/^-?\d+$/.test(d.attrs.capacity)) bad = "capacity";
      if (bad) throw new OvfError(`Error reading "${path}": missing or invalid attribute '${bad}' in 'DiskSection' element, line ${d.line}`);
      const disk = { id: d.attrs.diskId, format: d.attrs.format, capacity: Number(d.attrs.capacity), populatedSize: d.attrs.populatedSize !== undefined ? Number(d.attrs.populatedSize) : -1, uuid: d.attrList.find((a) => a.prefix === "vbox" && a.local === "uuid")?.value, href: "", size: -1, compression: "" };
      if (d.attrs.fileRef !== undefined) {
        const f = refs && kids(refs).find((x) => x.attrs.id === d.attrs.fileRef);
        if (!f) {
          const q = major === "6.1" ? `'${d.attrs.fileRef}'` : `"${d.attrs.fileRef}"`;
          throw new OvfError(`Error reading "${path}": cannot find References/File element for ID ${q} referenced by 'Disk' element, line ${d.line}`);
        }
        if (f.attrs.href === undefined) throw new OvfError(`Error reading "${path}": missing or invalid attribute 'href' in 'File' element, line ${f.line}`);
        disk.href = f.attrs.href;
        disk.size = f.attrs.size !== undefined ? Number(f.attrs.size) : -1;
        disk.compression = f.attrs.compression ?? "";
      }
      disks.set(disk.id, disk);
    }
  }

  function item(el) {
    const it = { line: el.line, tag: el.local, required: true, resourceType: 0, instanceId: "", parent: "", subType: "", hostResource: "", connection: "", addressOnParent: "", address: "", allocationUnits: "", virtualQuantity: 0, caption: "", elementName: "" };
    let vqUnits = "";
    let vrbs = 0;
    let hrbs = 0;
    let reservation = 0;
    let sVirtualQuantity = 0;
    for (const c of el.children) {
      const t = c.text.trim();
      switch (c.local) {
        case "InstanceID":
        case "InstanceId":
          it.instanceId = major === "6.1" ? (/^\d+$/.test(t) && Number(t) !== 0 ? String(Number(t)) : "") : t;
          break;
        case "ResourceType":
          it.resourceType = Math.min(Number.parseInt(t, 10) || 0, 0xffff);
          if (el.attrs.required === "false") it.required = false;
          break;
        case "ResourceSubType":
          it.subType = t;
          break;
        case "Parent":
          it.parent = major === "6.1" ? String(Number.parseInt(t, 10) || 0) : t;
          break;
        case "HostResource":
          it.hostResource = t;
          break;
        case "Connection":
          it.connection = t;
          break;
        case "AddressOnParent":
          it.addressOnParent = t;
          break;
        case "Address":
          it.address = t;
          break;
        case "AllocationUnits":
          it.allocationUnits = t;
          break;
        case "VirtualQuantity":
          it.virtualQuantity = Number(t) || 0;
          sVirtualQuantity = Number(t) || 0;
          break;
        case "Caption":
          it.caption = t;
          break;
        case "ElementName":
          it.elementName = t;
          break;
        case "VirtualQuantityUnits":
          vqUnits = t;
          break;
        case "VirtualResourceBlockSize":
          vrbs = Number(t) || 0;
          break;
        case "HostResourceBlockSize":
          hrbs = Number(t) || 0;
          break;
        case "Reservation":
          reservation = Number(t) || 0;
          break;
        default:
      }
    }
    const name = el.local === "Item" ? "Item" : el.local;
    const wrap = (msg) => new OvfError(`Error reading "${path}": "${msg}"`);
    if (it.resourceType === 0) throw wrap(`Empty element ResourceType under ${name} element, line ${el.line}. see DMTF Schema Documentation ${SPECS}`);
    if (!it.instanceId && [5, 6, 20, 7, 8].includes(it.resourceType)) throw wrap(`Element InstanceID is absent under ${name} element, line ${el.line}. see DMTF Schema Documentation ${SPECS}`);
    if (el.local === "StorageItem") {
      if (hrbs <= 0 && reservation > 0) throw wrap(`Element HostResourceBlockSize is absent under ${name} element, line ${el.line}. see DMTF Schema Documentation ${SPECS}`);
      if (vrbs <= 0 && sVirtualQuantity > 0) throw wrap(`Element VirtualResourceBlockSize is absent under ${name} element, line ${el.line}. see DMTF Schema Documentation ${SPECS}`);
      if (sVirtualQuantity > 0 && !vqUnits) throw wrap(`Element VirtualQuantityUnits is absent under ${name} element, line ${el.line}. see DMTF Schema Documentation ${SPECS}`);
      if (vrbs <= 1 && vqUnits.toLowerCase() === "count") {
        throw wrap(`Element VirtualQuantityUnits is set to "count" while VirtualResourceBlockSize is set to 1. under ${name} element, line ${el.line}. It's needed to change on "byte". see DMTF Schema Documentation ${SPECS}`);
      }
    }
    return it;
  }

  function virtualSystem(vs) {
    const sys = { name: vs.attrs.id ?? "", vboxMachine: kidNs(vs, "vbox", "Machine"), cpus: 0, memoryBytes: 0, controllers: new Map(), virtualDisks: [], ethernet: [], hasFloppy: false, hasCdrom: false, hasUsb: false, soundCard: "", cimos: 0, cimosDesc: "", vboxOsType: "", description: "", virtualSystemType: "", product: "", vendor: "", version: "" };
    for (const c of vs.children) {
      const type = c.attrs.type ?? "";
      if (c.local === "Section" && !type) throw new OvfError(`Error reading "${path}": element ${major === "6.1" ? '"Section" has no "type" attribute' : "'Section' has no 'type' attribute"}, line ${c.line}`);
      if (c.local === "ProductSection" || type === "ovf:ProductSection_Type") {
        sys.product = kid(c, "Product")?.text ?? "";
        sys.vendor = kid(c, "Vendor")?.text ?? "";
        sys.version = kid(c, "Version")?.text ?? "";
      } else if (c.local === "VirtualHardwareSection" || type === "ovf:VirtualHardwareSection_Type") hardware(c, sys);
      else if (c.local === "OperatingSystemSection" || type === "ovf:OperatingSystemSection_Type") {
        if (c.attrs.id === undefined || !/^\d+$/.test(c.attrs.id)) throw new OvfError(`Error reading "${path}": missing or invalid 'ovf:id' attribute in operating system section element, line ${c.line}`);
        sys.cimos = Number(c.attrs.id);
        sys.cimosDesc = kid(c, "Description")?.text ?? "";
        sys.vboxOsType = kidNs(c, "vbox", "OSType")?.text ?? "";
      } else if (c.local === "AnnotationSection" || type === "ovf:AnnotationSection_Type") sys.description = kid(c, "Annotation")?.text ?? "";
    }
    return sys;
  }

  function hardware(sec, sys) {
    sys.virtualSystemType = kid(kid(sec, "System") ?? { children: [] }, "VirtualSystemType")?.text ?? "";
    const items = sec.children.filter((c) => ["Item", "StorageItem", "EthernetPortItem"].includes(c.local)).map(item);
    for (const i of items) {
      switch (i.resourceType) {
        case 3:
          if (i.virtualQuantity >= 0xffff) throw new OvfError(`Error reading "${path}": CPU count ${i.virtualQuantity} is larger than 65535, line ${i.line}`);
          sys.cpus = i.virtualQuantity;
          break;
        case 4: {
          const mb = ["MegaBytes", "MB", "byte * 2^20"];
          const gb = major === "7.0" ? ["GigaBytes", "GB", "byte * 2^30"] : [];
          if (mb.includes(i.allocationUnits)) sys.memoryBytes = i.virtualQuantity * 1048576;
          else if (gb.includes(i.allocationUnits)) sys.memoryBytes = i.virtualQuantity * 1073741824;
          else throw new OvfError(`Error reading "${path}": Invalid allocation unit "${i.allocationUnits}" specified with memory size item, line ${i.line}`);
          break;
        }
        case 5:
          sys.controllers.set(i.instanceId, { system: "IDE", id: i.instanceId, type: i.subType, address: i.address });
          break;
        case 6:
          sys.controllers.set(i.instanceId, { system: "SCSI", id: i.instanceId, type: i.subType });
          break;
        case 10:
          sys.ethernet.push({ adapterType: i.subType, network: i.connection });
          break;
        case 14:
          sys.hasFloppy = true;
          break;
        case 15:
          sys.hasCdrom = true;
          break;
        case 17:
          break;
        case 20: {
          const st = i.subType.toLowerCase();
          if (st === "ahci" || st === "vmware.sata.ahci") sys.controllers.set(i.instanceId, { system: "SATA", id: i.instanceId, type: i.subType });
          else if (st === "virtioscsi" || (major === "7.0" && st === "virtio-scsi")) sys.controllers.set(i.instanceId, { system: "VIRTIOSCSI", id: i.instanceId, type: i.subType });
          else if (major === "7.0" && (st === "nvme" || st === "vmware.nvme.controller")) sys.controllers.set(i.instanceId, { system: "NVMe", id: i.instanceId, type: i.subType });
          else {
            const which = major === "7.0" ? "SATA AHCI or Virtio-SCSI or NVMe controllers" : "SATA AHCI controllers";
            throw new OvfError(`Error reading "${path}": Host resource of type "Other Storage Device (20)" is supported with ${which} only, line ${i.line} (subtype:${i.subType})`);
          }
          break;
        }
        case 23:
          sys.hasUsb = true;
          break;
        case 35:
          sys.soundCard = i.subType;
          break;
        default:
          if (i.required) throw new OvfError(`Error reading "${path}": Unknown resource type ${i.resourceType} in hardware item, line ${i.line}`);
      }
    }
    for (const i of items) {
      if (i.resourceType !== 15 && i.resourceType !== 17) continue;
      if (!sys.controllers.has(i.parent)) {
        const msg = major === "6.1" ? `Disk item with instance ID ${i.instanceId || 0} specifies invalid parent ${i.parent || 0}` : `Disk item with instance ID "${i.instanceId}" specifies invalid parent "${i.parent}"`;
        throw new OvfError(`Error reading "${path}": ${msg}, line ${i.line}`);
      }
      let diskId = "";
      for (const p of ["ovf://disk/", "ovf:/disk/", "/disk/"]) if (i.hostResource.startsWith(p)) diskId = i.hostResource.slice(p.length);
      if ((!diskId || !disks.has(diskId)) && i.resourceType === 17) {
        const msg = major === "6.1" ? `Disk item with instance ID ${i.instanceId || 0} specifies invalid host resource "${i.hostResource}"` : `Disk item with instance ID "${i.instanceId}" specifies invalid host resource "${i.hostResource}"`;
        throw new OvfError(`Error reading "${path}": ${msg}, line ${i.line}`);
      }
      sys.virtualDisks.push({ controllerId: i.parent, addressOnParent: Number.parseInt(i.addressOnParent, 10) || 0, diskId, cdrom: i.resourceType === 15 });
    }
  }
}
