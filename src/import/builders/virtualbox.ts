// Packer's virtualbox-iso and virtualbox-ovf builders (hashicorp/packer-plugin-virtualbox
// builder/virtualbox/iso/builder.go Config, builder/virtualbox/ovf/config.go Config, and the shared
// builder/virtualbox/common/*_config.go) → drivers.virtualbox.

import { valueOf, location, mapChecksum, mapHeadless, mapIsoLocation, mapOutput, mapShape, commonNotMapped, mapCommon, numOrText, type BuilderCtx, type BuilderResult, type Doc } from "./common.js";
import { asText } from "../values.js";

export function mapVirtualbox(ctx: BuilderCtx, kind: "iso" | "ovf"): BuilderResult {
  const b = ctx.body;
  const r = ctx.report;
  const driver: Doc = {};
  const doc: Doc = {};
  if (kind === "iso") {
    const where = mapIsoLocation(ctx);
    const checksum = mapChecksum(ctx);
    if (where) doc.source = { iso: { ...where, checksum } };
    else r.notMapped(b.path, "no iso_url: vmkiln needs the ISO to install from");
  } else {
    // vmkiln starts VirtualBox from a disk image, not from an appliance: the OVF/OVA's disk is the source.
    const src = b.text("source_path");
    b.text("checksum");
    if (src !== undefined) {
      const now = valueOf(ctx, src);
      const disk = now.replace(/\.(ovf|ova)$/i, "-disk001.vmdk");
      const loc = location(ctx, disk, b.at("source_path"));
      if (loc) doc.source = { cloud_image: { ...loc, checksum: "none", format: "vmdk" } };
      r.notMapped(b.at("source_path"), `${now} is an appliance; vmkiln boots its disk: ${disk} is assumed (VBoxManage export names it so; tar xf an OVA first) and checksum is not checked`);
    } else r.notMapped(b.path, "no source_path");
    b.notMapped("import_opts", "vmkiln attaches the disk to a new VM instead of importing the appliance");
    b.notMapped("import_flags", "vmkiln attaches the disk to a new VM instead of importing the appliance");
    b.notMapped("target_path", "vmkiln caches downloads by digest");
  }
  mapShape(ctx, driver);
  if (kind === "iso" && driver.disk_size === undefined) {
    driver.disk_size = "40000M";
    r.note(`${b.path}.disk_size`, "not set: Packer's default 40000 MB written out");
  }
  mapHeadless(ctx, driver);
  const os = b.text("guest_os_type");
  if (os !== undefined) driver.guest_os_type = os;
  const fw = b.text("firmware");
  if (fw !== undefined) {
    const f = valueOf(ctx, fw);
    if (f === "bios" || f === "efi") driver.firmware = fw;
    else r.notMapped(b.at("firmware"), `vmkiln boots bios or efi, not ${f}`);
  }
  const hdi = b.text("hard_drive_interface");
  if (hdi !== undefined) {
    const v = valueOf(ctx, hdi);
    if (v === "sata" || v === "virtio") driver.disk_controller = v;
    else r.notMapped(b.at("hard_drive_interface"), `vmkiln's VirtualBox disk controller is sata or virtio, not ${v}`);
  }
  const nic = b.text("nic_type");
  if (nic !== undefined) {
    const v = valueOf(ctx, nic);
    if (v === "82540EM" || v === "virtio") driver.nic_type = v;
    else r.notMapped(b.at("nic_type"), `vmkiln's NIC types are 82540EM and virtio, not ${v}`);
  }
  const gfx = b.text("gfx_controller");
  if (gfx !== undefined) {
    const v = valueOf(ctx, gfx);
    if (["vboxvga", "vmsvga", "vboxsvga", "none"].includes(v)) driver.graphics_controller = v;
    else r.notMapped(b.at("gfx_controller"), `not a graphics controller vmkiln sets: ${v}`);
  }
  const min = b.text("ssh_host_port_min") ?? b.text("host_port_min");
  const max = b.text("ssh_host_port_max") ?? b.text("host_port_max");
  if (min !== undefined && min === max) driver.ssh_host_port = numOrText(min);
  else if (min !== undefined || max !== undefined) r.note(b.at("ssh_host_port_min"), "vmkiln forwards SSH from a free port it picks");
  b.notMapped("ssh_skip_nat_mapping", "vmkiln always adds the SSH NAT rule");

  // Settings Packer applies with modifyvm: written as the same VBoxManage commands.
  const vbox: string[][] = [];
  const modify = (key: string, flag: string, value: (v: string) => string | undefined) => {
    const t = b.take(key);
    if (t === undefined || t === null) return;
    const v = value(valueOf(ctx, asText(t) ?? ""));
    if (v === undefined) r.notMapped(b.at(key), `unexpected value ${JSON.stringify(t)}`);
    else {
      vbox.push(["modifyvm", "{{.Name}}", flag, v]);
      r.note(b.at(key), `as vboxmanage modifyvm ${flag} ${v}`);
    }
  };
  const onoff = (v: string) => (v === "true" ? "on" : v === "false" ? "off" : undefined);
  modify("chipset", "--chipset", (v) => v);
  modify("audio_controller", "--audiocontroller", (v) => v);
  modify("nested_virt", "--nested-hw-virt", onoff);
  modify("rtc_time_base", "--rtcuseutc", (v) => (v === "UTC" ? "on" : v === "local" ? "off" : undefined));
  modify("usb", "--usb", onoff);
  modify("gfx_vram_size", "--vram", (v) => v);
  modify("gfx_accelerate_3d", "--accelerate3d", onoff);
  b.notMapped("gfx_efi_resolution", "vmkiln sets no EFI resolution");
  const list = (key: string) => {
    const v = b.take(key);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every(Array.isArray)) {
      r.notMapped(b.at(key), "expected a list of argument lists");
      return [];
    }
    return (v as unknown[][]).map((cmd) => cmd.map((x) => String(x)));
  };
  vbox.push(...list("vboxmanage"));
  if (vbox.length > 0) driver.vboxmanage = vbox;
  const post = list("vboxmanage_post");
  if (post.length > 0) r.notMapped(b.at("vboxmanage_post"), "vmkiln runs vboxmanage before the first boot only; nothing runs after shutdown");

  // Guest additions: vmkiln never uploads them; "disable" is what it does.
  const gam = b.text("guest_additions_mode");
  const gamNow = gam === undefined ? "upload" : valueOf(ctx, gam);
  if (gamNow !== "disable") r.notMapped(b.at("guest_additions_mode"), `${gam === undefined ? "Packer's default upload" : gamNow}: vmkiln does not upload or attach the VirtualBox Guest Additions; install them in a provisioner`);
  for (const k of ["guest_additions_path", "guest_additions_url", "guest_additions_sha256", "guest_additions_interface"]) b.notMapped(k, "vmkiln does not handle the Guest Additions");
  const vvf = b.text("virtualbox_version_file");
  if (vvf !== undefined && vvf !== "") r.notMapped(b.at("virtualbox_version_file"), "vmkiln uploads no .vbox_version file");
  b.notMapped("iso_interface", "vmkiln attaches the ISO on its own controller");
  b.notMapped("keep_registered", "vmkiln always unregisters and deletes its VM");
  b.notMapped("skip_export", "vmkiln always exports (output.formats)");
  for (const k of ["sata_port_count", "nvme_port_count", "hard_drive_discard", "hard_drive_nonrotational", "disk_additional_size", "bundle_iso", "cpu_hotplug", "usb_controller"])
    b.notMapped(k, "vmkiln sets up one disk on its own controller");
  b.notMapped("vrdp_bind_address", "vmkiln opens no VRDP server");
  b.notMapped("vrdp_port_min", "vmkiln opens no VRDP server");
  b.notMapped("vrdp_port_max", "vmkiln opens no VRDP server");
  b.notMapped("guest_os_type_id", "use guest_os_type");

  // Export: ovf or ova, export_opts.
  const format = b.text("format");
  const fmt = format === undefined ? "ovf" : valueOf(ctx, format);
  const output = mapOutput(ctx, /\.(ovf|ova)$/);
  if (fmt === "ovf" || fmt === "ova") output.formats = [fmt];
  else r.notMapped(b.at("format"), `vmkiln exports ovf, ova or vmdk from VirtualBox, not ${fmt}`);
  const opts = b.list("export_opts");
  if (opts) {
    const rest: string[] = [];
    for (const o of opts) {
      if (o === "--ovf10") driver.ovf_version = "1.0";
      else if (o === "--ovf20") driver.ovf_version = "2.0";
      else if (o === "--manifest") r.note(b.at("export_opts"), "--manifest: vmkiln's OVA always carries a SHA256 manifest");
      else rest.push(o);
    }
    if (rest.length > 0) r.notMapped(b.at("export_opts"), `${rest.join(" ")}: vmkiln exports with its own options (ovf_version only)`);
  }
  b.notMapped("export_opts_raw", "vmkiln exports with its own options");

  mapCommon(ctx, doc, kind === "ovf");
  doc.output = output;
  commonNotMapped(ctx);
  return { driver: "virtualbox", driverBody: driver, doc };
}
