import { createServer } from "node:net";

/** Ports handed out by freePort in this process lately (port → when), not handed out again. */
const handedOut = new Map<number, number>();
const HANDED_OUT_MS = 120_000;

/**
 * A port that was free on 127.0.0.1 a moment ago. Callers retry on a bind race (another process
 * binding it first). Within this process, builds run at once (`vmkiln build a.yaml b.yaml`) probe
 * ports independently: between one probe closing its socket and QEMU binding the port, the kernel
 * may hand the same port to the next probe, so a port given out in the last two minutes is never
 * given out again.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const now = Date.now();
  for (const [p, at] of handedOut) if (now - at > HANDED_OUT_MS) handedOut.delete(p);
  for (let i = 0; ; i++) {
    const port = await probePort(host);
    if (!handedOut.has(port) || i >= 50) {
      handedOut.set(port, now);
      return port;
    }
  }
}

function probePort(host: string): Promise<number> {
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
