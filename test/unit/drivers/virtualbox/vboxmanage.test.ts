import { describe, expect, it } from "vitest";
import {
  cloneMediumArgs,
  controlVmArgs,
  createVmArgs,
  expandUserCommand,
  exportArgs,
  isLockRace,
  modifyVmArgs,
  natForwardArgs,
  natForwardDeleteArgs,
  scancodeArgs,
  showVmInfoArgs,
  startVmArgs,
  storageAttachArgs,
  storageCtlArgs,
  unregisterVmArgs,
  vboxFailure,
} from "../../../../drivers/virtualbox/vboxmanage.js";
import { recorded } from "./recorded.js";

describe("VBoxManage argv builders", () => {
  const table: Array<[string, string[], string[]]> = [
    ["createvm", createVmArgs({ name: "vmkiln-1", osType: "RedHat_64", baseFolder: "/b/virtualbox" }), ["createvm", "--name", "vmkiln-1", "--ostype", "RedHat_64", "--register", "--basefolder", "/b/virtualbox"]],
    [
      "modifyvm",
      modifyVmArgs("vm", { memoryMiB: 2048, cpus: 2, firmware: "efi", graphicsController: "vmsvga", nicType: "virtio", vramMiB: 16 }),
      ["modifyvm", "vm", "--memory", "2048", "--cpus", "2", "--ioapic", "on", "--firmware", "efi", "--nic1", "nat", "--nictype1", "virtio", "--graphicscontroller", "vmsvga", "--vram", "16", "--rtcuseutc", "on", "--boot1", "disk", "--boot2", "dvd", "--boot3", "none", "--boot4", "none"],
    ],
    ["natpf1", natForwardArgs("vm", { name: "ssh", hostIp: "127.0.0.1", hostPort: 2222, guestPort: 22 }), ["modifyvm", "vm", "--natpf1", "ssh,tcp,127.0.0.1,2222,,22"]],
    ["natpf1 delete", natForwardDeleteArgs("vm", "ssh"), ["modifyvm", "vm", "--natpf1", "delete", "ssh"]],
    ["storagectl sata", storageCtlArgs("vm", { bus: "sata", name: "SATA", portCount: 1 }), ["storagectl", "vm", "--name", "SATA", "--add", "sata", "--controller", "IntelAhci", "--portcount", "1"]],
    ["storagectl virtio", storageCtlArgs("vm", { bus: "virtio", name: "VirtIO", portCount: 1 }), ["storagectl", "vm", "--name", "VirtIO", "--add", "virtio", "--controller", "VirtIO", "--portcount", "1"]],
    ["storagectl ide", storageCtlArgs("vm", { bus: "ide", name: "IDE" }), ["storagectl", "vm", "--name", "IDE", "--add", "ide", "--controller", "PIIX4"]],
    [
      "storageattach hdd",
      storageAttachArgs("vm", { kind: "hdd", controller: "SATA", port: 0, device: 0, medium: "/d.vdi", ssd: true }),
      ["storageattach", "vm", "--storagectl", "SATA", "--port", "0", "--device", "0", "--type", "hdd", "--medium", "/d.vdi", "--nonrotational", "on", "--discard", "on"],
    ],
    [
      "storageattach hdd (rotational)",
      storageAttachArgs("vm", { kind: "hdd", controller: "SATA", port: 1, device: 0, medium: "/e.vmdk", ssd: false }),
      ["storageattach", "vm", "--storagectl", "SATA", "--port", "1", "--device", "0", "--type", "hdd", "--medium", "/e.vmdk"],
    ],
    [
      "storageattach dvd",
      storageAttachArgs("vm", { kind: "dvd", controller: "IDE", port: 1, device: 0, medium: "/cidata.iso" }),
      ["storageattach", "vm", "--storagectl", "IDE", "--port", "1", "--device", "0", "--type", "dvddrive", "--medium", "/cidata.iso"],
    ],
    ["startvm headless", startVmArgs("vm", true), ["startvm", "vm", "--type", "headless"]],
    ["startvm gui", startVmArgs("vm", false), ["startvm", "vm", "--type", "gui"]],
    ["acpi", controlVmArgs("vm", "acpipowerbutton"), ["controlvm", "vm", "acpipowerbutton"]],
    ["poweroff", controlVmArgs("vm", "poweroff"), ["controlvm", "vm", "poweroff"]],
    ["scancodes", scancodeArgs("vm", ["2a", "1e", "9e", "aa"]), ["controlvm", "vm", "keyboardputscancode", "2a", "1e", "9e", "aa"]],
    ["showvminfo", showVmInfoArgs("vm"), ["showvminfo", "vm", "--machinereadable"]],
    ["unregistervm", unregisterVmArgs("vm"), ["unregistervm", "vm", "--delete"]],
    ["export 1.0", exportArgs("vm", { out: "/o/x.ovf", ovfVersion: "1.0" }), ["export", "vm", "-o", "/o/x.ovf", "--ovf10", "--manifest", "--options", "nomacs"]],
    [
      "export 2.0 named",
      exportArgs("vm", { out: "/o/x.ovf", ovfVersion: "2.0", vsysName: "x" }),
      ["export", "vm", "-o", "/o/x.ovf", "--ovf20", "--manifest", "--options", "nomacs", "--vsys", "0", "--vmname", "x"],
    ],
    ["clonemedium stream", cloneMediumArgs("/a.vdi", "/b.vmdk", "VMDK", "Stream"), ["clonemedium", "disk", "/a.vdi", "/b.vmdk", "--format", "VMDK", "--variant", "Stream"]],
    ["user command", expandUserCommand(["modifyvm", "{{.Name}}", "--vrde", "off", "{{ .Name }}-x"], "vmkiln-7"), ["modifyvm", "vmkiln-7", "--vrde", "off", "vmkiln-7-x"]],
  ];
  it.each(table)("%s", (_label, actual, expected) => {
    expect(actual).toEqual(expected);
  });

  it("refuses bad scan codes and NAT rule names", () => {
    expect(() => scancodeArgs("vm", [])).toThrow(/at least one/);
    expect(() => scancodeArgs("vm", ["2a", "zz"])).toThrow(/not a scan code/);
    expect(() => natForwardArgs("vm", { name: "a,b", hostIp: "127.0.0.1", hostPort: 1, guestPort: 22 })).toThrow(/commas/);
  });
});

describe("vboxFailure: what counts as a failed VBoxManage call", () => {
  it("exit 0 and a clean stderr is success", () => {
    expect(vboxFailure({ exitCode: 0, stderr: "" })).toBeUndefined();
    expect(vboxFailure({ exitCode: 0, stderr: "0%...10%...100%\n" })).toBeUndefined();
  });
  it("an error line with exit 0 is a failure (Packer's rule)", () => {
    expect(vboxFailure({ exitCode: 0, stderr: recorded("error-not-found.txt") })).toBe("Could not find a registered machine named '' (VBOX_E_OBJECT_NOT_FOUND)");
  });
  it("names the first error line and the result code, on Windows too", () => {
    expect(vboxFailure({ exitCode: 1, stderr: recorded("error-not-found-windows.txt") })).toBe("Could not find a registered machine named 'Mojave' (VBOX_E_OBJECT_NOT_FOUND)");
    expect(vboxFailure({ exitCode: 1, stderr: recorded("error-locked-modifyvm.txt") })).toMatch(/already locked for a session.*\(VBOX_E_INVALID_OBJECT_STATE\)$/);
  });
  it("a non-zero exit without error lines is still a failure", () => {
    expect(vboxFailure({ exitCode: 2, stderr: "Syntax error: something\n" })).toBe("Syntax error: something");
  });
  it("recognizes the session-lock race in both recorded spellings", () => {
    expect(isLockRace(recorded("error-locked-modifyvm.txt"))).toBe(true);
    expect(isLockRace(recorded("error-locked-startvm.txt"))).toBe(true);
    expect(isLockRace(recorded("error-not-found.txt"))).toBe(false);
  });
});
