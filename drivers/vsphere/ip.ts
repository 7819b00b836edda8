// Which guest address to SSH to. VMware Tools reports every interface of the guest: a usable
// address is on one of the VM's own NICs (deviceConfigId >= 0; docker0, bridges and veths inside
// the guest report -1), is not link-local (169.254/16, fe80::/10: DHCP has not answered yet), and
// is IPv4 unless IPv6 was asked for. On the configured network when one is named.

export interface GuestNic {
  /** Port group name, when the NIC is on one. */
  network: string | undefined;
  /** The VM NIC's device key; -1 for interfaces that are not a VM NIC. */
  deviceConfigId: number;
  connected: boolean;
  ipAddresses: string[];
}

export interface GuestIpInfo {
  /** guest.ipAddress (what Tools calls the primary address). */
  primary: string | undefined;
  nics: GuestNic[];
}

export interface IpOptions {
  ipv6: boolean;
  network: string | undefined;
}

export function isLinkLocal(ip: string): boolean {
  return /^169\.254\./.test(ip) || /^fe[89ab][0-9a-f]:/i.test(ip);
}

export function isIpv6(ip: string): boolean {
  return ip.includes(":");
}

// Default bridge ranges container runtimes create inside a guest (docker0, podman's cni-podman0,
// lxdbr0 are all on deviceConfigId -1 too; this catches them when Tools reports no NIC table).
const CONTAINER_BRIDGES = [/^172\.17\./, /^10\.88\./, /^10\.0\.3\./];

function usable(ip: string, o: IpOptions): boolean {
  if (ip === "" || isLinkLocal(ip)) return false;
  if (isIpv6(ip) && !o.ipv6) return false;
  return true;
}

/** The address to use, or undefined while none is usable yet. */
export function pickGuestIp(info: GuestIpInfo, o: IpOptions): string | undefined {
  const vmNics = info.nics.filter((n) => n.deviceConfigId >= 0 && n.connected);
  const ordered = o.network ? [...vmNics.filter((n) => n.network === o.network), ...vmNics.filter((n) => n.network !== o.network)] : vmNics;
  const rank = (ip: string) => (isIpv6(ip) ? 1 : 0); // IPv4 first even when IPv6 is allowed
  for (const nic of ordered) {
    const ips = nic.ipAddresses.filter((ip) => usable(ip, o)).sort((a, b) => rank(a) - rank(b));
    if (ips[0]) return ips[0];
  }
  // Without a NIC table (older Tools), fall back to the primary address unless it belongs to an
  // interface that is not a VM NIC or looks like a container bridge.
  const p = info.primary;
  if (p && usable(p, o) && vmNics.length === 0) {
    const foreign = info.nics.some((n) => n.deviceConfigId < 0 && n.ipAddresses.includes(p));
    if (!foreign && !CONTAINER_BRIDGES.some((re) => re.test(p))) return p;
  }
  return undefined;
}
