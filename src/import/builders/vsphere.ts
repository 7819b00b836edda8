// Packer's vsphere-iso and vsphere-clone builders (hashicorp/packer-plugin-vsphere
// builder/vsphere/iso/config.go, builder/vsphere/clone/config.go and builder/vsphere/common/:
// config_location.go, step_connect.go ConnectConfig, step_hardware.go HardwareConfig,
// storage_config.go, step_export.go ExportConfig, step_import_to_content_library.go) → drivers.vsphere.

import { valueOf, boolOf, decide, unset, mapChecksum, mapIsoLocation, mapOutput, mibSize, numOrText, commonNotMapped, mapCommon, type BuilderCtx, type BuilderResult, type Doc } from "./common.js";
import { Body } from "../report.js";
import { isObj } from "../values.js";

export function mapVsphere(ctx: BuilderCtx, kind: "iso" | "clone"): BuilderResult {
  const b = ctx.body;
  const r = ctx.report;
  const driver: Doc = {};
  const doc: Doc = {};
  const required: string[] = [];

  // Connection (ConnectConfig).
  const server = b.text("vcenter_server");
  if (server !== undefined) driver.url = /^https?:\/\//.test(valueOf(ctx, server)) ? server : `https://${server}`;
  else r.notMapped(b.path, "no vcenter_server");
  const user = b.text("username");
  if (!unset(ctx, "username", user)) driver.username = user;
  const pw = b.text("password");
  if (pw !== undefined) driver.password = pw;
  const insecure = boolOf(ctx, "insecure_connection");
  if (insecure !== undefined) driver.insecure = insecure;
  // Placement (LocationConfig).
  for (const k of ["datacenter", "cluster", "host", "resource_pool", "folder", "datastore"]) {
    const v = b.text(k);
    if (!unset(ctx, k, v)) driver[k] = v;
  }
  b.notMapped("set_host_for_datastore_uploads", "vmkiln uploads through vCenter");

  // Source.
  if (kind === "iso") {
    const where = mapIsoLocation(ctx);
    const checksum = mapChecksum(ctx);
    const paths = b.list("iso_paths");
    if (where) doc.source = { iso: { ...where, checksum } };
    if (paths && paths.length > 0) {
      const first = paths[0]!;
      const item = /^[^[\]/]+\/[^[\]]+$/.test(valueOf(ctx, first)) && !/\.iso$/i.test(valueOf(ctx, first).split("/")[0]!);
      if (!where && item) {
        doc.source = { iso: { content_library: first } };
        r.note(b.at("iso_paths"), `${first}: read as a content library item "Library/Item"`);
      } else r.notMapped(b.at("iso_paths"), `datastore ISO paths: vmkiln uploads the ISO itself (iso_url) or attaches a content library item; ${paths.join(", ")} not attached`);
    }
    if (!doc.source) {
      // A placeholder the user fills in at build time: the template still validates with -var.
      doc.source = { iso: { url: "${var.iso_url}", checksum: "${var.iso_checksum}" } };
      required.push("iso_url", "iso_checksum");
      r.note(`${b.path}.iso_paths`, "source.iso.url and checksum are new variables iso_url and iso_checksum: pass them with -var");
    }
  } else {
    const tpl = b.text("template");
    const linked = boolOf(ctx, "linked_clone");
    if (tpl !== undefined) doc.source = { clone: { template: tpl, ...(linked !== undefined ? { linked } : {}) } };
    else r.notMapped(b.path, "no template to clone");
    for (const k of ["vapp", "customize", "mac_address", "instant_clone"]) b.notMapped(k, "vmkiln clones without guest customization or vApp options");
  }

  // Hardware.
  const cpus = b.text("CPUs") ?? b.text("cpus");
  if (cpus !== undefined) driver.cpus = numOrText(cpus);
  const ram = b.text("RAM") ?? b.text("memory");
  if (ram !== undefined) driver.memory = numOrText(ram);
  for (const k of ["cpu_cores", "CPU_reservation", "CPU_limit", "CPU_hot_plug", "RAM_reservation", "RAM_reserve_all", "RAM_hot_plug", "NestedHV", "video_ram", "displays", "vgpu_profile", "force_bios_setup", "vTPM", "precision_clock", "usb_controller", "boot_order", "configuration_parameters", "tools_sync_time", "tools_upgrade_policy", "notes", "vm_version", "disk_controller_type", "pci_passthrough_allowed_device"])
    b.notMapped(k, "vmkiln creates the VM with its own hardware settings (cpus, memory, disk, firmware, guest_os_type)");
  const fw = b.text("firmware");
  if (fw !== undefined) {
    const f = valueOf(ctx, fw);
    if (f === "bios" || f === "efi") driver.firmware = fw;
    else if (f === "efi-secure") {
      driver.firmware = "efi";
      r.notMapped(b.at("firmware"), "efi-secure: vmkiln boots EFI without Secure Boot");
    } else r.notMapped(b.at("firmware"), `vmkiln boots bios or efi, not ${f}`);
  }
  const os = b.text("guest_os_type");
  if (os !== undefined) driver.guest_os_type = os;

  // Disks: the first storage block (or the old disk_size) is the build disk.
  const storage = b.blocks("storage");
  const single = b.text("disk_size");
  if (single !== undefined) driver.disk_size = mibSize(ctx, "disk_size", single);
  storage.forEach((s, i) => {
    const sb = new Body(s, `${b.at("storage")}[${i}]`, r);
    if (i === 0 && single === undefined) {
      const size = mibSize({ ...ctx, body: sb }, "disk_size", sb.text("disk_size"));
      if (size !== undefined) driver.disk_size = size;
      const thin = decide(ctx, sb, "disk_thin_provisioned");
      if (thin === false) r.notMapped(sb.at("disk_thin_provisioned"), "vmkiln's disk is thin");
      sb.same("disk_controller_index");
      sb.notMapped("disk_eagerly_scrub", "vmkiln's disk is thin");
      sb.rest("not a disk setting vmkiln knows");
    } else r.notMapped(sb.path, "vmkiln builds one disk");
  });
  const thin = decide(ctx, b, "disk_thin_provisioned");
  if (thin === false) r.notMapped(b.at("disk_thin_provisioned"), "vmkiln's disk is thin");

  // Network: the first adapter's network.
  const net = b.text("network");
  if (!unset(ctx, "network", net)) driver.network = net;
  b.notMapped("network_card", "vmkiln picks the NIC type");
  b.blocks("network_adapters").forEach((a, i) => {
    const ab = new Body(a, `${b.at("network_adapters")}[${i}]`, r);
    if (i === 0) {
      const n = ab.text("network");
      if (!unset({ ...ctx, body: ab }, "network", n)) driver.network = n;
      ab.notMapped("network_card", "vmkiln picks the NIC type");
      ab.rest("not a network setting vmkiln knows");
    } else r.notMapped(ab.path, "vmkiln attaches one NIC");
  });

  // After the build.
  const toTemplate = decide(ctx, b, "convert_to_template");
  const exp = b.blocks("export");
  const lib = b.blocks("content_library_destination");
  const snapshot = decide(ctx, b, "create_snapshot");
  b.notMapped("snapshot_name", "vmkiln names the snapshot itself");
  const output = mapOutput(ctx, /\.(ovf|ova|vmx)$/);
  if (exp.length > 0) {
    driver.after = "export";
    const eb = new Body(exp[0]!, b.at("export"), r);
    const dir = eb.text("output_directory");
    if (dir !== undefined) output.directory = ctx.paths.map(dir, eb.at("output_directory"), r);
    const f = eb.text("format");
    output.formats = [f !== undefined && valueOf(ctx, f) === "ova" ? "ova" : "ovf"];
    const name = eb.text("name");
    if (name !== undefined) output.basename = name;
    eb.same("force", "vmkiln never replaces an output directory without vmkiln build --force");
    const manifest = eb.text("manifest");
    if (manifest !== undefined && !["sha256", "none"].includes(valueOf(ctx, manifest))) r.notMapped(eb.at("manifest"), "vmkiln's manifest is SHA256");
    eb.notMapped("images", "vmkiln exports no CD/floppy images with the VM");
    eb.notMapped("options", "vmkiln exports with its own options");
    eb.rest("not an export setting vmkiln knows");
    if (toTemplate === true) r.notMapped(b.at("convert_to_template"), "vmkiln exports and then deletes the VM; it cannot also keep it as a template");
  } else if (lib.length > 0) {
    const lb = new Body(lib[0]!, b.at("content_library_destination"), r);
    const ovf = decide(ctx, lb, "ovf");
    if (ovf === true) {
      driver.after = "library";
      const dest: Doc = {};
      const library = lb.text("library");
      if (library !== undefined) dest.library = library;
      const name = lb.text("name");
      if (name !== undefined) dest.name = name;
      const desc = lb.text("description");
      if (desc !== undefined) dest.description = desc;
      driver.library_destination = dest;
      lb.rest("vmkiln captures into a local library with library, name and description only");
    } else {
      r.notMapped(lb.path, "a VM template in a content library (ovf: false) is not supported: vmkiln captures OVF templates (ovf: true)");
      driver.after = toTemplate === true ? "template" : "none";
    }
    if (toTemplate === true && ovf === true) r.notMapped(b.at("convert_to_template"), "vmkiln captures the VM into the library and deletes it");
  } else if (toTemplate === true) driver.after = "template";
  else if (snapshot === true) driver.after = "snapshot";
  else driver.after = "none";
  if (driver.after !== "export") delete output.formats;
  if (snapshot === true && driver.after !== "snapshot") r.notMapped(b.at("create_snapshot"), `vmkiln's after: ${String(driver.after)} takes no snapshot`);

  const ipWait = b.text("ip_wait_timeout");
  if (ipWait !== undefined) driver.ip_wait_timeout = ipWait;
  b.notMapped("ip_settle_timeout", "vmkiln takes the first usable address");
  b.notMapped("ip_wait_address", "vmkiln skips link-local and non-VM interfaces itself");
  b.same("remove_cdrom", "vmkiln always ejects the installer ISO before the VM is kept or exported");
  b.same("eject_cdrom", "vmkiln always ejects the installer ISO");
  b.same("remove_network_adapter");
  if (b.values.remove_network_adapter === true) r.notMapped(b.at("remove_network_adapter"), "vmkiln keeps the NIC");
  b.same("reattach_cdroms");
  b.notMapped("cdrom_type", "vmkiln's CD-ROM is SATA/IDE");
  b.notMapped("floppy_img_path", "vmkiln uploads the floppy it makes (install_media)");
  b.notMapped("iso_url_only", "not a setting vmkiln knows");
  b.notMapped("destroy", "vmkiln deletes the VM per after:");
  const sshHost = b.text("ssh_host");
  if (sshHost !== undefined) driver.ssh_host = sshHost;
  b.notMapped("ovf_deploy_config", "not used");

  mapCommon(ctx, doc, kind === "clone", false);
  // Packer's HTTP server listens on every address by default; vmkiln's on 127.0.0.1, which a vSphere guest cannot reach.
  if (isObj(doc.http) && doc.http.bind_address === undefined) doc.http.bind_address = "0.0.0.0";
  if (Object.keys(output).length > 0) doc.output = output;
  commonNotMapped(ctx);
  return { driver: "vsphere", driverBody: driver, doc, required };
}
