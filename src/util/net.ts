import { createServer } from "node:net";

/** A port that was free on 127.0.0.1 a moment ago. Callers retry on a bind race. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * The peer a host listener sees when a guest behind user-mode NAT (QEMU's slirp, VirtualBox NAT)
 * connects to the NAT's host alias 10.0.2.2: the NAT engine connects from the host's loopback.
 * Undefined for any other address the guest dials (the source is then the host's choice).
 */
export function natGuestPeerAddress(guestAddress: string): string | undefined {
  return guestAddress === "10.0.2.2" ? "127.0.0.1" : undefined;
}
