// TEST DOUBLE of VBoxManage (not VirtualBox): `createmedium`, `clonemedium`, `closemedium`, following
// handleCreateMedium / handleCloneMedium / handleCloseMedium in
// src/VBox/Frontends/VBoxManage/VBoxManageDisk.cpp (6.1.38, 7.0.18):
//   - the option tables g_aCreateMediumOptions / g_aCloneMediumOptions, where the medium kind
//     (disk|dvd|floppy) is itself an option word and only one may be given ("Only one command can
//     be specified: 'X'"); 7.0 adds createmedium --property-file and clonemedium --resize;
//   - createmedium's own error texts: "unknown option: X" (lower case, errorSyntax), "Parameter
//     --filename is required", "Parameter --size is required", "Invalid medium variant 'X'";
//     formats VDI (default), VMDK, VHD; variants as parseMediumVariant reads them (Standard, Fixed,
//     Split2G, Stream, ESX, Formatted, RawDisk; comma-separated);
//   - "Medium created. UUID: …" / "Clone medium created in format 'F'. UUID: …".
// The images are written by qemu-img (vdi, vmdk with subformat=streamOptimized for the Stream variant).
// The texts of failures inside the medium code (an existing target file) are approximate.
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { REQ, getopt } from "./getopt.mjs";
import { VBoxError, apiError, argumentError, syntaxError } from "./errors.mjs";

const FILE = "VBoxManageDisk.cpp";

/** createmedium/import: errorSyntax("unknown option: %s\n") etc. instead of errorGetOpt. */
export function lowerCaseGetOptError(e) {
  if (e.rc === "VERR_GETOPT_UNKNOWN_OPTION") return new VBoxError([`unknown option: ${e.psz}`, ""], 2);
  if (e.def) return new VBoxError([`${e.def.name}: ${e.rc === "VERR_GETOPT_REQUIRED_ARGUMENT_MISSING" ? "RTGetOpt: Command line option needs argument." : "RTGetOpt: Command line option has argument with bad format."}`], 2);
  return new VBoxError([`error: ${e.rc}`], 2);
}

const VARIANTS = ["standard", "fixed", "split2g", "stream", "esx", "formatted", "rawdisk"];

export function parseVariant(s) {
  const parts = String(s).split(",").map((x) => x.trim().toLowerCase());
  return parts.every((p) => VARIANTS.includes(p)) ? parts : undefined;
}

export function qemuImg(args) {
  const r = spawnSync("qemu-img", args, { encoding: "utf8" });
  if (r.status !== 0) throw apiError(`qemu-img ${args[0]} failed: ${(r.stderr || r.error?.message || "").trim()}`, "VBOX_E_FILE_ERROR", "MediumWrap", "IMedium", args[0], FILE, 1);
  return r.stdout;
}

export const formatOfPath = (p) => (/\.vmdk$/i.test(p) ? "vmdk" : /\.vdi$/i.test(p) ? "vdi" : /\.vhd$/i.test(p) ? "vpc" : "raw");

function createOpts(major) {
  const o = [
    ["disk", "H"], ["dvd", "D"], ["floppy", "L"],
    ["--filename", "f", REQ.STRING], ["-filename", "f", REQ.STRING], ["--diffparent", "d", REQ.STRING],
    ["--size", "s", REQ.UINT64], ["-size", "s", REQ.UINT64], ["--sizebyte", "S", REQ.UINT64],
    ["--format", "o", REQ.STRING], ["-format", "o", REQ.STRING], ["--static", "F"], ["-static", "F"],
    ["--variant", "m", REQ.STRING], ["-variant", "m", REQ.STRING], ["--property", "p", REQ.STRING],
  ];
  if (major === "7.0") o.push(["--property-file", "P", REQ.STRING]);
  return o.map(([name, id, req = REQ.NOTHING]) => ({ name, id, short: id, req }));
}

/** Returns { file, bytes, format, variant } or throws. */
export function parseCreatemedium(argv, major) {
  let kind;
  const o = {};
  for (const p of getopt(argv, createOpts(major), { onError: lowerCaseGetOptError })) {
    if (p.id === "H" || p.id === "D" || p.id === "L") {
      if (kind) throw syntaxError(`Only one command can be specified: '${p.arg}'`);
      kind = p.id;
      continue;
    }
    if (p.id === "nonopt") throw syntaxError(`Invalid parameter '${p.value}'`);
    if (p.id === "m") {
      const v = parseVariant(p.value);
      if (!v) throw argumentError(`Invalid medium variant '${p.value}'`, 2);
      o.variant = v;
      continue;
    }
    if (p.id === "s") o.bytes = p.value * 1024n * 1024n;
    else if (p.id === "S") o.bytes = p.value;
    else o[p.id] = p.value;
  }
  if (!o.f) throw syntaxError("Parameter --filename is required");
  if ((kind ?? "H") === "H" && o.bytes === undefined && !o.d) throw syntaxError("Parameter --size is required");
  if (kind && kind !== "H") throw apiError("Creating DVD/floppy media is not supported by the VBoxManage TEST DOUBLE", "E_FAIL", "VirtualBoxWrap", "IVirtualBox", "CreateMedium", FILE, 1);
  const format = (o.o ?? "VDI").toUpperCase();
  if (!["VDI", "VMDK", "VHD"].includes(format)) {
    throw apiError(`Could not find a valid medium format for the target disk '${resolve(o.f)}'`, "VBOX_E_OBJECT_NOT_FOUND", "VirtualBoxWrap", "IVirtualBox", "CreateMedium", FILE, 243);
  }
  return { file: resolve(o.f), bytes: o.bytes, format, variant: o.variant ?? ["standard"] };
}

export function createImage({ file, bytes, format, variant }) {
  if (existsSync(file)) {
    throw new VBoxError(["Failed to create medium", `Could not create the medium storage unit '${file}'.`, `VD: error VERR_ALREADY_EXISTS (-105) creating '${file}'`]);
  }
  const opts = format === "VMDK" && variant.includes("stream") ? ["-o", "subformat=streamOptimized"] : [];
  qemuImg(["create", "-q", "-f", format === "VHD" ? "vpc" : format.toLowerCase(), ...opts, file, String(bytes)]);
}

function cloneOpts(major) {
  const o = [
    ["disk", "d"], ["dvd", "D"], ["floppy", "f"], ["--format", "o", REQ.STRING], ["-format", "o", REQ.STRING], ["--static", "F"], ["-static", "F"],
    ["--existing", "E"], ["--variant", "m", REQ.STRING], ["-variant", "m", REQ.STRING],
  ];
  if (major === "7.0") o.push(["--resize", "r", REQ.UINT64]);
  return o.map(([name, id, req = REQ.NOTHING]) => ({ name, id, short: id, req }));
}

export function parseClonemedium(argv, major) {
  const o = {};
  const pos = [];
  let kind;
  for (const p of getopt(argv, cloneOpts(major), { onError: lowerCaseGetOptError })) {
    if (p.id === "d" || p.id === "D" || p.id === "f") {
      if (kind) throw syntaxError(`Only one command can be specified: '${p.arg}'`);
      kind = p.id;
      continue;
    }
    if (p.id === "nonopt") {
      if (pos.length >= 2) throw syntaxError(`Invalid parameter '${p.value}'`);
      pos.push(p.value);
      continue;
    }
    if (p.id === "m") {
      const v = parseVariant(p.value);
      if (!v) throw argumentError(`Invalid medium variant '${p.value}'`, 2);
      o.variant = v;
      continue;
    }
    o[p.id] = p.value;
  }
  if (pos.length < 2) throw syntaxError("Mandatory UUID or input file parameter missing");
  return { src: resolve(pos[0]), dst: resolve(pos[1]), format: (o.o ?? "VDI").toUpperCase(), variant: o.variant ?? ["standard"], existing: Boolean(o.E) };
}

export function cloneImage({ src, dst, format, variant }) {
  if (!existsSync(src)) {
    throw apiError(`Could not find file for the medium '${src}' (VERR_FILE_NOT_FOUND)`, "VBOX_E_FILE_ERROR", "VirtualBoxWrap", "IVirtualBox", "OpenMedium(Bstr(pszSrc).raw(), enmDevType, enmAccessMode, fForceNewUuidOnOpen, pSrcMedium.asOutParam())", FILE, 1029);
  }
  if (existsSync(dst)) {
    throw new VBoxError(["Failed to clone medium", `Cannot create the medium storage unit '${dst}' because it already exists (VERR_ALREADY_EXISTS)`]);
  }
  const args = ["convert", "-q", "-f", formatOfPath(src), "-O", format.toLowerCase()];
  if (format === "VMDK" && variant.includes("stream")) args.push("-o", "subformat=streamOptimized");
  qemuImg([...args, src, dst]);
}

export function newMediumEntry(path, type) {
  return { uuid: randomUUID(), path, type };
}

export function removeFile(path) {
  rmSync(path, { force: true });
}
