// TEST DOUBLE of VBoxManage (VirtualBox's CLI) — not VirtualBox. It plays VirtualBox 6.1 or 7.0
// (VBOXMANAGE_DOUBLE_VERSION) and follows VirtualBox's own sources for what it models: option tables
// and parsers (getopt.mjs, modifyvm*.mjs, storage.mjs, media.mjs, appliance-*.mjs), output formats
// (info.mjs), machine states (vmprocess.mjs, state.mjs) and the NAT engine's loopback rule (nat.mjs).
// Each behaviour is cited to its source file and function in those modules and in
// test/doubles/README.md. Machines run on real QEMU.
//
// Environment:
//   VBOXMANAGE_DOUBLE_STATE    the registry (JSON); required
//   VBOXMANAGE_DOUBLE_VERSION  what `--version` prints (default 7.0.20r163906; "6.1.50r161033" plays 6.1)
//   VBOXMANAGE_DOUBLE_LOCK_MS  how long a machine stays session-locked after its VM stops (default 1500)
//   VBOXMANAGE_DOUBLE_FAULT    "<subcommand>:exit0-error": that subcommand prints an error and exits 0
//   VBOXMANAGE_DOUBLE_QEMU     the QEMU binary (default qemu-system-x86_64)
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { applyModifyvm, parseModifyvm } from "./modifyvm.mjs";
import { applyStorageattach, applyStoragectl, parseStorageattach, parseStoragectl } from "./storage.mjs";
import { cloneImage, createImage, newMediumEntry, parseClonemedium, parseCreatemedium } from "./media.mjs";
import { VBoxError, apiError, lockedByStartvm, lockedForSession, notFound, notRunning, print, syntaxError } from "./errors.mjs";
import { REQ, getopt } from "./getopt.mjs";
import { humanReadable, machineReadable } from "./info.mjs";
import { newMachine } from "./machine.mjs";
import { parseExport, writeAppliance } from "./appliance-export.mjs";
import { importAppliance, parseImport } from "./appliance-import.mjs";
import { profile, versionOutput } from "./profile.mjs";
import { qmp, scancodesToQmpEvents } from "./qemu.mjs";
import { ONLINE, findMachine, lockWindowMs, nowIso, statePath, vmProcessAlive, withState } from "./state.mjs";

const out = (s) => process.stdout.write(s.endsWith("\n") ? s : s + "\n");
const progress = () => process.stderr.write("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\n");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const VMPROCESS = fileURLToPath(new URL("./vmprocess.mjs", import.meta.url));

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

function machineOrThrow(state, name, file) {
  const m = findMachine(state, name);
  if (!m) throw notFound(name, file);
  return m;
}

/** Commands that take a write lock fail while the VM runs or right after it stopped. */
function needWriteLock(m, file) {
  if (ONLINE.includes(m.state) || (m.lockedUntil && Date.now() < m.lockedUntil)) throw lockedForSession(m.name, file);
}

const replace = (state, old, m) => {
  state.machines[state.machines.indexOf(old)] = m;
};

async function dispatch(argv) {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "--version":
    case "-v":
    case "-version":
      out(versionOutput());
      return 0;
    case undefined:
      out(`Oracle VM VirtualBox Command Line Management Interface Version ${profile().version} (TEST DOUBLE)`);
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
    case "import":
      return importVm(rest);
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

const CREATEVM_OPTS = (major) =>
  [
    ["--name", "n", REQ.STRING], ["-name", "n", REQ.STRING], ["--groups", "g", REQ.STRING], ["--basefolder", "p", REQ.STRING], ["-basefolder", "p", REQ.STRING],
    ["--ostype", "o", REQ.STRING], ["-ostype", "o", REQ.STRING], ["--uuid", "u", REQ.UUID], ["-uuid", "u", REQ.UUID], ["--register", "r"], ["-register", "r"],
    ["--default", "d"], ["-default", "d"],
    ...(major === "7.0" ? [["--cipher", "c", REQ.STRING], ["-cipher", "c", REQ.STRING], ["--password-id", "i", REQ.STRING], ["-password-id", "i", REQ.STRING], ["--password", "w", REQ.STRING], ["-password", "w", REQ.STRING]] : []),
  ].map(([name, id, req = REQ.NOTHING]) => ({ name, id, short: id, req }));

/** createvm (handleCreateVM in VBoxManageMisc.cpp): options, "Parameter --name is required", the three lines it prints. */
function createvm(args) {
  const { major } = profile();
  const o = {};
  for (const p of getopt(args, CREATEVM_OPTS(major))) {
    if (p.id === "nonopt") throw syntaxError(`Invalid parameter '${p.value}'`);
    o[p.id] = p.value;
  }
  if (!o.n) throw syntaxError("Parameter --name is required");
  const name = o.n;
  const base = resolve(o.p ?? join(dirname(statePath()), "VirtualBox VMs"));
  const folder = join(base, name);
  const settingsFile = join(folder, `${name}.vbox`);
  return withState((state, save) => {
    if (existsSync(settingsFile)) {
      throw apiError(`Machine settings file '${settingsFile}' already exists`, "VBOX_E_FILE_ERROR", "VirtualBoxWrap", "IVirtualBox", "CreateMachine(bstrSettingsFile.raw(), bstrName.raw(), ComSafeArrayAsInParam(groups), bstrOsTypeId.raw(), createFlags.raw(), machine.asOutParam())", "VBoxManageMisc.cpp", 381);
    }
    if (o.r && state.machines.some((m) => m.name === name)) {
      throw apiError(`Machine '${name}' already exists`, "VBOX_E_OBJECT_IN_USE", "VirtualBoxWrap", "IVirtualBox", "RegisterMachine(machine)", "VBoxManageMisc.cpp", 392);
    }
    const uuid = o.u ?? randomUUID();
    mkdirSync(join(folder, "Logs"), { recursive: true });
    writeFileSync(settingsFile, `<?xml version="1.0"?>\n<!-- Written by the VBoxManage TEST DOUBLE (vmkiln test/doubles), not by VirtualBox. -->\n<VirtualBox><Machine uuid="{${uuid}}" name="${name}"/></VirtualBox>\n`);
    if (o.r) {
      const m = newMachine({ uuid, name, ostype: o.o, basefolder: base, folder, settingsFile, major });
      if (o.g) m.groups = o.g.split(",");
      state.machines.push(m);
      save();
    }
    out(`Virtual machine '${name}' is created${o.r ? " and registered" : ""}.\nUUID: ${uuid}\nSettings file: '${settingsFile}'`);
    return 0;
  });
}

function modifyvm([name, ...args]) {
  const { major } = profile();
  if (name === undefined || args.length === 0) throw syntaxError("Not enough parameters");
  return withState((state, save) => {
    const m = machineOrThrow(state, name, "VBoxManageModifyVM.cpp");
    needWriteLock(m, "VBoxManageModifyVM.cpp");
    const parsed = parseModifyvm(args, major);
    const { machine, warnings, soft } = applyModifyvm(m, parsed, { major, state });
    for (const w of warnings) process.stderr.write(`${w}\n`);
    for (const s of soft) process.stderr.write(`VBoxManage: error: ${s}\n`);
    replace(state, m, machine);
    save();
    return 0;
  });
}

function storagectl(argv) {
  const o = parseStoragectl(argv);
  return withState((state, save) => {
    const m = machineOrThrow(state, argv[0], "VBoxManageStorageController.cpp");
    needWriteLock(m, "VBoxManageStorageController.cpp");
    replace(state, m, applyStoragectl(m, o));
    save();
    return 0;
  });
}

function storageattach(argv) {
  const o = parseStorageattach(argv);
  return withState((state, save) => {
    const m = machineOrThrow(state, argv[0], "VBoxManageStorageController.cpp");
    const running = m.state === "running";
    if (!running) needWriteLock(m, "VBoxManageStorageController.cpp");
    const r = applyStorageattach(m, o, state.media, { running });
    for (const a of r.machine.attachments) {
      if (a.type !== "hdd") continue;
      const other = state.machines.find((x) => x !== m && x.attachments.some((b) => b.medium === a.medium));
      if (other && !m.attachments.some((b) => b.medium === a.medium)) {
        throw apiError(`Medium '${a.medium}' is already attached to another virtual machine`, "VBOX_E_OBJECT_IN_USE", "SessionMachine", "IMachine", "AttachDevice", "VBoxManageStorageController.cpp", 1000);
      }
    }
    state.media = r.media;
    replace(state, m, r.machine);
    save();
    return 0;
  });
}

function createmedium(args) {
  const { major } = profile();
  const o = parseCreatemedium(args, major);
  createImage(o);
  return withState((state, save) => {
    const e = newMediumEntry(o.file, "hdd");
    state.media.push(e);
    save();
    progress();
    out(`Medium created. UUID: ${e.uuid}`);
    return 0;
  });
}

function clonemedium(args) {
  const { major } = profile();
  const o = parseClonemedium(args, major);
  cloneImage(o);
  return withState((state, save) => {
    const e = newMediumEntry(o.dst, "hdd");
    state.media.push(e);
    save();
    progress();
    out(`Clone medium created in format '${o.format}'. UUID: ${e.uuid}`);
    return 0;
  });
}

function closemedium(args) {
  const kind = args[0] === "disk" || args[0] === "dvd" || args[0] === "floppy" ? args.shift() : "disk";
  const [target, ...rest] = args;
  const o = {};
  for (const p of getopt(rest, [{ name: "--delete", id: "d", short: "d", req: REQ.NOTHING }])) {
    if (p.id === "nonopt") throw syntaxError(`Invalid parameter '${p.value}'`);
    o[p.id] = true;
  }
  return withState((state, save) => {
    const path = resolve(target ?? "");
    const i = state.media.findIndex((x) => x.path === path || x.uuid === target);
    if (i < 0) throw apiError(`Could not find file for the medium '${path}' (VERR_FILE_NOT_FOUND)`, "VBOX_E_FILE_ERROR", "VirtualBoxWrap", "IVirtualBox", "OpenMedium(Bstr(pszFilenameOrUuid).raw(), enmDevType, AccessMode_ReadWrite, fForceNewUuidOnOpen, pMedium.asOutParam())", "VBoxManageDisk.cpp", 201);
    if (state.machines.some((m) => m.attachments.some((a) => a.medium === path))) {
      throw apiError(`Medium '${path}' cannot be closed because it is still attached to 1 virtual machines`, "VBOX_E_OBJECT_IN_USE", "MediumWrap", "IMedium", "Close()", "VBoxManageDisk.cpp", 1800);
    }
    state.media.splice(i, 1);
    if (o.d) rmSync(path, { force: true });
    save();
    void kind;
    return 0;
  });
}

function showvminfo([name, ...args]) {
  if (!name) throw syntaxError("Incorrect number of parameters");
  const o = {};
  for (const p of getopt(args, [{ name: "--details", id: "D", req: REQ.NOTHING }, { name: "--machinereadable", id: "M", req: REQ.NOTHING }, { name: "--log", id: "l", req: REQ.UINT32 }, { name: "--password-id", id: "i", req: REQ.STRING }, { name: "--password", id: "w", req: REQ.STRING }])) {
    if (p.id === "nonopt") throw syntaxError(`Invalid parameter '${p.value}'`);
    o[p.id] = p.value;
  }
  return withState((state) => {
    const m = machineOrThrow(state, name, "VBoxManageInfo.cpp");
    if (o.l !== undefined) {
      const log = join(m.folder, "Logs", o.l === 0 ? "VBox.log" : `VBox.log.${o.l}`);
      if (!existsSync(log)) throw new VBoxError([`Log file '${log}' does not exist`]);
      process.stdout.write(readFileSync(log, "utf8"));
    } else if (o.M) process.stdout.write(machineReadable(m, profile()));
    else process.stdout.write(humanReadable(m));
    return 0;
  });
}

/**
 * startvm (handleStartVM in VBoxManageMisc.cpp; IMachine::LaunchVMProcess): launches the VM process
 * (vmprocess.mjs, detached) and waits until it reports QEMU running, or fails as LaunchVMProcess
 * does when the VM process ends during startup, naming its VBox.log.
 */
async function startvm([name, ...args]) {
  if (!name) throw syntaxError("Not enough parameters");
  const o = {};
  for (const p of getopt(args, [{ name: "--type", id: "t", req: REQ.STRING }, { name: "-type", id: "t", req: REQ.STRING }, { name: "--putenv", id: "E", short: "E", req: REQ.STRING }, { name: "--password", id: "p", req: REQ.STRING }, { name: "--password-id", id: "i", req: REQ.STRING }])) {
    if (p.id === "nonopt") throw syntaxError(`Invalid parameter '${p.value}'`);
    o[p.id] = p.value;
  }
  const type = o.t ?? "gui";
  if (!["gui", "headless", "sdl", "separate"].includes(type)) throw new VBoxError([`Invalid session type '${type}'`], 2);
  const prepared = withState((state, save) => {
    const m = machineOrThrow(state, name, "VBoxManageMisc.cpp");
    if (ONLINE.includes(m.state) || (m.lockedUntil && Date.now() < m.lockedUntil)) throw lockedByStartvm(m.name);
    const runDir = join(dirname(statePath()), "run");
    mkdirSync(runDir, { recursive: true });
    mkdirSync(join(m.folder, "Logs"), { recursive: true });
    const short = m.uuid.slice(0, 8);
    const paths = {
      // Unix socket paths are limited to 108 bytes: keep them beside the (short) state file.
      qmpSocket: join(runDir, `${short}.qmp`),
      eventSocket: join(runDir, `${short}.ev`),
      pidFile: join(runDir, `${short}.pid`),
      startResult: join(runDir, `${short}.start`),
      natFilter: { outPath: join(runDir, `${short}.nato`), inPath: join(runDir, `${short}.nati`) },
      consoleLog: join(m.folder, "Logs", "console.log"),
      vboxLog: join(m.folder, "Logs", "VBox.log"),
      resetLog: join(m.folder, "Logs", "qemu-reset.log"),
      efiVars: join(m.folder, `${m.name}.nvram`),
    };
    if (m.firmware.startsWith("EFI") && !existsSync(paths.efiVars)) copyFileSync("/usr/share/OVMF/OVMF_VARS_4M.fd", paths.efiVars);
    for (const p of [paths.qmpSocket, paths.eventSocket, paths.pidFile, paths.startResult, paths.natFilter.outPath, paths.natFilter.inPath, paths.resetLog]) rmSync(p, { force: true });
    out(`Waiting for VM "${m.name}" to power on...`);
    const child = spawn(process.execPath, [VMPROCESS, statePath(), m.uuid, JSON.stringify(paths)], { detached: true, stdio: "ignore", env: process.env });
    child.unref();
    m.pid = child.pid;
    m.state = "starting";
    m.stateChangeTime = nowIso();
    m.lockedUntil = null;
    m.sessionType = type;
    m.qmpSocket = paths.qmpSocket;
    save();
    return { name: m.name, uuid: m.uuid, paths };
  });
  for (let i = 0; i < 1200 && !existsSync(prepared.paths.startResult); i++) await sleep(50);
  const result = existsSync(prepared.paths.startResult) ? JSON.parse(readFileSync(prepared.paths.startResult, "utf8")) : { ok: false, code: 1 };
  if (!result.ok) {
    throw apiError(
      `The virtual machine '${prepared.name}' has terminated unexpectedly during startup with exit code ${result.code} (0x${Number(result.code).toString(16)}).  More details may be available in '${prepared.paths.vboxLog}'`,
      "NS_ERROR_FAILURE",
      "MachineWrap",
      "IMachine",
      "LaunchVMProcess",
      "VBoxManageMisc.cpp",
      727,
    );
  }
  out(`VM "${prepared.name}" has been successfully started.`);
  return 0;
}

async function controlvm([name, action, ...args]) {
  if (!name || !action) throw syntaxError("Not enough parameters");
  const m = withState((state) => machineOrThrow(state, name, "VBoxManageControlVM.cpp"));
  if (!ONLINE.includes(m.state) || m.state === "starting") throw notRunning(m.name);
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
        findMachine(state, name).scancodes.push(codes);
        save();
      });
      return 0;
    }
    case "acpipowerbutton":
      await qmp(m.qmpSocket, [{ execute: "system_powerdown" }]);
      return 0;
    case "poweroff": {
      // The VM process records the end (poweroff for a QEMU that quit with status 0).
      const asked = await qmp(m.qmpSocket, [{ execute: "quit" }]).then(() => true, () => false);
      for (let i = 0; asked && i < 200 && vmProcessAlive(m); i++) await sleep(50);
      if (vmProcessAlive(m)) {
        if (m.qemuPid) process.kill(m.qemuPid, "SIGKILL");
        for (let i = 0; i < 100 && vmProcessAlive(m); i++) await sleep(50);
      }
      withState((state, save) => {
        const cur = findMachine(state, name);
        if (cur.state !== "poweroff") {
          cur.state = "poweroff";
          cur.stateChangeTime = nowIso();
          cur.pid = null;
          cur.lockedUntil = Date.now() + lockWindowMs();
          save();
        }
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
    // guestproperty wait has its own argument loop (VBoxManageGuestProp.cpp handleWaitGuestProperty):
    // "--timeout N" as two arguments only, so "--timeout=5000" is an invalid parameter.
    const o = {};
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === "--timeout" && i + 1 < rest.length) o["--timeout"] = rest[++i];
      else if (rest[i] === "--fail-on-timeout") o["--fail-on-timeout"] = true;
      else throw syntaxError(`Invalid parameter '${rest[i]}'`);
    }
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

/** unregistervm (handleUnregisterVM): --delete removes the settings, logs and the attached hard disks (not DVD images). */
function unregistervm([name, ...args]) {
  if (!name) throw syntaxError("VM name required");
  const o = {};
  for (const p of getopt(args, [{ name: "--delete", id: "d", req: REQ.NOTHING }, { name: "-delete", id: "d", req: REQ.NOTHING }, { name: "--delete-all", id: "a", req: REQ.NOTHING }])) {
    if (p.id === "nonopt") throw syntaxError(`Invalid parameter '${p.value}'`);
    o[p.id] = true;
  }
  return withState((state, save) => {
    const m = machineOrThrow(state, name, "VBoxManageMisc.cpp");
    if (ONLINE.includes(m.state) || (m.lockedUntil && Date.now() < m.lockedUntil)) {
      throw apiError(`Cannot unregister the machine '${m.name}' while it is locked`, "VBOX_E_INVALID_OBJECT_STATE", "MachineWrap", "IMachine", "Unregister(CleanupMode_DetachAllReturnHardDisksOnly, ComSafeArrayAsOutParam(aMedia))", "VBoxManageMisc.cpp", 1);
    }
    state.machines = state.machines.filter((x) => x !== m);
    if (o.d || o.a) {
      for (const a of m.attachments) {
        if (a.type !== "hdd" && !o.a) continue;
        if (a.type !== "hdd" || a.medium === "emptydrive") continue;
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
  const parsed = parseExport(args);
  if (parsed.machines.length !== 1) throw syntaxError("The VBoxManage TEST DOUBLE exports one machine at a time");
  return withState((state) => {
    const m = machineOrThrow(state, parsed.machines[0], "VBoxManageAppliance.cpp");
    if (ONLINE.includes(m.state)) throw lockedForSession(m.name, "VBoxManageAppliance.cpp");
    writeAppliance(m, parsed, { settingsMajor: profile().major });
    progress();
    out(`Successfully exported 1 machine(s).`);
    return 0;
  });
}

function importVm(args) {
  const parsed = parseImport(args);
  const defaultBaseFolder = join(dirname(statePath()), "VirtualBox VMs");
  mkdirSync(defaultBaseFolder, { recursive: true });
  return withState((state, save) =>
    importAppliance(parsed, { state, save, major: profile().major, defaultBaseFolder, out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }),
  );
}
