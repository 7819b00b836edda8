// Pure builders of the vim25 data objects the driver sends. Field order follows the WSDL
// (vCenter validates sequences); temporary device keys are negative, as vSphere expects for adds.
import { UserError } from "../../src/errors.js";
import { MoRef, asSoapValue, child, textOf, type SoapObject, type XNode } from "./soap.js";
import type { UsbKeyEvent, UsbModifiers } from "./usb-hid.js";

export interface IsoVmConfig {
  name: string;
  guestId: string;
  datastoreName: string;
  cpus: number;
  memoryMiB: number;
  diskBytes: number;
  firmware: "bios" | "efi";
  /** `[ds] path` of the installer ISO. */
  isoPath: string | undefined;
  /** Kickstart/preseed medium uploaded next to it. */
  media: { path: string; kind: "cd" | "floppy" } | undefined;
  network: { name: string; ref: MoRef; dvsUuid?: string | undefined } | undefined;
}

const connected = { startConnected: true, allowGuestControl: true, connected: true };

export function nicBacking(n: NonNullable<IsoVmConfig["network"]>): SoapObject {
  if (n.ref.type === "DistributedVirtualPortgroup" && n.dvsUuid) {
    return { $type: "VirtualEthernetCardDistributedVirtualPortBackingInfo", port: { switchUuid: n.dvsUuid, portgroupKey: n.ref.value } };
  }
  return { $type: "VirtualEthernetCardNetworkBackingInfo", deviceName: n.name, network: n.ref };
}

/** VirtualMachineConfigSpec for CreateVM_Task: SCSI controller, thin disk, CD-ROM, NIC, medium. */
export function isoVmConfigSpec(c: IsoVmConfig): SoapObject {
  const devices: SoapObject[] = [
    { operation: "add", device: { $type: "VirtualLsiLogicController", key: -100, busNumber: 0, sharedBus: "noSharing" } },
    {
      operation: "add",
      fileOperation: "create",
      device: {
        $type: "VirtualDisk",
        key: -101,
        backing: { $type: "VirtualDiskFlatVer2BackingInfo", fileName: "", diskMode: "persistent", thinProvisioned: true },
        controllerKey: -100,
        unitNumber: 0,
        capacityInKB: Math.ceil(c.diskBytes / 1024),
      },
    },
  ];
  if (c.isoPath) devices.push(cdrom(-102, c.isoPath, 0));
  if (c.media?.kind === "cd") devices.push(cdrom(-103, c.media.path, 1));
  if (c.media?.kind === "floppy") {
    devices.push({
      operation: "add",
      device: { $type: "VirtualFloppy", key: -104, backing: { $type: "VirtualFloppyImageBackingInfo", fileName: c.media.path }, connectable: connected },
    });
  }
  if (c.network) {
    devices.push({
      operation: "add",
      device: { $type: "VirtualVmxnet3", key: -105, backing: nicBacking(c.network), connectable: connected, addressType: "generated" },
    });
  }
  return {
    name: c.name,
    guestId: c.guestId,
    files: { vmPathName: `[${c.datastoreName}]` },
    numCPUs: c.cpus,
    memoryMB: c.memoryMiB,
    deviceChange: devices,
    firmware: c.firmware,
  };
}

function cdrom(key: number, isoPath: string, unit: number): SoapObject {
  return {
    operation: "add",
    device: {
      $type: "VirtualCdrom",
      key,
      backing: { $type: "VirtualCdromIsoBackingInfo", fileName: isoPath },
      connectable: connected,
      controllerKey: 200, // the IDE controller every new VM has
      unitNumber: unit,
    },
  };
}

/** VirtualMachineCloneSpec: full clone, or linked (a child disk on the source's snapshot). */
export function cloneSpec(o: { pool: MoRef; datastore: MoRef; host: MoRef | undefined; cpus: number; memoryMiB: number; linkedSnapshot: MoRef | undefined }): SoapObject {
  return {
    location: {
      datastore: o.datastore,
      ...(o.linkedSnapshot ? { diskMoveType: "createNewChildDiskBacking" } : {}),
      pool: o.pool,
      ...(o.host ? { host: o.host } : {}),
    },
    template: false,
    config: { numCPUs: o.cpus, memoryMB: o.memoryMiB },
    powerOn: false,
    ...(o.linkedSnapshot ? { snapshot: o.linkedSnapshot } : {}),
  };
}

/** extraConfig entries (OptionValue), e.g. for ReconfigVM_Task. */
export function extraConfigSpec(values: Record<string, string>): SoapObject {
  return { extraConfig: Object.entries(values).map(([key, value]) => ({ $type: "OptionValue", key, value: { $type: "xsd:string", _: value } })) };
}

/**
 * CPU and memory for a clone, set again after CloneVM_Task (the clone spec's config is not applied
 * everywhere; vcsim ignores it), with drivers.vsphere.disk_size's edit of the first disk if any.
 */
export function cloneReconfigSpec(o: { cpus: number; memoryMiB: number; grownDisk: SoapObject | undefined }): SoapObject {
  return { numCPUs: o.cpus, memoryMB: o.memoryMiB, ...(o.grownDisk ? { deviceChange: [{ operation: "edit", device: o.grownDisk }] } : {}) };
}

// ---------- editing devices read back from config.hardware.device ----------

/** DynamicData's and VirtualDevice's fields in WSDL order; a subtype's own fields come after them. */
const DEVICE_FIELDS = ["dynamicType", "dynamicProperty", "key", "deviceInfo", "backing", "connectable", "slotInfo", "controllerKey", "unitNumber", "numaNode", "deviceGroupInfo"];
const DISK_FIELDS = [...DEVICE_FIELDS, "capacityInKB", "capacityInBytes"];

/**
 * `device` (as read, see asSoapValue) with `changes` applied: replaced fields keep their place, a
 * field the device lacked goes where `order` puts it (vCenter validates sequences; a field not in
 * `order` is a later subtype field).
 */
function editDevice(device: SoapObject, changes: SoapObject, order: readonly string[]): SoapObject {
  const rank = (k: string) => (order.includes(k) ? order.indexOf(k) : order.length);
  const missing = Object.keys(changes).filter((k) => !(k in device));
  const out: SoapObject = {};
  for (const [k, v] of Object.entries(device)) {
    if (k !== "$type") for (const m of missing.filter((m) => !(m in out) && rank(m) < rank(k))) out[m] = changes[m];
    out[k] = k in changes ? changes[k] : v;
  }
  for (const m of missing.filter((m) => !(m in out))) out[m] = changes[m];
  return out;
}

/** A disk's capacity: capacityInBytes (vSphere 5.5+; 0 or absent on old hosts and vcsim), else capacityInKB. */
export function diskCapacityBytes(disk: XNode): number {
  const bytes = Number(textOf(disk, "capacityInBytes") ?? 0);
  return bytes > 0 ? bytes : Number(textOf(disk, "capacityInKB") ?? 0) * 1024;
}

function sizeText(bytes: number): string {
  for (const [unit, n] of [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 1024]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`;
  }
  return `${bytes} bytes`;
}

export interface DiskGrowth {
  /** The edited first disk for ReconfigVM_Task; undefined when it already has the size. */
  device: SoapObject | undefined;
  fromBytes: number;
  toBytes: number;
  /** For the log: "grew the first disk from 10 GiB to 20 GiB". */
  summary: string;
}

/**
 * drivers.vsphere.disk_size for a clone (Packer vsphere-clone's disk_size): the first VirtualDisk
 * edited to the size, rounded up to whole KiB (capacityInKB and capacityInBytes must agree). vSphere
 * grows disks and never shrinks them, so a size below the source's disk is the template's mistake.
 * The guest grows its partition and filesystem itself (cloud-init growpart, or a provisioner).
 */
export function growFirstDisk(devices: readonly XNode[], wantBytes: number, /** names the source in errors */ source: string): DiskGrowth {
  const field = "drivers.vsphere.disk_size";
  const disk = devices.find((d) => d.xsiType === "VirtualDisk");
  if (!disk) throw new UserError("VSPHERE_DISK_SIZE", `${field}: ${source} has no virtual disk to grow`);
  const fromBytes = diskCapacityBytes(disk);
  const kb = Math.ceil(wantBytes / 1024);
  const toBytes = kb * 1024;
  if (toBytes < fromBytes) {
    throw new UserError("VSPHERE_DISK_SIZE", `${field}: ${sizeText(toBytes)} is smaller than the first disk of ${source} (${sizeText(fromBytes)}); vSphere grows disks, it never shrinks them`, {
      hint: `omit disk_size to keep ${sizeText(fromBytes)}, or give at least that`,
    });
  }
  if (toBytes === fromBytes) return { device: undefined, fromBytes, toBytes, summary: `the first disk already has ${sizeText(toBytes)}` };
  const device = editDevice(asSoapValue(disk) as SoapObject, { capacityInKB: kb, capacityInBytes: toBytes }, DISK_FIELDS);
  return { device, fromBytes, toBytes, summary: `grew the first disk from ${sizeText(fromBytes)} to ${sizeText(toBytes)}` };
}

/**
 * An ejected CD-ROM, the way Packer's vsphere builders leave one: the drive stays (an installed
 * VM has one; a cloud-init seed or VMware Tools ISO goes there later), backed by nothing and
 * disconnected. vSphere describes it in an OVF as vmware.cdrom.remotepassthrough, which imports
 * anywhere; a drive still naming a datastore ISO is not portable (the export lease wants the file,
 * and a deployed copy tries to mount it).
 */
export const EMPTY_CDROM_BACKING: SoapObject = { $type: "VirtualCdromRemotePassthroughBackingInfo", deviceName: "", exclusive: false };
const DISCONNECTED: SoapObject = { startConnected: false, allowGuestControl: false, connected: false };

export interface MediaDetach {
  /** ReconfigVM_Task spec, or undefined when none of the media is attached (any more). */
  spec: SoapObject | undefined;
  ejected: string[];
  removed: string[];
}

/**
 * What a build does with the media it attached before the VM leaves its hands (export, template,
 * snapshot, library capture, none): a CD-ROM marked "eject" (the installer ISO's drive) is emptied,
 * a device marked "remove" (the kickstart/preseed floppy or CD, which exists only for the build) is
 * removed, as Packer removes its floppy. Devices the build did not attach are left alone.
 */
export function detachMediaSpec(devices: readonly XNode[], media: ReadonlyMap<string, "eject" | "remove">): MediaDetach {
  const changes: SoapObject[] = [];
  const ejected: string[] = [];
  const removed: string[] = [];
  for (const d of devices) {
    if (d.xsiType !== "VirtualCdrom" && d.xsiType !== "VirtualFloppy") continue;
    const file = textOf(child(d, "backing"), "fileName") ?? "";
    const what = media.get(file);
    if (!what) continue;
    const device = asSoapValue(d) as SoapObject;
    if (what === "eject" && d.xsiType === "VirtualCdrom") {
      changes.push({ operation: "edit", device: editDevice(device, { backing: EMPTY_CDROM_BACKING, connectable: DISCONNECTED }, DEVICE_FIELDS) });
      ejected.push(file);
    } else {
      changes.push({ operation: "remove", device });
      removed.push(file);
    }
  }
  return { spec: changes.length > 0 ? { deviceChange: changes } : undefined, ejected, removed };
}

const MODIFIER_ORDER: Array<keyof UsbModifiers> = ["leftControl", "leftShift", "leftAlt", "leftGui", "rightControl", "rightShift", "rightAlt", "rightGui"];

/** UsbScanCodeSpec for PutUsbScanCodes. */
export function usbScanCodeSpec(events: UsbKeyEvent[]): SoapObject {
  return {
    keyEvents: events.map((e) => {
      const modifiers: SoapObject = {};
      for (const m of MODIFIER_ORDER) if (e.modifiers[m]) modifiers[m] = true;
      return { usbHidCode: e.usbHidCode | 0, ...(Object.keys(modifiers).length ? { modifiers } : {}) };
    }),
  };
}
