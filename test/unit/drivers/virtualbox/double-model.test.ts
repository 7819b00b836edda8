// The VBoxManage TEST DOUBLE's model of VirtualBox, version by version (issue 13), checked in-process
// against what VirtualBox's sources define (cited in test/doubles/README.md): RTGetOpt's parsing and
// VBoxManage's error texts, the modifyvm/storagectl/storageattach/createmedium option tables of 6.1 and
// 7.0, the names showvminfo prints, and the NAT engine's rule for the host's loopback. The CLI checks
// at the end run the double itself.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseVmInfo } from "../../../../drivers/virtualbox/machinereadable.js";

const DOUBLES = fileURLToPath(new URL("../../../doubles/", import.meta.url));
const DOUBLE = join(DOUBLES, "VBoxManage");
// The double is plain JavaScript without type declarations.
const load = (name: string): Promise<any> => import(join(DOUBLES, "vboxmanage", name));

let getopt: any, modifyvm: any, machine: any, info: any, storage: any, media: any, nat: any;
beforeAll(async () => {
  [getopt, modifyvm, machine, info, storage, media, nat] = await Promise.all(["getopt.mjs", "modifyvm.mjs", "machine.mjs", "info.mjs", "storage.mjs", "media.mjs", "nat.mjs"].map(load));
});

/** The error a double parser threw: its lines and exit code. */
function failure(fn: () => unknown): { lines: string[]; exitCode: number } {
  try {
    fn();
  } catch (e) {
    const err = e as { lines?: string[]; exitCode?: number };
    if (err.lines) return { lines: err.lines, exitCode: err.exitCode ?? -1 };
    throw e;
  }
  throw new Error("did not fail");
}

const newVm = (major: string) => machine.newMachine({ uuid: "0d4b7a6e-8a7e-4c7e-9a55-2f6f7d3c1e01", name: "vm", ostype: "Debian_64", basefolder: "/b", folder: "/b/vm", settingsFile: "/b/vm/vm.vbox", major });
const modify = (major: string, args: string[], m = newVm(major)) => modifyvm.applyModifyvm(m, modifyvm.parseModifyvm(args, major), { major, state: { machines: [m] } });

describe("RTGetOpt as VBoxManage uses it (getopt.cpp, VBoxManageHelp.cpp errorGetOpt)", () => {
  it("takes a long option's value as the next argument or after '=' or ':', and an index before it", () => {
    for (const args of [["--memory", "512"], ["--memory=512"], ["--memory:512"], ["--memory", "0x200"]]) expect(modify("7.0", args).machine.memory).toBe(512);
    const r = modify("7.0", ["--nictype2=virtio", "--cableconnected2", "off"]).machine.nics[1];
    expect(r).toMatchObject({ adapter: "virtio", cable: false });
  });

  it("rejects what RTGetOpt rejects, with VBoxManage's texts (modifyvm then fails with exit 1)", () => {
    expect(failure(() => modifyvm.parseModifyvm(["--memory"], "7.0"))).toEqual({ lines: ["--memory: RTGetOpt: Command line option needs argument."], exitCode: 1 });
    expect(failure(() => modifyvm.parseModifyvm(["--memory", "lots"], "7.0")).lines).toEqual(["Invalid argument format: --memory"]);
    expect(failure(() => modifyvm.parseModifyvm(["--memory", "-5"], "7.0")).lines).toEqual(["Invalid argument format: --memory"]);
    expect(failure(() => modifyvm.parseModifyvm(["--memory512"], "7.0")).lines).toEqual(["Unknown option: --memory512"]);
    expect(failure(() => modifyvm.parseModifyvm(["--nic", "nat"], "7.0")).lines).toEqual(["--nic: RTGetOpt: Command line option needs an index."]);
    // On/off options accept on/off only; anything else is reported as an unknown option naming the value.
    expect(failure(() => modifyvm.parseModifyvm(["--ioapic", "yes"], "7.0")).lines).toEqual(["Unknown option: yes"]);
    expect(modify("7.0", ["--ioapic", "ON"]).machine.ioapic).toBe(true);
    expect(failure(() => modifyvm.parseModifyvm(["stray"], "7.0")).lines).toEqual(["Invalid parameter 'stray'"]);
  });

  it("numbers: decimal, or hex with 0x; unsigned options refuse a sign; the range is the type's", () => {
    const defs = [{ name: "--n", id: "n", req: getopt.REQ.UINT32 }, { name: "--s", id: "s", req: getopt.REQ.INT32 }];
    expect(getopt.getopt(["--n", "4294967295", "--s", "-7"], defs).map((p: { value: number }) => p.value)).toEqual([4294967295, -7]);
    expect(failure(() => getopt.getopt(["--n", "4294967296"], defs)).lines).toEqual(["Invalid argument format: --n"]);
    expect(failure(() => getopt.getopt(["--n", "12abc"], defs)).lines).toEqual(["Invalid argument format: --n"]);
  });
});

describe("modifyvm, version by version (g_aModifyVMOptions, handleModifyVM)", () => {
  it("--nat-localhostreachable<N> exists from 7.0 on; 6.1 refuses it as an unknown option", () => {
    expect(modify("7.0", ["--nat-localhostreachable1", "on"]).machine.nics[0].localhostReachable).toBe(true);
    expect(modify("7.0", ["--natlocalhostreachable1", "off"]).machine.nics[0].localhostReachable).toBe(false);
    expect(failure(() => modifyvm.parseModifyvm(["--nat-localhostreachable1", "on"], "6.1"))).toEqual({ lines: ["Unknown option: --nat-localhostreachable1"], exitCode: 1 });
  });

  it("new machines: 7.0 NAT does not reach the host's loopback (NATEngine::i_applyDefaults), 6.1 always does", () => {
    expect(newVm("7.0").nics[0]).toMatchObject({ enabled: true, attachment: "nat", adapter: "82540EM", localhostReachable: false });
    expect(newVm("6.1").nics[0].localhostReachable).toBe(true);
  });

  it("7.0 adds dash-separated spellings beside the old ones; 6.1 knows only the old ones", () => {
    expect(modify("7.0", ["--os-type", "Ubuntu_64", "--rtc-use-utc", "on"]).machine).toMatchObject({ ostype: "Ubuntu_64", rtcuseutc: true });
    expect(modify("7.0", ["--ostype", "Ubuntu_64"]).machine.ostype).toBe("Ubuntu_64");
    expect(failure(() => modifyvm.parseModifyvm(["--os-type", "Ubuntu_64"], "6.1")).lines).toEqual(["Unknown option: --os-type"]);
    // --cpu-profile is the spelling in both (there is no --cpuprofile).
    expect(failure(() => modifyvm.parseModifyvm(["--cpuprofile", "host"], "7.0")).lines).toEqual(["Unknown option: --cpuprofile"]);
    expect(modify("6.1", ["--cpu-profile", "host"]).machine.other).toEqual({ CPU_PROFILE: "host" });
    // --cpuidset: one hex number in 6.1, an optional pair from 7.0.
    expect(failure(() => modifyvm.parseModifyvm(["--cpuidset", "1:2"], "6.1")).lines).toEqual(["Invalid argument format: --cpuidset"]);
    expect(modify("7.0", ["--cpuidset", "1:2"]).machine.other).toEqual({ SETCPUID: [1, 2] });
  });

  it("values the handler checks, with its texts", () => {
    expect(failure(() => modify("7.0", ["--firmware", "uefi"]))).toEqual({ lines: ["Invalid --firmware argument 'uefi'"], exitCode: 1 });
    expect(modify("7.0", ["--firmware", "EFIDUAL"]).machine.firmware).toBe("EFIDUAL");
    expect(failure(() => modify("6.1", ["--firmware", "efidual"])).lines).toEqual(["Invalid --firmware argument 'efidual'"]);
    expect(failure(() => modify("7.0", ["--nic1", "wifi"])).lines).toEqual(["Invalid type 'wifi' specfied for NIC 1"]);
    expect(failure(() => modify("7.0", ["--boot1", "usb"]))).toEqual({ lines: ["Invalid boot device 'usb'"], exitCode: 2 });
    expect(failure(() => modify("7.0", ["--memory", "2"])).lines[0]).toBe("Invalid RAM size: 2 MB (must be in range [4, 2097152] MB)");
    expect(failure(() => modify("7.0", ["--cpus", "65"])).lines[0]).toBe("Invalid virtual CPU count: 65 (must be in range [1, 64])");
    expect(failure(() => modify("7.0", ["--macaddress1", "08:00:27:00:00:01"])).lines[0]).toBe("Invalid MAC address format");
    expect(modify("7.0", ["--graphicscontroller", "VMware"]).machine.graphicscontroller).toBe("VMSVGA");
    expect(modify("7.0", ["--nictype1", "NE2000"]).machine.nics[0].adapter).toBe("NE2000");
    expect(failure(() => modify("6.1", ["--nictype1", "NE2000"])).lines).toEqual(["Invalid NIC type 'NE2000' specified for NIC 1"]);
  });

  it("an adapter index beyond 8 is reported but does not fail the command (parseNum)", () => {
    const r = modify("7.0", ["--nic9", "nat", "--memory", "256"]);
    expect(r.soft).toEqual(["Invalid NIC number 9"]);
    expect(r.machine.memory).toBe(256);
  });

  it("NAT rules: the name, the duplicate checks and `delete NAME` of NATEngine::AddRedirect/RemoveRedirect", () => {
    const m = modify("7.0", ["--natpf1", "ssh,tcp,127.0.0.1,2222,,22", "--natpf1", ",udp,,53,,53"]).machine;
    expect(m.nics[0].natpf.map((r: { name: string }) => r.name)).toEqual(["ssh", "udp_53_53"]);
    expect(failure(() => modify("7.0", ["--natpf1", "ssh,tcp,127.0.0.1,2223,,22"], m)).lines[0]).toBe("A NAT rule of this name already exists");
    expect(failure(() => modify("7.0", ["--natpf1", "ssh2,tcp,127.0.0.1,2222,,22"], m)).lines[0]).toBe("A NAT rule for this host port and this host IP already exists");
    expect(failure(() => modify("7.0", ["--natpf1", "x,icmp,,1,,1"], m)).lines).toEqual(["Invalid proto 'x,icmp,,1,,1' specfied for NIC 1"]);
    expect(failure(() => modify("7.0", ["--natpf1", "x,tcp,,1"], m))).toEqual({ lines: ["Missing or invalid argument to '--natpf'"], exitCode: 2 });
    expect(modify("7.0", ["--natpf1", "delete", "ssh"], m).machine.nics[0].natpf.map((r: { name: string }) => r.name)).toEqual(["udp_53_53"]);
    expect(failure(() => modify("7.0", ["--natpf1", "delete", "nope"], m)).lines[0]).toBe("Code E_INVALIDARG (0x80070057) - One or more arguments are invalid (extended info not available)");
  });
});

describe("storagectl and storageattach (VBoxManageStorageController.cpp, StorageControllerImpl.cpp)", () => {
  const ctl = (m: unknown, argv: string[]) => storage.applyStoragectl(m, storage.parseStoragectl(["vm", ...argv]));
  it("adds controllers with VirtualBox's defaults and its own type names", () => {
    let m = ctl(newVm("7.0"), ["--name", "VirtIO", "--add", "virtio", "--controller", "VirtIO", "--portcount", "1"]);
    m = ctl(m, ["--name", "SATA", "--add", "SATA"]);
    expect(m.controllers.map((c: { name: string; type: string; portCount: number }) => [c.name, c.type, c.portCount])).toEqual([["VirtIO", "VirtioSCSI", 1], ["SATA", "IntelAhci", 30]]);
  });
  it("rejects what the parser and the API reject", () => {
    expect(failure(() => storage.parseStoragectl(["vm", "--name", "X"]))).toEqual({ lines: ["Too few parameters"], exitCode: 2 });
    expect(failure(() => ctl(newVm("7.0"), ["--name", "X", "--add", "nvme"])).lines).toEqual(["Invalid --add argument 'nvme'"]);
    expect(failure(() => ctl(newVm("7.0"), ["--name", "X", "--add", "sata", "--controller", "PIIX4"])).lines[0]).toBe("Invalid controller type 5");
    expect(failure(() => ctl(newVm("7.0"), ["--name", "X", "--add", "sata", "--portcount", "31"])).lines[0]).toBe("Invalid port count: 31 (must be in range [1, 30])");
    const m = ctl(newVm("7.0"), ["--name", "IDE", "--add", "ide"]);
    expect(failure(() => ctl(m, ["--name", "IDE", "--add", "ide"])).lines[0]).toBe("Storage controller named 'IDE' already exists");
  });
  it("storageattach: grows the port count within the bus maximum, and checks ranges with the API's text", () => {
    const m = ctl(newVm("7.0"), ["--name", "SATA", "--add", "sata", "--portcount", "1"]);
    const o = storage.parseStorageattach(["vm", "--storagectl", "SATA", "--port", "3", "--device", "0", "--type", "dvddrive", "--medium", "emptydrive"]);
    expect(storage.applyStorageattach(m, o, [], { running: false }).machine.controllers[0].portCount).toBe(4);
    const bad = storage.parseStorageattach(["vm", "--storagectl", "SATA", "--port", "30", "--device", "0", "--type", "hdd", "--medium", "none"]);
    expect(failure(() => storage.applyStorageattach(m, bad, [], { running: false })).lines[0]).toBe(
      "The port and/or device parameter are out of range: port=30 (must be in range [0, 0]), device=0 (must be in range [0, 0])",
    );
    expect(failure(() => storage.parseStorageattach(["vm", "--storagectl", "SATA", "--type", "ssd"]))).toEqual({ lines: ["Invalid --type argument 'ssd'"], exitCode: 2 });
    expect(failure(() => storage.parseStorageattach(["vm", "--storagectl", "SATA", "--nonrotational", "yes"])).lines).toEqual(["Invalid --nonrotational argument 'yes'"]);
    expect(failure(() => storage.parseStorageattach(["vm", "--storagectl", "SATA", "--bogus"]))).toEqual({ lines: ["Unknown option: --bogus"], exitCode: 1 });
  });
});

describe("createmedium (VBoxManageDisk.cpp handleCreateMedium)", () => {
  it("takes the medium kind as a word, sizes in MB or bytes, and prints its own texts", () => {
    expect(media.parseCreatemedium(["disk", "--filename", "/t/a.vdi", "--size", "2"], "7.0")).toMatchObject({ file: "/t/a.vdi", bytes: 2097152n, format: "VDI" });
    expect(media.parseCreatemedium(["--filename=/t/a.vmdk", "--sizebyte", "512", "--format", "vmdk", "--variant", "Stream"], "7.0")).toMatchObject({ bytes: 512n, format: "VMDK", variant: ["stream"] });
    expect(failure(() => media.parseCreatemedium(["--filename", "/t/a.vdi"], "7.0")).lines).toEqual(["Parameter --size is required"]);
    expect(failure(() => media.parseCreatemedium(["disk", "dvd", "--filename", "/t/a"], "7.0")).lines).toEqual(["Only one command can be specified: 'dvd'"]);
    expect(failure(() => media.parseCreatemedium(["--filename", "/t/a", "--size", "1", "--variant", "Sparse"], "7.0")).lines).toEqual(["Invalid medium variant 'Sparse'"]);
    expect(failure(() => media.parseCreatemedium(["--filename", "/t/a", "--size", "1", "--encrypt"], "7.0")).lines[0]).toBe("unknown option: --encrypt");
    expect(failure(() => media.parseCreatemedium(["--filename", "/t/a", "--size", "1", "--property-file", "x=y"], "6.1")).lines[0]).toBe("unknown option: --property-file");
  });
});

describe("showvminfo --machinereadable names (VBoxManageInfo.cpp showVMInfo)", () => {
  function withStorage(major: string) {
    let m = storage.applyStoragectl(newVm(major), storage.parseStoragectl(["vm", "--name", "SATA", "--add", "sata", "--portcount", "1"]));
    m = storage.applyStorageattach(m, { s: "SATA", p: 0, d: 0, t: "dvddrive", m: "emptydrive" }, [], { running: false }).machine;
    return m;
  }
  it("7.0: encryption, virtvmsavevmload, iommu, and per-attachment keys with port and unit", () => {
    const out = info.machineReadable(withStorage("7.0"), { major: "7.0" });
    const kv = parseVmInfo(out).raw;
    expect(out.split("\n").slice(0, 3)).toEqual(['name="vm"', 'encryption="disabled"', 'groups="/"']);
    expect(kv.get("virtvmsavevmload")).toBe("on");
    expect(kv.get("iommu")).toBe("none");
    expect(kv.get("storagecontrollertype0")).toBe("IntelAhci");
    expect(out).toContain('"SATA-0-0"="emptydrive"\n"SATA-IsEjected-0-0"="off"\n');
    expect(kv.get("nic1")).toBe("nat");
    expect(kv.get("natnet1")).toBe("nat");
  });
  it("6.1: none of those keys, and attachment flags without port and unit", () => {
    const out = info.machineReadable(withStorage("6.1"), { major: "6.1" });
    const kv = parseVmInfo(out).raw;
    expect(kv.has("encryption") || kv.has("virtvmsavevmload") || kv.has("iommu")).toBe(false);
    expect(out).toContain('"SATA-0-0"="emptydrive"\n"SATA-IsEjected"="off"\n');
  });
  it("machine states print by their short names, aborted and gurumeditation included", () => {
    for (const state of ["poweroff", "running", "aborted", "gurumeditation"]) expect(parseVmInfo(info.machineReadable({ ...newVm("7.0"), state }, { major: "7.0" })).state).toBe(state);
  });
});

describe("NAT engine and the host's loopback (slirp tcp_input/udp_input/icmp_input, VirtualBox 7)", () => {
  function frame({ dst, proto, flags = 0, dport = 80, icmpType = 8 }: { dst: string; proto: number; flags?: number; dport?: number; icmpType?: number }): Buffer {
    const b = Buffer.alloc(14 + 20 + 20);
    b.writeUInt16BE(0x0800, 12);
    b[14] = 0x45;
    b[14 + 9] = proto;
    dst.split(".").forEach((o, i) => (b[14 + 16 + i] = Number(o)));
    if (proto === 6) b[34 + 13] = flags;
    if (proto === 17) b.writeUInt16BE(dport, 34 + 2);
    if (proto === 1) b[34] = icmpType;
    return b;
  }
  it("drops what the guest starts towards 10.0.2.2, passes everything else", () => {
    const alias = nat.aliasAddress("10.0.2.0/24");
    expect(alias).toBe("10.0.2.2");
    expect(nat.dropsFrame(frame({ dst: alias, proto: 6, flags: 0x02 }), alias)).toBe(true); // SYN: a new connection
    expect(nat.dropsFrame(frame({ dst: alias, proto: 6, flags: 0x12 }), alias)).toBe(false); // SYN-ACK: a port forward's reply
    expect(nat.dropsFrame(frame({ dst: alias, proto: 6, flags: 0x10 }), alias)).toBe(false);
    expect(nat.dropsFrame(frame({ dst: alias, proto: 17, dport: 53 }), alias)).toBe(true);
    expect(nat.dropsFrame(frame({ dst: alias, proto: 17, dport: 67 }), alias)).toBe(false); // DHCP is answered first
    expect(nat.dropsFrame(frame({ dst: alias, proto: 1 }), alias)).toBe(true); // ping
    expect(nat.dropsFrame(frame({ dst: "10.0.2.3", proto: 17, dport: 53 }), alias)).toBe(false); // DNS
    expect(nat.dropsFrame(frame({ dst: "192.0.2.10", proto: 6, flags: 0x02 }), alias)).toBe(false); // the host's own address
    expect(nat.aliasAddress("192.168.77.0/24")).toBe("192.168.77.2");
  });
  it("reassembles the filter's length-prefixed frames across chunk boundaries", () => {
    const got: number[] = [];
    const feed = nat.frameReader((f: Buffer) => got.push(f.length));
    const rec = (n: number) => Buffer.concat([Buffer.from([0, 0, 0, n]), Buffer.alloc(n)]);
    const all = Buffer.concat([rec(3), rec(70), rec(1)]);
    for (let i = 0; i < all.length; i += 5) feed(all.subarray(i, i + 5));
    expect(got).toEqual([3, 70, 1]);
  });
});

describe("the double's command line", () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "vmkiln-vbox-model-"));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const run = (version: string, ...args: string[]) =>
    spawnSync(DOUBLE, args, { encoding: "utf8", env: { ...process.env, VBOXMANAGE_DOUBLE_STATE: join(work, version, "state.json"), VBOXMANAGE_DOUBLE_VERSION: version } });

  it("modifyvm: a failing option saves nothing, even options before it (SaveSettings runs only on success)", () => {
    expect(run("7.0.20r163906", "createvm", "--name", "a", "--ostype", "Debian_64", "--register").status).toBe(0);
    const r = run("7.0.20r163906", "modifyvm", "a", "--memory", "777", "--bogus");
    expect([r.status, r.stderr]).toEqual([1, "VBoxManage: error: Unknown option: --bogus\n"]);
    expect(parseVmInfo(run("7.0.20r163906", "showvminfo", "a", "--machinereadable").stdout).memoryMiB).toBe(128);
    // An unknown machine is found missing before its options are read.
    expect(run("7.0.20r163906", "modifyvm", "nope", "--bogus").stderr).toMatch(/^VBoxManage: error: Could not find a registered machine named 'nope'\n/);
  });

  it("--version prints the version played", () => {
    expect(run("6.1.50r161033", "--version").stdout).toBe("6.1.50r161033\n");
  });
});
