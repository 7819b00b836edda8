// TEST DOUBLE of VBoxManage (not VirtualBox): `storagectl` and `storageattach`, following
// handleStorageController / handleStorageAttach in src/VBox/Frontends/VBoxManage/
// VBoxManageStorageController.cpp and the Main API checks they reach (Machine::addStorageController,
// StorageController::setControllerType/setPortCount/i_checkPortAndDeviceValid,
// SystemProperties::getMaxPortCountForStorageBus, StorageController::init's defaults).
//   - option tables g_aStorageControllerOptions / g_aStorageAttachOptions (same in 6.1 and 7.0),
//     with their one-letter short forms;
//   - storagectl needs at least 4 arguments ("Too few parameters"), parses, then finds and locks the
//     machine, then checks --name; --add is ide|sata|scsi|floppy|sas|usb|pcie|virtio-scsi|virtio and
//     --controller lsilogic|buslogic|intelahci|piix3|piix4|ich6|i82078|lsilogicsas|usb|nvme|
//     virtio-scsi|virtio (case-insensitive), a type the bus cannot have fails as "Invalid controller
//     type N"; port counts per bus as setPortCount allows them;
//   - storageattach grows a controller's port count when --port is beyond it but within the bus
//     maximum, checks port/device ranges with i_checkPortAndDeviceValid's text, opens a medium by
//     path (it must exist) and attaches hdd/dvddrive/fdd; its parse errors fail with exit 1 (the
//     handler sets hrc = E_FAIL after errorGetOpt), an invalid --type with exit 2 (errorArgument).
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { randomUUID } from "node:crypto";
import { REQ, getOptErrorText, getopt } from "./getopt.mjs";
import { VBoxError, apiError, argumentError, syntaxError } from "./errors.mjs";

const FILE = "VBoxManageStorageController.cpp";

export const BUSES = {
  ide: { bus: "IDE", type: "PIIX4", ports: 2, maxPorts: 2, devices: 2, portRange: [2, 2] },
  sata: { bus: "SATA", type: "IntelAhci", ports: 30, maxPorts: 30, devices: 1, portRange: [1, 30] },
  scsi: { bus: "SCSI", type: "LsiLogic", ports: 16, maxPorts: 16, devices: 1, portRange: [16, 16] },
  floppy: { bus: "Floppy", type: "I82078", ports: 1, maxPorts: 1, devices: 2, portRange: [1, 1] },
  sas: { bus: "SAS", type: "LsiLogicSas", ports: 8, maxPorts: 255, devices: 1, portRange: [1, 255] },
  usb: { bus: "USB", type: "USB", ports: 8, maxPorts: 8, devices: 1, portRange: [8, 8] },
  pcie: { bus: "PCIe", type: "NVMe", ports: 1, maxPorts: 255, devices: 1, portRange: [1, 255] },
  virtio: { bus: "VirtioSCSI", type: "VirtioSCSI", ports: 1, maxPorts: 256, devices: 1, portRange: [1, 256] },
};
const BUS_ALIASES = { "virtio-scsi": "virtio" };
/** StorageControllerType_* names and enum values, and the bus each belongs to. */
const TYPES = {
  lsilogic: ["LsiLogic", 1, "scsi"],
  buslogic: ["BusLogic", 2, "scsi"],
  intelahci: ["IntelAhci", 3, "sata"],
  piix3: ["PIIX3", 4, "ide"],
  piix4: ["PIIX4", 5, "ide"],
  ich6: ["ICH6", 6, "ide"],
  i82078: ["I82078", 7, "floppy"],
  lsilogicsas: ["LsiLogicSas", 8, "sas"],
  usb: ["USB", 9, "usb"],
  nvme: ["NVMe", 10, "pcie"],
  virtio: ["VirtioSCSI", 11, "virtio"],
  "virtio-scsi": ["VirtioSCSI", 11, "virtio"],
};

export const busInfo = (busKey) => BUSES[busKey];

const CTL_OPTS = [
  { name: "--name", id: "n", short: "n", req: REQ.STRING },
  { name: "--add", id: "a", short: "a", req: REQ.STRING },
  { name: "--controller", id: "c", short: "c", req: REQ.STRING },
  { name: "--portcount", id: "p", short: "p", req: REQ.UINT32 },
  { name: "--remove", id: "r", short: "r", req: REQ.NOTHING },
  { name: "--rename", id: "R", short: "R", req: REQ.STRING },
  { name: "--hostiocache", id: "i", short: "i", req: REQ.STRING },
  { name: "--bootable", id: "b", short: "b", req: REQ.STRING },
];

/** Parses `storagectl VM ...`; returns the options (the machine is looked up by the caller). */
export function parseStoragectl(argv) {
  if (argv.length < 4) throw syntaxError("Too few parameters");
  const o = {};
  for (const p of getopt(argv.slice(1), CTL_OPTS)) {
    if (p.id === "nonopt") throw syntaxError(`Invalid parameter '${p.value}'`);
    o[p.id] = p.value;
  }
  return o;
}

/** Applies parsed storagectl options to machine `m` (mutates a copy; throws on failure). */
export function applyStoragectl(m0, o) {
  const m = structuredClone(m0);
  if (o.n === undefined) throw syntaxError("Storage controller name not specified\n");
  const name = o.n;
  const find = () => m.controllers.find((c) => c.name === name);
  if (o.r) {
    if (!find()) throw apiError(`Could not find a storage controller named '${name}'`, "VBOX_E_OBJECT_NOT_FOUND", "SessionMachine", "IMachine", "RemoveStorageController(Bstr(pszCtl).raw())", FILE, 1120);
    m.controllers = m.controllers.filter((c) => c.name !== name);
    m.attachments = m.attachments.filter((a) => a.controller !== name);
    return m;
  }
  if (o.a !== undefined) {
    const key = BUS_ALIASES[o.a.toLowerCase()] ?? o.a.toLowerCase();
    const info = BUSES[key];
    if (!info) throw argumentError(`Invalid --add argument '${o.a}'`);
    if (find()) throw apiError(`Storage controller named '${name}' already exists`, "VBOX_E_OBJECT_IN_USE", "SessionMachine", "IMachine", `AddStorageController(Bstr(pszCtl).raw(), StorageBus_${info.bus}, ctl.asOutParam())`, FILE, 1077);
    if (m.controllers.some((c) => c.busKey === key) && !["ide", "sata", "scsi", "sas", "usb", "pcie", "virtio"].includes(key)) {
      throw apiError(`Too many storage controllers of this type`, "VBOX_E_OBJECT_IN_USE", "SessionMachine", "IMachine", "AddStorageController", FILE, 1077);
    }
    m.controllers.push({ name, busKey: key, bus: info.bus, type: info.type, portCount: info.ports, bootable: true, hostIoCache: key === "ide" || key === "floppy" });
  }
  const ctl = () => {
    const c = find();
    if (!c) {
      throw apiError(`Could not find a storage controller named '${name}'`, "VBOX_E_OBJECT_NOT_FOUND", "SessionMachine", "IMachine", "GetStorageControllerByName(Bstr(pszCtl).raw(), ctl.asOutParam())", FILE, 1151);
    }
    return c;
  };
  if (o.c !== undefined) {
    const c = ctl();
    const t = TYPES[o.c.toLowerCase()];
    if (!t) throw argumentError(`Invalid --type argument '${o.c}'`);
    if (t[2] !== c.busKey) throw apiError(`Invalid controller type ${t[1]}`, "E_INVALIDARG", "StorageControllerWrap", "IStorageController", `COMSETTER(ControllerType)(StorageControllerType_${t[0]})`, FILE, 1160);
    c.type = t[0];
  }
  if (o.p !== undefined) {
    const c = ctl();
    const [lo, hi] = BUSES[c.busKey].portRange;
    if (o.p < lo || o.p > hi) throw apiError(`Invalid port count: ${o.p} (must be in range [${lo}, ${hi}])`, "E_INVALIDARG", "StorageControllerWrap", "IStorageController", "COMSETTER(PortCount)(portcount)", FILE, 1230);
    c.portCount = o.p;
  }
  for (const [key, field, label] of [["i", "hostIoCache", "--hostiocache"], ["b", "bootable", "--bootable"]]) {
    if (o[key] === undefined) continue;
    const c = ctl();
    const v = o[key].toLowerCase();
    if (v !== "on" && v !== "off") throw argumentError(`Invalid ${label} argument '${o[key]}'`);
    c[field] = v === "on";
  }
  if (o.R !== undefined) ctl().name = o.R;
  return m;
}

const ATTACH_OPTS = [
  ["--storagectl", "s", REQ.STRING], ["--port", "p", REQ.UINT32], ["--device", "d", REQ.UINT32], ["--type", "t", REQ.STRING],
  ["--medium", "m", REQ.STRING], ["--mtype", "M", REQ.STRING], ["--passthrough", "h", REQ.STRING], ["--tempeject", "e", REQ.STRING],
  ["--nonrotational", "n", REQ.STRING], ["--discard", "u", REQ.STRING], ["--hotpluggable", "o", REQ.STRING], ["--bandwidthgroup", "b", REQ.STRING],
  ["--forceunmount", "f", REQ.NOTHING], ["--comment", "C", REQ.STRING], ["--setuuid", "q", REQ.STRING], ["--setparentuuid", "Q", REQ.STRING],
  ["--server", "S", REQ.STRING], ["--target", "T", REQ.STRING], ["--tport", "P", REQ.STRING], ["--lun", "L", REQ.STRING],
  ["--encodedlun", "E", REQ.STRING], ["--username", "U", REQ.STRING], ["--password", "W", REQ.STRING], ["--passwordfile", "w", REQ.STRING],
  ["--initiator", "N", REQ.STRING], ["--intnet", "I", REQ.NOTHING],
].map(([name, id, req]) => ({ name, id, short: id, req }));

const ONOFF_ATTACH = { h: "--passthrough", e: "--tempeject", n: "--nonrotational", u: "--discard", o: "--hotpluggable" };

/** Parses `storageattach VM ...`: parse failures are reported and fail with exit 1 (hrc = E_FAIL). */
export function parseStorageattach(argv) {
  const o = {};
  const failed = (e) => new VBoxError([getOptErrorText(e)], 1);
  for (const p of getopt(argv.slice(1), ATTACH_OPTS, { onError: failed })) {
    if (p.id === "nonopt") throw new VBoxError([`Invalid parameter '${p.value}'`], 1);
    if (p.id === "t") {
      const t = p.value.toLowerCase();
      if (!["hdd", "fdd", "dvddrive"].includes(t)) throw argumentError(`Invalid --type argument '${p.value}'`, 2);
      o.t = t;
      continue;
    }
    if (p.id in ONOFF_ATTACH) {
      const v = p.value.toLowerCase();
      if (v !== "on" && v !== "off") throw argumentError(`Invalid ${ONOFF_ATTACH[p.id]} argument '${p.value}'`);
      o[p.id] = v;
      continue;
    }
    o[p.id] = p.value;
  }
  if (o.s === undefined) throw syntaxError("Storage controller name not specified");
  return o;
}

/** Applies storageattach to machine `m` (a copy is returned); `media` is the registry's media list. */
export function applyStorageattach(m0, o, media, { running }) {
  const m = structuredClone(m0);
  const c = m.controllers.find((x) => x.name === o.s);
  if (!c) throw new VBoxError([`Could not find a controller named '${o.s}'`, ""]);
  const info = BUSES[c.busKey];
  if (o.p === undefined) throw syntaxError("Port not specified");
  if (o.d === undefined) {
    if (info.devices > 1) throw syntaxError("Device not specified");
    o.d = 0;
  }
  if (o.p >= c.portCount && o.p < info.maxPorts) c.portCount = o.p + 1;
  if (o.p >= c.portCount || o.d >= info.devices) {
    throw apiError(
      `The port and/or device parameter are out of range: port=${o.p} (must be in range [0, ${c.portCount - 1}]), device=${o.d} (must be in range [0, ${info.devices - 1}])`,
      "E_INVALIDARG",
      "SessionMachine",
      "IMachine",
      "AttachDevice(Bstr(pszCtl).raw(), port, device, DeviceType_HardDisk, pMedium2Mount)",
      FILE,
      848,
    );
  }
  const slot = (a) => a.controller === c.name && a.port === o.p && a.device === o.d;
  const existing = m.attachments.find(slot);
  const medium = o.m;
  if (medium === undefined) throw new VBoxError(["Missing --medium argument", ""]);
  if (medium.toLowerCase() === "none") {
    if (running && existing?.type === "hdd") throw notMutable();
    m.attachments = m.attachments.filter((a) => !slot(a));
    return { machine: m, media };
  }
  const type = o.t === "dvddrive" ? "dvd" : o.t === "fdd" ? "floppy" : o.t === "hdd" ? "hdd" : existing?.type;
  if (!type) throw new VBoxError(["Argument --type must be specified", ""]);
  if (running && (type === "hdd" || !existing)) throw notMutable();
  if (medium.toLowerCase() === "emptydrive") {
    if (type === "hdd") throw new VBoxError([`No DVD/Floppy Drive attached to the controller '${c.name}'at the port: ${o.p}, device: ${o.d}`, ""]);
    m.attachments = m.attachments.filter((a) => !slot(a));
    m.attachments.push({ controller: c.name, port: o.p, device: o.d, type, medium: "emptydrive" });
    return { machine: m, media };
  }
  let path = resolve(medium);
  const byUuid = media.find((x) => x.uuid === medium.replace(/[{}]/g, "").toLowerCase());
  if (byUuid) path = byUuid.path;
  else if (!existsSync(path)) {
    throw apiError(
      `Could not find file for the medium '${path}' (VERR_FILE_NOT_FOUND)`,
      "VBOX_E_FILE_ERROR",
      "MediumWrap",
      "IMedium",
      "OpenMedium(Bstr(pszMedium).raw(), devType, accessMode, fForceNewUuidOnOpen, pMedium.asOutParam())",
      "VBoxManageDisk.cpp",
      201,
    );
  }
  let entry = media.find((x) => x.path === path);
  const newMedia = [...media];
  if (!entry) {
    entry = { uuid: randomUUID(), path, type };
    newMedia.push(entry);
  }
  m.attachments = m.attachments.filter((a) => !slot(a));
  m.attachments.push({
    controller: c.name,
    port: o.p,
    device: o.d,
    type,
    medium: path,
    uuid: entry.uuid,
    nonrotational: o.n === "on",
    discard: o.u === "on",
  });
  return { machine: m, media: newMedia };
}

function notMutable() {
  return apiError("The machine is not mutable (state is Running)", "VBOX_E_INVALID_VM_STATE", "SessionMachine", "IMachine", "AttachDevice", FILE, 848);
}
