// TEST DOUBLE of VBoxManage (not VirtualBox): `VBoxManage export`, following handleExportAppliance
// (src/VBox/Frontends/VBoxManage/VBoxManageAppliance.cpp), Machine::exportTo, Appliance::i_buildXML
// and Appliance::i_buildXMLForOneVirtualSystem (src/VBox/Main/src-server/ApplianceImplExport.cpp):
//   - the description of the machine is built in exportTo's order: OS, name, description, CPU,
//     memory, the IDE controller as two OVF controllers (primary, secondary), SATA, SCSI, SAS,
//     VirtioSCSI, NVMe, then each attachment (hard disks become `<name>-diskNNN.vmdk`, DVD drives
//     CD-ROM items whose ISO is skipped unless `--options iso`), then every enabled adapter
//     ("Ethernet adapter on 'NAT'"), USB, sound;
//   - the XML: Envelope with ovf:version "1.0" or "2.0" and its namespace, xml:lang en-US, the
//     rasd/vssd/xsi/vbox namespaces (2.0 adds epasd and sasd), References, DiskSection, NetworkSection,
//     one VirtualSystem with Info, OperatingSystemSection (CIM id, the VirtualBox type in Description
//     and vbox:OSType), VirtualHardwareSection (System with VirtualSystemType virtualbox-2.2), items
//     in two passes (controllers etc. first, then disks, DVD drives and adapters), rasd elements in
//     alphabetical order, 2.0 writing disks/DVDs as sasd:StorageItem and adapters as
//     epasd:EthernetPortItem and dropping ElementName outside 1.0; a virtio adapter gets no
//     ResourceSubType (the exporter only names PCNet32 and E1000);
//   - each Disk has ovf:capacity, ovf:diskId vmdiskN, ovf:fileRef, the streamOptimized format URI
//     and a new vbox:uuid; the vbox:Machine section (ovf:required="false", ovf:Info) carries the
//     machine's settings with the exported disks' new UUIDs in place of the source ones
//     (settings::MachineConfigFile::buildMachineXML; storage controllers inside Hardware from
//     settings version 1.17 on, as 7.0 writes them; 6.1 machines are written at 1.16);
//   - `--options nomacs` strips every MAC from vbox:Machine, `nomacsbutnat` those of non-NAT adapters;
//   - the manifest (`--manifest` or `--options manifest`) is `SHA1 (name) = hex` below OVF 2.0 and
//     SHA256 for 2.0 (Appliance::i_writeImpl sets fDigestTypes), files in write order;
//   - `.ova` output is a tar with the descriptor first, then the disks, then the manifest.
import { createHash, randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { basename, dirname, join, resolve } from "node:path";
import { REQ, getopt } from "./getopt.mjs";
import { VBoxError, apiError, syntaxError } from "./errors.mjs";
import { formatOfPath, qemuImg } from "./media.mjs";
import { vboxToCim } from "./ostypes.mjs";
import { E, writeXml } from "./xml.mjs";

const NS = {
  ovf10: "http://schemas.dmtf.org/ovf/envelope/1",
  ovf20: "http://schemas.dmtf.org/ovf/envelope/2",
  rasd: "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData",
  vssd: "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData",
  xsi: "http://www.w3.org/2001/XMLSchema-instance",
  vbox: "http://www.virtualbox.org/ovf/machine",
  epasd: "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_EthernetPortAllocationSettingData.xsd",
  sasd: "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_StorageAllocationSettingData.xsd",
};
export const STREAM_URI = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";
const ISO_URI = "http://www.ecma-international.org/publications/standards/Ecma-119.htm";

const EXPORT_OPTS = [
  ["--output", "o", REQ.STRING], ["--legacy09", "l"], ["--ovf09", "l"], ["--ovf10", "1"], ["--ovf20", "2"], ["--opc10", "c"], ["--manifest", "m"],
  ["--vsys", "s", REQ.UINT32], ["--vmname", "V", REQ.STRING], ["--product", "p", REQ.STRING], ["--producturl", "P", REQ.STRING],
  ["--vendor", "n", REQ.STRING], ["--vendorurl", "N", REQ.STRING], ["--version", "v", REQ.STRING], ["--description", "d", REQ.STRING],
  ["--eula", "e", REQ.STRING], ["--eulafile", "E", REQ.STRING], ["--options", "O", REQ.STRING], ["--cloud", "C", REQ.UINT32],
  ["--cloudshape", "S", REQ.STRING], ["--clouddomain", "D", REQ.STRING], ["--clouddisksize", "R", REQ.STRING], ["--cloudbucket", "B", REQ.STRING],
  ["--cloudocivcn", "Q", REQ.STRING], ["--cloudpublicip", "A", REQ.STRING], ["--cloudprofile", "F", REQ.STRING], ["--cloudocisubnet", "T", REQ.STRING],
  ["--cloudkeepobject", "K", REQ.STRING], ["--cloudlaunchinstance", "L", REQ.STRING], ["--cloudlaunchmode", "M", REQ.STRING],
  ["--cloudprivateip", "i", REQ.STRING], ["--cloudinitscriptpath", "I", REQ.STRING],
].map(([name, id, req = REQ.NOTHING]) => ({ name, id, short: id, req }));

const EXPORT_OPTION_WORDS = { createmanifest: "manifest", manifest: "manifest", exportdvdimages: "iso", iso: "iso", stripallmacs: "nomacs", nomacs: "nomacs", stripallnonnatmacs: "nomacsbutnat", nomacsbutnat: "nomacsbutnat" };

const exportGetOptError = (e) =>
  e.rc === "VERR_GETOPT_UNKNOWN_OPTION"
    ? syntaxError(`unknown option: ${e.psz}`)
    : syntaxError(e.def ? `${e.def.name}: ${e.rc === "VERR_GETOPT_REQUIRED_ARGUMENT_MISSING" ? "RTGetOpt: Command line option needs argument." : "RTGetOpt: Command line option has argument with bad format."}` : e.rc);

/** Parses `export` argv; returns { machines, output, format, manifest, options, vsys }. */
export function parseExport(argv) {
  const machines = [];
  let output;
  let format = "ovf-1.0";
  let manifest = false;
  const options = new Set();
  const vsys = {};
  let cur;
  for (const p of getopt(argv, EXPORT_OPTS, { onError: exportGetOptError })) {
    switch (p.id) {
      case "nonopt":
        machines.push(p.value);
        break;
      case "o":
        if (output !== undefined) throw syntaxError("You can only specify --output once.");
        output = p.value;
        break;
      case "l":
        format = "ovf-0.9";
        break;
      case "1":
        format = "ovf-1.0";
        break;
      case "2":
        format = "ovf-2.0";
        break;
      case "c":
        format = "opc-1.0";
        break;
      case "m":
        manifest = true;
        break;
      case "s":
        cur = p.value;
        vsys[cur] ??= {};
        break;
      case "O":
        for (const w of p.value.split(",").map((x) => x.trim()).filter(Boolean)) {
          const k = EXPORT_OPTION_WORDS[w.toLowerCase()];
          if (!k) throw new VBoxError([`Invalid export options '${p.value}'`, ""], 2);
          options.add(k);
        }
        break;
      case "V":
      case "p":
      case "P":
      case "n":
      case "N":
      case "v":
      case "d":
      case "e":
        if (cur === undefined) throw syntaxError(`Option "${p.def.name}" requires preceding --vsys${p.id === "V" ? " or --cloud" : ""} option.`);
        vsys[cur][p.def.name.slice(2)] = p.value;
        break;
      default:
        throw syntaxError(`Option "${p.def.name}" requires preceding --cloud option.`);
    }
  }
  if (machines.length === 0) throw syntaxError("At least one machine must be specified with the export command.");
  if (output === undefined) throw syntaxError("Missing --output argument with export command.");
  for (const k of Object.keys(vsys)) {
    if (Number(k) >= machines.length) throw syntaxError(`Invalid index ${k} with -vsys option; you specified only ${machines.length} virtual system(s).`);
  }
  return { machines, output, format, manifest: manifest || options.has("manifest"), options, vsys };
}

const NIC_TYPE_NUM = { Am79C970A: 1, Am79C973: 2, "82540EM": 3, "82543GC": 4, "82545EM": 5, virtio: 6, Am79C960: 7 };

/** The virtual system description entries, in Machine::exportTo's order. */
export function describe(m, { vmname, baseName, exportIso }) {
  const d = [];
  const add = (type, fields) => d.push({ type, ...fields });
  add("OS", { ovf: String(vboxToCim(m.ostype, m.longmode)), vbox: m.ostype });
  add("Name", { vbox: vmname ?? m.name });
  add("Description", { vbox: m.description ?? "" });
  add("CPU", { vbox: m.cpus });
  add("Memory", { vbox: m.memory * 1024 * 1024 });
  const index = {};
  const byBus = (k) => m.controllers.find((c) => c.busKey === k);
  const ide = byBus("ide");
  if (ide) {
    index.idePrimary = d.length;
    add("HardDiskControllerIDE", { vbox: ide.type });
    index.ideSecondary = d.length;
    add("HardDiskControllerIDE", { vbox: ide.type });
  }
  for (const [k, type] of [["sata", "HardDiskControllerSATA"], ["scsi", "HardDiskControllerSCSI"], ["sas", "HardDiskControllerSAS"], ["virtio", "HardDiskControllerVirtioSCSI"], ["pcie", "HardDiskControllerNVMe"]]) {
    const c = byBus(k);
    if (!c) continue;
    index[k] = d.length;
    add(type, { vbox: c.type === "IntelAhci" ? "AHCI" : c.type });
  }
  let disks = 0;
  for (const a of m.attachments) {
    const c = m.controllers.find((x) => x.name === a.controller);
    if (!c || a.medium === "emptydrive" || a.medium === "none") continue;
    let ctl;
    let channel;
    if (c.busKey === "ide") {
      ctl = a.port === 0 ? index.idePrimary : index.ideSecondary;
      channel = a.device;
    } else {
      ctl = index[c.busKey];
      channel = a.port;
    }
    if (a.type === "hdd") {
      add("HardDiskImage", { ovf: `${baseName}-disk${String(++disks).padStart(3, "0")}.vmdk`, vbox: a.medium, sourceUuid: a.uuid, extra: `controller=${ctl};channel=${channel}` });
    } else if (a.type === "dvd") {
      if (!/\.iso$/i.test(a.medium)) continue;
      add("CDROM", { ovf: `${baseName}-disk${String(++disks).padStart(3, "0")}.iso`, vbox: a.medium, sourceUuid: a.uuid, skip: !exportIso, extra: `controller=${ctl};channel=${channel}` });
    }
  }
  for (const n of m.nics) {
    if (!n.enabled) continue;
    const ovf = { nat: "NAT", bridged: "Bridged", intnet: "Internal", hostonly: "HostOnly", generic: "Generic", natnetwork: "NATNetwork", null: "Null" }[n.attachment] ?? "NAT";
    add("NetworkAdapter", { ovf, vbox: NIC_TYPE_NUM[n.adapter] ?? 3 });
  }
  if (m.audio?.enabled && m.audio.driver !== "null") add("SoundCard", { ovf: "ensoniq1371", vbox: "0" });
  return d;
}

const rasdOrder = ["Address", "AddressOnParent", "AllocationUnits", "AutomaticAllocation", "Caption", "Connection", "Description", "ElementName", "HostResource", "InstanceID", "Parent", "ResourceSubType", "ResourceType", "VirtualQuantity"];

/** Builds the OVF XML (and the disk list) as i_buildXML does. */
export function buildOvfXml(m, desc, { version, settingsMajor, stripMacs }) {
  const v2 = version === "2.0";
  const envNs = v2 ? NS.ovf20 : NS.ovf10;
  const references = [];
  const diskSection = [E("Info", [], [], "List of the virtual disks used in the package")];
  const networks = new Set();
  const vhs = [E("Info", [], [], "Virtual hardware requirements for a virtual machine")];
  const name = desc.find((x) => x.type === "Name").vbox;
  vhs.push(
    E("System", [], [
      E("vssd:ElementName", [], [], "Virtual Hardware Family"),
      E("vssd:InstanceID", [], [], "0"),
      E("vssd:VirtualSystemIdentifier", [], [], name),
      E("vssd:VirtualSystemType", [], [], "virtualbox-2.2"),
    ]),
  );
  let instance = 1;
  const ids = {};
  const files = [];
  let cdroms = 0;
  const uuidMap = {};
  for (const loop of [1, 2]) {
    desc.forEach((e, i) => {
      const f = {};
      let type = 0;
      switch (e.type) {
        case "CPU":
          if (loop !== 1) return;
          Object.assign(f, { Description: "Number of virtual CPUs", Caption: `${e.vbox} virtual CPU`, VirtualQuantity: e.vbox });
          type = 3;
          break;
        case "Memory":
          if (loop !== 1) return;
          Object.assign(f, { Description: "Memory Size", AllocationUnits: "MegaBytes", Caption: `${e.vbox / 1048576} MB of memory`, VirtualQuantity: e.vbox / 1048576 });
          type = 4;
          break;
        case "HardDiskControllerIDE":
          if (loop !== 1) return;
          Object.assign(f, { Description: "IDE Controller", ResourceSubType: e.vbox, Caption: ids.ide1 === undefined ? "ideController0" : "ideController1", Address: ids.ide1 === undefined ? 0 : 1 });
          type = 5;
          if (ids.ide1 === undefined) ids.ide1 = [i, instance];
          else ids.ide2 = [i, instance];
          break;
        case "HardDiskControllerSATA":
          if (loop !== 1) return;
          Object.assign(f, { Description: "SATA Controller", Caption: "sataController0", Address: 0, ResourceSubType: "AHCI" });
          type = 20;
          ids.sata = [i, instance];
          break;
        case "HardDiskControllerSCSI":
        case "HardDiskControllerSAS":
          if (loop !== 1) return;
          Object.assign(f, { Description: "SCSI Controller", Caption: "scsiController0", Address: 0, ResourceSubType: e.vbox.toLowerCase() });
          type = 6;
          ids.scsi = [i, instance];
          break;
        case "HardDiskControllerVirtioSCSI":
          if (loop !== 1) return;
          Object.assign(f, { Description: "VirtioSCSI Controller", Caption: "virtioSCSIController0", Address: 0, ResourceSubType: "VirtioSCSI" });
          type = 20;
          ids.virtio = [i, instance];
          break;
        case "HardDiskControllerNVMe":
          if (loop !== 1) return;
          Object.assign(f, { Description: "NVMe Controller", Caption: "nvmeController0", Address: 0, ResourceSubType: "NVMe" });
          type = 20;
          ids.nvme = [i, instance];
          break;
        case "HardDiskImage":
        case "CDROM": {
          if (loop !== 2) return;
          const [ctlIndex, channel] = /controller=(\d+);channel=(\d+)/.exec(e.extra).slice(1).map(Number);
          const parent = Object.values(ids).find(([idx]) => idx === ctlIndex)?.[1];
          if (e.type === "HardDiskImage") {
            const diskId = `vmdisk${files.length + 1}`;
            Object.assign(f, { Description: "Disk Image", Caption: `disk${files.length + 1}`, HostResource: `/disk/${diskId}`, Parent: parent, AddressOnParent: channel });
            type = 17;
            const target = randomUUID();
            uuidMap[e.sourceUuid] = target;
            files.push({ kind: "disk", diskId, href: e.ovf, source: e.vbox, uuid: target });
          } else {
            cdroms++;
            const diskId = `iso${files.length + 1}`;
            Object.assign(f, { Description: "CD-ROM Drive", Caption: `cdrom${cdroms}`, AutomaticAllocation: "true", Parent: parent, AddressOnParent: channel });
            if (!e.skip) {
              f.HostResource = `/disk/${diskId}`;
              files.push({ kind: "iso", diskId, href: e.ovf, source: e.vbox, uuid: randomUUID() });
            }
            type = 15;
          }
          break;
        }
        case "NetworkAdapter": {
          if (loop !== 2) return;
          Object.assign(f, { AutomaticAllocation: "true", Caption: `Ethernet adapter on '${e.ovf}'`, Connection: e.ovf });
          if (e.vbox === 1 || e.vbox === 2) f.ResourceSubType = "PCNet32";
          else if (e.vbox >= 3 && e.vbox <= 5) f.ResourceSubType = "E1000";
          networks.add(e.ovf);
          type = 10;
          break;
        }
        case "SoundCard":
          if (loop !== 1) return;
          Object.assign(f, { Description: "Sound Card", Caption: "sound", ResourceSubType: e.ovf, AutomaticAllocation: "false", AddressOnParent: 3 });
          type = 35;
          break;
        default:
          return;
      }
      f.InstanceID = instance++;
      f.ResourceType = type;
      if (f.Caption !== undefined && version === "1.0") f.ElementName = f.Caption;
      let tag = "Item";
      let p = "rasd";
      if (v2 && loop === 2) {
        if (e.type === "NetworkAdapter") [tag, p] = ["EthernetPortItem", "epasd"];
        else [tag, p] = ["StorageItem", "sasd"];
      }
      const children = rasdOrder.filter((k) => f[k] !== undefined).map((k) => E(`${p}:${k}`, [], [], String(f[k])));
      vhs.push(E(tag, [], children));
    });
  }
  files.forEach((file, i) => {
    references.push(E("File", [["ovf:id", `file${i + 1}`], ["ovf:href", file.href]]));
    file.fileRef = `file${i + 1}`;
  });
  const vbox = vboxMachine(m, { name, uuidMap, settingsMajor, stripMacs });
  const os = desc.find((x) => x.type === "OS");
  const vsChildren = [E("Info", [], [], "A virtual machine")];
  const description = desc.find((x) => x.type === "Description")?.vbox;
  if (description) vsChildren.push(E("AnnotationSection", [], [E("Info", [], [], "A human-readable annotation"), E("Annotation", [], [], description)]));
  vsChildren.push(
    E("OperatingSystemSection", [["ovf:id", os.ovf]], [E("Info", [], [], "The kind of installed guest operating system"), E("Description", [], [], os.vbox), E("vbox:OSType", [["ovf:required", "false"]], [], os.vbox)]),
    E("VirtualHardwareSection", [], vhs),
    vbox,
  );
  const envelope = E(
    "Envelope",
    [
      ["ovf:version", version],
      ["xml:lang", "en-US"],
      ["xmlns", envNs],
      ["xmlns:ovf", envNs],
      ["xmlns:rasd", NS.rasd],
      ["xmlns:vssd", NS.vssd],
      ["xmlns:xsi", NS.xsi],
      ["xmlns:vbox", NS.vbox],
      ...(v2 ? [["xmlns:epasd", NS.epasd], ["xmlns:sasd", NS.sasd]] : []),
    ],
    [
      E("References", [], references),
      E("DiskSection", [], diskSection),
      E("NetworkSection", [], [E("Info", [], [], "Logical networks used in the package"), ...[...networks].map((n) => E("Network", [["ovf:name", n]], [E("Description", [], [], "Logical network used by this appliance.")]))]),
      E("VirtualSystem", [["ovf:id", name]], vsChildren),
    ],
  );
  return { envelope, files, diskSection };
}

/** The vbox:Machine element (a subset of settings::MachineConfigFile::buildMachineXML's output). */
function vboxMachine(m, { name, uuidMap, settingsMajor, stripMacs }) {
  const settingsVersion = settingsMajor === "7.0" ? "1.19-linux" : "1.16-linux";
  const nics = m.nics
    .map((n, slot) => ({ n, slot }))
    .filter(({ n }) => n.enabled)
    .map(({ n, slot }) => {
      const attrs = [["slot", slot], ["enabled", "true"]];
      const keepMac = !(stripMacs === "all" || (stripMacs === "nonnat" && n.attachment !== "nat"));
      if (keepMac) attrs.push(["MACAddress", n.mac]);
      if (!n.cable) attrs.push(["cable", "false"]);
      attrs.push(["type", n.adapter === "virtio" ? "virtio" : n.adapter]);
      const children = [];
      if (n.attachment === "nat") {
        const natAttrs = [];
        // Settings.cpp writes localhost-reachable only when it differs from the version's default.
        if (settingsMajor === "7.0" && n.localhostReachable) natAttrs.push(["localhost-reachable", "true"]);
        if (n.natnet) natAttrs.push(["network", n.natnet]);
        children.push(
          E(
            "NAT",
            natAttrs,
            n.natpf.map((r) => E("Forwarding", [["name", r.name], ["proto", r.proto === "udp" ? 0 : 1], ["hostip", r.hostIp], ["hostport", r.hostPort], ["guestip", r.guestIp], ["guestport", r.guestPort]].filter(([, v]) => v !== ""))),
          ),
        );
      } else children.push(E({ bridged: "BridgedInterface", intnet: "InternalNetwork", hostonly: "HostOnlyInterface", generic: "GenericInterface", natnetwork: "NATNetwork" }[n.attachment] ?? "DisabledModes"));
      return E("Adapter", attrs, children);
    });
  const storage = E(
    "StorageControllers",
    [],
    m.controllers.map((c) =>
      E(
        "StorageController",
        [["name", c.name], ["type", c.type], ["PortCount", c.portCount], ["useHostIOCache", c.hostIoCache ? "true" : "false"], ["Bootable", c.bootable === false ? "false" : "true"]],
        m.attachments
          .filter((a) => a.controller === c.name && a.medium !== "none")
          .map((a) =>
            E(
              "AttachedDevice",
              [
                ...(a.type === "dvd" ? [["passthrough", "false"]] : []),
                ...(a.nonrotational ? [["nonrotational", "true"]] : []),
                ...(a.discard ? [["discard", "true"]] : []),
                ["type", a.type === "hdd" ? "HardDisk" : a.type === "dvd" ? "DVD" : "Floppy"],
                ["hotpluggable", "false"],
                ["port", a.port],
                ["device", a.device],
              ],
              a.medium === "emptydrive" ? [] : [E("Image", [["uuid", `{${uuidMap[a.uuid] ?? a.uuid}}`]])],
            ),
          ),
      ),
    ),
  );
  const hardware = [
    E("CPU", [["count", m.cpus]], [E("PAE", [["enabled", m.pae ? "true" : "false"]]), E("LongMode", [["enabled", m.longmode ? "true" : "false"]]), E("HardwareVirtExLargePages", [["enabled", "false"]])]),
    E("Memory", [["RAMSize", m.memory]]),
    ...(m.firmware !== "BIOS" ? [E("Firmware", [["type", m.firmware]])] : []),
    E("Boot", [], m.boot.map((b, i) => E("Order", [["position", i + 1], ["device", { floppy: "Floppy", dvd: "DVD", disk: "HardDisk", net: "Network", none: "None" }[b]]]))),
    E("Display", [["controller", m.graphicscontroller], ["VRAMSize", m.vram]]),
    E("BIOS", [], [E("IOAPIC", [["enabled", m.ioapic ? "true" : "false"]]), ...(m.acpi ? [] : [E("ACPI", [["enabled", "false"]])])]),
    E("Network", [], nics),
    E("AudioAdapter", [["driver", m.audio?.driver === "null" ? "Null" : "Pulse"], ["enabled", m.audio?.enabled ? "true" : "false"]]),
    E("RTC", [["localOrUTC", m.rtcuseutc ? "UTC" : "local"]]),
    ...(settingsMajor === "7.0" ? [storage] : []),
  ];
  return E(
    "vbox:Machine",
    [["ovf:required", "false"], ["version", settingsVersion], ["uuid", `{${m.uuid}}`], ["name", name], ["OSType", m.ostype], ["snapshotFolder", "Snapshots"], ["lastStateChange", new Date().toISOString().replace(/\.\d+Z$/, "Z")]],
    [E("ovf:Info", [], [], "Complete VirtualBox machine configuration in VirtualBox format"), E("Hardware", [], hardware), ...(settingsMajor === "7.0" ? [] : [storage])],
  );
}

/** Writes the appliance; returns the "Successfully exported" count. */
export function writeAppliance(m, parsed, { settingsMajor }) {
  const { format, manifest, options } = parsed;
  if (format === "ovf-0.9" || format === "opc-1.0") {
    throw apiError(`The VBoxManage TEST DOUBLE writes OVF 1.0 and 2.0 only (asked: ${format})`, "VBOX_E_NOT_SUPPORTED", "ApplianceWrap", "IAppliance", "Write", "VBoxManageAppliance.cpp", 2006);
  }
  const out = resolve(parsed.output);
  const isOva = /\.ova$/i.test(out);
  if (!isOva && !/\.ovf$/i.test(out)) {
    throw apiError("Appliance file must have .ovf or .ova extension", "VBOX_E_FILE_ERROR", "ApplianceWrap", "IAppliance", "Write(Bstr(strOvfFormat).raw(), ComSafeArrayAsInParam(options), Bstr(pszAbsFilePath).raw(), progress.asOutParam())", "VBoxManageAppliance.cpp", 2013);
  }
  const version = format === "ovf-2.0" ? "2.0" : "1.0";
  const baseName = basename(out).replace(/\.(ovf|ova)$/i, "");
  const vmname = parsed.vsys["0"]?.vmname;
  const desc = describe(m, { vmname, baseName, exportIso: options.has("iso") });
  const stripMacs = options.has("nomacs") ? "all" : options.has("nomacsbutnat") ? "nonnat" : undefined;
  const { envelope, files, diskSection } = buildOvfXml(m, desc, { version, settingsMajor, stripMacs });
  mkdirSync(dirname(out), { recursive: true });
  const stage = isOva ? mkdtempSync(join(dirname(out), ".vbox-export-")) : dirname(out);
  mkdirSync(stage, { recursive: true });
  try {
    for (const f of files) {
      const dst = join(stage, f.href);
      rmSync(dst, { force: true });
      if (f.kind === "disk") {
        qemuImg(["convert", "-q", "-f", formatOfPath(f.source), "-O", "vmdk", "-o", "subformat=streamOptimized", f.source, dst]);
        const info = JSON.parse(qemuImg(["info", "--output=json", "-f", formatOfPath(f.source), f.source]));
        diskSection.push(E("Disk", [["ovf:capacity", info["virtual-size"]], ["ovf:diskId", f.diskId], ["ovf:fileRef", f.fileRef], ["ovf:format", STREAM_URI], ["vbox:uuid", f.uuid]]));
      } else {
        writeFileSync(dst, readFileSync(f.source));
        diskSection.push(E("Disk", [["ovf:capacity", readFileSync(f.source).length], ["ovf:diskId", f.diskId], ["ovf:fileRef", f.fileRef], ["ovf:format", ISO_URI], ["vbox:uuid", f.uuid]]));
      }
    }
    const xml = `<?xml version="1.0"?>\n${writeXml(envelope)}`;
    const ovfName = `${baseName}.ovf`;
    writeFileSync(join(stage, ovfName), xml);
    const names = [ovfName, ...files.map((f) => f.href)];
    if (manifest) {
      const algo = version === "2.0" ? "sha256" : "sha1";
      const mf = names.map((n) => `${algo.toUpperCase()} (${n}) = ${createHash(algo).update(readFileSync(join(stage, n))).digest("hex")}\n`).join("");
      writeFileSync(join(stage, `${baseName}.mf`), mf);
      names.push(`${baseName}.mf`);
    }
    if (isOva) {
      rmSync(out, { force: true });
      const r = spawnSync("tar", ["--format=ustar", "--owner=0", "--group=0", "-cf", out, "-C", stage, ...names], { encoding: "utf8" });
      if (r.status !== 0) throw new VBoxError([`Appliance write failed`, (r.stderr || "").trim()]);
    }
  } finally {
    if (isOva) rmSync(stage, { recursive: true, force: true });
  }
}
