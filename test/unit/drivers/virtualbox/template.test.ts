// drivers.virtualbox in the template: defaults, conversions, and clear one-line errors.
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { specFromObject } from "../../../../src/template/load.js";

const baseDir = fileURLToPath(new URL("../../../fixtures/templates/good/", import.meta.url));
const template = (virtualbox: unknown, formats = ["ova"]) => ({
  name: "t",
  source: { cloud_image: { path: "images/fixture.qcow2", checksum: "none" } },
  drivers: { virtualbox },
  output: { formats },
});

describe("drivers.virtualbox", () => {
  it("fills defaults", () => {
    expect(specFromObject(template(null), { baseDir }).drivers.virtualbox).toEqual({
      cpus: 2,
      memory: 1024,
      diskSize: undefined,
      firmware: "bios",
      diskFormat: "vdi",
      headless: true,
      guestOsType: "Linux_64",
      graphicsController: "vmsvga",
      diskController: "sata",
      nicType: "82540EM",
      ovfVersion: "1.0",
      vboxmanage: [],
      binary: "VBoxManage",
      sshHostPort: undefined,
    });
  });

  it("takes every option", () => {
    const v = specFromObject(
      template({
        cpus: 4, memory: "2G", disk_size: "20G", firmware: "efi", disk_format: "vmdk", headless: false, guest_os_type: "Oracle_64",
        graphics_controller: "vboxsvga", disk_controller: "virtio", nic_type: "virtio", ovf_version: "2.0",
        vboxmanage: [["modifyvm", "{{.Name}}", "--vrde", "off"]], binary: "/opt/vbox/VBoxManage", ssh_host_port: 2222,
      }),
      { baseDir },
    ).drivers.virtualbox;
    expect(v).toMatchObject({ cpus: 4, memory: 2048, diskSize: 20 * 1024 ** 3, firmware: "efi", diskFormat: "vmdk", headless: false, ovfVersion: "2.0", sshHostPort: 2222 });
    expect(v?.vboxmanage).toEqual([["modifyvm", "{{.Name}}", "--vrde", "off"]]);
  });

  it("names the field of a bad value", () => {
    expect(() => specFromObject(template({ ovf_version: "1.1" }), { baseDir })).toThrow(/drivers\.virtualbox\.ovf_version/);
    expect(() => specFromObject(template({ vboxmanage: ["modifyvm"] }), { baseDir })).toThrow(/drivers\.virtualbox\.vboxmanage\[0\]/);
    expect(() => specFromObject(template({ disk_controller: "scsi" }), { baseDir })).toThrow(/drivers\.virtualbox\.disk_controller/);
  });

  it("refuses formats VirtualBox cannot export", () => {
    expect(() => specFromObject(template({}, ["qcow2"]), { baseDir })).toThrow(/output\.formats\[0\]: driver virtualbox cannot export qcow2/);
  });
});
