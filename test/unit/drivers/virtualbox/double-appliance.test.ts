// The VBoxManage TEST DOUBLE's `export` and `import` (issue 13): the OVF VirtualBox's exporter writes
// (1.0 and 2.0, with vbox:Machine), and VirtualBox's OVF reader rules applied on import, version by
// version, to what vmkiln's QEMU driver writes and to VirtualBox's own exports. Nothing boots here
// (the imported OVA boots in test/integration/virtualbox.test.ts).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseVmInfo } from "../../../../drivers/virtualbox/machinereadable.js";
import { parseOvf } from "../../../../src/artifact/ovf.js";
import { qemuDriverOva } from "../../../helpers/qemu-ova.js";

const DOUBLE = fileURLToPath(new URL("../../../doubles/VBoxManage", import.meta.url));
const V70 = "7.0.20r163906";
const V61 = "6.1.50r161033";

describe("VBoxManage double: export and import", { timeout: 120_000 }, () => {
  let work: string;
  let ova: string;
  let ovfText: string;
  let n = 0;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "vmkiln-vbox-appliance-"));
    const disk = join(work, "src.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", disk, "64M"]);
    ova = await qemuDriverOva({ disk, dir: join(work, "qemu-ova"), name: "debian-12-node" });
    ovfText = execFileSync("tar", ["-xOf", ova, "debian-12-node.ovf"], { encoding: "utf8" });
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** A fresh registry per call unless `state` names one. */
  function vbox(version: string, args: string[], state = `s${++n}`) {
    const r = spawnSync(DOUBLE, args, { encoding: "utf8", cwd: work, env: { ...process.env, VBOXMANAGE_DOUBLE_STATE: join(work, state, "state.json"), VBOXMANAGE_DOUBLE_VERSION: version } });
    return { code: r.status, out: r.stdout, err: r.stderr, state };
  }
  const info = (version: string, state: string, vm: string) => parseVmInfo(vbox(version, ["showvminfo", vm, "--machinereadable"], state).out);

  /** The QEMU driver's OVF with `edit` applied, beside its disk, as a plain .ovf (no manifest). */
  function variant(name: string, edit: (xml: string) => string): string {
    const dir = join(work, `v-${name}`);
    mkdirSync(dir, { recursive: true });
    execFileSync("tar", ["-xf", ova, "-C", dir, "debian-12-node-disk1.vmdk"]);
    const f = join(dir, `${name}.ovf`);
    writeFileSync(f, edit(ovfText));
    return f;
  }

  describe("import of the OVA vmkiln's QEMU driver writes", () => {
    it("--dry-run prints what VBoxManage prints and registers nothing", () => {
      const r = vbox(V70, ["import", ova, "--dry-run"]);
      expect(r.code, r.err).toBe(0);
      expect(r.err).toContain(`Interpreting ${ova}...\nOK.\n`);
      const lines = r.out.split("\n");
      expect(lines[0]).toBe("Disks:");
      expect(lines[1]).toMatch(/^ {2}vmdisk1\t67108864\t-1\thttp:\/\/www\.vmware\.com\/interfaces\/specifications\/vmdk\.html#streamOptimized\tdebian-12-node-disk1\.vmdk\t\d+\t-1\t$/);
      expect(r.out).toContain('Virtual system 0:\n 0: Suggested OS type: "Debian_64"\n    (change with "--vsys 0 --ostype <type>"; use "list ostypes" to list all possible values)\n 1: Suggested VM name "debian-12-node"\n');
      expect(r.out).toContain(' 5: Number of CPUs: 2\n    (change with "--vsys 0 --cpus <n>")\n 6: Guest memory: 1024 MB\n');
      // "VM Network" is none of VirtualBox's attachment names: it becomes Bridged; E1000 from a non-VirtualBox OVF is the 82545EM (5).
      expect(r.out).toContain(" 7: Network adapter: orig VM Network, config 5, extra type=Bridged\n");
      expect(r.out).toContain(' 8: SCSI controller, type LsiLogic\n    (change with "--vsys 0 --unit 8 --scsitype {BusLogic|LsiLogic}";\n');
      expect(r.out).toMatch(/ 9: Hard disk image: source image=debian-12-node-disk1\.vmdk, target path=.*\/debian-12-node\/debian-12-node-disk1\.vmdk, controller=8;port=0\n/);
      expect(vbox(V70, ["list", "vms"], r.state).out).toBe("");
    });

    for (const version of [V61, V70]) {
      it(`imports on VirtualBox ${version.slice(0, 3)}: registered, disk converted into the machine folder, controller and adapter as VirtualBox sets them`, () => {
        const r = vbox(version, ["import", ova, "--vsys", "0", "--vmname", "imported", "--cpus", "1"]);
        expect(r.code, r.err).toBe(0);
        expect(r.out).toContain(" 1: VM name specified with --vmname: \"imported\"\n");
        expect(r.out.trim().split("\n").pop()).toBe("Successfully imported the appliance.");
        const vm = info(version, r.state, "imported");
        expect(vm).toMatchObject({ cpus: 1, memoryMiB: 1024, controllers: [{ name: "SCSI", type: "LsiLogic" }] });
        const disk = vm.attachments["SCSI-0-0"]!;
        expect(disk).toMatch(/\/imported\/debian-12-node-disk1\.vmdk$/);
        expect(JSON.parse(execFileSync("qemu-img", ["info", "--output=json", disk], { encoding: "utf8" }))).toMatchObject({ format: "vmdk", "virtual-size": 67108864 });
        expect(vm.raw.get("nic1")).toBe("bridged");
        expect(vm.raw.get("nictype1")).toBe("82545EM");
        const state = JSON.parse(readFileSync(join(work, r.state, "state.json"), "utf8"));
        expect(state.machines[0].nics[0].localhostReachable).toBe(version === V61);
      });
    }

    it("a second import of the same appliance gets a unique name", () => {
      const first = vbox(V70, ["import", ova]);
      expect(first.code, first.err).toBe(0);
      const again = vbox(V70, ["import", ova, "--dry-run"], first.state);
      expect(again.out).toContain(' 1: Suggested VM name "debian-12-node_1"\n');
    });

    it("a manifest that does not match fails the import with RTManifestEqualsEx's text", () => {
      const dir = join(work, "tampered");
      mkdirSync(dir);
      execFileSync("tar", ["-xf", ova, "-C", dir]);
      const mf = readFileSync(join(dir, "debian-12-node.mf"), "utf8").replace(/(debian-12-node-disk1\.vmdk\)= )([0-9a-f])/, (_, a, c) => a + (c === "0" ? "1" : "0"));
      writeFileSync(join(dir, "debian-12-node.mf"), mf);
      const r = vbox(V70, ["import", join(dir, "debian-12-node.ovf")]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^VBoxManage: error: Appliance import failed\nVBoxManage: error: Digest mismatch \(VERR_NOT_EQUAL\): Attribute 'SHA256' on 'debian-12-node-disk1\.vmdk' does not match \('[0-9a-f]{64}' vs\. '[0-9a-f]{64}'\)\n/m);
      expect(vbox(V70, ["list", "vms"], r.state).out).toBe("");
      // A manifest VirtualBox cannot parse is refused when read.
      writeFileSync(join(dir, "debian-12-node.mf"), "SHA256 debian-12-node.ovf = 00\n");
      expect(vbox(V70, ["import", join(dir, "debian-12-node.ovf")]).err).toContain("VBoxManage: error: Failed to parse manifest file 'debian-12-node.mf' for");
    });
  });

  describe("VirtualBox's OVF reader rules, per version (ovfreader.cpp)", () => {
    const readErr = (version: string, file: string) => vbox(version, ["import", file, "--dry-run"]);
    it("NVMe controllers (ResourceType 20) are read by 7.0 only", () => {
      const f = variant("nvme", (x) => x.replace("<rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>\n        <rasd:ResourceType>6</rasd:ResourceType>", "<rasd:ResourceSubType>NVMe</rasd:ResourceSubType>\n        <rasd:ResourceType>20</rasd:ResourceType>"));
      expect(readErr(V70, f).out).toContain(" 8: NVMe controller, type NVMe\n");
      const r = readErr(V61, f);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/VBoxManage: error: Appliance read failed\nVBoxManage: error: Error reading ".*nvme\.ovf": Host resource of type "Other Storage Device \(20\)" is supported with SATA AHCI controllers only, line \d+ \(subtype:NVMe\)\n/);
    });
    it("memory in GigaBytes is read by 7.0 only", () => {
      const f = variant("gb", (x) => x.replace("<rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>", "<rasd:AllocationUnits>GigaBytes</rasd:AllocationUnits>").replace("<rasd:VirtualQuantity>1024</rasd:VirtualQuantity>", "<rasd:VirtualQuantity>2</rasd:VirtualQuantity>"));
      expect(readErr(V70, f).out).toContain(" 6: Guest memory: 2048 MB\n");
      expect(readErr(V61, f).err).toMatch(/Invalid allocation unit "GigaBytes" specified with memory size item, line \d+/);
    });
    it("an unknown resource type fails unless the item says ovf:required=\"false\"", () => {
      const item = (req: string) => (x: string) => x.replace("    </VirtualHardwareSection>", `      <Item${req}>\n        <rasd:InstanceID>9</rasd:InstanceID>\n        <rasd:ResourceType>24</rasd:ResourceType>\n      </Item>\n    </VirtualHardwareSection>`);
      expect(readErr(V70, variant("video", item(""))).err).toMatch(/Unknown resource type 24 in hardware item, line \d+/);
      expect(readErr(V70, variant("video-opt", item(' ovf:required="false"'))).code).toBe(0);
    });
    it("a disk item must name a known controller and disk; a Disk needs its attributes", () => {
      expect(readErr(V70, variant("parent", (x) => x.replace("<rasd:Parent>3</rasd:Parent>", "<rasd:Parent>42</rasd:Parent>"))).err).toMatch(/Disk item with instance ID "4" specifies invalid parent "42", line \d+/);
      expect(readErr(V61, variant("parent61", (x) => x.replace("<rasd:Parent>3</rasd:Parent>", "<rasd:Parent>42</rasd:Parent>"))).err).toMatch(/Disk item with instance ID 4 specifies invalid parent 42, line \d+/);
      expect(readErr(V70, variant("hostres", (x) => x.replace("ovf:/disk/vmdisk1", "ovf:/disk/nope"))).err).toMatch(/specifies invalid host resource "ovf:\/disk\/nope"/);
      expect(readErr(V70, variant("capacity", (x) => x.replace(/ ovf:capacity="\d+"/, ""))).err).toMatch(/missing or invalid attribute 'capacity' in 'DiskSection' element, line \d+/);
      expect(readErr(V70, variant("instanceid", (x) => x.replace("<rasd:InstanceID>3</rasd:InstanceID>", ""))).err).toMatch(/Element InstanceID is absent under Item element/);
    });
    it("the appliance file, the descriptor's root and the command line are checked as VBoxManage checks them", () => {
      const txt = join(work, "appliance.txt");
      writeFileSync(txt, "x");
      expect(vbox(V70, ["import", txt]).err).toContain("VBoxManage: error: Appliance file must have .ovf or .ova extension\n");
      const noOvf = join(work, "empty.ova");
      writeFileSync(join(work, "readme"), "no descriptor here");
      execFileSync("tar", ["-cf", noOvf, "-C", work, "readme"]);
      expect(vbox(V70, ["import", noOvf]).err).toContain(`VBoxManage: error: OVA '${noOvf}' does not contain an .ovf-file\n`);
      expect(readErr(V70, variant("root", (x) => x.replace(/<Envelope /, "<Wrapper ").replace("</Envelope>", "</Wrapper>"))).err).toContain("Root element in OVF file must be 'Envelope'.");
      expect(vbox(V70, ["import"])).toMatchObject({ code: 2, err: 'VBoxManage: error: Not enough arguments for "import" command.\n' });
      expect(vbox(V70, ["import", ova, "--vmname", "x"]).err).toBe('VBoxManage: error: Option "--vmname" requires preceding --vsys or --cloud option.\n');
      expect(vbox(V70, ["import", ova, "--vsys", "0", "--ignore"]).err).toBe('VBoxManage: error: Option "--ignore" requires preceding --unit option.\n');
      expect(vbox(V70, ["import", ova, "--vsys", "1", "--vmname", "x", "--dry-run"]).err).toContain("VBoxManage: error: Invalid index 1 with -vsys option; the OVF contains only 1 virtual system(s).");
      expect(vbox(V70, ["import", ova, "--bogus"]).err).toBe("VBoxManage: error: unknown option: --bogus\nVBoxManage: error: \n");
    });
  });

  describe("export, as VirtualBox's exporter writes it", () => {
    function machine(version: string): string {
      const s = `exp-${version.slice(0, 3)}-${++n}`;
      const disk = join(work, `${s}.vdi`);
      execFileSync("qemu-img", ["create", "-q", "-f", "vdi", disk, "32M"]);
      for (const args of [
        ["createvm", "--name", "exp", "--ostype", "Debian_64", "--register", "--basefolder", join(work, s)],
        ["modifyvm", "exp", "--memory", "512", "--cpus", "2", "--nictype1", "virtio", "--natpf1", "ssh,tcp,127.0.0.1,2222,,22", "--audio", "none"],
        ["storagectl", "exp", "--name", "VirtIO", "--add", "virtio", "--portcount", "1"],
        ["storageattach", "exp", "--storagectl", "VirtIO", "--port", "0", "--device", "0", "--type", "hdd", "--medium", disk, "--nonrotational", "on"],
        ["storagectl", "exp", "--name", "IDE", "--add", "ide"],
      ]) {
        const r = vbox(version, args, s);
        expect(r.code, r.err).toBe(0);
      }
      return s;
    }

    it("OVF 1.0: rasd Items with ElementName, a SHA1 manifest, vbox:Machine, a virtio adapter without ResourceSubType", async () => {
      const s = machine(V70);
      const out = join(work, "e10", "exp.ovf");
      const r = vbox(V70, ["export", "exp", "-o", out, "--ovf10", "--manifest", "--vsys", "0", "--vmname", "exported"], s);
      expect([r.code, r.out], r.err).toEqual([0, "Successfully exported 1 machine(s).\n"]);
      const xml = readFileSync(out, "utf8");
      const ovf = await parseOvf(xml);
      expect(ovf.version).toBe("1.0");
      expect(xml).toContain('<VirtualSystem ovf:id="exported">');
      expect(xml).toContain("<vssd:VirtualSystemType>virtualbox-2.2</vssd:VirtualSystemType>");
      expect(xml).toContain("<rasd:ElementName>virtioSCSIController0</rasd:ElementName>");
      expect(xml).toMatch(/<Item>\n {8}<rasd:AutomaticAllocation>true<\/rasd:AutomaticAllocation>\n {8}<rasd:Caption>Ethernet adapter on 'NAT'<\/rasd:Caption>\n {8}<rasd:Connection>NAT<\/rasd:Connection>\n {8}<rasd:ElementName>Ethernet adapter on 'NAT'<\/rasd:ElementName>\n {8}<rasd:InstanceID>\d+<\/rasd:InstanceID>\n {8}<rasd:ResourceType>10<\/rasd:ResourceType>\n {6}<\/Item>/);
      expect(xml).toMatch(/<Disk ovf:capacity="33554432" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http:\/\/www\.vmware\.com\/interfaces\/specifications\/vmdk\.html#streamOptimized" vbox:uuid="[0-9a-f-]{36}"\/>/);
      expect(xml).toMatch(/<vbox:Machine ovf:required="false" version="1\.19-linux" uuid="\{[0-9a-f-]{36}\}" name="exported" OSType="Debian_64"/);
      const mf = readFileSync(join(work, "e10", "exp.mf"), "utf8");
      expect(mf).toMatch(/^SHA1 \(exp\.ovf\) = [0-9a-f]{40}\nSHA1 \(exp-disk001\.vmdk\) = [0-9a-f]{40}\n$/);
      expect(JSON.parse(execFileSync("qemu-img", ["info", "--output=json", join(work, "e10", "exp-disk001.vmdk")], { encoding: "utf8" }))["format-specific"].data["create-type"]).toBe("streamOptimized");
    });

    it("OVF 2.0: StorageItem/EthernetPortItem without ElementName, SHA256, and the exported disk's new UUID in vbox:Machine", () => {
      const s = machine(V70);
      const out = join(work, "e20", "exp.ovf");
      expect(vbox(V70, ["export", "exp", "--output", out, "--ovf20", "--options", "manifest,nomacs"], s).code).toBe(0);
      const xml = readFileSync(out, "utf8");
      expect(xml).toContain('xmlns="http://schemas.dmtf.org/ovf/envelope/2"');
      expect(xml).toContain("<sasd:HostResource>/disk/vmdisk1</sasd:HostResource>");
      expect(xml).toContain("<epasd:Connection>NAT</epasd:Connection>");
      expect(xml).not.toContain("ElementName>virtio");
      const diskUuid = /vbox:uuid="([0-9a-f-]{36})"/.exec(xml)![1];
      expect(xml).toContain(`<Image uuid="{${diskUuid}}"/>`);
      expect(xml).not.toContain("MACAddress="); // --options nomacs
      expect(readFileSync(join(work, "e20", "exp.mf"), "utf8")).toMatch(/^SHA256 \(exp\.ovf\) = [0-9a-f]{64}\n/);
    });

    it("round trip: VirtualBox 7 re-imports its export from vbox:Machine (controller names, adapter, NAT rules)", () => {
      const s = machine(V70);
      const out = join(work, "rt", "exp.ova");
      expect(vbox(V70, ["export", "exp", "-o", out, "--ovf20"], s).code).toBe(0);
      expect(execFileSync("tar", ["-tf", out], { encoding: "utf8" })).toBe("exp.ovf\nexp-disk001.vmdk\n");
      const r = vbox(V70, ["import", out, "--vsys", "0", "--vmname", "back"], s);
      expect(r.code, r.err).toBe(0);
      const vm = info(V70, s, "back");
      expect(vm.controllers).toEqual([{ name: "VirtIO", type: "VirtioSCSI" }, { name: "IDE", type: "PIIX4" }]);
      expect(vm.raw.get("nictype1")).toBe("virtio");
      expect(vm.forwarding).toEqual([{ name: "ssh", proto: "tcp", hostIp: "127.0.0.1", hostPort: 2222, guestIp: "", guestPort: 22 }]);
      expect(vm.raw.get('VirtIO-nonrotational-0-0')).toBe("on");
      expect(existsSync(vm.attachments["VirtIO-0-0"]!)).toBe(true);
    });

    it("checks the command line as handleExportAppliance does", () => {
      const s = machine(V61);
      expect(vbox(V61, ["export", "exp"], s).err).toBe("VBoxManage: error: Missing --output argument with export command.\n");
      expect(vbox(V61, ["export", "-o", "x.ovf"], s).err).toBe("VBoxManage: error: At least one machine must be specified with the export command.\n");
      expect(vbox(V61, ["export", "exp", "-o", "x.ovf", "--vmname", "y"], s).err).toBe('VBoxManage: error: Option "--vmname" requires preceding --vsys or --cloud option.\n');
      expect(vbox(V61, ["export", "exp", "-o", "x.ovf", "--options", "sparse"], s)).toMatchObject({ code: 2, err: "VBoxManage: error: Invalid export options 'sparse'\nVBoxManage: error: \n" });
      expect(vbox(V61, ["export", "exp", "-o", "x.txt"], s).err).toMatch(/^VBoxManage: error: Appliance file must have \.ovf or \.ova extension\n/);
    });
  });
});
