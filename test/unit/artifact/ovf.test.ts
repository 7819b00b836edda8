import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { buildOvf, osTypeInfo, parseOvf, type OvfParams } from "../../../src/artifact/ovf.js";
import { checkOvfRules } from "../../../src/artifact/ovf-rules.js";

const base: OvfParams = {
  name: "k8s-node",
  cpus: 2,
  memoryMiB: 2048,
  firmware: "bios",
  osType: "debian12",
  disks: [{ fileName: "k8s-node-disk1.vmdk", fileSize: 123_456, capacityBytes: 20 * 1024 ** 3, populatedSize: 1_000_000 }],
};

describe("buildOvf", () => {
  it("produces a descriptor that parses and passes every rule", async () => {
    const xml = buildOvf(base);
    const ovf = await parseOvf(xml);
    expect(ovf.version).toBe("1.0");
    expect(checkOvfRules(ovf, { fileSizes: new Map([["k8s-node-disk1.vmdk", 123_456]]) })).toEqual([]);
    expect(ovf.files).toEqual([{ id: "file1", href: "k8s-node-disk1.vmdk", size: 123_456, sizeText: "123456" }]);
    expect(ovf.disks[0]).toMatchObject({ diskId: "vmdisk1", fileRef: "file1", capacity: String(20 * 1024 ** 3), capacityUnits: "byte", populatedSize: "1000000" });
    expect(ovf.disks[0]!.format).toMatch(/#streamOptimized$/);
    const vs = ovf.virtualSystems[0]!;
    expect(vs.systemTypes).toEqual(["vmx-13"]);
    expect(vs.osId).toBe("96");
    expect(vs.vmwOsType).toBe("debian10_64Guest");
    const byType = (t: number) => vs.items.filter((i) => i.resourceType === t);
    expect(byType(3)[0]!.virtualQuantity).toBe("2");
    expect(byType(4)[0]).toMatchObject({ allocationUnits: "byte * 2^20", virtualQuantity: "2048" });
    expect(byType(6)[0]!.resourceSubType).toBe("lsilogic");
    expect(byType(17)[0]).toMatchObject({ hostResources: ["ovf:/disk/vmdisk1"], parent: "3" });
    expect(byType(10)[0]!.resourceSubType).toBe("E1000");
    expect(xml).toContain('xmlns:vmw="http://www.vmware.com/schema/ovf"');
    expect(xml).toContain('<vbox:OSType ovf:required="false">Debian_64</vbox:OSType>');
    expect(xml).not.toContain("vbox:Machine");
    expect(xml).not.toContain("vmw:Config"); // BIOS: nothing VMware-specific in the hardware section
  });

  it("EFI adds an optional vmw:Config firmware key", async () => {
    const xml = buildOvf({ ...base, firmware: "efi", vmxVersion: 20, nic: false });
    expect(xml).toContain('<vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>');
    const ovf = await parseOvf(xml);
    expect(checkOvfRules(ovf)).toEqual([]);
    expect(ovf.virtualSystems[0]!.systemTypes).toEqual(["vmx-20"]);
    expect(ovf.virtualSystems[0]!.vmwOsType).toBe("debian12_64Guest");
    expect(ovf.virtualSystems[0]!.items.some((i) => i.resourceType === 10)).toBe(false);
    expect(xml).not.toContain("NetworkSection");
  });

  it("keeps rasd children in alphabetical order", async () => {
    const ovf = await parseOvf(buildOvf(base));
    for (const item of ovf.virtualSystems[0]!.items) expect(item.order).toEqual([...item.order].sort());
  });

  it("escapes names and handles several disks", async () => {
    const xml = buildOvf({
      ...base,
      name: "a<b>&c",
      disks: Array.from({ length: 9 }, (_, i) => ({ fileName: `d${i}.vmdk`, fileSize: 1, capacityBytes: 1024 ** 3 })),
    });
    const ovf = await parseOvf(xml);
    expect(ovf.virtualSystems[0]!.name).toBe("a<b>&c");
    const addresses = ovf.virtualSystems[0]!.items.filter((i) => i.resourceType === 17).map((i) => i.fields["AddressOnParent"]![0]);
    expect(addresses).not.toContain("7");
    expect(checkOvfRules(ovf)).toEqual([]);
  });

  it("maps OS types by hardware family and rejects unknown ones", () => {
    expect(osTypeInfo("debian12", 19).vmw).toBe("debian11_64Guest");
    expect(osTypeInfo("ubuntu", 13)).toMatchObject({ ovfId: 94, vmw: "ubuntu64Guest" });
    expect(() => buildOvf({ ...base, osType: "plan9" })).toThrow(UserError);
  });
});

describe("descriptor rules", () => {
  it.each([
    ["OVF_SYSTEM_TYPE", (x: string) => x.replace("vmx-13", "virtualbox-2.2")],
    ["OVF_MEMORY_UNITS", (x: string) => x.replace("byte * 2^20", "GigaBytes")],
    ["OVF_SCSI_SUBTYPE", (x: string) => x.replace(">lsilogic<", ">VirtualSCSI<")],
    ["OVF_RASD_ORDER", (x: string) => x.replace(/(<rasd:Description>Memory Size<\/rasd:Description>)(\s*)(<rasd:ElementName>[^<]*<\/rasd:ElementName>)/, "$3$2$1")],
    ["OVF_HOST_RESOURCE", (x: string) => x.replace("ovf:/disk/vmdisk1", "ovf:/disk/nope")],
    ["OVF_DISK_FILEREF", (x: string) => x.replace('ovf:fileRef="file1"', 'ovf:fileRef="file9"')],
    ["OVF_VMW_REQUIRED", (x: string) => x.replace('ovf:required="false" vmw:key', "vmw:key")],
    ["OVF_NAMESPACE_UNDECLARED", (x: string) => x.replace(' xmlns:vmw="http://www.vmware.com/schema/ovf"', "")],
  ])("flags %s", async (code, mutate) => {
    const xml = mutate(buildOvf({ ...base, firmware: "efi" }));
    let codes: string[];
    try {
      codes = checkOvfRules(await parseOvf(xml)).map((f) => f.code);
    } catch (err) {
      codes = [(err as UserError).code];
    }
    expect(codes).toContain(code);
  });
});
