// Content-library requests and answers for both REST flavors, the storage URI → datastore path
// mapping, and the address a guest reaches the build host at.
import { describe, expect, it } from "vitest";
import { localAddressTowards, needsRouteLookup } from "../../../../drivers/vsphere/host-address.js";
import { libraryRequests, parseCreateResult, parseDeployment, parseIds, parseOvfNetworks, parseStorage, pickIsoFile } from "../../../../drivers/vsphere/library.js";
import { restErrorOf, storageUriToDsPath } from "../../../../drivers/vsphere/rest.js";
import { VsphereDriver } from "../../../../drivers/vsphere/index.js";
import { BuildError } from "../../../../src/errors.js";
import { EventBus } from "../../../../src/log/events.js";
import type { Journal } from "../../../../src/pipeline/journal.js";
import type { BuildSpec, VsphereSpec } from "../../../../src/template/spec.js";

const target = { resourcePoolId: "resgroup-8", folderId: "group-v3", hostId: undefined };

describe("content-library requests", () => {
  it.each([
    ["api", libraryRequests.findLibrary("api", "ISOs"), { method: "POST", path: "/api/content/library?action=find", body: { name: "ISOs" } }],
    ["rest", libraryRequests.findLibrary("rest", "ISOs"), { method: "POST", path: "/rest/com/vmware/content/library?~action=find", body: { spec: { name: "ISOs" } } }],
    ["api", libraryRequests.findItem("api", "lib-1", "debian"), { method: "POST", path: "/api/content/library/item?action=find", body: { library_id: "lib-1", name: "debian" } }],
    ["rest", libraryRequests.findItem("rest", "lib-1", "debian"), { method: "POST", path: "/rest/com/vmware/content/library/item?~action=find", body: { spec: { library_id: "lib-1", name: "debian" } } }],
    ["api", libraryRequests.getItem("api", "it 1"), { method: "GET", path: "/api/content/library/item/it%201" }],
    ["rest", libraryRequests.getItem("rest", "it-1"), { method: "GET", path: "/rest/com/vmware/content/library/item/id:it-1" }],
    ["api", libraryRequests.itemStorage("api", "it-1"), { method: "GET", path: "/api/content/library/item/it-1/storage" }],
    ["rest", libraryRequests.itemStorage("rest", "it-1"), { method: "GET", path: "/rest/com/vmware/content/library/item/storage?library_item_id=it-1" }],
    ["api", libraryRequests.deleteItem("api", "it-1"), { method: "DELETE", path: "/api/content/library/item/it-1" }],
    ["rest", libraryRequests.deleteItem("rest", "it-1"), { method: "DELETE", path: "/rest/com/vmware/content/library/item/id:it-1" }],
    ["rest", libraryRequests.filterOvf("rest", "it-1", target), { method: "POST", path: "/rest/com/vmware/vcenter/ovf/library-item/id:it-1?~action=filter", body: { target: { resource_pool_id: "resgroup-8", folder_id: "group-v3" } } }],
  ])("%s: %j", (_flavor, got, want) => expect(got).toEqual(want));

  it("deploy: target and deployment_spec by name in both flavors (no {spec} wrapper), networks mapped", () => {
    const spec = { name: "vmkiln-x", datastoreId: "datastore-11", networkMappings: [["VM Network", "network-7"]] as Array<[string, string]> };
    const body = {
      target: { resource_pool_id: "resgroup-8", folder_id: "group-v3", host_id: "host-9" },
      deployment_spec: { name: "vmkiln-x", accept_all_EULA: true, default_datastore_id: "datastore-11", network_mappings: [{ key: "VM Network", value: "network-7" }] },
    };
    const t = { ...target, hostId: "host-9" };
    expect(libraryRequests.deployOvf("api", "it-1", t, spec)).toMatchObject({ method: "POST", path: "/api/vcenter/ovf/library-item/it-1?action=deploy", body });
    expect(libraryRequests.deployOvf("rest", "it-1", t, spec)).toMatchObject({ method: "POST", path: "/rest/com/vmware/vcenter/ovf/library-item/id:it-1?~action=deploy", body });
    expect(libraryRequests.deployOvf("rest", "it-1", target, { ...spec, networkMappings: [] }).body).not.toHaveProperty("deployment_spec.network_mappings");
    expect(libraryRequests.deployOvf("api", "it-1", t, spec).timeoutMs).toBeGreaterThanOrEqual(30 * 60_000);
  });

  it("capture: source VM, target library, create_spec", () => {
    const c = { vmId: "vm-42", libraryId: "lib-1", name: "debian-12", description: "built by vmkiln" };
    const body = { source: { type: "VirtualMachine", id: "vm-42" }, target: { library_id: "lib-1" }, create_spec: { name: "debian-12", description: "built by vmkiln" } };
    expect(libraryRequests.captureOvf("api", c)).toMatchObject({ method: "POST", path: "/api/vcenter/ovf/library-item", body });
    expect(libraryRequests.captureOvf("rest", c)).toMatchObject({ method: "POST", path: "/rest/com/vmware/vcenter/ovf/library-item", body });
    expect(libraryRequests.captureOvf("rest", { ...c, description: "" }).body).toEqual({ ...body, create_spec: { name: "debian-12" } });
  });
});

describe("content-library answers", () => {
  it("ids, storage, the ISO file, OVF networks", () => {
    expect(parseIds(["a", 1, "b"])).toEqual(["a", "b"]);
    expect(parseIds(undefined)).toEqual([]);
    const files = parseStorage([
      { name: "debian.mf", storage_uris: ["ds:///vmfs/volumes/u1/contentlib-l/i/debian.mf"], size: 10, cached: true },
      { name: "debian-12.ISO", storage_uris: ["ds:///vmfs/volumes/u1/contentlib-l/i/debian-12_abc.iso"], checksum_info: { algorithm: "SHA1", checksum: "00" } },
      { nameless: true },
    ]);
    expect(files).toEqual([
      { name: "debian.mf", uris: ["ds:///vmfs/volumes/u1/contentlib-l/i/debian.mf"] },
      { name: "debian-12.ISO", uris: ["ds:///vmfs/volumes/u1/contentlib-l/i/debian-12_abc.iso"] },
    ]);
    expect(pickIsoFile(files)?.name).toBe("debian-12.ISO");
    expect(pickIsoFile(files.slice(0, 1))).toBeUndefined();
    expect(parseOvfNetworks({ name: "x", networks: ["VM Network", "backend"] })).toEqual(["VM Network", "backend"]);
    expect(parseOvfNetworks({ name: "x" })).toEqual([]);
  });

  it("deploy and capture results; their errors carry vSphere's message", () => {
    expect(parseDeployment({ succeeded: true, resource_id: { type: "VirtualMachine", id: "vm-70" } }, "L/I")).toBe("vm-70");
    const failed = { succeeded: false, error: { errors: [{ category: "SERVER", error: { "@class": "com.vmware.vapi.std.errors.error", messages: [{ default_message: "no space left" }] } }] } };
    expect(() => parseDeployment(failed, "L/I")).toThrow(new BuildError("VSPHERE_OVF_DEPLOY", "deploying L/I failed: no space left"));
    expect(parseCreateResult({ succeeded: true, ovf_library_item_id: "it-9" }, "vm")).toBe("it-9");
    expect(() => parseCreateResult({ succeeded: false, error: { errors: [{ message: { default_message: "VM is powered on" } }] } }, "vm-1 into T")).toThrow(
      "capturing vm-1 into T failed: VM is powered on",
    );
    expect(() => parseCreateResult(undefined, "vm")).toThrow("capturing vm failed");
  });

  it("REST errors of both flavors", () => {
    expect(restErrorOf({ type: "com.vmware.vapi.std.errors.not_found", value: { messages: [{ default_message: "no such item" }] } })).toEqual({
      type: "com.vmware.vapi.std.errors.not_found",
      message: "no such item",
    });
    expect(restErrorOf({ error_type: "NOT_FOUND", messages: [{ id: "x", default_message: "gone" }] })).toEqual({ type: "NOT_FOUND", message: "gone" });
    expect(restErrorOf("oops")).toEqual({ type: undefined, message: undefined });
  });
});

describe("library storage URI → datastore path", () => {
  it.each([
    // vCenter: summary.url ds:///vmfs/volumes/<uuid>/ with a trailing slash.
    ["ds:///vmfs/volumes/5f00-aa/contentlib-1/item/debian-12_x.iso", "[ds1] contentlib-1/item/debian-12_x.iso"],
    // vcsim: summary.url is the datastore's local directory, without one.
    ["/tmp/govcsim-DC0-LocalDS_0-1/contentlib-2/it/installer.iso", "[LocalDS_0] contentlib-2/it/installer.iso"],
    ["/tmp/govcsim-DC0-LocalDS_0-10/x.iso", undefined], // a prefix of another path is not a match
  ])("%s", (uri, want) =>
    expect(storageUriToDsPath(uri, [{ name: "ds1", url: "ds:///vmfs/volumes/5f00-aa/" }, { name: "LocalDS_0", url: "/tmp/govcsim-DC0-LocalDS_0-1" }])).toBe(want),
  );
});

describe("the build host's address as a vSphere guest sees it", () => {
  it.each([
    ["0.0.0.0", true],
    ["::", true],
    ["127.0.0.1", true],
    ["127.1.2.3", true],
    ["::1", true],
    ["192.168.10.5", false],
    ["fd00::5", false],
  ])("%s needs the route lookup: %s", (addr, want) => expect(needsRouteLookup(addr)).toBe(want));

  it("asks the kernel for the source address of the route (no packet sent)", async () => {
    expect(await localAddressTowards("127.0.0.1", 443, AbortSignal.timeout(5000))).toBe("127.0.0.1");
    expect(await localAddressTowards("localhost", 443, AbortSignal.timeout(5000))).toMatch(/^(127\.0\.0\.1|::1)$/);
  });
});

describe("VsphereDriver.guestHostAddress", () => {
  const driver = (url: string) => {
    const events = new EventBus();
    const warnings: string[] = [];
    events.subscribe((e) => e.type === "log" && e.level === "warn" && warnings.push(e.message));
    const v = { url, insecure: false } as VsphereSpec;
    const d = new VsphereDriver({} as BuildSpec, v, { url, username: "u", password: "p", caFile: undefined, insecure: false }, events, {} as Journal);
    return { d, warnings };
  };

  it("keeps a specific bind address; resolves wildcard and loopback through the route to vCenter", async () => {
    const { d, warnings } = driver("https://127.0.0.1:8989/sdk");
    expect(await d.guestHostAddress("192.0.2.10")).toBe("192.0.2.10");
    expect(await d.guestHostAddress("0.0.0.0")).toBe("127.0.0.1");
    expect(await d.guestHostAddress("127.0.0.1")).toBe("127.0.0.1");
    expect(warnings).toEqual([]); // loopback reaches a vCenter on loopback (vcsim)
  });

  it("warns when the guest could not reach a loopback bind", async (t) => {
    // 198.51.100.0/24 (TEST-NET-2) is never local: any route to it starts at a non-loopback address.
    const route = await localAddressTowards("198.51.100.7", 443, AbortSignal.timeout(5000)).catch(() => undefined);
    if (!route) t.skip(); // a host without a default route
    const { d, warnings } = driver("https://198.51.100.7/sdk");
    expect(await d.guestHostAddress("127.0.0.1")).toBe(route);
    expect(warnings).toEqual([`http.bind_address 127.0.0.1 is not reachable from a vSphere VM; set it to 0.0.0.0 or ${route}`]);
  });
});
