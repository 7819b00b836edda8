// Issue 15 "honest output": every Packer field vmkiln cannot map is named in the report (with why),
// never dropped. Each row feeds one such field into an otherwise mappable template and checks the
// report names it; a field nobody has heard of is reported too.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importPacker } from "../../../src/import/index.js";

const SHA = "sha256:" + "ab".repeat(32);
const BASE: Record<string, Record<string, unknown>> = {
  qemu: { type: "qemu", iso_url: "https://example.invalid/a.iso", iso_checksum: SHA, ssh_username: "u", disk_size: "10G" },
  "virtualbox-iso": { type: "virtualbox-iso", iso_url: "https://example.invalid/a.iso", iso_checksum: SHA, ssh_username: "u", guest_additions_mode: "disable" },
  "virtualbox-ovf": { type: "virtualbox-ovf", source_path: "https://example.invalid/a.ova", ssh_username: "u", guest_additions_mode: "disable" },
  "vsphere-iso": { type: "vsphere-iso", vcenter_server: "vc.example.invalid", iso_url: "https://example.invalid/a.iso", iso_checksum: SHA, ssh_username: "u", disk_size: 10240 },
  "vsphere-clone": { type: "vsphere-clone", vcenter_server: "vc.example.invalid", template: "base", ssh_username: "u" },
};

/** [builder, field, value]: each must come back as "not mapped: builders[0].<field>". */
const BUILDER_FIELDS: Array<[string, string, unknown]> = [
  // every builder
  ...Object.keys(BASE).flatMap((b): Array<[string, string, unknown]> => [
    [b, "communicator", "winrm"],
    [b, "winrm_username", "vagrant"],
    [b, "ssh_bastion_host", "jump.example.invalid"],
    [b, "ssh_proxy_host", "proxy.example.invalid"],
    [b, "ssh_agent_auth", true],
    [b, "ssh_keypair_name", "k"],
    [b, "ssh_clear_authorized_keys", true],
    [b, "ssh_keep_alive_interval", "5s"],
    [b, "iso_target_path", "/var/isos"],
    [b, "floppy_dirs", ["d"]],
    [b, "boot_keygroup_interval", "1s"],
    [b, "http_interface", "eth0"],
    [b, "post_shutdown_delay", "1m"],
    [b, "pause_before_connecting", "1m"],
    [b, "a_field_from_the_future", 1],
  ]),
  ["qemu", "accelerator", "hvf"],
  ["qemu", "firmware", "/opt/custom-firmware.bin"],
  ["qemu", "efi_firmware_code", "/usr/share/OVMF/OVMF_CODE.fd"],
  ["qemu", "vtpm", true],
  ["qemu", "qemuargs", [["-netdev", "user,id=n1"]]],
  ["qemu", "qemu_img_args", { convert: ["-o", "preallocation=full"] }],
  ["qemu", "net_device", "e1000"],
  ["qemu", "disk_interface", "ide"],
  ["qemu", "cdrom_interface", "ide"],
  ["qemu", "vnc_port_min", 5900],
  ["qemu", "format", "vmdk"],
  ["qemu", "disk_additional_size", ["1G"]],
  ["qemu", "skip_resize_disk", true],
  ["qemu", "net_bridge", "br0"],
  ["qemu", "sockets", 2],
  ["qemu", "iso_checksum", "md5:0123456789abcdef0123456789abcdef"],
  ["qemu", "iso_urls", ["https://example.invalid/b.iso"]],
  ["virtualbox-iso", "guest_additions_mode", "upload"],
  ["virtualbox-iso", "guest_additions_path", "VBoxGuestAdditions.iso"],
  ["virtualbox-iso", "guest_additions_url", "https://example.invalid/ga.iso"],
  ["virtualbox-iso", "guest_additions_sha256", "ab"],
  ["virtualbox-iso", "virtualbox_version_file", ".vbox_version"],
  ["virtualbox-iso", "vboxmanage_post", [["modifyvm", "{{.Name}}", "--memory", "512"]]],
  ["virtualbox-iso", "hard_drive_interface", "ide"],
  ["virtualbox-iso", "nic_type", "Am79C973"],
  ["virtualbox-iso", "keep_registered", true],
  ["virtualbox-iso", "skip_export", true],
  ["virtualbox-iso", "export_opts", ["--vsys", "0", "--product", "x"]],
  ["virtualbox-iso", "format", "vmx"],
  ["virtualbox-iso", "firmware", "efi64"],
  ["virtualbox-iso", "iso_interface", "sata"],
  ["virtualbox-ovf", "source_path", "https://example.invalid/b.ova"],
  ["virtualbox-ovf", "import_opts", "keepallmacs"],
  ["virtualbox-ovf", "import_flags", ["--eula", "accept"]],
  ["vsphere-iso", "iso_paths", ["[datastore1] iso/a.iso"]],
  ["vsphere-iso", "disk_controller_type", ["pvscsi"]],
  ["vsphere-iso", "cpu_cores", 2],
  ["vsphere-iso", "notes", "built by packer"],
  ["vsphere-iso", "firmware", "efi-secure"],
  ["vsphere-iso", "remove_network_adapter", true],
  ["vsphere-iso", "ip_settle_timeout", "5s"],
  ["vsphere-iso", "configuration_parameters", { "disk.EnableUUID": "TRUE" }],
  ["vsphere-iso", "vm_version", 19],
  ["vsphere-iso", "set_host_for_datastore_uploads", true],
  ["vsphere-iso", "disk_thin_provisioned", false],
  ["vsphere-iso", "storage", [{ disk_size: 10240 }, { disk_size: 2048 }]],
  ["vsphere-iso", "network_adapters", [{ network: "a" }, { network: "b" }]],
  ["vsphere-iso", "content_library_destination", { library: "lib", ovf: false }],
  ["vsphere-clone", "customize", { linux_options: { host_name: "x" } }],
  ["vsphere-clone", "vapp", { properties: { hostname: "x" } }],
  ["vsphere-clone", "instant_clone", true],
];

/** [provisioner or post-processor, expected path prefix]. */
const BLOCKS: Array<[string, Record<string, unknown>, string]> = [
  ["provisioners", { type: "powershell", inline: ["Get-Date"] }, "provisioners[0]"],
  ["provisioners", { type: "windows-restart" }, "provisioners[0]"],
  ["provisioners", { type: "chef-solo", cookbook_paths: ["c"] }, "provisioners[0]"],
  ["provisioners", { type: "shell", inline: ["true"], execute_command: "cmd /c {{ .Path }}" }, "provisioners[0].execute_command"],
  ["provisioners", { type: "shell", inline: ["true"], remote_folder: "/var/tmp" }, "provisioners[0].remote_folder"],
  ["provisioners", { type: "shell", inline: ["true"], valid_exit_codes: [0, 2] }, "provisioners[0].valid_exit_codes"],
  ["provisioners", { type: "shell", inline: ["true"], inline_shebang: "/usr/bin/env python3" }, "provisioners[0].inline_shebang"],
  ["provisioners", { type: "file", content: "hello", destination: "/tmp/x" }, "provisioners[0].content"],
  ["provisioners", { type: "file", source: "a", destination: "/tmp/a", generated: true }, "provisioners[0].generated"],
  ["provisioners", { type: "ansible", playbook_file: "p.yml", galaxy_file: "r.yml" }, "provisioners[0].galaxy_file"],
  ["provisioners", { type: "ansible", playbook_file: "p.yml", user: "someone-else" }, "provisioners[0].user"],
  ["provisioners", { type: "ansible", playbook_file: "p.yml", inventory_file: "hosts" }, "provisioners[0].inventory_file"],
  ["provisioners", { type: "ansible-local", playbook_file: "p.yml", inventory_groups: "web" }, "provisioners[0].inventory_groups"],
  ["provisioners", { type: "ansible-local", playbook_file: "p.yml", role_paths: ["roles/x"] }, "provisioners[0].role_paths"],
  ["provisioners", { type: "shell-local", inline: ["true"], only_on: ["linux"] }, "provisioners[0].only_on"],
  ["provisioners", { type: "shell-local", inline: ["true"], execute_command: ["/bin/zsh", "-c", "{{.Vars}} {{.Script}}"] }, "provisioners[0].execute_command"],
  ["post-processors", { type: "vagrant" }, "post-processors[0]"],
  ["post-processors", { type: "compress", output: "a.tar.gz" }, "post-processors[0]"],
  ["post-processors", { type: "checksum", checksum_types: ["md5"] }, "post-processors[0].checksum_types"],
  ["post-processors", { type: "manifest", custom_data: { a: "b" } }, "post-processors[0].custom_data"],
  ["post-processors", { type: "shell-local", inline: ["./upload.sh"] }, "post-processors[0]"],
];

const HCL: Array<[string, string, string]> = [
  ["a data source", 'data "http" "x" { url = "https://example.invalid" }', "data.http.x"],
  ["an unknown function", 'locals { x = 1 }', "source.qemu.a.vm_name"],
  ["a template directive", "", "source.qemu.a.boot_command"],
  ["a for expression", "", "source.qemu.a.qemuargs"],
  ["a variable validation", 'variable "v" {\n  default = "a"\n  validation {\n    condition = var.v != ""\n    error_message = "x"\n  }\n}', "variable.v.validation"],
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "vmkiln-unmapped-"));
  for (const f of ["p.yml", "r.yml", "a"]) await writeFile(path.join(dir, f), "x\n");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function importJson(doc: object) {
  const file = path.join(dir, `t${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify(doc, null, 2));
  return importPacker(file, { output: path.join(dir, "out.yaml"), cwd: dir });
}

const unmappedPaths = (r: Awaited<ReturnType<typeof importJson>>) => r.findings.filter((f) => f.kind === "not-mapped").map((f) => f.path);

describe("every unmapped field is reported", () => {
  for (const [builder, field, value] of BUILDER_FIELDS) {
    it(`${builder}: ${field}`, async () => {
      const r = await importJson({ builders: [{ ...BASE[builder], [field]: value }] });
      const paths = unmappedPaths(r);
      expect(paths.some((p) => p === `builders[0].${field}` || p.startsWith(`builders[0].${field}.`) || p.startsWith(`builders[0].${field}[`)), paths.join("\n")).toBe(true);
      // …and the written YAML's header lists it.
      expect(r.files[0]!.yaml).toContain(`#   - builders[0].${field}`);
    });
  }

  it("the bases map with nothing unmapped (so each row above is the field's own finding)", async () => {
    for (const b of Object.values(BASE)) {
      const r = await importJson({ builders: [b] });
      const paths = unmappedPaths(r).filter((p) => !(b.type === "virtualbox-ovf" && p === "builders[0].source_path"));
      expect(paths, String(b.type)).toEqual([]);
    }
  });

  for (const [key, block, expected] of BLOCKS) {
    it(`${key}: ${String(block.type)} ${Object.keys(block).filter((k) => k !== "type").join(", ")}`, async () => {
      const r = await importJson({ builders: [BASE.qemu], [key]: [block] });
      expect(unmappedPaths(r), unmappedPaths(r).join("\n")).toContain(expected);
    });
  }

  for (const [what, extra, expected] of HCL) {
    it(`HCL2: ${what}`, async () => {
      const file = path.join(dir, `t${Math.random().toString(36).slice(2)}.pkr.hcl`);
      const vmName = what === "an unknown function" ? 'vm_name = bcrypt("x")' : 'vm_name = "a"';
      const boot = what === "a template directive" ? 'boot_command = ["%{ if true }x%{ endif }"]' : "";
      const qa = what === "a for expression" ? 'qemuargs = [for a in ["-cpu"] : [a, "max"]]' : "";
      await writeFile(file, `${extra}\nsource "qemu" "a" {\n  iso_url = "https://example.invalid/a.iso"\n  iso_checksum = "${SHA}"\n  ssh_username = "u"\n  disk_size = "10G"\n  ${vmName}\n  ${boot}\n  ${qa}\n}\nbuild {\n  sources = ["source.qemu.a"]\n}\n`);
      const r = await importPacker(file, { output: path.join(dir, "out.yaml"), cwd: dir });
      expect(unmappedPaths(r), unmappedPaths(r).join("\n")).toContain(expected);
    });
  }
});
