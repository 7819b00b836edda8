import { describe, expect, it } from "vitest";
import { computePath, datacenterPath, hostPath, inventoryPath, leafName, poolPath } from "../../../../drivers/vsphere/inventory.js";

describe("inventory paths", () => {
  it.each([
    ["DC0", "/DC0"],
    ["/DC0/", "/DC0"],
    ["Folder/DC0", "/Folder/DC0"],
  ])("datacenter %s → %s", (name, want) => expect(datacenterPath(name)).toBe(want));

  it.each([
    ["vm", "", "/DC0/vm"],
    ["vm", "builds", "/DC0/vm/builds"],
    ["vm", "builds/linux/", "/DC0/vm/builds/linux"],
    ["datastore", "LocalDS_0", "/DC0/datastore/LocalDS_0"],
    ["network", "VM Network", "/DC0/network/VM Network"],
    ["network", "/Other/network/pg-10", "/Other/network/pg-10"],
    ["host", "./DC0_C0", "/DC0/host/DC0_C0"],
  ] as const)("%s %j → %s", (kind, name, want) => expect(inventoryPath("/DC0", kind, name)).toBe(want));

  it.each([
    [{ cluster: "C0", host: undefined }, "/DC0/host/C0", undefined],
    [{ cluster: undefined, host: "esx1.lab" }, "/DC0/host/esx1.lab", "/DC0/host/esx1.lab/esx1.lab"],
    [{ cluster: "C0", host: "esx1.lab" }, "/DC0/host/C0", "/DC0/host/C0/esx1.lab"],
    [{ cluster: undefined, host: "/DC0/host/C0/esx2" }, "/DC0/host/C0/esx2", "/DC0/host/C0/esx2"],
    [{ cluster: undefined, host: undefined }, undefined, undefined],
  ])("compute and host of %j", (p, compute, host) => {
    expect(computePath("/DC0", p)).toBe(compute);
    expect(hostPath("/DC0", p)).toBe(host);
  });

  it.each([
    [{ cluster: "C0", host: undefined, resourcePool: "builds" }, "/DC0/host/C0/Resources/builds"],
    [{ cluster: "C0", host: undefined, resourcePool: "a/b/" }, "/DC0/host/C0/Resources/a/b"],
    [{ cluster: undefined, host: "esx1", resourcePool: "p" }, "/DC0/host/esx1/Resources/p"],
    [{ cluster: undefined, host: undefined, resourcePool: "/DC0/host/C0/Resources/x" }, "/DC0/host/C0/Resources/x"],
    [{ cluster: "C0", host: undefined, resourcePool: undefined }, undefined],
  ])("pool of %j", (p, want) => expect(poolPath("/DC0", p)).toBe(want));

  it("a pool name without cluster or host is a user error naming the field", () => {
    expect(() => poolPath("/DC0", { cluster: undefined, host: undefined, resourcePool: "p" })).toThrow(/^drivers\.vsphere\.resource_pool: /);
  });

  it("leafName", () => expect(leafName("/DC0/datastore/ds-1/")).toBe("ds-1"));
});
