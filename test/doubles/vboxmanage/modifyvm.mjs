// TEST DOUBLE of VBoxManage (not VirtualBox): `VBoxManage modifyvm`, following handleModifyVM in
// src/VBox/Frontends/VBoxManage/VBoxManageModifyVM.cpp (6.1.38 and 7.0.18):
//   - the machine is looked up and write-locked before any option is read, so an unknown machine
//     or a locked one fails first;
//   - options are parsed by RTGetOpt against the version's table (modifyvm-options.mjs) and applied
//     one by one; the first failure stops the loop and nothing is saved (SaveSettings only runs when
//     every option succeeded), and the exit code is 1 — even for an unknown option, since the
//     handler's default case reports errorGetOpt() and then fails with E_FAIL;
//   - an adapter index outside 1..8 is reported by parseNum() ("Invalid NIC number N") but does not
//     fail the command: the option is skipped and the rest still applies (exit 0);
//   - `--natpfN delete NAME` takes the rule name as the next argument.
// Value checks modelled are those of the options listed in HANDLED below (texts as the handler
// prints them); every other option in the table is accepted with a value of the right type and
// stored without effect on the QEMU machine.
import { getopt, KIND } from "./getopt.mjs";
import { VBoxError, apiCodeOnly, apiError, argumentError, syntaxError } from "./errors.mjs";
import { modifyvmOptions } from "./modifyvm-options.mjs";
import { MAX_NICS, generateMac } from "./machine.mjs";

const FILE = "VBoxManageModifyVM.cpp";

export function modifyvmDefs(major) {
  return modifyvmOptions(major).map((d) => ({ name: d.name, id: d.id, req: KIND[d.kind], index: d.index }));
}

/** Parses argv (after the machine name). Throws a VBoxError for parse failures (exit code 1). */
export function parseModifyvm(args, major) {
  const defs = modifyvmDefs(major);
  const out = [];
  // `--natpfN delete NAME`: the handler fetches NAME itself (RTGetOptFetchValue).
  const parsed = getopt(args, defs, { onError: (e) => failGetOpt(e) });
  for (let i = 0; i < parsed.length; i++) {
    const p = parsed[i];
    if (p.id === "nonopt") throw new VBoxError([`Invalid parameter '${p.value}'`], 1);
    if (p.id === "NATPF" && p.value === "delete") {
      const next = parsed[i + 1];
      if (!next || next.id !== "nonopt") throw syntaxError("Not enough parameters");
      out.push({ ...p, value: "delete", rule: next.value });
      i++;
      continue;
    }
    out.push(p);
  }
  return out;
}

function failGetOpt(e) {
  const err = new VBoxError([], 1);
  // errorGetOpt prints the error; the handler then sets hrc = E_FAIL and returns RTEXITCODE_FAILURE.
  err.lines = [describe(e)];
  return err;
}

function describe(e) {
  if (e.rc === "VERR_GETOPT_UNKNOWN_OPTION") return `Unknown option: ${e.psz}`;
  if (e.rc === "VERR_GETOPT_INVALID_ARGUMENT_FORMAT") return `Invalid argument format: ${e.psz ?? e.def?.name ?? ""}`;
  if (e.rc === "VERR_GETOPT_REQUIRED_ARGUMENT_MISSING") return `${e.def.name}: RTGetOpt: Command line option needs argument.`;
  return `${e.def.name}: RTGetOpt: Command line option needs an index.`;
}

const ci = (v) => String(v).toLowerCase();

const FIRMWARE = { bios: "BIOS", efi: "EFI", efi32: "EFI32", efi64: "EFI64", efidual: "EFIDUAL" };
const GRAPHICS = { none: "Null", disabled: "Null", vboxvga: "VBoxVGA", vbox: "VBoxVGA", vga: "VBoxVGA", vesa: "VBoxVGA", vmsvga: "VMSVGA", vmware: "VMSVGA", vboxsvga: "VBoxSVGA", svga: "VBoxSVGA" };
const BOOT = { none: "none", floppy: "floppy", dvd: "dvd", disk: "disk", net: "net" };
const NIC_ATTACH = { none: null, null: "null", nat: "nat", bridged: "bridged", hostif: "bridged", intnet: "intnet", hostonly: "hostonly", generic: "generic", natnetwork: "natnetwork", cloud: "cloud" };
const NIC_TYPES = ["Am79C970A", "Am79C973", "Am79C960", "82540EM", "82543GC", "82545EM", "virtio", "NE1000", "NE2000", "WD8003", "WD8013", "ELNK2", "ELNK1"];
const NIC_TYPES_61 = ["Am79C970A", "Am79C973", "82540EM", "82543GC", "82545EM", "virtio"];

/**
 * Applies the parsed options to a copy of the machine; returns { machine, warnings, errors } where
 * `errors` are reported lines that did not fail the command (parseNum). Throws on the first failure.
 */
export function applyModifyvm(m0, parsed, { major, state }) {
  const m = structuredClone(m0);
  const warnings = [];
  const soft = [];
  const nicOf = (p) => {
    if (p.index < 1 || p.index > MAX_NICS) {
      soft.push(`Invalid NIC number ${p.index}`);
      return undefined;
    }
    return m.nics[p.index - 1];
  };
  for (const p of parsed) {
    const v = p.value;
    switch (p.id) {
      case "NAME":
        if (state.machines.some((x) => x !== m0 && x.name === v)) {
          throw apiError(`Could not rename the directory '${m.folder}' to '${m.folder.replace(/[^/]*$/, v)}' to save the settings file (VERR_ALREADY_EXISTS)`, "E_FAIL", "SessionMachine", "IMachine", "SaveSettings()", FILE, 3637);
        }
        m.name = v;
        break;
      case "OSTYPE":
        m.ostype = v;
        break;
      case "DESCRIPTION":
        m.description = v;
        break;
      case "GROUPS":
        m.groups = v.split(",");
        break;
      case "MEMORY":
        if (v < 4 || v > 2097152) {
          throw apiError(`Invalid RAM size: ${v} MB (must be in range [4, 2097152] MB)`, "E_INVALIDARG", "MachineWrap", "IMachine", "COMSETTER(MemorySize)(ValueUnion.u32)", FILE, 724);
        }
        m.memory = v;
        break;
      case "CPUS":
        if (v < 1 || v > 64) {
          throw apiError(`Invalid virtual CPU count: ${v} (must be in range [1, 64])`, "E_INVALIDARG", "MachineWrap", "IMachine", "COMSETTER(CPUCount)(ValueUnion.u32)", FILE, 946);
        }
        m.cpus = v;
        break;
      case "VRAM":
        if (v > 256) {
          throw apiError(`Invalid VRAM size: ${v} MB (must be in range [0, 256] MB)`, "E_INVALIDARG", "GraphicsAdapterWrap", "IGraphicsAdapter", "COMSETTER(VRAMSize)(ValueUnion.u32)", FILE, 736);
        }
        m.vram = v;
        break;
      case "FIRMWARE":
        if (!(ci(v) in FIRMWARE) || (major === "6.1" && ci(v) === "efidual")) throw argumentError(`Invalid --firmware argument '${v}'`);
        m.firmware = FIRMWARE[ci(v)];
        break;
      case "ACPI":
      case "IOAPIC":
      case "PAE":
      case "LONGMODE":
      case "HWVIRTEX":
      case "TFRESET":
      case "RTCUSEUTC":
        m[{ ACPI: "acpi", IOAPIC: "ioapic", PAE: "pae", LONGMODE: "longmode", HWVIRTEX: "hwvirtex", TFRESET: "triplefaultreset", RTCUSEUTC: "rtcuseutc" }[p.id]] = v;
        break;
      case "GRAPHICSCONTROLLER":
        if (!(ci(v) in GRAPHICS)) throw argumentError(`Invalid --graphicscontroller argument '${v}'`);
        m.graphicscontroller = GRAPHICS[ci(v)];
        break;
      case "BOOT":
        if (!(ci(v) in BOOT)) throw argumentError(`Invalid boot device '${v}'`, 2);
        if (p.index < 1 || p.index > 4) {
          throw apiError(`Invalid boot position: ${p.index} (must be in range [1, 4])`, "E_INVALIDARG", "MachineWrap", "IMachine", "SetBootOrder(GetOptState.uIndex, DeviceType_Null)", FILE, 1124);
        }
        m.boot[p.index - 1] = BOOT[ci(v)];
        break;
      case "NIC": {
        const nic = nicOf(p);
        if (!nic) break;
        if (!(ci(v) in NIC_ATTACH) || (major === "6.1" && ci(v) === "cloud")) throw argumentError(`Invalid type '${v}' specfied for NIC ${p.index}`);
        if (ci(v) === "none") nic.enabled = false;
        else {
          nic.enabled = true;
          nic.attachment = NIC_ATTACH[ci(v)];
        }
        break;
      }
      case "NICTYPE": {
        const nic = nicOf(p);
        if (!nic) break;
        const types = major === "6.1" ? NIC_TYPES_61 : NIC_TYPES;
        const t = types.find((x) => x.toLowerCase() === ci(v));
        if (!t) throw argumentError(`Invalid NIC type '${v}' specified for NIC ${p.index}`);
        nic.adapter = t;
        break;
      }
      case "CABLECONNECTED": {
        const nic = nicOf(p);
        if (nic) nic.cable = v;
        break;
      }
      case "MACADDRESS": {
        const nic = nicOf(p);
        if (!nic) break;
        if (ci(v) === "auto") nic.mac = generateMac();
        else {
          const mac = v.toUpperCase();
          // NetworkAdapter::i_updateMacAddress: exactly 12 hex digits (no separators), unicast.
          if (!/^[0-9A-F]{12}$/.test(mac) || (parseInt(mac.slice(1, 2), 16) & 1) !== 0) {
            throw apiError("Invalid MAC address format", "E_INVALIDARG", "NetworkAdapterWrap", "INetworkAdapter", "COMSETTER(MACAddress)(Bstr(ValueUnion.psz).raw())", FILE, 2276);
          }
          nic.mac = mac;
        }
        break;
      }
      case "NATNET": {
        const nic = nicOf(p);
        if (nic) nic.natnet = ci(v) === "default" ? "" : v;
        break;
      }
      case "NATLOCALHOSTREACHABLE": {
        const nic = nicOf(p);
        if (nic) nic.localhostReachable = v;
        break;
      }
      case "NATPF": {
        const nic = nicOf(p);
        if (!nic) break;
        if (v === "delete") {
          const i = nic.natpf.findIndex((r) => r.name === p.rule);
          if (i < 0) throw apiCodeOnly("E_INVALIDARG", "RemoveRedirect(Bstr(ValueUnion.psz).raw())", FILE, 2085);
          nic.natpf.splice(i, 1);
          break;
        }
        const parts = v.split(",");
        if (parts.length < 6) throw syntaxError(`Missing or invalid argument to '${p.def.name}'`);
        const [name, proto, hostIp, hostPort, guestIp, guestPort] = parts.map((s) => s.trim());
        if (ci(proto) !== "tcp" && ci(proto) !== "udp") throw argumentError(`Invalid proto '${v}' specfied for NIC ${p.index}`);
        const toPort = (s) => (/^\d+$/.test(s) ? Number(s) & 0xffff : 0); // RTStrToUInt16: 0 on junk
        const rule = { name: name || `${ci(proto)}_${toPort(hostPort)}_${toPort(guestPort)}`, proto: ci(proto), hostIp, hostPort: toPort(hostPort), guestIp, guestPort: toPort(guestPort) };
        const addRedirect = (msg) => apiError(msg, "E_INVALIDARG", "NATEngineWrap", "INATEngine", "AddRedirect(Bstr(strName).raw(), proto, Bstr(strHostIp).raw(), RTStrToUInt16(strHostPort), Bstr(strGuestIp).raw(), RTStrToUInt16(strGuestPort))", FILE, 2097);
        if (nic.natpf.some((r) => r.name === rule.name)) throw addRedirect("A NAT rule of this name already exists");
        if (nic.natpf.some((r) => r.hostIp === rule.hostIp && r.hostPort === rule.hostPort && r.proto === rule.proto)) throw addRedirect("A NAT rule for this host port and this host IP already exists");
        nic.natpf.push(rule);
        break;
      }
      case "AUDIO":
        if (major === "7.0") warnings.push("Warning: --audio is deprecated and will be removed soon. Use --audio-driver instead!");
      // falls through
      case "AUDIODRIVER": {
        const drivers = ["none", "null", "default", "oss", "alsa", "pulse"];
        if (!drivers.includes(ci(v))) throw argumentError(`Invalid ${p.def.name} argument '${v}'`);
        m.audio = { ...m.audio, driver: ci(v) === "none" ? "null" : ci(v), enabled: major === "6.1" ? ci(v) !== "none" : m.audio.enabled };
        break;
      }
      case "AUDIO_ENABLED":
        m.audio = { ...m.audio, enabled: v };
        break;
      default:
        m.other[p.index !== undefined ? `${p.id}${p.index}` : p.id] = typeof v === "bigint" ? String(v) : v;
    }
  }
  return { machine: m, warnings, soft };
}
