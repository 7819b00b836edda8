// TEST DOUBLE of VBoxManage (VirtualBox's CLI) — not VirtualBox. Subcommands, option spellings, output
// formats, error texts and exit codes follow the VirtualBox manual's VBoxManage chapter and the real
// outputs recorded in test/doubles/recorded/ (SOURCES.md). Machines run on real QEMU (qemu.mjs).
//
// Environment:
//   VBOXMANAGE_DOUBLE_STATE    the registry (JSON); required
//   VBOXMANAGE_DOUBLE_VERSION  what `--version` prints (default 7.0.20r163906)
//   VBOXMANAGE_DOUBLE_LOCK_MS  how long a machine stays session-locked after its VM stops (default 1500)
//   VBOXMANAGE_DOUBLE_FAULT    "<subcommand>:exit0-error": that subcommand prints an error and exits 0
//   VBOXMANAGE_DOUBLE_QEMU     the QEMU binary (default qemu-system-x86_64)
import { spawnSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { VBoxError, apiError, lockedByStartvm, lockedForSession, notFound, notRunning, print, syntaxError } from "./errors.mjs";
import { buildOvf } from "./ovf.mjs";
import { qemuArgs, qmp, scancodesToQmpEvents } from "./qemu.mjs";
import { findMachine, lockWindowMs, nowIso, statePath, vmProcessAlive, withState } from "./state.mjs";

const out = (s) => process.stdout.write(s.endsWith("\n") ? s : s + "\n");
const progress = () => process.stderr.write("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\n");
const QEMU = () => process.env.VBOXMANAGE_DOUBLE_QEMU ?? "qemu-system-x86_64";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function main(argv) {
  try {
    const fault = process.env.VBOXMANAGE_DOUBLE_FAULT;
    if (fault && fault === `${argv[0]}:exit0-error`) {
      // Some real failures print the error and still exit 0 (Packer matches stderr for this reason).
      print(apiError("Injected failure (VBOXMANAGE_DOUBLE_FAULT)", "NS_ERROR_FAILURE", "SessionMachine", "IMachine", `${argv[0]}`));
      process.exit(0);
    }
    const code = await dispatch(argv);
    process.exit(code ?? 0);
  } catch (err) {
    if (err instanceof VBoxError) {
      print(err);
      process.exit(err.exitCode);
    }
    process.stderr.write(`VBoxManage: error: ${err?.stack ?? err}\n`);
    process.exit(1);
  }
}

/** `--opt value` pairs after the positional arguments; flags listed in `flags` take no value. */
function parseOpts(args, known, flags = []) {
  const o = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.includes("=") && a.startsWith("--")) throw syntaxError(`Invalid parameter '${a}'`);
    if (!known.includes(a) && !flags.includes(a)) throw syntaxError(a.startsWith("-") ? `Unknown option: ${a}` : `Invalid parameter '${a}'`);
    if (flags.includes(a)) {
      o[a] = true;
      continue;
    }
    if (i + 1 >= args.length) throw syntaxError(`Missing argument to '${a}'`);
    if (Array.isArray(o[a])) o[a].push(args[++i]);
    else if (o[a] !== undefined) o[a] = [o[a], args[++i]];
    else o[a] = args[++i];
  }
  return o;
}

function machineOrThrow(state, name, file) {
  const m = findMachine(state, name);
  if (!m) throw notFound(name, file);
  return m;
}

/** Commands that take a write lock fail while the VM runs or right after it stopped. */
function needWriteLock(m, file) {
  if (m.state === "running" || m.state === "stopping" || (m.lockedUntil && Date.now() < m.lockedUntil)) throw lockedForSession(m.name, file);
}

async function dispatch(argv) {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "--version":
    case "-v":
    case "-version":
      out(process.env.VBOXMANAGE_DOUBLE_VERSION ?? "7.0.20r163906");
      return 0;
    case undefined:
      out("Oracle VM VirtualBox Command Line Management Interface Version 7.0.20 (TEST DOUBLE)");
      return 0;
    case "list":
      return list(rest);
    case "createvm":
      return createvm(rest);
    case "modifyvm":
      return modifyvm(rest);
    case "storagectl":
      return storagectl(rest);
    case "storageattach":
      return storageattach(rest);
    case "createmedium":
    case "createhd":
      return createmedium(rest);
    case "clonemedium":
    case "clonehd":
      return clonemedium(rest);
    case "closemedium":
      return closemedium(rest);
    case "showvminfo":
      return showvminfo(rest);
    case "startvm":
      return startvm(rest);
    case "controlvm":
      return controlvm(rest);
    case "guestproperty":
      return guestproperty(rest);
    case "unregistervm":
      return unregistervm(rest);
    case "export":
      return exportVm(rest);
    default:
      throw syntaxError(`Invalid command '${cmd}'`);
  }
}

function list([what, ...extra]) {
  if (extra.length) throw syntaxError(`Invalid parameter '${extra[0]}'`);
  if (what !== "vms" && what !== "runningvms") throw syntaxError(`Unknown subcommand: ${what ?? ""}`);
  withState((state) => {
    for (const m of state.machines) if (what === "vms" || m.state === "running") out(`"${m.name}" {${m.uuid}}`);
  });
  return 0;
}

function createvm(args) {
  const o = parseOpts(args, ["--name", "--ostype", "--basefolder", "--groups", "--uuid", "--default"], ["--register"]);
  if (!o["--name"]) throw syntaxError("Parameter --name is required");
  const name = o["--name"];
  const base = resolve(o["--basefolder"] ?? join(dirname(statePath()), "VirtualBox VMs"));
  const folder = join(base, name);
  const settingsFile = join(folder, `${name}.vbox`);
  return withState((state, save) => {
    if (existsSync(settingsFile)) {
      throw apiError(`Machine settings file '${settingsFile}' already exists`, "VBOX_E_FILE_ERROR", "MachineWrap", "IMachine", "CreateMachine(bstrSettingsFile.raw(), bstrName.raw(), ComSafeArrayAsInParam(groups), bstrOsTypeId.raw(), createFlags.raw(), machine.asOutParam())", "VBoxManageMisc.cpp", 381);
    }
    if (o["--register"] && state.machines.some((m) => m.name === name)) {
      throw apiError(`Machine '${name}' already exists`, "VBOX_E_OBJECT_IN_USE", "VirtualBoxWrap", "IVirtualBox", "RegisterMachine(machine)", "VBoxManageMisc.cpp", 392);
    }
    const uuid = randomUUID();
    mkdirSync(join(folder, "Logs"), { recursive: true });
    writeFileSync(settingsFile, `<?xml version="1.0"?>\n<!-- Written by the VBoxManage TEST DOUBLE (vmkiln test/doubles), not by VirtualBox. -->\n<VirtualBox><Machine uuid="{${uuid}}" name="${name}"/></VirtualBox>\n`);
    if (o["--register"]) {
      state.machines.push({
        uuid, name, ostype: o["--ostype"] ?? "Other", basefolder: base, folder, settingsFile,
        memory: 128, cpus: 1, firmware: "bios", ioapic: "off", acpi: "on", nic1: "nat", natpf1: [],
        graphicscontroller: "vboxvga", vram: 8, rtcuseutc: "off", boot: ["floppy", "dvd", "disk", "none"],
        controllers: [], attachments: [], state: "poweroff", stateChangeTime: nowIso(), pid: null,
        scancodes: [], guestproperties: {},
      });
      save();
    }
    out(`Virtual machine '${name}' is created${o["--register"] ? " and registered" : ""}.\nUUID: ${uuid}\nSettings file: '${settingsFile}'`);
    return 0;
  });
}

const ONOFF = (v, opt) => {
  if (v !== "on" && v !== "off") throw syntaxError(`Invalid ${opt.slice(2)} state '${v}'`);
  return v;
};

function modifyvm([name, ...args]) {
  if (!name) throw syntaxError("Not enough parameters");
  const known = ["--memory", "--cpus", "--ioapic", "--acpi", "--firmware", "--nic1", "--nictype1", "--graphicscontroller", "--vram", "--rtcuseutc", "--boot1", "--boot2", "--boot3", "--boot4", "--natpf1", "--ostype", "--audio", "--usb"];
  // --natpf1 takes one value, or `delete NAME`.
  const pairs = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!known.includes(a)) throw syntaxError(a.startsWith("-") ? `Unknown option: ${a}` : `Invalid parameter '${a}'`);
    if (i + 1 >= args.length) throw syntaxError(`Missing argument to '${a}'`);
    if (a === "--natpf1" && args[i + 1] === "delete") {
      if (i + 2 >= args.length) throw syntaxError("Missing argument to '--natpf1 delete'");
      pairs.push([a, ["delete", args[i + 2]]]);
      i += 2;
    } else pairs.push([a, args[++i]]);
  }
  return withState((state, save) => {
    const m = machineOrThrow(state, name, "VBoxManageModifyVM.cpp");
    needWriteLock(m, "VBoxManageModifyVM.cpp");
    for (const [opt, v] of pairs) {
      switch (opt) {
        case "--memory":
        case "--cpus":
        case "--vram": {
          if (!/^\d+$/.test(v)) throw syntaxError(`Invalid value '${v}' for ${opt}`);
          m[opt.slice(2)] = Number(v);
          break;
        }
        case "--ioapic":
        case "--acpi":
        case "--rtcuseutc":
        case "--usb":
          m[opt.slice(2)] = ONOFF(v, opt);
          break;
        case "--firmware":
          if (!["bios", "efi", "efi32", "efi64"].includes(v)) throw syntaxError(`Invalid --firmware argument '${v}'`);
          m.firmware = v.startsWith("efi") ? "efi" : "bios";
          break;
        case "--nic1":
          if (!["none", "null", "nat", "bridged", "intnet", "hostonly", "generic", "natnetwork"].includes(v)) throw syntaxError(`Invalid type '${v}' specfied for NIC 1`);
          m.nic1 = v;
          break;
        case "--graphicscontroller":
          if (!["none", "vboxvga", "vmsvga", "vboxsvga"].includes(v)) throw syntaxError(`Invalid --graphicscontroller argument '${v}'`);
          m.graphicscontroller = v;
          break;
        case "--boot1":
        case "--boot2":
        case "--boot3":
        case "--boot4":
          if (!["none", "floppy", "dvd", "disk", "net"].includes(v)) throw syntaxError(`Invalid boot device '${v}'`);
          m.boot[Number(opt.slice(-1)) - 1] = v;
          break;
        case "--ostype":
          m.ostype = v;
          break;
        case "--natpf1": {
          if (Array.isArray(v)) {
            const i = m.natpf1.findIndex((r) => r.name === v[1]);
            if (i < 0) throw apiError(`Unknown NAT rule '${v[1]}'`, "E_INVALIDARG", "NATEngineWrap", "INATEngine", "RemoveRedirect(Bstr(ValueUnion.psz).raw())", "VBoxManageModifyVM.cpp", 1950);
            m.natpf1.splice(i, 1);
            break;
          }
          const p = v.split(",");
          if (p.length !== 6 || !["tcp", "udp"].includes(p[1]) || !/^\d+$/.test(p[3]) || !/^\d+$/.test(p[5])) throw syntaxError(`Invalid NAT rule '${v}'`);
          const rule = { name: p[0] || `${p[1]}_${p[3]}_${p[5]}`, proto: p[1], hostIp: p[2], hostPort: Number(p[3]), guestIp: p[4], guestPort: Number(p[5]) };
          if (m.natpf1.some((r) => r.name === rule.name)) throw apiError("A NAT rule of this name already exists", "E_INVALIDARG", "NATEngineWrap", "INATEngine", "AddRedirect(...)", "VBoxManageModifyVM.cpp", 1930);
          if (m.natpf1.some((r) => r.hostPort === rule.hostPort && r.hostIp === rule.hostIp && r.proto === rule.proto)) {
            throw apiError("A NAT rule for this host port and this host IP already exists", "E_INVALIDARG", "NATEngineWrap", "INATEngine", "AddRedirect(...)", "VBoxManageModifyVM.cpp", 1930);
          }
          m.natpf1.push(rule);
          break;
        }
        case "--nictype1":
          if (!["Am79C970A", "Am79C973", "Am79C960", "82540EM", "82543GC", "82545EM", "virtio"].includes(v)) throw syntaxError(`Invalid NIC type '${v}' specified for NIC 1`);
          m.nictype1 = v;
          break;
        default:
          break; // --audio, --usb: accepted, no effect on the QEMU side
      }
    }
    save();
    return 0;
  });
}

function storagectl([name, ...args]) {
  const o = parseOpts(args, ["--name", "--add", "--controller", "--portcount", "--bootable", "--hostiocache"], ["--remove"]);
  if (!name || !o["--name"]) throw syntaxError("Storage controller name not specified");
  return withState((state, save) => {
    const m = machineOrThrow(state, name, "VBoxManageStorageController.cpp");
    needWriteLock(m, "VBoxManageStorageController.cpp");
    const existing = m.controllers.find((c) => c.name === o["--name"]);
    if (o["--remove"]) {
      if (!existing) throw apiError(`Could not find a storage controller named '${o["--name"]}'`, "VBOX_E_OBJECT_NOT_FOUND", "SessionMachine", "IMachine", "RemoveStorageController(Bstr(pszCtl).raw())", "VBoxManageStorageController.cpp", 1120);
      m.controllers = m.controllers.filter((c) => c !== existing);
      m.attachments = m.attachments.filter((a) => a.controller !== existing.name);
    } else {
      const bus = o["--add"];
      if (!["ide", "sata", "scsi", "floppy", "sas", "usb", "pcie", "virtio"].includes(bus)) throw syntaxError(`Invalid --add argument '${bus}'`);
      if (existing) throw apiError(`Storage controller named '${o["--name"]}' already exists`, "VBOX_E_OBJECT_IN_USE", "SessionMachine", "IMachine", "AddStorageController(Bstr(pszCtl).raw(), StorageBus_SATA, ctl.asOutParam())", "VBoxManageStorageController.cpp", 1077);
      if (!["ide", "sata", "virtio"].includes(bus)) throw apiError(`Storage bus '${bus}' is not supported by the VBoxManage test double`, "NS_ERROR_FAILURE", "SessionMachine", "IMachine", "AddStorageController", "VBoxManageStorageController.cpp", 1077);
      const type = o["--controller"] ?? { sata: "IntelAhci", virtio: "VirtIO", ide: "PIIX4" }[bus];
      const portCount = bus === "ide" ? 2 : Number(o["--portcount"] ?? 30);
      m.controllers.push({ name: o["--name"], bus, type, portCount });
    }
    save();
    return 0;
  });
}

function storageattach([name, ...args]) {
  const o = parseOpts(args, ["--storagectl", "--port", "--device", "--type", "--medium", "--nonrotational", "--discard", "--mtype", "--hotpluggable"]);
  if (!name || o["--storagectl"] === undefined) throw syntaxError("Storage controller name not specified");
  return withState((state, save) => {
    const m = machineOrThrow(state, name, "VBoxManageStorageController.cpp");
    needWriteLock(m, "VBoxManageStorageController.cpp");
    const c = m.controllers.find((x) => x.name === o["--storagectl"]);
    if (!c) throw apiError(`Could not find a controller named '${o["--storagectl"]}'`, "VBOX_E_OBJECT_NOT_FOUND", "SessionMachine", "IMachine", "GetStorageControllerByName(Bstr(pszCtl).raw(), storageCtl.asOutParam())", "VBoxManageStorageController.cpp", 390);
    const port = Number(o["--port"] ?? 0);
    const device = Number(o["--device"] ?? 0);
    if (port >= c.portCount || (c.bus === "ide" && device > 1) || (c.bus !== "ide" && device !== 0)) {
      throw apiError(`The port and/or device parameter are out of range: port=${port} (must be in range [0, ${c.portCount - 1}]), device=${device} (must be in range [0, ${c.bus === "ide" ? 1 : 0}])`, "E_INVALIDARG", "SessionMachine", "IMachine", "AttachDevice", "VBoxManageStorageController.cpp", 848);
    }
    const medium = o["--medium"];
    m.attachments = m.attachments.filter((a) => !(a.controller === c.name && a.port === port && a.device === device));
    if (medium !== "none") {
      const type = o["--type"] === "dvddrive" ? "dvd" : o["--type"] === "hdd" ? "hdd" : undefined;
      if (!type) throw syntaxError(`Invalid --type argument '${o["--type"] ?? ""}'`);
      let path = medium;
      if (medium !== "emptydrive") {
        path = resolve(medium);
        if (!existsSync(path)) throw apiError(`Could not find file for the medium '${path}' (VERR_FILE_NOT_FOUND)`, "VBOX_E_FILE_ERROR", "MediumWrap", "IMedium", "OpenMedium(Bstr(pszMedium).raw(), devType, accessMode, fForceNewUuidOnOpen, pMedium.asOutParam())", "VBoxManageDisk.cpp", 201);
        if (type === "hdd" && m.attachments.some((a) => a.medium === path) === false && state.machines.some((x) => x !== m && x.attachments.some((a) => a.medium === path && a.type === "hdd"))) {
          throw apiError(`Medium '${path}' is already attached to another virtual machine`, "VBOX_E_OBJECT_IN_USE", "SessionMachine", "IMachine", "AttachDevice", "VBoxManageStorageController.cpp", 1000);
        }
        if (!state.media.some((x) => x.path === path)) state.media.push({ uuid: randomUUID(), path, type });
      }
      const uuid = state.media.find((x) => x.path === path)?.uuid;
      m.attachments.push({ controller: c.name, port, device, type, medium: path, uuid, nonrotational: o["--nonrotational"] ?? "off", discard: o["--discard"] ?? "off" });
    }
    save();
    return 0;
  });
}

function qemuImg(args) {
  const r = spawnSync("qemu-img", args, { encoding: "utf8" });
  if (r.status !== 0) throw apiError(`qemu-img ${args[0]} failed: ${(r.stderr || r.error?.message || "").trim()}`, "VBOX_E_FILE_ERROR", "MediumWrap", "IMedium", args[0], "VBoxManageDisk.cpp", 1);
  return r.stdout;
}

function createmedium(args) {
  const kind = args[0] === "disk" || args[0] === "dvd" || args[0] === "floppy" ? args.shift() : "disk";
  const o = parseOpts(args, ["--filename", "--size", "--sizebyte", "--format", "--variant"]);
  if (kind !== "disk" || !o["--filename"]) throw syntaxError("Parameters --filename is required");
  const format = (o["--format"] ?? "VDI").toUpperCase();
  if (!["VDI", "VMDK"].includes(format)) throw syntaxError(`Invalid medium format '${format}'`);
  const file = resolve(o["--filename"]);
  if (existsSync(file)) throw apiError(`Failed to create medium\nCould not create the medium storage unit '${file}'.\nVD: error VERR_ALREADY_EXISTS`, "VBOX_E_FILE_ERROR", "MediumWrap", "IMedium", "CreateBaseStorage", "VBoxManageDisk.cpp", 1);
  const bytes = o["--sizebyte"] ? Number(o["--sizebyte"]) : Number(o["--size"]) * 1024 * 1024;
  qemuImg(["create", "-f", format.toLowerCase(), file, String(bytes)]);
  return withState((state, save) => {
    const uuid = randomUUID();
    state.media.push({ uuid, path: file, type: "hdd" });
    save();
    progress();
    out(`Medium created. UUID: ${uuid}`);
    return 0;
  });
}

function clonemedium(args) {
  const kind = args[0] === "disk" || args[0] === "dvd" || args[0] === "floppy" ? args.shift() : "disk";
  const [src, dst, ...rest] = args;
  if (kind !== "disk" || !src || !dst) throw syntaxError("Mandatory parameters missing");
  const o = parseOpts(rest, ["--format", "--variant"], ["--existing"]);
  const format = (o["--format"] ?? "VDI").toUpperCase();
  const variant = String(o["--variant"] ?? "Standard");
  const from = resolve(src);
  const to = resolve(dst);
  if (!existsSync(from)) throw apiError(`Could not find file for the medium '${from}' (VERR_FILE_NOT_FOUND)`, "VBOX_E_FILE_ERROR", "MediumWrap", "IMedium", "OpenMedium", "VBoxManageDisk.cpp", 201);
  if (existsSync(to)) throw apiError(`Cannot create the medium storage unit '${to}': it already exists (VERR_ALREADY_EXISTS)`, "VBOX_E_FILE_ERROR", "MediumWrap", "IMedium", "CloneTo", "VBoxManageDisk.cpp", 1);
  const srcFmt = /\.vmdk$/i.test(from) ? "vmdk" : /\.vdi$/i.test(from) ? "vdi" : "raw";
  const args2 = ["convert", "-f", srcFmt, "-O", format.toLowerCase()];
  if (format === "VMDK" && /stream/i.test(variant)) args2.push("-o", "subformat=streamOptimized");
  qemuImg([...args2, from, to]);
  return withState((state, save) => {
    const uuid = randomUUID();
    state.media.push({ uuid, path: to, type: "hdd" });
    save();
    progress();
    out(`Clone medium created in format '${format}'. UUID: ${uuid}`);
    return 0;
  });
}

function closemedium(args) {
  const kind = args[0] === "disk" || args[0] === "dvd" || args[0] === "floppy" ? args.shift() : "disk";
  const [target, ...rest] = args;
  parseOpts(rest, [], ["--delete"]);
  return withState((state, save) => {
    const path = resolve(target ?? "");
    const i = state.media.findIndex((x) => x.path === path || x.uuid === target);
    if (i < 0) throw apiError(`Could not find file for the medium '${path}' (VERR_FILE_NOT_FOUND)`, "VBOX_E_FILE_ERROR", "MediumWrap", "IMedium", "OpenMedium", "VBoxManageDisk.cpp", 201);
    if (state.machines.some((m) => m.attachments.some((a) => a.medium === path))) {
      throw apiError(`Cannot close medium '${path}' because it has 1 children or is attached to a machine`, "VBOX_E_OBJECT_IN_USE", "MediumWrap", "IMedium", "Close()", "VBoxManageDisk.cpp", 1800);
    }
    state.media.splice(i, 1);
    if (rest.includes("--delete")) rmSync(path, { force: true });
    save();
    void kind;
    return 0;
  });
}

const OS_DESCRIPTIONS = { Debian_64: "Debian (64-bit)", Ubuntu_64: "Ubuntu (64-bit)", RedHat_64: "Red Hat (64-bit)", Oracle_64: "Oracle (64-bit)", Linux_64: "Other Linux (64-bit)", Other: "Other/Unknown" };

/** A machinereadable value: strings quoted, with `"` and `\` escaped (VBoxManageInfo.cpp outputMachineReadableString). */
const q = (s) => `"${String(s).replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;

export function machineReadable(m) {
  const L = [];
  // Attachment keys are always quoted ("SATA-0-0"="/path/disk.vdi"), as VBoxManageInfo.cpp prints them.
  const kv = (k, v, quoteKey = false) => L.push(`${!quoteKey && /^[A-Za-z0-9_()-]+$/.test(k) ? k : q(k)}=${v}`);
  kv("name", q(m.name));
  kv("groups", q("/"));
  kv("ostype", q(OS_DESCRIPTIONS[m.ostype] ?? m.ostype));
  kv("UUID", q(m.uuid));
  kv("CfgFile", q(m.settingsFile));
  kv("SnapFldr", q(join(m.folder, "Snapshots")));
  kv("LogFldr", q(join(m.folder, "Logs")));
  kv("hardwareuuid", q(m.uuid));
  kv("memory", m.memory);
  kv("pagefusion", q("off"));
  kv("vram", m.vram);
  kv("cpuexecutioncap", 100);
  kv("hpet", q("off"));
  kv("cpu-profile", q("host"));
  kv("chipset", q("piix3"));
  kv("firmware", q(m.firmware === "efi" ? "EFI" : "BIOS"));
  kv("cpus", m.cpus);
  kv("pae", q("on"));
  kv("longmode", q("on"));
  kv("triplefaultreset", q("off"));
  kv("apic", q("on"));
  kv("x2apic", q("on"));
  kv("nested-hw-virt", q("off"));
  kv("cpuid-portability-level", 0);
  kv("bootmenu", q("messageandmenu"));
  m.boot.forEach((b, i) => kv(`boot${i + 1}`, q(b)));
  kv("acpi", q(m.acpi));
  kv("ioapic", q(m.ioapic));
  kv("biosapic", q("apic"));
  kv("biossystemtimeoffset", 0);
  kv("rtcuseutc", q(m.rtcuseutc));
  kv("hwvirtex", q("on"));
  kv("nestedpaging", q("on"));
  kv("largepages", q("off"));
  kv("vtxvpid", q("on"));
  kv("vtxux", q("on"));
  kv("paravirtprovider", q("default"));
  kv("effparavirtprovider", q("kvm"));
  kv("VMState", q(m.state));
  kv("VMStateChangeTime", q(m.stateChangeTime));
  kv("graphicscontroller", q(m.graphicscontroller));
  kv("monitorcount", 1);
  kv("accelerate3d", q("off"));
  kv("accelerate2dvideo", q("off"));
  m.controllers.forEach((c, i) => {
    kv(`storagecontrollername${i}`, q(c.name));
    kv(`storagecontrollertype${i}`, q(c.type));
    kv(`storagecontrollerinstance${i}`, q("0"));
    kv(`storagecontrollermaxportcount${i}`, q(c.bus === "ide" ? "2" : c.bus === "sata" ? "30" : "255"));
    kv(`storagecontrollerportcount${i}`, q(String(c.portCount)));
    kv(`storagecontrollerbootable${i}`, q("on"));
  });
  for (const c of m.controllers) {
    for (let p = 0; p < c.portCount; p++) {
      for (let d = 0; d < (c.bus === "ide" ? 2 : 1); d++) {
        const a = m.attachments.find((x) => x.controller === c.name && x.port === p && x.device === d);
        kv(`${c.name}-${p}-${d}`, q(a ? a.medium : "none"), true);
        if (a && a.medium !== "emptydrive") kv(`${c.name}-ImageUUID-${p}-${d}`, q(a.uuid ?? m.uuid), true);
      }
    }
  }
  if (m.nic1 === "nat") {
    kv("natnet1", q("nat"));
    kv("macaddress1", q("080027" + m.uuid.replace(/-/g, "").slice(0, 6).toUpperCase()));
    kv("cableconnected1", q("on"));
    kv("nic1", q("nat"));
    kv("nictype1", q(m.nictype1 ?? "82540EM"));
    kv("nicspeed1", q("0"));
    kv("mtu", q("0"));
    kv("sockSnd", q("64"));
    kv("sockRcv", q("64"));
    kv("tcpWndSnd", q("64"));
    kv("tcpWndRcv", q("64"));
    m.natpf1.forEach((r, i) => kv(`Forwarding(${i})`, q(`${r.name},${r.proto},${r.hostIp},${r.hostPort},${r.guestIp},${r.guestPort}`)));
  } else {
    kv("nic1", q(m.nic1));
  }
  for (let n = 2; n <= 8; n++) kv(`nic${n}`, q("none"));
  kv("GuestMemoryBalloon", 0);
  return L.join("\n") + "\n";
}

function showvminfo([name, ...args]) {
  if (!name) throw syntaxError("Incorrect number of parameters");
  const o = parseOpts(args, [], ["--machinereadable", "--details"]);
  return withState((state) => {
    const m = machineOrThrow(state, name, "VBoxManageInfo.cpp");
    if (o["--machinereadable"]) process.stdout.write(machineReadable(m));
    else out(`Name:                        ${m.name}\nUUID:                        ${m.uuid}\nState:                       ${m.state === "poweroff" ? "powered off" : m.state} (since ${m.stateChangeTime})`);
    return 0;
  });
}

async function startvm([name, ...args]) {
  if (!name) throw syntaxError("Not enough parameters");
  const o = parseOpts(args, ["--type", "-E", "--putenv"]);
  const type = o["--type"] ?? "gui";
  if (!["gui", "headless", "sdl", "separate"].includes(type)) throw syntaxError(`Invalid session type '${type}'`);
  const prepared = withState((state, save) => {
    const m = machineOrThrow(state, name, "VBoxManageMisc.cpp");
    if (m.state === "running" || (m.lockedUntil && Date.now() < m.lockedUntil)) throw lockedByStartvm(m.name);
    const runDir = join(dirname(statePath()), "run");
    mkdirSync(runDir, { recursive: true });
    const short = m.uuid.slice(0, 8);
    const paths = {
      // Unix socket paths are limited to 108 bytes: keep them beside the (short) state file.
      qmpSocket: join(runDir, `${short}.qmp`),
      pidFile: join(runDir, `${short}.pid`),
      consoleLog: join(m.folder, "Logs", "console.log"),
      efiVars: join(m.folder, `${m.name}.nvram`),
    };
    if (m.firmware === "efi" && !existsSync(paths.efiVars)) copyFileSync("/usr/share/OVMF/OVMF_VARS_4M.fd", paths.efiVars);
    rmSync(paths.qmpSocket, { force: true });
    rmSync(paths.pidFile, { force: true });
    out(`Waiting for VM "${m.name}" to power on...`);
    // -daemonize: QEMU forks once the machine is set up, so startvm returns while the VM keeps running.
    const r = spawnSync(QEMU(), qemuArgs(m, paths), { encoding: "utf8" });
    if (r.status !== 0) {
      writeFileSync(join(m.folder, "Logs", "VBox.log"), `${r.stderr ?? ""}${r.error?.message ?? ""}`);
      throw apiError(
        `The virtual machine '${m.name}' has terminated unexpectedly during startup with exit code ${r.status ?? 1} (0x${(r.status ?? 1).toString(16)}).  More details may be available in '${join(m.folder, "Logs", "VBox.log")}'`,
        "NS_ERROR_FAILURE",
        "MachineWrap",
        "IMachine",
        "LaunchVMProcess",
        "VBoxManageMisc.cpp",
        727,
      );
    }
    m.pid = Number(readFileSync(paths.pidFile, "utf8").trim());
    m.qmpSocket = paths.qmpSocket;
    m.state = "running";
    m.stateChangeTime = nowIso();
    m.lockedUntil = null;
    m.sessionType = type;
    save();
    return m;
  });
  out(`VM "${prepared.name}" has been successfully started.`);
  return 0;
}

async function controlvm([name, action, ...args]) {
  if (!name || !action) throw syntaxError("Not enough parameters");
  const m = withState((state) => machineOrThrow(state, name, "VBoxManageControlVM.cpp"));
  if (m.state !== "running") throw notRunning(m.name);
  switch (action) {
    case "keyboardputscancode": {
      if (args.length === 0) throw syntaxError("Missing argument to 'keyboardputscancode'");
      for (const c of args) if (!/^[0-9a-fA-F]{1,2}$/.test(c)) throw syntaxError(`Error: '${c}' is not a hex byte!`);
      const codes = args.map((c) => c.toLowerCase().padStart(2, "0"));
      // One event per QMP command, a little apart: the guest's PS/2 queue is short.
      for (const ev of scancodesToQmpEvents(codes)) {
        await qmp(m.qmpSocket, [{ execute: "input-send-event", arguments: { events: [ev] } }]);
        await sleep(5);
      }
      withState((state, save) => {
        const cur = findMachine(state, name);
        cur.scancodes.push(codes);
        save();
      });
      return 0;
    }
    case "acpipowerbutton":
      await qmp(m.qmpSocket, [{ execute: "system_powerdown" }]);
      return 0;
    case "poweroff": {
      await qmp(m.qmpSocket, [{ execute: "quit" }]).catch(() => undefined);
      for (let i = 0; i < 100 && vmProcessAlive(m); i++) await sleep(100);
      if (vmProcessAlive(m)) process.kill(m.pid, "SIGKILL");
      withState((state, save) => {
        const cur = findMachine(state, name);
        cur.state = "poweroff";
        cur.stateChangeTime = nowIso();
        cur.pid = null;
        cur.lockedUntil = Date.now() + lockWindowMs();
        save();
      });
      progress();
      return 0;
    }
    default:
      throw syntaxError(`Invalid parameter '${action}'`);
  }
}

async function guestproperty([sub, name, ...args]) {
  if (!sub || !name) throw syntaxError("Incorrect parameters");
  if (sub === "get") {
    const [prop] = args;
    const m = withState((state) => machineOrThrow(state, name, "VBoxManageGuestProp.cpp"));
    const v = m.guestproperties?.[prop];
    out(v === undefined ? "No value set!" : `Value: ${v.value}`);
    return 0;
  }
  if (sub === "set") {
    const [prop, value] = args;
    return withState((state, save) => {
      const m = machineOrThrow(state, name, "VBoxManageGuestProp.cpp");
      if (value === undefined) delete m.guestproperties[prop];
      else m.guestproperties[prop] = { value, timestamp: Date.now() * 1e6, flags: "" };
      save();
      return 0;
    });
  }
  if (sub === "enumerate") {
    const m = withState((state) => machineOrThrow(state, name, "VBoxManageGuestProp.cpp"));
    for (const [k, v] of Object.entries(m.guestproperties ?? {})) out(`Name: ${k}, value: ${v.value}, timestamp: ${v.timestamp}, flags: ${v.flags}`);
    return 0;
  }
  if (sub === "wait") {
    const [pattern, ...rest] = args;
    const o = parseOpts(rest, ["--timeout"], ["--fail-on-timeout"]);
    if (o["--timeout"] !== undefined && !/^\d+$/.test(o["--timeout"])) throw syntaxError(`Invalid timeout '${o["--timeout"]}'`);
    const deadline = o["--timeout"] === undefined ? Infinity : Date.now() + Number(o["--timeout"]);
    const re = new RegExp(`^${String(pattern).replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
    const snapshot = () => withState((state) => machineOrThrow(state, name, "VBoxManageGuestProp.cpp").guestproperties ?? {});
    const before = snapshot();
    // Fires only on a change after the wait began (the manual: call `get` first).
    while (Date.now() < deadline) {
      await sleep(200);
      const now = snapshot();
      for (const [k, v] of Object.entries(now)) {
        if (re.test(k) && before[k]?.timestamp !== v.timestamp) {
          out(`Name: ${k}, value: ${v.value}, flags: ${v.flags}`);
          return 0;
        }
      }
    }
    process.stderr.write("Time out or interruption while waiting for a notification.\n");
    return o["--fail-on-timeout"] ? 2 : 0;
  }
  throw syntaxError(`Invalid parameter '${sub}'`);
}

function unregistervm([name, ...args]) {
  if (!name) throw syntaxError("VM name required");
  const o = parseOpts(args, [], ["--delete", "--delete-all"]);
  return withState((state, save) => {
    const m = machineOrThrow(state, name, "VBoxManageMisc.cpp");
    if (m.state === "running" || (m.lockedUntil && Date.now() < m.lockedUntil)) {
      throw apiError(`Cannot unregister the machine '${m.name}' while it is locked`, "VBOX_E_INVALID_OBJECT_STATE", "MachineWrap", "IMachine", "Unregister(CleanupMode_DetachAllReturnHardDisksOnly, ComSafeArrayAsOutParam(aMedia))", "VBoxManageMisc.cpp", 1);
    }
    state.machines = state.machines.filter((x) => x !== m);
    if (o["--delete"] || o["--delete-all"]) {
      // --delete removes the settings, logs and the attached hard disks (not DVD images).
      for (const a of m.attachments) {
        if (a.type !== "hdd") continue;
        rmSync(a.medium, { force: true });
        state.media = state.media.filter((x) => x.path !== a.medium);
      }
      rmSync(m.folder, { recursive: true, force: true });
      progress();
    }
    save();
    return 0;
  });
}

function exportVm(args) {
  const names = [];
  while (args.length && !args[0].startsWith("-")) names.push(args.shift());
  const o = parseOpts(args, ["-o", "--output", "--options", "--vsys", "--vmname", "--product", "--vendor", "--version", "--description"], ["--ovf09", "--ovf10", "--ovf20", "--opc10", "--manifest", "--iso"]);
  const output = o["-o"] ?? o["--output"];
  if (names.length !== 1) throw syntaxError("At least one machine must be specified");
  if (!output) throw syntaxError("Mandatory --output option missing");
  if (!/\.ovf$/i.test(output)) throw apiError("The VBoxManage test double only writes .ovf (not .ova)", "NS_ERROR_FAILURE", "ApplianceWrap", "IAppliance", "Write", "VBoxManageAppliance.cpp", 1);
  const options = String(o["--options"] ?? "").split(",").filter(Boolean);
  const manifest = Boolean(o["--manifest"]) || options.includes("manifest");
  const v2 = Boolean(o["--ovf20"]);
  return withState((state) => {
    const m = machineOrThrow(state, names[0], "VBoxManageAppliance.cpp");
    if (m.state === "running") throw lockedForSession(m.name, "VBoxManageAppliance.cpp");
    const ovfPath = resolve(output);
    const dir = dirname(ovfPath);
    mkdirSync(dir, { recursive: true });
    const base = basename(ovfPath).replace(/\.ovf$/i, "");
    const disks = [];
    for (const a of m.attachments.filter((x) => x.type === "hdd")) {
      const href = `${base}-disk${String(disks.length + 1).padStart(3, "0")}.vmdk`;
      const dst = join(dir, href);
      rmSync(dst, { force: true });
      const fmt = /\.vmdk$/i.test(a.medium) ? "vmdk" : /\.vdi$/i.test(a.medium) ? "vdi" : "raw";
      qemuImg(["convert", "-f", fmt, "-O", "vmdk", "-o", "subformat=streamOptimized", a.medium, dst]);
      const info = JSON.parse(qemuImg(["info", "--output=json", "-f", fmt, a.medium]));
      disks.push({ href, path: dst, capacity: info["virtual-size"], uuid: randomUUID() });
    }
    const xml = buildOvf({ version: v2 ? "2.0" : "1.0", vsysName: o["--vmname"] ?? m.name, machine: m, disks });
    writeFileSync(ovfPath, xml);
    if (manifest) {
      // VirtualBox's manifest: SHA1 below OVF 2.0, SHA256 for 2.0; "ALGO (file) = hex" per line.
      const algo = v2 ? "sha256" : "sha1";
      const line = (name, hex) => `${algo.toUpperCase()} (${name}) = ${hex}\n`;
      let mf = line(basename(ovfPath), createHash(algo).update(xml).digest("hex"));
      for (const d of disks) mf += line(d.href, spawnSync(`${algo}sum`, [d.path], { encoding: "utf8" }).stdout.split(" ")[0]);
      writeFileSync(join(dir, `${base}.mf`), mf);
    }
    progress();
    out(`Successfully exported 1 machine(s).`);
    return 0;
  });
}
