import { describe, expect, it } from "vitest";
import { pickGuestIp, type GuestNic } from "../../../../drivers/vsphere/ip.js";

const nic = (ips: string[], o: Partial<GuestNic> = {}): GuestNic => ({ network: "VM Network", deviceConfigId: 4000, connected: true, ipAddresses: ips, ...o });
const v4 = { ipv6: false, network: undefined };

describe("guest IP selection", () => {
  it.each([
    ["the VM NIC's IPv4", { primary: "10.0.0.5", nics: [nic(["fe80::1", "10.0.0.5"])] }, v4, "10.0.0.5"],
    ["nothing while only link-local is up (no DHCP yet)", { primary: "169.254.10.1", nics: [nic(["169.254.10.1", "fe80::1"])] }, v4, undefined],
    ["IPv6 is skipped unless asked", { primary: undefined, nics: [nic(["2001:db8::5"])] }, v4, undefined],
    ["IPv6 when asked", { primary: undefined, nics: [nic(["fe80::1", "2001:db8::5"])] }, { ipv6: true, network: undefined }, "2001:db8::5"],
    ["IPv4 first even when IPv6 is allowed", { primary: undefined, nics: [nic(["2001:db8::5", "10.0.0.7"])] }, { ipv6: true, network: undefined }, "10.0.0.7"],
    [
      "docker0 inside the guest (not a VM NIC) is skipped",
      { primary: "172.17.0.1", nics: [nic(["172.17.0.1"], { deviceConfigId: -1, network: undefined }), nic(["192.168.1.20"])] },
      v4,
      "192.168.1.20",
    ],
    ["a disconnected NIC is skipped", { primary: undefined, nics: [nic(["10.0.0.9"], { connected: false }), nic(["10.0.1.9"])] }, v4, "10.0.1.9"],
    [
      "the named network first",
      { primary: undefined, nics: [nic(["10.0.0.9"], { network: "mgmt" }), nic(["10.5.0.9"], { network: "build", deviceConfigId: 4001 })] },
      { ipv6: false, network: "build" },
      "10.5.0.9",
    ],
    ["the primary address when Tools reports no NIC table", { primary: "10.0.0.8", nics: [] }, v4, "10.0.0.8"],
    ["but not a container bridge as primary", { primary: "172.17.0.1", nics: [] }, v4, undefined],
    ["nor a primary that belongs to a non-VM interface", { primary: "10.88.0.1", nics: [nic(["10.88.0.1"], { deviceConfigId: -1 })] }, v4, undefined],
  ])("%s", (_what, info, opts, want) => {
    expect(pickGuestIp(info, opts)).toBe(want);
  });
});
