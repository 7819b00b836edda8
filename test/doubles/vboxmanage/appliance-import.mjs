// TEST DOUBLE of VBoxManage (not VirtualBox): `VBoxManage import <ovf|ova>`, following
// handleImportAppliance (src/VBox/Frontends/VBoxManage/VBoxManageAppliance.cpp), Appliance::read
// (i_readFSOVF / i_readFSOVA / i_readManifestFile), Appliance::interpret and Appliance::importMachines
// (i_importMachineGeneric, i_importVBoxMachine, i_verifyManifestFile) in
// src/VBox/Main/src-server/ApplianceImplImport.cpp, and the OVF reader (ovfreader.mjs):
//   - options as g_aImportApplianceOptions defines them, with their "requires preceding --vsys/--unit"
//     checks and texts, "unknown option: X", "Not enough arguments for \"import\" command.";
//   - the file must end in .ovf or .ova; an OVA is a tar read in order: the first *.ovf, then the
//     .mf (and .cert) with the same base name; an OVF's manifest is <base>.mf beside it;
//   - the manifest is read as RTManifestReadStandardEx reads it ("ALGO (name)= hex", blanks allowed,
//     parse errors named); on import every file read is digested and compared with
//     RTManifestEqualsEx's rules: "Digest mismatch (VERR_NOT_EQUAL): Attribute 'SHA256' on 'f' does
//     not match ('theirs' vs. 'ours')", a file the manifest lacks fails as "'f' was not found in the
//     1st manifest";
//   - interpret() builds the description in its order (OS, name, group, settings file, base folder,
//     product…, CPU, memory, sound, USB, adapters, floppy, CD-ROM, controllers, disks) and VBoxManage
//     prints it with its texts; disk formats by URI (VMDK streamOptimized/sparse/compressed, ISO) or
//     by the file's extension, else "Unsupported format for virtual disk image";
//   - importing registers a machine named as suggested (an existing name gets "_1", "_2"…,
//     i_searchUniqueVMName), creates its controllers ("IDE", "SATA", "SCSI"/"SAS", "VirtioSCSI",
//     "NVMe"; from vbox:Machine when the OVF has one), converts each disk into the machine folder
//     (VMDK, or VDI with --options importtovdi), enables the adapters (NAT unless the OVF says
//     Bridged) with the 7.0 default of no host-loopback access, and prints "Successfully imported
//     the appliance.".
import { spawnSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { REQ, getopt } from "./getopt.mjs";
import { VBoxError, apiError, syntaxError } from "./errors.mjs";
import { newMachine } from "./machine.mjs";
import { qemuImg } from "./media.mjs";
import { cimToVBox } from "./ostypes.mjs";
import { OvfError, readOvf } from "./ovfreader.mjs";
import { BUSES } from "./storage.mjs";
import { kid, kids } from "./xml.mjs";

const IMPORT_OPTS = [
  ["--dry-run", "n"], ["-dry-run", "n"], ["--dryrun", "n"], ["-dryrun", "n"], ["--detailed-progress", "P"], ["-detailed-progress", "P"],
  ["--vsys", "s", REQ.UINT32], ["-vsys", "s", REQ.UINT32], ["--ostype", "o", REQ.STRING], ["-ostype", "o", REQ.STRING],
  ["--vmname", "V", REQ.STRING], ["-vmname", "V", REQ.STRING], ["--settingsfile", "S", REQ.STRING], ["--basefolder", "p", REQ.STRING],
  ["--group", "g", REQ.STRING], ["--memory", "m", REQ.STRING], ["-memory", "m", REQ.STRING], ["--cpus", "c", REQ.STRING],
  ["--description", "d", REQ.STRING], ["--eula", "L", REQ.STRING], ["-eula", "L", REQ.STRING], ["--unit", "u", REQ.UINT32], ["-unit", "u", REQ.UINT32],
  ["--ignore", "x"], ["-ignore", "x"], ["--scsitype", "T", REQ.UINT32], ["-scsitype", "T", REQ.UINT32], ["--type", "T", REQ.UINT32], ["-type", "T", REQ.UINT32],
  ["--controller", "C", REQ.STRING], ["--port", "E", REQ.STRING], ["--disk", "D", REQ.STRING], ["--options", "O", REQ.STRING],
  ["--cloud", "j"], ["--cloudprofile", "k", REQ.STRING], ["--cloudinstanceid", "l", REQ.STRING], ["--cloudbucket", "B", REQ.STRING],
].map(([name, id, req = REQ.NOTHING]) => ({ name, id, short: id, req }));

const importGetOptError = (e) =>
  e.rc === "VERR_GETOPT_UNKNOWN_OPTION"
    ? new VBoxError([`unknown option: ${e.psz}`, ""], 2)
    : syntaxError(e.def ? `${e.def.name}: ${e.rc === "VERR_GETOPT_REQUIRED_ARGUMENT_MISSING" ? "RTGetOpt: Command line option needs argument." : "RTGetOpt: Command line option has argument with bad format."}` : `error: ${e.rc}`);

export function parseImport(argv) {
  let file;
  let dryRun = false;
  let vsys;
  let unit;
  let mode;
  const perVsys = {};
  const ignores = {};
  const options = new Set();
  const need = (what, def) => syntaxError(`Option "${def.name}" requires preceding ${what} option.`);
  for (const p of getopt(argv, IMPORT_OPTS, { onError: importGetOptError })) {
    const args = () => (perVsys[vsys] ??= {});
    switch (p.id) {
      case "nonopt":
        if (file !== undefined) throw syntaxError(`Invalid parameter '${p.value}'`);
        file = p.value;
        break;
      case "n":
        dryRun = true;
        break;
      case "P":
        break;
      case "s":
        if (mode === "cloud") throw syntaxError(`Option "${p.def.name}" can't be used together with "--cloud" option.`);
        if (p.value === 0xffffffff) throw syntaxError(`Value of option "${p.def.name}" is out of range.`);
        mode = "local";
        vsys = p.value;
        unit = undefined;
        break;
      case "o":
      case "V":
      case "p":
      case "d":
      case "m":
      case "c":
        if (mode === undefined) throw need("--vsys or --cloud", p.def);
        args()[{ o: "ostype", V: "vmname", p: "basefolder", d: "description", m: "memory", c: "cpus" }[p.id]] = p.value;
        break;
      case "S":
      case "g":
      case "L":
        if (mode !== "local") throw need("--vsys", p.def);
        args()[{ S: "settingsfile", g: "group", L: "eula" }[p.id]] = p.value;
        break;
      case "u":
        if (mode !== "local") throw need("--vsys", p.def);
        if (p.value === 0xffffffff) throw syntaxError(`Value of option "${p.def.name}" is out of range.`);
        unit = p.value;
        break;
      case "x":
      case "T":
      case "C":
      case "E":
      case "D":
        if (mode !== "local") throw need("--vsys", p.def);
        if (unit === undefined) throw need("--unit", p.def);
        if (p.id === "x") (ignores[vsys] ??= new Set()).add(unit);
        else args()[`${{ T: "scsitype", C: "controller", E: "port", D: "disk" }[p.id]}${unit}`] = p.value;
        break;
      case "O":
        for (const w of p.value.split(",").map((x) => x.trim()).filter(Boolean)) {
          const k = { keepallmacs: "keepallmacs", keepnatmacs: "keepnatmacs", importtovdi: "importtovdi" }[w.toLowerCase()];
          if (!k) throw new VBoxError([`Invalid import options '${p.value}'`, ""], 2);
          options.add(k);
        }
        break;
      default:
        throw syntaxError(`The VBoxManage TEST DOUBLE does not import from the cloud (${p.def.name})`);
    }
  }
  if (file === undefined) throw syntaxError('Not enough arguments for "import" command.');
  return { file: resolve(file), dryRun, perVsys, ignores, options };
}

function progressError(lines, code = "VBOX_E_FILE_ERROR") {
  return new VBoxError([
    ...lines,
    `Details: code ${code} (${code === "VBOX_E_FILE_ERROR" ? "0x80bb0004" : code === "VBOX_E_IPRT_ERROR" ? "0x80bb0005" : "0x80004005"}), component ApplianceWrap, interface IAppliance`,
    `Context: "RTEXITCODE handleImportAppliance(HandlerArg*)" at line 471 of file VBoxManageAppliance.cpp`,
  ]);
}

/** RTManifestReadStandardEx: Map name → Map(attr → value), or throws with its error text. */
export function parseManifest(text) {
  const entries = new Map();
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n].replace(/\r$/, "");
    const s = raw.trim();
    if (!s) continue;
    const m1 = /^(\S+?)\s*\(/.exec(s);
    if (!m1) throw new Error(`Expected '(' after ${s.search(/\s|$/)} on line ${n + 1}`);
    const rest = s.slice(m1[0].length);
    const close = /\)\s*=/.exec(rest);
    if (!close) throw new Error(`Expected ')=' at ${m1[0].length + rest.length} on line ${n + 1}`);
    const name = rest.slice(0, close.index);
    const value = rest.slice(close.index + close[0].length).trim();
    if (!value) throw new Error(`Expected value at ${s.length} on line ${n + 1}`);
    const attr = m1[1];
    const hexLen = { MD5: 32, SHA1: 40, SHA256: 64, SHA512: 128 }[attr];
    if (hexLen) {
      for (let i = 0; i < hexLen; i++) if (!/[0-9a-fA-F]/.test(value[i] ?? "")) throw new Error(`Expected hex digit at ${s.indexOf(value) + i} on line ${n + 1} (value '${value}', pos ${i})`);
    }
    if (!entries.has(name)) entries.set(name, new Map());
    entries.get(name).set(attr, value);
  }
  return entries;
}

/** Reads the appliance (file → { ovfText, ovfName, files: Map name → path, manifest? }). */
function readAppliance(file, tmp) {
  if (!/\.(ovf|ova)$/i.test(file)) {
    throw apiError("Appliance file must have .ovf or .ova extension", "VBOX_E_FILE_ERROR", "ApplianceWrap", "IAppliance", "Read(Bstr(pszAbsFilePath).raw(), progressRead.asOutParam())", "VBoxManageAppliance.cpp", 455);
  }
  if (!existsSync(file)) throw progressError(["Appliance read failed", `Error opening the ${/\.ova$/i.test(file) ? "OVA" : "OVF"} file '${file}' (VERR_FILE_NOT_FOUND)`], "VBOX_E_IPRT_ERROR");
  if (/\.ovf$/i.test(file)) {
    const dir = dirname(file);
    const base = basename(file).replace(/\.ovf$/i, "");
    const mf = join(dir, `${base}.mf`);
    return { ovfText: readFileSync(file, "utf8"), ovfName: basename(file), dir, manifestName: existsSync(mf) ? `${base}.mf` : undefined, manifest: existsSync(mf) ? readFileSync(mf, "utf8") : undefined };
  }
  const list = spawnSync("tar", ["-tf", file], { encoding: "utf8" });
  if (list.status !== 0) throw progressError(["Appliance read failed", `Error reading the OVA file '${file}' (VERR_TAR_UNEXPECTED_EOS)`], "VBOX_E_IPRT_ERROR");
  const names = list.stdout.split("\n").filter(Boolean);
  const ovfName = names.find((n) => /\.ovf$/i.test(n));
  if (!ovfName) throw progressError(["Appliance read failed", `OVA '${file}' does not contain an .ovf-file`]);
  const base = ovfName.replace(/\.ovf$/i, "").toLowerCase();
  const manifestName = names.find((n) => n.toLowerCase() === `${base}.mf`);
  const x = spawnSync("tar", ["-xf", file, "-C", tmp], { encoding: "utf8" });
  if (x.status !== 0) throw progressError(["Appliance read failed", `Error reading OVA '${file}' (${x.stderr.trim()})`], "VBOX_E_IPRT_ERROR");
  return { ovfText: readFileSync(join(tmp, ovfName), "utf8"), ovfName, dir: tmp, manifestName, manifest: manifestName ? readFileSync(join(tmp, manifestName), "utf8") : undefined };
}

function uniqueName(name, state) {
  if (!state.machines.some((m) => m.name === name)) return name;
  for (let i = 1; ; i++) if (!state.machines.some((m) => m.name === `${name}_${i}`)) return `${name}_${i}`;
}

const DIGESTS = { SHA1: "sha1", SHA256: "sha256", SHA512: "sha512", MD5: "md5" };

/** The whole import; prints what VBoxManage prints. Returns 0. `state`/`save` from withState. */
export function importAppliance(parsed, { state, save, major, defaultBaseFolder, out, err }) {
  const tmp = mkdtempSync(join(defaultBaseFolder, ".vbox-import-"));
  try {
    const app = readAppliance(parsed.file, tmp);
    let manifest;
    if (app.manifest !== undefined) {
      try {
        manifest = parseManifest(app.manifest);
      } catch (e) {
        throw progressError(["Appliance read failed", `Failed to parse manifest file '${app.manifestName}' for '${parsed.file}' (VERR_PARSE_ERROR): ${e.message}`], "VBOX_E_IPRT_ERROR");
      }
    }
    let ovf;
    try {
      ovf = readOvf(app.ovfText, parsed.file, major);
    } catch (e) {
      if (e instanceof OvfError) throw progressError(["Appliance read failed", e.message]);
      throw e;
    }
    err(`Interpreting ${parsed.file}...\n`);
    const systems = ovf.systems.map((vs, i) => interpret(vs, ovf, { state, major, defaultBaseFolder, args: parsed.perVsys[i] ?? {} }));
    err("OK.\n");
    for (const k of Object.keys(parsed.perVsys)) {
      if (Number(k) >= systems.length) throw syntaxError(`Invalid index ${k} with -vsys option; the OVF contains only ${systems.length} virtual system(s).`);
    }
    if (ovf.disks.size) {
      out("Disks:\n");
      for (const d of ovf.disks.values()) out(`  ${d.id}\t${d.capacity}\t${d.populatedSize}\t${d.format}\t${d.href}\t${d.size}\t-1\t${d.compression}\n`);
      out("\n");
    }
    systems.forEach((sys, i) => printDescription(sys, i, parsed, out));
    if (parsed.dryRun) return 0;
    // Digest everything read: the descriptor and each disk file (Appliance::i_importDoIt).
    const ours = new Map();
    const digest = (name, path) => {
      const theirs = manifest?.get(name);
      const algos = theirs ? [...theirs.keys()].filter((a) => DIGESTS[a]) : ["SHA256"];
      const m = new Map();
      for (const a of algos) m.set(a, createHash(DIGESTS[a]).update(readFileSync(path)).digest("hex"));
      ours.set(name, m);
    };
    digest(app.ovfName, join(app.dir, app.ovfName));
    for (const sys of systems) for (const d of sys.disks) if (d.enabled !== false) digest(d.href, join(app.dir, d.href));
    if (manifest) {
      for (const [name, attrs] of manifest) {
        const mine = ours.get(name);
        if (!mine) continue; // RTMANIFEST_EQUALS_IGN_MISSING_ENTRIES_2ND
        for (const [a, v] of attrs) {
          if (mine.has(a) && mine.get(a).toLowerCase() !== v.toLowerCase()) {
            throw progressError(["Appliance import failed", `Digest mismatch (VERR_NOT_EQUAL): Attribute '${a}' on '${name}' does not match ('${v}' vs. '${mine.get(a)}')`], "VBOX_E_IPRT_ERROR");
          }
        }
      }
      for (const name of ours.keys()) {
        if (!manifest.has(name)) throw progressError(["Appliance import failed", `Digest mismatch (VERR_NOT_EQUAL): '${name}' was not found in the 1st manifest`], "VBOX_E_IPRT_ERROR");
      }
    }
    for (const sys of systems) createMachine(sys, { state, major, app, options: parsed.options });
    save();
    err("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\n");
    out("Successfully imported the appliance.\n");
    return 0;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const NIC_NUM = { 1: "Am79C970A", 2: "Am79C973", 3: "82540EM", 4: "82543GC", 5: "82545EM", 6: "virtio", 7: "Am79C960" };

function interpret(vs, ovf, { state, major, defaultBaseFolder, args }) {
  const vb = vs.vboxMachine ? readVBoxMachine(vs.vboxMachine) : undefined;
  const osType = args.ostype ?? (vb?.osType || vs.vboxOsType || cimToVBox(vs.cimos));
  const suggested = uniqueName(vb?.name || vs.name || osType, state);
  const name = args.vmname ?? suggested;
  const base = resolve(args.basefolder ?? defaultBaseFolder);
  const cpusOvf = vs.cpus;
  let cpus = vb?.cpus || (cpusOvf === 0 ? 1 : Math.min(cpusOvf, 64));
  if (args.cpus !== undefined) {
    if (!/^\d+$/.test(args.cpus) || Number(args.cpus) < 1 || Number(args.cpus) > 64) throw syntaxError("Argument to --cpus option must be a number greater than 0 and less than 65.");
    cpus = Number(args.cpus);
  }
  let memoryMB = vb?.memory || (vs.memoryBytes ? Math.round(vs.memoryBytes / 1048576) : 1024);
  if (args.memory !== undefined) {
    if (!/^\d+$/.test(args.memory)) throw syntaxError("Argument to --memory option must be a non-negative number.");
    memoryMB = Number(args.memory);
  }
  const entries = [];
  const add = (e) => {
    const entry = Object.assign(e, { index: entries.length });
    entries.push(entry);
    return entry;
  };
  add({ type: "OS", value: osType, override: args.ostype !== undefined });
  add({ type: "Name", value: name, override: args.vmname !== undefined });
  add({ type: "PrimaryGroup", value: args.group ?? "/" });
  add({ type: "SettingsFile", value: args.settingsfile ?? join(base, name, `${name}.vbox`), override: args.settingsfile !== undefined });
  add({ type: "BaseFolder", value: base, override: args.basefolder !== undefined });
  if (vs.product) add({ type: "Product", value: vs.product });
  if (vs.vendor) add({ type: "Vendor", value: vs.vendor });
  if (vs.version) add({ type: "Version", value: vs.version });
  if (vs.description || args.description !== undefined) add({ type: "Description", value: args.description ?? vs.description, override: args.description !== undefined });
  add({ type: "CPU", value: cpus, override: args.cpus !== undefined });
  add({ type: "Memory", value: memoryMB, override: args.memory !== undefined });
  if (vs.soundCard) add({ type: "SoundCard", ovf: vs.soundCard });
  if (vs.hasUsb) add({ type: "USBController" });
  const nics = vb
    ? vb.nics.map((n) => ({ ...n, ovf: n.attachment === "nat" ? "NAT" : n.attachment }))
    : vs.ethernet.slice(0, 8).map((ea) => {
        let adapter = "82540EM";
        const t = ea.adapterType.toLowerCase();
        if (t === "pcnet32") adapter = "Am79C970A";
        else if (t === "e10000") adapter = "82545EM";
        else if (t === "e1000") adapter = /virtualbox/i.test(vs.virtualSystemType) ? "82540EM" : "82545EM";
        else if (t === "virtionet" || t === "virtio-net" || t === "3") adapter = "virtio";
        const known = ["null", "nat", "bridged", "internal", "hostonly", "generic"].includes(ea.network.toLowerCase());
        return { adapter, ovf: ea.network, attachment: known ? ea.network.toLowerCase() : "bridged" };
      });
  for (const n of nics) add({ type: "NetworkAdapter", ovf: n.ovf, value: Object.entries(NIC_NUM).find(([, v]) => v === n.adapter)?.[0] ?? "3", extra: `type=${n.attachment === "bridged" ? "Bridged" : n.attachment === "nat" ? "NAT" : n.attachment}`, nic: n });
  if (vs.hasFloppy) add({ type: "Floppy" });
  if (vs.hasCdrom) add({ type: "CDROM" });
  const controllerEntry = new Map();
  const counts = {};
  for (const c of vs.controllers.values()) {
    const sys = c.system;
    counts[sys] = (counts[sys] ?? 0) + 1;
    if (sys === "IDE" && counts.IDE <= 4) {
      const t = ["PIIX3", "ICH6"].find((x) => x.toLowerCase() === c.type.toLowerCase()) ?? "PIIX4";
      controllerEntry.set(c.id, entries.length);
      add({ type: "HardDiskControllerIDE", value: t, ovf: c.type, id: c.id });
    } else if (sys === "SATA" && counts.SATA === 1) {
      controllerEntry.set(c.id, entries.length);
      add({ type: "HardDiskControllerSATA", value: "AHCI", ovf: c.type, id: c.id });
    } else if (sys === "SCSI" && counts.SCSI === 1) {
      const sas = c.type.toLowerCase() === "lsilogicsas";
      controllerEntry.set(c.id, entries.length);
      add({ type: sas ? "HardDiskControllerSAS" : "HardDiskControllerSCSI", value: sas ? "LsiLogicSas" : c.type.toLowerCase() === "buslogic" ? "BusLogic" : "LsiLogic", ovf: c.type, id: c.id });
    } else if (sys === "VIRTIOSCSI" && counts.VIRTIOSCSI === 1) {
      controllerEntry.set(c.id, entries.length);
      add({ type: "HardDiskControllerVirtioSCSI", value: "VirtioSCSI", ovf: c.type, id: c.id });
    } else if (sys === "NVMe" && counts.NVMe === 1) {
      controllerEntry.set(c.id, entries.length);
      add({ type: "HardDiskControllerNVMe", value: "NVMe", ovf: c.type, id: c.id });
    }
  }
  const disks = [];
  const seen = new Set();
  for (const vd of vs.virtualDisks) {
    const di = ovf.disks.get(vd.diskId);
    if (!di || seen.has(vd.diskId)) continue;
    seen.add(vd.diskId);
    const fmt = diskFormat(di);
    if (!fmt) throw progressError([`Internal inconsistency looking up medium format for the disk image '${di.href}'`]);
    if (fmt !== "VMDK" && fmt !== "RAW") throw progressError([`Unsupported format for virtual disk image ${di.href} in OVF: "${di.format}"`]);
    const ctl = controllerEntry.get(vd.controllerId);
    if (ctl === undefined) throw progressError([`Cannot find storage controller with OVF instance ID "${vd.controllerId}" to which medium "${di.href}" should be attached`]);
    let href = di.compression.toLowerCase() === "gzip" ? di.href.replace(/\.[^.]*$/, "") : di.href;
    const folder = join(base, name);
    let target = join(folder, href || `${vd.diskId}.vmdk`);
    for (let i = 1; existsSync(target); i++) target = join(folder, `${href.replace(/\.[^.]*$/, "")}_${i}${href.match(/\.[^.]*$/)?.[0] ?? ""}`);
    const e = { type: "HardDiskImage", href: di.href, value: target, extra: `controller=${ctl};channel=${vd.addressOnParent}`, disk: di, format: fmt, vbuuid: di.uuid };
    add(e);
    disks.push(e);
  }
  return { entries, name, osType, cpus, memoryMB, base, vb, vs, nics, disks, ignores: undefined };
}

function diskFormat(di) {
  const uri = di.format.toLowerCase();
  if (["http://www.vmware.com/interfaces/specifications/vmdk.html#streamoptimized", "http://www.vmware.com/specifications/vmdk.html#sparse", "http://www.vmware.com/specifications/vmdk.html#compressed", "http://www.vmware.com/interfaces/specifications/vmdk.html#compressed"].includes(uri)) return "VMDK";
  if (uri === "http://www.ecma-international.org/publications/standards/ecma-119.htm") return "RAW";
  let href = di.href;
  if (di.compression === "gzip") href = href.replace(/\.[^.]*$/, "");
  const ext = /\.([^.]+)$/.exec(href)?.[1]?.toLowerCase();
  return { vmdk: "VMDK", vdi: "VDI", vhd: "VHD", iso: "RAW", img: "RAW" }[ext];
}

function printDescription(sys, i, parsed, out) {
  out(`Virtual system ${i}:\n`);
  const ign = parsed.ignores[i] ?? new Set();
  const n = (a) => String(a).padStart(2, " ");
  for (const e of sys.entries) {
    const a = e.index;
    e.enabled = !ign.has(a);
    switch (e.type) {
      case "OS":
        out(e.override ? `${n(a)}: OS type specified with --ostype: "${e.value}"\n` : `${n(a)}: Suggested OS type: "${e.value}"\n    (change with "--vsys ${i} --ostype <type>"; use "list ostypes" to list all possible values)\n`);
        break;
      case "Name":
        out(e.override ? `${n(a)}: VM name specified with --vmname: "${e.value}"\n` : `${n(a)}: Suggested VM name "${e.value}"\n    (change with "--vsys ${i} --vmname <name>")\n`);
        break;
      case "PrimaryGroup":
        out(`${n(a)}: Suggested VM group "${e.value}"\n    (change with "--vsys ${i} --group <group>")\n`);
        break;
      case "SettingsFile":
        out(e.override ? `${n(a)}: VM settings file name specified with --settingsfile: "${e.value}"\n` : `${n(a)}: Suggested VM settings file name "${e.value}"\n    (change with "--vsys ${i} --settingsfile <filename>")\n`);
        break;
      case "BaseFolder":
        out(e.override ? `${n(a)}: VM base folder specified with --basefolder: "${e.value}"\n` : `${n(a)}: Suggested VM base folder "${e.value}"\n    (change with "--vsys ${i} --basefolder <path>")\n`);
        break;
      case "Product":
      case "Vendor":
      case "Version":
        out(`${n(a)}: ${e.type} (ignored): ${e.value}\n`);
        break;
      case "Description":
        out(e.override ? `${n(a)}: Description specified with --description: "${e.value}"\n` : `${n(a)}: Description "${e.value}"\n    (change with "--vsys ${i} --description <desc>")\n`);
        break;
      case "CPU":
        out(e.override ? `${n(a)}: No. of CPUs specified with --cpus: ${e.value}\n` : `${n(a)}: Number of CPUs: ${e.value}\n    (change with "--vsys ${i} --cpus <n>")\n`);
        break;
      case "Memory":
        out(e.override ? `${n(a)}: Guest memory specified with --memory: ${e.value} MB\n` : `${n(a)}: Guest memory: ${e.value} MB\n    (change with "--vsys ${i} --memory <MB>")\n`);
        break;
      case "SoundCard":
        out(e.enabled ? `${n(a)}: Sound card (appliance expects "${e.ovf}", can change on import)\n    (disable with "--vsys ${i} --unit ${a} --ignore")\n` : `${n(a)}: Sound card "${e.ovf}" -- disabled\n`);
        break;
      case "USBController":
        out(e.enabled ? `${n(a)}: USB controller\n    (disable with "--vsys ${i} --unit ${a} --ignore")\n` : `${n(a)}: USB controller -- disabled\n`);
        break;
      case "NetworkAdapter":
        out(`${n(a)}: Network adapter: orig ${e.ovf}, config ${e.value}, extra ${e.extra}\n`);
        break;
      case "Floppy":
      case "CDROM": {
        const label = e.type === "Floppy" ? "Floppy" : "CD-ROM";
        out(e.enabled ? `${n(a)}: ${label}\n    (disable with "--vsys ${i} --unit ${a} --ignore")\n` : `${n(a)}: ${label} -- disabled\n`);
        break;
      }
      case "HardDiskControllerIDE":
      case "HardDiskControllerSATA":
      case "HardDiskControllerSAS":
      case "HardDiskControllerVirtioSCSI":
      case "HardDiskControllerNVMe": {
        const label = { HardDiskControllerIDE: "IDE", HardDiskControllerSATA: "SATA", HardDiskControllerSAS: "SAS", HardDiskControllerVirtioSCSI: "VirtioSCSI", HardDiskControllerNVMe: "NVMe" }[e.type];
        out(e.enabled ? `${n(a)}: ${label} controller, type ${e.value}\n    (disable with "--vsys ${i} --unit ${a} --ignore")\n` : `${n(a)}: ${label} controller, type ${e.value} -- disabled\n`);
        break;
      }
      case "HardDiskControllerSCSI":
        out(
          e.enabled
            ? `${n(a)}: SCSI controller, type ${e.value}\n    (change with "--vsys ${i} --unit ${a} --scsitype {BusLogic|LsiLogic}";\n    disable with "--vsys ${i} --unit ${a} --ignore")\n`
            : `${n(a)}: SCSI controller, type ${e.value} -- disabled\n`,
        );
        break;
      case "HardDiskImage": {
        if (!e.enabled) {
          out(`${n(a)}: Hard disk image: source image=${e.href} -- disabled\n`);
          break;
        }
        const args = parsed.perVsys[i] ?? {};
        if (args[`disk${a}`] !== undefined) e.value = resolve(args[`disk${a}`]);
        if (parsed.options.has("importtovdi") && args[`disk${a}`] === undefined) e.value = e.value.replace(/\.[^./]*$/, ".vdi");
        const [, ctl, ch] = /controller=(\d+);channel=(\d+)/.exec(e.extra);
        out(
          args[`disk${a}`] !== undefined
            ? `${n(a)}: Hard disk image specified with --disk: source image=${e.href}, target path=${e.value}, controller=${ctl};port=${ch}\n    (change controller with "--vsys ${i} --unit ${a} --controller <index>";\n    change controller port with "--vsys ${i} --unit ${a} --port <n>")\n`
            : `${n(a)}: Hard disk image: source image=${e.href}, target path=${e.value}, controller=${ctl};port=${ch}\n    (change target path with "--vsys ${i} --unit ${a} --disk path";\n    change controller with "--vsys ${i} --unit ${a} --controller <index>";\n    change controller port with "--vsys ${i} --unit ${a} --port <n>";\n    disable with "--vsys ${i} --unit ${a} --ignore")\n`,
        );
        break;
      }
      default:
    }
  }
}

/** What the double reads back from a vbox:Machine (its own export's subset). */
function readVBoxMachine(el) {
  const hw = kid(el, "Hardware") ?? { children: [] };
  const storage = kid(hw, "StorageControllers") ?? kid(el, "StorageControllers");
  const nics = kids(kid(hw, "Network") ?? { children: [] }, "Adapter")
    .filter((a) => a.attrs.enabled === "true")
    .map((a) => {
      const nat = kid(a, "NAT");
      return {
        slot: Number(a.attrs.slot),
        adapter: a.attrs.type ?? "82540EM",
        mac: a.attrs.MACAddress,
        attachment: nat ? "nat" : "null",
        localhostReachable: nat?.attrs["localhost-reachable"] === "true",
        natpf: nat ? kids(nat, "Forwarding").map((f) => ({ name: f.attrs.name, proto: f.attrs.proto === "0" ? "udp" : "tcp", hostIp: f.attrs.hostip ?? "", hostPort: Number(f.attrs.hostport), guestIp: f.attrs.guestip ?? "", guestPort: Number(f.attrs.guestport) })) : [],
      };
    });
  return {
    name: el.attrs.name,
    osType: el.attrs.OSType,
    cpus: Number(kid(hw, "CPU")?.attrs.count ?? 0),
    memory: Number(kid(hw, "Memory")?.attrs.RAMSize ?? 0),
    firmware: kid(hw, "Firmware")?.attrs.type,
    graphics: kid(hw, "Display")?.attrs.controller,
    vram: Number(kid(hw, "Display")?.attrs.VRAMSize ?? 0),
    ioapic: kid(kid(hw, "BIOS") ?? { children: [] }, "IOAPIC")?.attrs.enabled === "true",
    nics,
    controllers: storage
      ? kids(storage, "StorageController").map((c) => ({
          name: c.attrs.name,
          type: c.attrs.type,
          portCount: Number(c.attrs.PortCount ?? 1),
          devices: kids(c, "AttachedDevice").map((d) => ({ type: d.attrs.type, port: Number(d.attrs.port), device: Number(d.attrs.device), nonrotational: d.attrs.nonrotational === "true", discard: d.attrs.discard === "true", image: kid(d, "Image")?.attrs.uuid?.replace(/[{}]/g, "") })),
        }))
      : [],
  };
}

const TYPE_TO_BUS = { LsiLogic: "scsi", BusLogic: "scsi", IntelAhci: "sata", PIIX3: "ide", PIIX4: "ide", ICH6: "ide", I82078: "floppy", LsiLogicSas: "sas", USB: "usb", NVMe: "pcie", VirtioSCSI: "virtio" };

function createMachine(sys, { state, major, app, options }) {
  const enabled = (e) => e.enabled !== false;
  const name = sys.entries.find((e) => e.type === "Name").value;
  if (state.machines.some((m) => m.name === name)) {
    throw apiError(`Machine '${name}' already exists`, "VBOX_E_OBJECT_IN_USE", "VirtualBoxWrap", "IVirtualBox", "RegisterMachine", "VBoxManageAppliance.cpp", 1420);
  }
  const settingsFile = sys.entries.find((e) => e.type === "SettingsFile").value;
  const folder = dirname(settingsFile);
  if (existsSync(settingsFile)) throw progressError(["Appliance import failed", `Machine settings file '${settingsFile}' already exists`]);
  mkdirSync(join(folder, "Logs"), { recursive: true });
  const uuid = randomUUID();
  const m = newMachine({ uuid, name, ostype: sys.entries.find((e) => e.type === "OS").value, basefolder: sys.base, folder, settingsFile, major });
  m.cpus = Number(sys.entries.find((e) => e.type === "CPU").value);
  m.memory = Number(sys.entries.find((e) => e.type === "Memory").value);
  m.ioapic = m.cpus > 1 || Boolean(sys.vb?.ioapic);
  m.longmode = /_64$/.test(m.ostype);
  if (sys.vb?.firmware) m.firmware = sys.vb.firmware;
  if (sys.vb?.graphics) m.graphicscontroller = sys.vb.graphics;
  m.vram = sys.vb?.vram || 16;
  m.nics.forEach((n) => {
    n.enabled = false;
  });
  const nicEntries = sys.entries.filter((e) => e.type === "NetworkAdapter" && enabled(e));
  nicEntries.forEach((e, i) => {
    const src = e.nic;
    const n = m.nics[src.slot ?? i];
    n.enabled = true;
    n.adapter = NIC_NUM[e.value] ?? src.adapter;
    n.attachment = src.attachment === "bridged" ? "bridged" : src.attachment === "null" ? "null" : "nat";
    // A new machine's NAT: no host-loopback access on 7.0 (NATEngine::i_applyDefaults), unless the
    // vbox:Machine of the OVF says so.
    n.localhostReachable = major === "6.1" ? true : Boolean(src.localhostReachable);
    if (src.natpf) n.natpf = src.natpf;
    const keep = options.has("keepallmacs") || (options.has("keepnatmacs") && n.attachment === "nat");
    if (keep && src.mac) n.mac = src.mac;
  });
  // Controllers: from vbox:Machine when present, else the generic names.
  const ctlByEntry = new Map();
  if (sys.vb && sys.vb.controllers.length) {
    for (const c of sys.vb.controllers) {
      const busKey = TYPE_TO_BUS[c.type] ?? "sata";
      m.controllers.push({ name: c.name, busKey, bus: BUSES[busKey].bus, type: c.type, portCount: c.portCount, bootable: true, hostIoCache: busKey === "ide" });
    }
  } else {
    for (const e of sys.entries.filter((x) => x.type.startsWith("HardDiskController") && enabled(x))) {
      const [cname, busKey, type] = {
        HardDiskControllerIDE: ["IDE", "ide", e.value],
        HardDiskControllerSATA: ["SATA", "sata", "IntelAhci"],
        HardDiskControllerSCSI: ["SCSI", "scsi", e.value],
        HardDiskControllerSAS: ["SAS", "sas", "LsiLogicSas"],
        HardDiskControllerVirtioSCSI: ["VirtioSCSI", "virtio", "VirtioSCSI"],
        HardDiskControllerNVMe: ["NVMe", "pcie", "NVMe"],
      }[e.type];
      if (!m.controllers.some((c) => c.name === cname)) {
        m.controllers.push({ name: cname, busKey, bus: BUSES[busKey].bus, type, portCount: BUSES[busKey].ports, bootable: true, hostIoCache: busKey === "ide" });
      }
      ctlByEntry.set(e.index, { cname, busKey, secondary: e.type === "HardDiskControllerIDE" && [...ctlByEntry.values()].some((x) => x.busKey === "ide") });
    }
  }
  for (const e of sys.disks.filter(enabled)) {
    const src = join(app.dir, e.href);
    const toVdi = /\.vdi$/i.test(e.value);
    mkdirSync(dirname(e.value), { recursive: true });
    if (e.format === "VMDK") {
      const info = spawnSync("qemu-img", ["info", "--output=json", src], { encoding: "utf8" });
      const fmt = info.status === 0 ? JSON.parse(info.stdout).format : undefined;
      if (fmt !== "vmdk") throw progressError(["Appliance import failed", `Could not open the medium '${src}'.`, `VD: error VERR_VD_VMDK_INVALID_HEADER opening image file '${src}' (VERR_VD_VMDK_INVALID_HEADER)`]);
    }
    qemuImg(["convert", "-q", "-f", e.format === "RAW" ? "raw" : "vmdk", "-O", toVdi ? "vdi" : "vmdk", src, e.value]);
    const mediumUuid = randomUUID();
    state.media.push({ uuid: mediumUuid, path: e.value, type: e.format === "RAW" ? "dvd" : "hdd" });
    const [, ctlIndex, channel] = /controller=(\d+);channel=(\d+)/.exec(e.extra).map(Number);
    let attach;
    if (sys.vb && sys.vb.controllers.length) {
      for (const c of sys.vb.controllers) {
        const d = c.devices.find((x) => x.type === "HardDisk" && e.vbuuid && x.image === e.vbuuid);
        if (d) attach = { controller: c.name, port: d.port, device: d.device, nonrotational: d.nonrotational, discard: d.discard };
      }
    }
    if (!attach) {
      const c = ctlByEntry.get(ctlIndex);
      if (!c) continue;
      // i_convertDiskAttachmentValues: IDE channels 0..3 → primary/secondary master/slave; others use the channel as port.
      attach = c.busKey === "ide" ? { controller: c.cname, port: c.secondary || channel > 1 ? 1 : 0, device: channel % 2 } : { controller: c.cname, port: channel, device: 0 };
    }
    m.attachments.push({ ...attach, type: e.format === "RAW" ? "dvd" : "hdd", medium: e.value, uuid: mediumUuid, nonrotational: Boolean(attach.nonrotational), discard: Boolean(attach.discard) });
  }
  writeFileSync(settingsFile, `<?xml version="1.0"?>\n<!-- Written by the VBoxManage TEST DOUBLE (vmkiln test/doubles), not by VirtualBox. -->\n<VirtualBox><Machine uuid="{${uuid}}" name="${name}"/></VirtualBox>\n`);
  state.machines.push(m);
  return m;
}

