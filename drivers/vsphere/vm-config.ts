// Pure builders of the vim25 data objects the driver sends. Field order follows the WSDL
// (vCenter validates sequences); temporary device keys are negative, as vSphere expects for adds.
import { MoRef, type SoapObject } from "./soap.js";
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

/** Removes devices (installer CD-ROM, floppy) by their current definition. */
export function removeDevicesSpec(devices: SoapObject[]): SoapObject {
  return { deviceChange: devices.map((device) => ({ operation: "remove", device })) };
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
