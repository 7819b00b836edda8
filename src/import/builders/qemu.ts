// Packer's qemu builder (hashicorp/packer-plugin-qemu builder/qemu/config.go, Config) → drivers.qemu.
// disk_image: true boots the "ISO" as a disk (a cloud image) → source.cloud_image.

import { valueOf, decide, mapChecksum, mapCommon, mapHeadless, mapIsoLocation, mapOutput, mapShape, numOrText, commonNotMapped, type BuilderCtx, type BuilderResult, type Doc } from "./common.js";
import { asText } from "../values.js";

/** What vmkiln's QEMU command line already has (drivers/qemu/cmdline.ts): these qemuargs change nothing. */
const SAME_AS_VMKILN = [/^-cpu (max|host)$/, /^-device virtio-rng-pci$/, /^-machine (type=)?q35(,accel=(kvm|tcg))?$/, /^-(display|nographic)( none)?$/, /^-boot (order=)?[cd]+$/];
/** Arguments that would fight vmkiln's own disks, network, memory and CPUs. */
const OWNED = /^-(drive|blockdev|netdev|nic|net|hda|hdb|cdrom|fda|m|smp|name|pidfile|qmp|monitor|vnc|serial|chardev|bios|pflash|daemonize)$/;

export function mapQemu(ctx: BuilderCtx): BuilderResult {
  const b = ctx.body;
  const r = ctx.report;
  const driver: Doc = {};
  const doc: Doc = {};
  const isImage = decide(ctx, b, "disk_image") === true;
  const where = mapIsoLocation(ctx);
  const checksum = mapChecksum(ctx);
  if (where) doc.source = isImage ? { cloud_image: { ...where, checksum } } : { iso: { ...where, checksum } };
  else r.notMapped(b.path, "no iso_url: vmkiln needs the image or ISO to start from");

  const backing = decide(ctx, b, "use_backing_file");
  if (isImage) driver.disk_mode = backing === true ? "overlay" : "copy";
  else if (backing !== undefined) r.note(b.at("use_backing_file"), "only used with disk_image");
  b.notMapped("skip_resize_disk", "vmkiln grows the disk to disk_size when it is given; leave disk_size out to keep the image's size");
  mapShape(ctx, driver);
  if (!isImage && driver.disk_size === undefined) {
    driver.disk_size = "40G";
    r.note(`${b.path}.disk_size`, "not set: Packer's default 40960M written out (an installer build needs a disk size)");
  }
  b.notMapped("disk_additional_size", "vmkiln builds one disk");
  for (const k of ["sockets", "cores", "threads"]) b.notMapped(k, "vmkiln sets the CPU count (cpus), not the topology");

  const accel = b.text("accelerator");
  if (accel !== undefined) {
    const a = valueOf(ctx, accel);
    if (a === "kvm" || a === "tcg") {
      driver.accelerator = accel;
      if (a === "kvm") r.note(b.at("accelerator"), "kvm, as Packer: the build fails without a usable /dev/kvm; accelerator: auto would fall back to TCG");
    }
    else if (a === "none") driver.accelerator = "tcg";
    else r.notMapped(b.at("accelerator"), `vmkiln runs QEMU with kvm or tcg (auto picks); ${a} is not supported`);
  }
  const machine = b.text("machine_type");
  if (machine !== undefined) driver.machine = machine;
  const binary = b.text("qemu_binary");
  if (binary !== undefined) driver.binary = binary;
  mapHeadless(ctx, driver);
  const efi = decide(ctx, b, "efi_boot");
  const fw = b.text("firmware");
  if (efi === true) driver.firmware = "efi";
  if (fw !== undefined) {
    if (/ovmf|edk2|efi/i.test(valueOf(ctx, fw))) {
      driver.firmware = "efi";
      r.note(b.at("firmware"), "vmkiln boots EFI with the host's OVMF; this file is not used");
    } else r.notMapped(b.at("firmware"), "vmkiln boots SeaBIOS or the host's OVMF (firmware: efi); a custom firmware file is not supported");
  }
  for (const k of ["efi_firmware_code", "efi_firmware_vars"]) b.notMapped(k, "vmkiln uses the host's OVMF files");
  b.notMapped("efi_drop_efivars", "vmkiln keeps the EFI variables in the build dir");
  b.notMapped("use_pflash", "vmkiln loads OVMF as pflash always");
  b.notMapped("vtpm", "no TPM emulation");
  b.notMapped("use_tpm1", "no TPM emulation");
  b.notMapped("tpm_device_type", "no TPM emulation");

  // qemuargs: kept when they add something, reported when they replace what vmkiln sets up.
  const qa = b.take("qemuargs");
  if (Array.isArray(qa)) {
    const extra: string[] = [];
    qa.forEach((pair, i) => {
      const args = (Array.isArray(pair) ? pair : [pair]).map(asText);
      const line = args.join(" ");
      if (args.some((x) => x === undefined)) return r.notMapped(`${b.at("qemuargs")}[${i}]`, "expected a list of strings");
      if (SAME_AS_VMKILN.some((re) => re.test(line))) return r.note(`${b.at("qemuargs")}[${i}]`, `${line}: vmkiln's QEMU command line has this already`);
      if ((args[0] === "-m" && args[1] === String(driver.memory)) || (args[0] === "-smp" && args[1] === String(driver.cpus)))
        return r.note(`${b.at("qemuargs")}[${i}]`, `${line}: the same as ${args[0] === "-m" ? "memory" : "cpus"}`);
      if (args[0] === "-bios" && /ovmf|edk2/i.test(args[1] ?? "")) {
        driver.firmware = "efi";
        return r.note(`${b.at("qemuargs")}[${i}]`, `${line}: firmware: efi (vmkiln boots the host's OVMF)`);
      }
      if (OWNED.test(args[0]!) || (args[0] === "-device" && /netdev=|drive=|virtio-net|e1000/.test(args[1] ?? "")))
        return r.notMapped(`${b.at("qemuargs")}[${i}]`, `${line}: vmkiln sets up the disks, network, memory, CPUs and consoles itself; extra_args cannot replace them`);
      if (line.includes("{{")) return r.notMapped(`${b.at("qemuargs")}[${i}]`, `${line}: Packer's build values are not known to extra_args`);
      extra.push(...(args as string[]));
    });
    if (extra.length > 0) driver.extra_args = extra;
  }
  const qia = b.take("qemu_img_args");
  if (qia !== undefined) {
    const create = JSON.stringify((qia as Record<string, unknown>)?.create ?? []);
    const rest = Object.entries(qia as Record<string, unknown>).filter(([k, v]) => k !== "create" && Array.isArray(v) && v.length > 0);
    if (rest.length === 0 && (create === "[]" || create === '["-F","qcow2"]')) r.note(b.at("qemu_img_args"), "vmkiln runs qemu-img itself (a backing file always names its format)");
    else r.notMapped(b.at("qemu_img_args"), "vmkiln runs qemu-img itself; extra qemu-img arguments are not supported");
  }

  const sameValue = (key: string, ok: string[], why: string) => {
    const v = b.text(key);
    if (v === undefined) return;
    if (ok.includes(valueOf(ctx, v))) r.note(b.at(key), why);
    else r.notMapped(b.at(key), `${valueOf(ctx, v)}: ${why}`);
  };
  sameValue("net_device", ["virtio-net", "virtio-net-pci"], "vmkiln's NIC is virtio-net-pci");
  sameValue("disk_interface", ["virtio", "virtio-scsi"], "vmkiln attaches the disk as virtio");
  sameValue("disk_discard", ["unmap", "ignore"], "vmkiln's disk has discard=unmap (trimmed blocks leave the image)");
  sameValue("disk_detect_zeroes", ["unmap", "on", "off"], "vmkiln's disk has detect-zeroes=unmap");
  sameValue("disk_cache", ["writeback", "unsafe", "none", "writethrough", "directsync"], "the cache mode only changes build speed: vmkiln uses cache=unsafe and syncs before power-off");
  b.notMapped("cdrom_interface", "vmkiln attaches the ISO as an IDE/SATA CD-ROM");
  b.notMapped("net_bridge", "vmkiln uses QEMU user networking");
  for (const k of ["vnc_bind_address", "vnc_port_min", "vnc_port_max", "vnc_use_password", "vnc_password"]) b.notMapped(k, "vmkiln types keys through QMP and opens no VNC server");
  for (const k of ["qmp_enable", "qmp_socket_path"]) b.notMapped(k, "vmkiln opens its own QMP socket");
  b.same("display", "vmkiln runs headless unless drivers.qemu.headless: false");
  b.notMapped("skip_nat_mapping", "vmkiln always forwards SSH from 127.0.0.1");
  const min = b.text("host_port_min") ?? b.text("ssh_host_port_min");
  const max = b.text("host_port_max") ?? b.text("ssh_host_port_max");
  if (min !== undefined && min === max) driver.ssh_host_port = numOrText(min);
  else if (min !== undefined || max !== undefined) r.note(b.at("host_port_min"), "vmkiln forwards SSH from a free port it picks");

  // Output: qcow2 or raw, compressed or not.
  const format = b.text("format");
  const fmt = format === undefined ? "qcow2" : valueOf(ctx, format);
  const output = mapOutput(ctx, /\.(qcow2|img|raw)$/);
  if (fmt === "qcow2" || fmt === "raw") output.formats = [fmt];
  else r.notMapped(b.at("format"), `vmkiln writes qcow2 or raw from QEMU, not ${fmt}`);
  const compress = decide(ctx, b, "disk_compression");
  if (fmt === "qcow2") output.compression = compress === true ? "zlib" : "none";
  b.same("skip_compaction", "vmkiln always writes a fresh image (no separate compaction pass)");

  mapCommon(ctx, doc, isImage);
  doc.output = output;
  commonNotMapped(ctx);
  return { driver: "qemu", driverBody: driver, doc };
}
