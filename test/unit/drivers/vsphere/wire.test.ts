import { describe, expect, it } from "vitest";
import { folderUrl } from "../../../../drivers/vsphere/datastore.js";
import { cachedIsoPath } from "../../../../drivers/vsphere/iso-cache.js";
import { deviceUrl, keepAlivePeriodMs } from "../../../../drivers/vsphere/nfc-export.js";
import { storageUriToDsPath } from "../../../../drivers/vsphere/rest.js";
import { MoRef } from "../../../../drivers/vsphere/soap.js";
import { cloneSpec, usbScanCodeSpec } from "../../../../drivers/vsphere/vm-config.js";

describe("lease device URLs", () => {
  const origin = new URL("https://vc.example:8443");
  it.each([
    ["https://*/nfc/52ab/disk-0.vmdk", "https://vc.example:8443/nfc/52ab/disk-0.vmdk"],
    ["https://*:443/nfc/52ab/disk-0.vmdk", "https://vc.example/nfc/52ab/disk-0.vmdk"],
    ["https://esx1.lab/nfc/52ab/disk-0.vmdk", "https://esx1.lab/nfc/52ab/disk-0.vmdk"],
  ])("%s → %s", (raw, want) => expect(deviceUrl(raw, origin).href).toBe(want));
});

describe("export lease keep-alive", () => {
  it.each([
    [300, 20_000], // vSphere's 300 s lease: every 20 s
    [30, 10_000],
    [3, 1000],
    [1, 333],
    [0.1, 200], // never a busy loop
    [undefined, 20_000],
    [0, 20_000],
    [Number.NaN, 20_000],
    [-5, 20_000],
  ])("a lease timing out after %s s is renewed every %s ms: two renewals may be late before it is lost", (timeoutS, want) => {
    expect(keepAlivePeriodMs(timeoutS)).toBe(want);
    if (timeoutS && timeoutS >= 1) expect(keepAlivePeriodMs(timeoutS) * 3).toBeLessThanOrEqual(timeoutS * 1000);
  });
});

describe("datastore transfers", () => {
  it("builds the /folder URL with dcPath and dsName, path segments encoded", () => {
    expect(folderUrl(new URL("https://vc"), "/DC0", "Local DS", "vmkiln-cache/a b.iso").href).toBe("https://vc/folder/vmkiln-cache/a%20b.iso?dcPath=DC0&dsName=Local+DS");
  });
  it("names cached ISOs by digest", () => expect(cachedIsoPath("vmkiln-cache/", "ab".repeat(32))).toBe(`vmkiln-cache/${"ab".repeat(32)}.iso`));
});

describe("content library storage", () => {
  const dss = [{ name: "ds1", url: "ds:///vmfs/volumes/5f00-aa/" }, { name: "ds2", url: "ds:///vmfs/volumes/6000-bb" }];
  it.each([
    ["ds:///vmfs/volumes/6000-bb/contentlib-1/item/debian%2012.iso", "[ds2] contentlib-1/item/debian 12.iso"],
    ["ds:///vmfs/volumes/7000-cc/x.iso", undefined],
  ])("%s", (uri, want) => expect(storageUriToDsPath(uri, dss)).toBe(want));
});

describe("vim25 data objects", () => {
  it("UsbScanCodeSpec keeps WSDL modifier order and omits empty modifiers", () => {
    expect(
      usbScanCodeSpec([
        { usbHidCode: (0x04 << 16) | 7, modifiers: {} },
        { usbHidCode: (0x4c << 16) | 7, modifiers: { leftAlt: true, leftControl: true } },
      ]),
    ).toEqual({ keyEvents: [{ usbHidCode: 0x40007 }, { usbHidCode: 0x4c0007, modifiers: { leftControl: true, leftAlt: true } }] });
    const spec = usbScanCodeSpec([{ usbHidCode: 0x4c0007, modifiers: { rightGui: true, leftAlt: true, leftControl: true } }]);
    expect(Object.keys((spec.keyEvents as Array<{ modifiers: object }>)[0]!.modifiers)).toEqual(["leftControl", "leftAlt", "rightGui"]);
  });

  it("a linked clone moves no disks: a child disk on the source's snapshot", () => {
    const pool = new MoRef("ResourcePool", "rp-1");
    const ds = new MoRef("Datastore", "ds-1");
    const snap = new MoRef("VirtualMachineSnapshot", "snap-1");
    expect(cloneSpec({ pool, datastore: ds, host: undefined, cpus: 4, memoryMiB: 4096, linkedSnapshot: snap })).toEqual({
      location: { datastore: ds, diskMoveType: "createNewChildDiskBacking", pool },
      template: false,
      config: { numCPUs: 4, memoryMB: 4096 },
      powerOn: false,
      snapshot: snap,
    });
    expect(cloneSpec({ pool, datastore: ds, host: undefined, cpus: 1, memoryMiB: 512, linkedSnapshot: undefined }).snapshot).toBeUndefined();
  });
});
