// The small VirtualBox VM the driver unit tests create on the VBoxManage double.
import type { VirtualBoxSpec } from "../../../../src/template/spec.js";

export function testVboxSpec(binary: string, over: Partial<VirtualBoxSpec> = {}): VirtualBoxSpec {
  return {
    cpus: 1,
    memory: 256,
    diskSize: undefined,
    firmware: "bios",
    diskFormat: "vdi",
    headless: true,
    guestOsType: "Debian_64",
    graphicsController: "vmsvga",
    diskController: "sata",
    nicType: "82540EM",
    ovfVersion: "1.0",
    vboxmanage: [],
    binary,
    sshHostPort: undefined,
    ...over,
  };
}
