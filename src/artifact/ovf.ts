// OVF 1.0 descriptor generation (xml2js). OVF 1.0, not 2.0: 2.0 moves disks and NICs into
// StorageItem/EthernetPortItem, and 1.0 is the version both VirtualBox and vSphere read best
// (ova.md "Descriptor"). Every rule below answers an import failure listed in ova.md.
//
// No `vbox:Machine` section: VirtualBox prefers it when present, so a half-right one (it needs the
// machine, storage controllers and the disk's UUID matching the VMDK's own ddb.uuid.image) would do
// more harm than none; VirtualBox imports the portable OVF 1.0 items below without it. The cost: an
// EFI machine imports into VirtualBox as BIOS (VirtualBox reads firmware only from vbox:Machine:
// src/VBox/Main/xml/ovfreader.cpp, OVFReader::HandleVirtualSystemContent takes only Item,
// StorageItem and EthernetPortItem from VirtualHardwareSection). Images that also boot under BIOS,
// like the GPT fixture (fixtures/guest-gpt), still boot there.
import { Builder } from "xml2js";
import { UserError } from "../errors.js";

export { parseOvf, type ParsedOvf, type OvfFile, type OvfDisk, type OvfItem, type OvfVirtualSystem } from "./ovf-parse.js";

export const NS = {
  ovf: "http://schemas.dmtf.org/ovf/envelope/1",
  rasd: "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData",
  vssd: "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData",
  vmw: "http://www.vmware.com/schema/ovf",
  vbox: "http://www.virtualbox.org/ovf/machine",
  xsi: "http://www.w3.org/2001/XMLSchema-instance",
} as const;

export const STREAM_OPTIMIZED_FORMAT = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";

/**
 * vmx-13 (ESXi 6.5 and later) by default: the oldest hardware family on hosts still in service, it has
 * everything this descriptor uses (EFI, LSI Logic, E1000), and vSphere refuses a family newer than
 * the host (vmx-20 fails on ESXi 7.0.3, ova.md). Hosts run older families fine and users can upgrade
 * the VM's compatibility after import; going the other way is impossible.
 */
export const DEFAULT_VMX_VERSION = 13;

export interface OvfDiskParams {
  fileName: string;
  /** Real byte size of the VMDK file (not qemu-img's "actual-size"; gardenlinux PR 2323). */
  fileSize: number;
  capacityBytes: number;
  populatedSize?: number;
}

export interface OvfParams {
  name: string;
  cpus: number;
  memoryMiB: number;
  firmware: "bios" | "efi";
  /** A key of OS_TYPES (e.g. "debian12"). */
  osType: string;
  vmxVersion?: number;
  /** One E1000 NIC on "VM Network" (default true). */
  nic?: boolean;
  disks: OvfDiskParams[];
}

interface OsInfo {
  /** CIM OperatingSystem id for OperatingSystemSection ovf:id (ova.md "Safe ids"). */
  ovfId: number;
  description: string;
  /** vmw:osType by the lowest hardware family whose host knows the id (newest first). */
  vmw: Array<[minVmx: number, id: string]>;
  vbox: string;
}

/**
 * Guest ids a host does not know make the import fail, so the vmw:osType follows the target
 * hardware family: e.g. debian12_64Guest only exists from ESXi 8.0 (vmx-20), so a vmx-13 descriptor
 * says debian10_64Guest, which ESXi 6.5 knows. VirtualBox names are the old generic ones every
 * VirtualBox version has.
 */
export const OS_TYPES: Readonly<Record<string, OsInfo>> = {
  debian10: { ovfId: 96, description: "Debian 10 (64-bit)", vmw: [[13, "debian10_64Guest"]], vbox: "Debian_64" },
  debian11: { ovfId: 96, description: "Debian 11 (64-bit)", vmw: [[19, "debian11_64Guest"], [13, "debian10_64Guest"]], vbox: "Debian_64" },
  debian12: {
    ovfId: 96,
    description: "Debian 12 (64-bit)",
    vmw: [[20, "debian12_64Guest"], [19, "debian11_64Guest"], [13, "debian10_64Guest"]],
    vbox: "Debian_64",
  },
  ubuntu: { ovfId: 94, description: "Ubuntu (64-bit)", vmw: [[13, "ubuntu64Guest"]], vbox: "Ubuntu_64" },
  rhel8: { ovfId: 80, description: "Red Hat Enterprise Linux 8 (64-bit)", vmw: [[14, "rhel8_64Guest"], [13, "rhel7_64Guest"]], vbox: "RedHat_64" },
  rhel9: {
    ovfId: 80,
    description: "Red Hat Enterprise Linux 9 (64-bit)",
    vmw: [[19, "rhel9_64Guest"], [14, "rhel8_64Guest"], [13, "rhel7_64Guest"]],
    vbox: "RedHat_64",
  },
  centos: { ovfId: 107, description: "CentOS (64-bit)", vmw: [[13, "centos7_64Guest"]], vbox: "RedHat_64" },
  linux: { ovfId: 101, description: "Linux (64-bit)", vmw: [[13, "otherLinux64Guest"]], vbox: "Linux26_64" },
};

export function osTypeInfo(osType: string, vmxVersion: number): { ovfId: number; description: string; vmw: string; vbox: string } {
  const info = OS_TYPES[osType];
  if (!info) {
    throw new UserError("OVF_OS_TYPE", `unknown OS type ${JSON.stringify(osType)}`, {
      hint: `one of: ${Object.keys(OS_TYPES).join(", ")}`,
    });
  }
  const vmw = info.vmw.find(([min]) => vmxVersion >= min)?.[1] ?? info.vmw[info.vmw.length - 1]![1];
  return { ovfId: info.ovfId, description: info.description, vmw, vbox: info.vbox };
}

type El = Record<string, unknown>;

/** rasd children sorted by name: vSphere requires schema (alphabetical) order (ova.md "Descriptor"). */
function rasd(fields: Record<string, string | number>, attrs?: Record<string, string>): El {
  const item: El = attrs ? { $: attrs } : {};
  for (const key of Object.keys(fields).sort()) item[`rasd:${key}`] = String(fields[key]);
  return item;
}

export function buildOvf(p: OvfParams): string {
  const vmx = p.vmxVersion ?? DEFAULT_VMX_VERSION;
  if (!Number.isInteger(vmx) || vmx < 4 || vmx > 99) throw new UserError("OVF_VMX", `bad vmx version ${vmx}`);
  if (!Number.isInteger(p.cpus) || p.cpus < 1) throw new UserError("OVF_CPUS", `bad CPU count ${p.cpus}`);
  if (!Number.isInteger(p.memoryMiB) || p.memoryMiB < 4) throw new UserError("OVF_MEMORY", `bad memory ${p.memoryMiB} MiB`);
  if (p.disks.length === 0) throw new UserError("OVF_DISKS", "an OVF needs at least one disk");
  if (p.disks.length > 15) throw new UserError("OVF_DISKS", "at most 15 disks fit one SCSI controller");
  const os = osTypeInfo(p.osType, vmx);
  const nic = p.nic ?? true;
  const network = "VM Network";

  const files = p.disks.map((d, i) => ({
    $: { "ovf:href": d.fileName, "ovf:id": `file${i + 1}`, "ovf:size": String(d.fileSize) },
  }));
  const disks = p.disks.map((d, i) => {
    const attrs: Record<string, string> = {
      "ovf:capacity": String(d.capacityBytes),
      "ovf:capacityAllocationUnits": "byte",
      "ovf:diskId": `vmdisk${i + 1}`,
      "ovf:fileRef": `file${i + 1}`,
      "ovf:format": STREAM_OPTIMIZED_FORMAT,
    };
    if (d.populatedSize !== undefined) attrs["ovf:populatedSize"] = String(d.populatedSize);
    return { $: attrs };
  });

  const items: El[] = [
    rasd({
      AllocationUnits: "hertz * 10^6",
      Description: "Number of Virtual CPUs",
      ElementName: `${p.cpus} virtual CPU(s)`,
      InstanceID: 1,
      ResourceType: 3,
      VirtualQuantity: p.cpus,
    }),
    // `byte * 2^20` (MiB): what ovftool writes and one of the three units VirtualBox accepts.
    rasd({
      AllocationUnits: "byte * 2^20",
      Description: "Memory Size",
      ElementName: `${p.memoryMiB}MB of memory`,
      InstanceID: 2,
      ResourceType: 4,
      VirtualQuantity: p.memoryMiB,
    }),
    // LSI Logic: the SCSI controller both VirtualBox and every vSphere version map (pvscsi is not).
    rasd({
      Address: 0,
      Description: "SCSI Controller",
      ElementName: "SCSI Controller 0",
      InstanceID: 3,
      ResourceSubType: "lsilogic",
      ResourceType: 6,
    }),
  ];
  let instance = 4;
  p.disks.forEach((_, i) => {
    items.push(
      rasd({
        AddressOnParent: i < 7 ? i : i + 1, // unit 7 is the controller itself
        ElementName: `Hard Disk ${i + 1}`,
        HostResource: `ovf:/disk/vmdisk${i + 1}`,
        InstanceID: instance++,
        Parent: 3,
        ResourceType: 17,
      }),
    );
  });
  if (nic) {
    items.push(
      rasd({
        AddressOnParent: 7,
        AutomaticAllocation: "true",
        Connection: network,
        Description: `E1000 ethernet adapter on "${network}"`,
        ElementName: "Network adapter 1",
        InstanceID: instance++,
        ResourceSubType: "E1000",
        ResourceType: 10,
      }),
    );
  }

  const hardware: El = {
    Info: "Virtual hardware requirements",
    System: {
      "vssd:ElementName": "Virtual Hardware Family",
      "vssd:InstanceID": "0",
      "vssd:VirtualSystemIdentifier": p.name,
      "vssd:VirtualSystemType": `vmx-${String(vmx).padStart(2, "0")}`,
    },
    Item: items,
  };
  // VMware-only settings are optional for other readers: ovf:required="false" (ova.md). Firmware is
  // a VirtualHardwareSection-level vmw:Config after the items, as vSphere's own export writes it
  // (a vCenter-exported OVF: harvester/vm-import-controller pkg/source/ova/client_test.go, ovfData2;
  // govmomi ovf/envelope.go, VirtualHardwareSection.Config).
  if (p.firmware === "efi") {
    hardware["vmw:Config"] = [{ $: { "ovf:required": "false", "vmw:key": "firmware", "vmw:value": "efi" } }];
  }

  const envelope: El = {
    $: {
      "ovf:version": "1.0",
      "xml:lang": "en-US",
      xmlns: NS.ovf,
      "xmlns:ovf": NS.ovf,
      "xmlns:rasd": NS.rasd,
      "xmlns:vssd": NS.vssd,
      "xmlns:vmw": NS.vmw,
      "xmlns:vbox": NS.vbox,
      "xmlns:xsi": NS.xsi,
    },
    References: { File: files },
    DiskSection: { Info: "Virtual disk information", Disk: disks },
  };
  if (nic) {
    envelope["NetworkSection"] = {
      Info: "The list of logical networks",
      Network: { $: { "ovf:name": network }, Description: `The ${network} network` },
    };
  }
  envelope["VirtualSystem"] = {
    $: { "ovf:id": p.name },
    Info: "A virtual machine",
    Name: p.name,
    OperatingSystemSection: {
      $: { "ovf:id": String(os.ovfId), "vmw:osType": os.vmw },
      Info: "The kind of installed guest operating system",
      Description: os.description,
      "vbox:OSType": { $: { "ovf:required": "false" }, _: os.vbox },
    },
    VirtualHardwareSection: hardware,
  };

  const builder = new Builder({
    rootName: "Envelope",
    xmldec: { version: "1.0", encoding: "UTF-8" },
    renderOpts: { pretty: true, indent: "  ", newline: "\n" },
  });
  return builder.buildObject(envelope) + "\n";
}
