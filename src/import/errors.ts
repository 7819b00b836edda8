// Bad input to `vmkiln import`: one line naming the file and, where there is one, the line (exit 2).
import { UserError } from "../errors.js";

export function importError(file: string, line: number | undefined, message: string, column?: number): UserError {
  const where = line === undefined ? file : column === undefined ? `${file}:${line}` : `${file}:${line}:${column}`;
  return new UserError("IMPORT_INVALID", `${where}: ${message}`);
}

/** Builder types Packer has that vmkiln has no driver for: reported as not mapped, not as bad input. */
export const OTHER_PACKER_BUILDERS = new Set([
  "alicloud-ecs", "amazon-chroot", "amazon-ebs", "amazon-ebssurrogate", "amazon-ebsvolume", "amazon-instance", "azure-arm",
  "azure-chroot", "azure-dtl", "cloudstack", "digitalocean", "docker", "file", "googlecompute", "hcloud", "hyperone", "hyperv-iso",
  "hyperv-vmcx", "linode", "lxc", "lxd", "ncloud", "null", "oneandone", "openstack", "oracle-classic", "oracle-oci", "outscale-bsu",
  "parallels-iso", "parallels-pvm", "profitbricks", "proxmox", "proxmox-clone", "proxmox-iso", "scaleway", "tart-cli", "tencentcloud-cvm",
  "triton", "ucloud-uhost", "vagrant", "virtualbox-vm", "vmware-iso", "vmware-vmx", "vultr", "yandex", "libvirt", "utm-iso", "utm-utm",
  "upcloud", "ibmcloud", "exoscale", "gridscale", "bhyve", "xenserver-iso", "xenserver-xva", "harvester", "kubevirt-iso",
]);

/** The builders vmkiln maps (builders/*.ts). */
export const MAPPED_BUILDERS = new Set(["qemu", "virtualbox-iso", "virtualbox-ovf", "vsphere-iso", "vsphere-clone"]);
