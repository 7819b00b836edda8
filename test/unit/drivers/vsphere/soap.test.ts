import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MoRef, SoapFault, buildEnvelope, child, children, parseResponse, parseXml, refOf, textOf, toXml } from "../../../../drivers/vsphere/soap.js";
import { parseGuestIps } from "../../../../drivers/vsphere/index.js";
import { isNotImplemented } from "../../../../drivers/vsphere/nfc-export.js";

// Responses recorded from vcsim 0.24.2 (and the harness shim for ExportVm), see test/fixtures/vsphere.
const fixture = (name: string) => readFileSync(join(import.meta.dirname, "../../../fixtures/vsphere", name), "utf8");

describe("SOAP envelope", () => {
  it.each([
    ["a scalar", toXml("name", "a&b<c>"), "<name>a&amp;b&lt;c&gt;</name>"],
    ["a number and a boolean", toXml("n", 3) + toXml("b", false), "<n>3</n><b>false</b>"],
    ["a moref", toXml("_this", new MoRef("VirtualMachine", "vm-42")), '<_this type="VirtualMachine">vm-42</_this>'],
    ["an array repeats the element", toXml("pathSet", ["a", "b"]), "<pathSet>a</pathSet><pathSet>b</pathSet>"],
    ["undefined is left out", toXml("x", undefined), ""],
    ["a typed object keeps field order", toXml("device", { $type: "VirtualDisk", key: -1, unitNumber: 0 }), '<device xsi:type="VirtualDisk"><key>-1</key><unitNumber>0</unitNumber></device>'],
    ["a typed simple value", toXml("value", { $type: "xsd:string", _: "10.0.0.1" }), '<value xsi:type="xsd:string">10.0.0.1</value>'],
  ])("%s", (_what, got, want) => {
    expect(got).toBe(want);
  });

  it("wraps the method in the vim25 namespace with _this first", async () => {
    const xml = buildEnvelope("Login", new MoRef("SessionManager", "SessionManager"), [["userName", "u"], ["password", "p"]]);
    const env = await parseXml(xml);
    const method = child(child(env, "Body"), "Login")!;
    expect(method.uri).toBe("urn:vim25");
    expect(method.children.map((c) => c.local)).toEqual(["_this", "userName", "password"]);
  });
});

describe("SOAP responses (recorded from vcsim)", () => {
  it("reads service content references", async () => {
    const [rv] = await parseResponse(fixture("retrieve-service-content.xml"), "RetrieveServiceContent");
    expect(refOf(child(rv, "rootFolder"))).toEqual(new MoRef("Folder", "group-d1"));
    expect(textOf(child(rv, "about"), "apiType")).toBe("VirtualCenter");
  });

  it("resolves xsi:type through a locally declared XMLSchema-instance prefix", async () => {
    const [rv] = await parseResponse(fixture("retrieve-guest-props.xml"), "RetrievePropertiesEx");
    const props = new Map(children(child(rv, "objects"), "propSet").map((p) => [textOf(p, "name"), child(p, "val")!]));
    expect(props.get("guest.ipAddress")?.xsiType).toBe("string");
    expect(props.get("guest.net")?.xsiType).toBe("ArrayOfGuestNicInfo");
    expect(parseGuestIps(props.get("guest.ipAddress"), props.get("guest.net"))).toEqual({
      primary: "10.1.2.3",
      nics: [{ network: undefined, deviceConfigId: 4000, connected: true, ipAddresses: ["10.1.2.3"] }],
    });
  });

  it.each([
    ["fault-invalid-login.xml", "Login", "InvalidLogin"],
    ["fault-export-powered-on.xml", "ExportVm", "InvalidPowerState"],
    ["fault-not-implemented.xml", "CreateDescriptor", "MethodNotFound"],
  ])("%s: the fault type comes from <detail>", async (file, method, type) => {
    const err = await parseResponse(fixture(file), method).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SoapFault);
    expect((err as SoapFault).faultType).toBe(type);
    expect((err as SoapFault).message).toMatch(new RegExp(`^vSphere ${method}: ${type}`));
  });

  it("recognises a method the server lacks", async () => {
    const err = (await parseResponse(fixture("fault-not-implemented.xml"), "CreateDescriptor").catch((e: unknown) => e)) as SoapFault;
    expect(isNotImplemented(err)).toBe(true);
  });

  it("an unexpected response element is a protocol error", async () => {
    await expect(parseResponse(fixture("retrieve-service-content.xml"), "Login")).rejects.toThrow(/unexpected answer <RetrieveServiceContentResponse>/);
  });
});
