// Where a vSphere guest reaches the build host's HTTP server (kickstart over HTTP). The guest is on
// a vSphere network, not behind a NAT the driver controls, so a wildcard or loopback listen address
// says nothing useful: the host's address on the route to vCenter is the best guess (Packer's
// vsphere builder does the same). A UDP socket's connect() only picks the route and the source
// address; no packet is sent.
import { createSocket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";

/** 0.0.0.0, ::, 127.0.0.0/8, ::1: addresses that are not themselves what the guest should use. */
export function needsRouteLookup(bindAddress: string): boolean {
  const a = bindAddress.trim().toLowerCase();
  return a === "0.0.0.0" || a === "::" || a === "" || isLoopback(a);
}

export function isLoopback(address: string): boolean {
  const a = address.toLowerCase();
  return /^127\./.test(a) || a === "::1" || a === "localhost" || /^::ffff:127\./.test(a);
}

/** The local address the kernel would send from to reach `host` (a name or an address). */
export async function localAddressTowards(host: string, port: number, signal: AbortSignal): Promise<string> {
  const bare = host.replace(/^\[|\]$/g, "");
  const target = isIP(bare) ? { address: bare, family: isIP(bare) } : await lookup(bare);
  signal.throwIfAborted();
  const socket = createSocket(target.family === 6 ? "udp6" : "udp4");
  try {
    await new Promise<void>((ok, fail) => {
      socket.once("error", fail);
      socket.connect(port, target.address, () => ok());
    });
    return socket.address().address;
  } finally {
    socket.close();
  }
}
