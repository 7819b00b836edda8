// The ReconfigVM_Task specs built from devices read back (config.hardware.device): disk growth for
// drivers.vsphere.disk_size, and what happens to the build's installer media before export / keep.
import { describe, expect, it } from "vitest";
import { UserError } from "../../../../src/errors.js";
import { MoRef, asSoapValue, parseXml, toXml, type SoapObject, type XNode } from "../../../../drivers/vsphere/soap.js";
import { EMPTY_CDROM_BACKING, cloneReconfigSpec, detachMediaSpec, diskCapacityBytes, growFirstDisk } from "../../../../drivers/vsphere/vm-config.js";

const ISO = "[ds1] vmkiln-cache/ab12.iso";
const FLOPPY = "[ds1] vmkiln-tmp/b1/install.flp";
const MEDIA_CD = "[ds1] vmkiln-tmp/b1/install.iso";

const info = (label: string) => `<deviceInfo><label>${label}</label><summary>${label}</summary></deviceInfo>`;
const connectable = "<connectable><startConnected>true</startConnected><allowGuestControl>true</allowGuestControl><connected>true</connected><status>ok</status></connectable>";
const cdrom = (key: number, unit: number, file: string, conn = connectable) =>
  `<VirtualDevice xsi:type="VirtualCdrom"><key>${key}</key>${info(`CD/DVD drive ${unit + 1}`)}<backing xsi:type="VirtualCdromIsoBackingInfo"><fileName>${file}</fileName><datastore type="Datastore">datastore-11</datastore></backing>${conn}<controllerKey>200</controllerKey><unitNumber>${unit}</unitNumber></VirtualDevice>`;
const floppy = `<VirtualDevice xsi:type="VirtualFloppy"><key>8000</key>${info("Floppy drive 1")}<backing xsi:type="VirtualFloppyImageBackingInfo"><fileName>${FLOPPY}</fileName></backing>${connectable}<controllerKey>400</controllerKey><unitNumber>0</unitNumber></VirtualDevice>`;
const nic = `<VirtualDevice xsi:type="VirtualVmxnet3"><key>4000</key>${info("Network adapter 1")}<backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>VM Network</deviceName><network type="Network">network-7</network></backing>${connectable}<controllerKey>100</controllerKey><unitNumber>7</unitNumber><addressType>generated</addressType><macAddress>00:50:56:aa:bb:cc</macAddress></VirtualDevice>`;
/** A disk as vCenter reports it (capacityInBytes since 5.5), or as vcsim does (capacityInKB only). */
const disk = (key: number, kb: number, o: { bytes?: boolean; file?: string } = {}) =>
  `<VirtualDevice xsi:type="VirtualDisk"><key>${key}</key>${info(`Hard disk ${key - 1999}`)}<backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>${o.file ?? "[ds1] vm/vm.vmdk"}</fileName><datastore type="Datastore">datastore-11</datastore><diskMode>persistent</diskMode><thinProvisioned>true</thinProvisioned></backing><controllerKey>1000</controllerKey><unitNumber>${key - 2000}</unitNumber><capacityInKB>${kb}</capacityInKB>${o.bytes === false ? "" : `<capacityInBytes>${kb * 1024}</capacityInBytes>`}<shares><shares>1000</shares><level>normal</level></shares><storageIOAllocation><limit>-1</limit></storageIOAllocation></VirtualDevice>`;

async function devices(...xml: string[]): Promise<XNode[]> {
  const val = await parseXml(`<val xmlns="urn:vim25" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ArrayOfVirtualDevice">${xml.join("")}</val>`);
  return val.children;
}
const GiB = 2 ** 30;

describe("a device read back, sent back (asSoapValue)", () => {
  it("keeps xsi:types, field order, references and repeated fields: the XML round-trips", async () => {
    const controller = '<VirtualDevice xsi:type="VirtualIDEController"><key>200</key><busNumber>0</busNumber><device>3000</device><device>3001</device></VirtualDevice>';
    for (const xml of [cdrom(3000, 0, ISO), nic, disk(2000, 1024), controller]) {
      const [d] = await devices(xml);
      expect(toXml("VirtualDevice", asSoapValue(d!))).toBe(xml);
    }
  });

  it("references become MoRefs, typed simple values keep xsd: types", async () => {
    const [d] = await devices(cdrom(3000, 0, ISO));
    expect((asSoapValue(d!) as SoapObject).backing).toEqual({ $type: "VirtualCdromIsoBackingInfo", fileName: ISO, datastore: new MoRef("Datastore", "datastore-11") });
    const [v] = (await parseXml('<x xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><value xsi:type="xsd:int">5</value></x>')).children;
    expect(asSoapValue(v!)).toEqual({ $type: "xsd:int", _: "5" });
  });
});

describe("drivers.vsphere.disk_size on a clone (growFirstDisk)", () => {
  it.each([
    // [what, devices, disk_size, capacityInKB, capacityInBytes]
    ["vCenter's disk, 10 GiB → 20G", [disk(2000, 10 * 1024 * 1024)], 20 * GiB, 20 * 1024 * 1024, 20 * GiB],
    ["vcsim's disk (capacityInKB only), 1 MiB → 2G", [disk(2000, 1024, { bytes: false })], 2 * GiB, 2 * 1024 * 1024, 2 * GiB],
    ["a size that is not whole KiB rounds up", [disk(2000, 1024)], 2 * GiB + 1, 2 * 1024 * 1024 + 1, 2 * GiB + 1024],
    ["only the first disk of two", [disk(2000, 1024), disk(2001, 4096, { file: "[ds1] vm/vm_1.vmdk" })], 8 * GiB, 8 * 1024 * 1024, 8 * GiB],
  ])("%s", async (_what, xml, want, kb, bytes) => {
    const g = growFirstDisk(await devices(cdrom(3000, 0, ISO), nic, ...xml), want, "base");
    expect(g.toBytes).toBe(bytes);
    // The device as read, with both capacities (in WSDL order: capacityInKB, capacityInBytes, shares…).
    expect(g.device).toEqual({ ...(asSoapValue((await devices(xml[0]!))[0]!) as SoapObject), capacityInKB: kb, capacityInBytes: bytes });
    expect(Object.keys(g.device!)).toEqual(["$type", "key", "deviceInfo", "backing", "controllerKey", "unitNumber", "capacityInKB", "capacityInBytes", "shares", "storageIOAllocation"]);
    expect(g.device!.key).toBe("2000");
  });

  it("reads capacityInBytes, else capacityInKB", async () => {
    expect((await devices(disk(2000, 1024), disk(2000, 2048, { bytes: false }))).map(diskCapacityBytes)).toEqual([1024 * 1024, 2048 * 1024]);
  });

  it("the same size changes nothing", async () => {
    const g = growFirstDisk(await devices(disk(2000, 2 * 1024 * 1024)), 2 * GiB, "base");
    expect(g).toMatchObject({ device: undefined, fromBytes: 2 * GiB, toBytes: 2 * GiB });
  });

  it.each([
    ["smaller than the source's disk", [disk(2000, 10 * 1024 * 1024)], 8 * GiB, "drivers.vsphere.disk_size: 8 GiB is smaller than the first disk of /DC0/vm/base (10 GiB); vSphere grows disks, it never shrinks them"],
    ["a source with no disk", [nic], 8 * GiB, "drivers.vsphere.disk_size: /DC0/vm/base has no virtual disk to grow"],
  ])("%s is a user error (exit 2) naming the field", async (_what, xml, want, message) => {
    const list = await devices(...xml);
    expect(() => growFirstDisk(list, want, "/DC0/vm/base")).toThrow(UserError);
    expect(() => growFirstDisk(list, want, "/DC0/vm/base")).toThrow(message);
    try {
      growFirstDisk(list, want, "/DC0/vm/base");
    } catch (err) {
      expect((err as UserError).exitCode).toBe(2);
    }
  });

  it("one reconfigure after the clone: CPU, memory, then the disk edit", async () => {
    const g = growFirstDisk(await devices(disk(2000, 1024)), GiB, "base");
    expect(cloneReconfigSpec({ cpus: 2, memoryMiB: 2048, grownDisk: undefined })).toEqual({ numCPUs: 2, memoryMB: 2048 });
    const spec = cloneReconfigSpec({ cpus: 2, memoryMiB: 2048, grownDisk: g.device });
    expect(Object.keys(spec)).toEqual(["numCPUs", "memoryMB", "deviceChange"]);
    expect(spec.deviceChange).toEqual([{ operation: "edit", device: g.device }]);
    expect(toXml("spec", spec)).toContain("<unitNumber>0</unitNumber><capacityInKB>1048576</capacityInKB><capacityInBytes>1073741824</capacityInBytes><shares>");
  });
});

describe("installer media before export / keep (detachMediaSpec)", () => {
  const built = new Map<string, "eject" | "remove">([
    [ISO, "eject"],
    [FLOPPY, "remove"],
    [MEDIA_CD, "remove"],
  ]);
  const ejected = async (xml: string) => ({
    ...(asSoapValue((await devices(xml))[0]!) as SoapObject),
    backing: EMPTY_CDROM_BACKING,
    connectable: { startConnected: false, allowGuestControl: false, connected: false },
  });

  it.each([
    ["ISO + floppy: the ISO's drive emptied, the floppy removed", [cdrom(3000, 0, ISO), floppy], [ISO], [FLOPPY]],
    ["ISO + answer-file CD: the second drive removed", [cdrom(3000, 0, ISO), cdrom(3001, 1, MEDIA_CD)], [ISO], [MEDIA_CD]],
    ["a CD-ROM the build did not attach stays as it is", [cdrom(3000, 0, "[ds1] isos/user.iso"), floppy], [], [FLOPPY]],
  ])("%s", async (_what, xml, wantEjected, wantRemoved) => {
    const list = await devices(disk(2000, 1024), nic, ...xml);
    const d = detachMediaSpec(list, built);
    expect(d.ejected).toEqual(wantEjected);
    expect(d.removed).toEqual(wantRemoved);
    const expected = [];
    for (const x of xml) {
      const file = /<fileName>([^<]*)</.exec(x)![1]!;
      if (built.get(file) === "eject") expected.push({ operation: "edit", device: await ejected(x) });
      if (built.get(file) === "remove") expected.push({ operation: "remove", device: asSoapValue((await devices(x))[0]!) });
    }
    expect(d.spec).toEqual({ deviceChange: expected });
  });

  it("the ejected drive keeps its key, controller and unit, in WSDL order, and names no file", async () => {
    const d = detachMediaSpec(await devices(cdrom(3000, 0, ISO)), built);
    const device = (d.spec!.deviceChange as SoapObject[])[0]!.device as SoapObject;
    expect(Object.keys(device)).toEqual(["$type", "key", "deviceInfo", "backing", "connectable", "controllerKey", "unitNumber"]);
    const xml = toXml("spec", d.spec);
    expect(xml).toContain(
      '<backing xsi:type="VirtualCdromRemotePassthroughBackingInfo"><deviceName></deviceName><exclusive>false</exclusive></backing><connectable><startConnected>false</startConnected><allowGuestControl>false</allowGuestControl><connected>false</connected></connectable><controllerKey>200</controllerKey><unitNumber>0</unitNumber>',
    );
    expect(xml).not.toContain("fileName");
  });

  it("a drive read back without connectable gets it after backing, not at the end", async () => {
    const d = detachMediaSpec(await devices(cdrom(3000, 0, ISO, "")), built);
    expect(Object.keys((d.spec!.deviceChange as SoapObject[])[0]!.device as SoapObject)).toEqual(["$type", "key", "deviceInfo", "backing", "connectable", "controllerKey", "unitNumber"]);
  });

  it("nothing to do once the media are gone (an ejected drive, no floppy)", async () => {
    const first = detachMediaSpec(await devices(cdrom(3000, 0, ISO), floppy), built);
    const after = `<VirtualDevice xsi:type="VirtualCdrom"><key>3000</key>${info("CD/DVD drive 1")}<backing xsi:type="VirtualCdromRemotePassthroughBackingInfo"><deviceName></deviceName><exclusive>false</exclusive></backing><controllerKey>200</controllerKey><unitNumber>0</unitNumber></VirtualDevice>`;
    expect(first.spec).toBeDefined();
    expect(detachMediaSpec(await devices(disk(2000, 1024), after), built)).toEqual({ spec: undefined, ejected: [], removed: [] });
  });
});
