import { describe, expect, it } from "vitest";
import {
  isRunningState,
  parseGuestProperty,
  parseMachineReadable,
  parseNatRule,
  parseVersion,
  parseVmInfo,
  parseVmList,
} from "../../../../drivers/virtualbox/machinereadable.js";
import { checkVersion, compareVersions } from "../../../../drivers/virtualbox/version.js";
import { recorded } from "./recorded.js";

describe("showvminfo --machinereadable (recorded real outputs)", () => {
  it("a powered-off VM", () => {
    const info = parseVmInfo(recorded("showvminfo-poweroff.txt"));
    expect(info).toMatchObject({ name: "manager2", uuid: "ac53720d-d945-4daf-8eb7-7ce59ac8c935", state: "poweroff", memoryMiB: 1624, cpus: 2, firmware: "BIOS" });
    expect(info.raw.get("CfgFile")).toBe("/home/jquezada/VirtualBox VMs/manager2/manager2.vbox");
    expect(info.raw.get("cpuid-portability-level")).toBe("0");
    expect(isRunningState(info.state!)).toBe(false);
  });

  it("a running VM with its storage controllers", () => {
    const info = parseVmInfo(recorded("showvminfo-running.txt"));
    expect(info.state).toBe("running");
    expect(isRunningState(info.state!)).toBe(true);
    expect(info.memoryMiB).toBe(14336);
    expect(info.cpus).toBe(14);
    expect(info.controllers).toEqual([{ name: "IDE", type: "PIIX4" }]);
    expect(info.raw.get("VMStateChangeTime")).toBe("2019-05-29T17:58:48.335000000");
  });

  it("a running VM's NAT port forward", () => {
    const info = parseVmInfo(recorded("showvminfo-running-nat.txt"));
    expect(info.state).toBe("running");
    expect(info.forwarding).toEqual([{ name: "ssh", proto: "tcp", hostIp: "127.0.0.1", hostPort: 64045, guestIp: "", guestPort: 22 }]);
    expect(info.raw.get("nic1")).toBe("nat");
    expect(info.raw.get("hostonlyadapter2")).toBe("VirtualBox Host-Only Ethernet Adapter #11");
  });

  it("unescapes Windows paths (\\\\ in the output)", () => {
    const info = parseVmInfo(recorded("showvminfo-windows-paths.txt"));
    expect(info.raw.get("CfgFile")).toBe("C:\\MyTestFolder\\Dev\\myminishift\\.minishift\\machines\\minishift\\minishift\\minishift.vbox");
    expect(info.raw.get("ostype")).toBe("Linux 2.6 / 3.x / 4.x (64-bit)");
  });

  it("escaped quotes, quoted keys and CRLF", () => {
    const m = parseMachineReadable('name="say \\"hi\\""\r\n"SATA-0-0"="/v/disk one.vdi"\r\nmemory=512\r\nGuestAdditionsFacility_VirtualBox Base Driver=50,1451938979637\r\n');
    expect(m.get("name")).toBe('say "hi"');
    expect(m.get("SATA-0-0")).toBe("/v/disk one.vdi");
    expect(m.get("memory")).toBe("512");
    expect(m.get("GuestAdditionsFacility_VirtualBox Base Driver")).toBe("50,1451938979637");
  });

  it("collects attachments per controller", () => {
    const info = parseVmInfo('storagecontrollername0="SATA"\nstoragecontrollertype0="IntelAhci"\n"SATA-0-0"="/d.vdi"\n"SATA-ImageUUID-0-0"="u"\n"SATA-1-0"="none"\n');
    expect(info.attachments).toEqual({ "SATA-0-0": "/d.vdi", "SATA-1-0": "none" });
  });
});

describe("list vms / runningvms (recorded)", () => {
  it("parses names and UUIDs", () => {
    expect(parseVmList(recorded("list-runningvms.txt"))).toEqual([{ name: "win10", uuid: "2aa5d69d-e8f3-4b6f-a3a3-364b2f00971e" }]);
    expect(parseVmList(recorded("list-vms-inaccessible.txt"))).toEqual([{ name: "<inaccessible>", uuid: "dd5682a8-7e9b-45eb-a097-db98e5d3d1f7" }]);
    expect(parseVmList('"a \\"b\\"" {2AA5D69D-E8F3-4B6F-A3A3-364B2F00971E}\r\n\n')).toEqual([{ name: 'a \\"b\\"', uuid: "2aa5d69d-e8f3-4b6f-a3a3-364b2f00971e" }]);
  });
});

describe("guestproperty get", () => {
  it("Value: or No value set!", () => {
    expect(parseGuestProperty("Value: 10.0.2.15\n")).toBe("10.0.2.15");
    expect(parseGuestProperty("No value set!\n")).toBeUndefined();
  });
});

describe("NAT rules", () => {
  it.each([
    ["ssh,tcp,127.0.0.1,2222,,22", { name: "ssh", proto: "tcp", hostIp: "127.0.0.1", hostPort: 2222, guestIp: "", guestPort: 22 }],
    ["web,udp,,8080,10.0.2.15,80", { name: "web", proto: "udp", hostIp: "", hostPort: 8080, guestIp: "10.0.2.15", guestPort: 80 }],
    ["ssh,icmp,,1,,2", undefined],
    ["ssh,tcp,,1,,", undefined],
    ["too,few", undefined],
  ])("%s", (text, expected) => {
    expect(parseNatRule(text)).toEqual(expected);
  });
});

describe("--version (recorded, with Packer's rules)", () => {
  it("plain version", () => {
    expect(parseVersion(recorded("version-4.3.txt"))).toMatchObject({ ok: true, version: "4.3.28" });
    expect(parseVersion("7.0.20r163906\n")).toMatchObject({ ok: true, version: "7.0.20" });
    expect(parseVersion("6.1.0_RC1r137000")).toMatchObject({ ok: true, version: "6.1.0" });
  });
  it("the vboxdrv warning means a broken install, whatever version follows", () => {
    expect(parseVersion(recorded("version-vboxdrv-warning.txt"))).toMatchObject({ ok: false, reason: "vboxdrv" });
    expect(parseVersion(recorded("version-ubuntu-devnode.txt"))).toMatchObject({ ok: false, reason: "vboxdrv" });
  });
  it("garbage is unparsable", () => {
    expect(parseVersion("Oracle VM VirtualBox")).toMatchObject({ ok: false, reason: "unparsable" });
  });
  it("refuses versions below the minimum with a clear message", () => {
    expect(checkVersion("7.0.20r163906")).toBe("7.0.20");
    expect(checkVersion("6.1.50r161033")).toBe("6.1.50");
    expect(() => checkVersion(recorded("version-4.3.txt"))).toThrow("VirtualBox 4.3.28 is too old: vmkiln needs VirtualBox 6.1 or newer");
    expect(() => checkVersion("6.0.24r139119")).toThrow(/too old/);
    expect(() => checkVersion(recorded("version-vboxdrv-warning.txt"))).toThrow(/broken VirtualBox install.*vboxdrv kernel module is not loaded/);
    expect(compareVersions("6.10", "6.9")).toBeGreaterThan(0);
    expect(compareVersions("6.1", "6.1.0")).toBe(0);
  });
});
