// TEST DOUBLE of VirtualBox's NAT engine rule for the host's loopback (not VirtualBox).
//
// VirtualBox's NAT gives the guest the host's loopback at the ".2" alias of its network (10.0.2.2).
// Since 7.0 that is switched off for new machines (NATEngine::i_applyDefaults in
// src/VBox/Main/src-server/NATEngineImpl.cpp sets fLocalhostReachable = false; `modifyvm
// --nat-localhostreachableN on` sets it back). With it off, the slirp engine drops what the guest
// sends to the alias address (src/VBox/Devices/Network/slirp/):
//   - tcp_input(): a segment for CTL_ALIAS with no socket behind it (a new guest connection) is
//     dropped silently, so the guest's connect() times out; replies on existing sockets (the
//     port-forwarded connections, which reach the guest from the alias address) pass;
//   - udp_input(): every datagram for CTL_ALIAS is dropped, after the DHCP (port 67) handling;
//   - icmp_input(): echo requests for CTL_ALIAS get no reply.
// VirtualBox 6.1 has no such switch: its tcp_fconnect()/sosendto() always map CTL_ALIAS to 127.0.0.1.
//
// QEMU's user networking maps its host address to 127.0.0.1 unconditionally, so the double puts a
// filter between the guest's NIC and QEMU's NAT (`-object filter-redirector`, frames framed as a
// 4-byte big-endian length and the frame) and drops the same frames here before QEMU's NAT sees
// them. Everything else (other destinations, the port forwards, DNS at .3, DHCP) passes unchanged.
import { createServer } from "node:net";

/** The alias address of a NAT network (VirtualBox's CTL_ALIAS: network | 2). */
export function aliasAddress(natnet = "10.0.2.0/24") {
  const [net] = natnet.split("/");
  const p = net.split(".").map(Number);
  return [p[0], p[1], p[2], (p[3] & ~0xff) + 2].join(".");
}

/**
 * Pure: whether VirtualBox 7's NAT with localhost-reachable off drops this Ethernet frame sent by the
 * guest. `alias` is the dotted alias address (10.0.2.2).
 */
export function dropsFrame(frame, alias) {
  if (frame.length < 14 + 20) return false;
  if (frame.readUInt16BE(12) !== 0x0800) return false; // IPv4 only (slirp has no IPv6 alias rule)
  const ip = 14;
  if (frame[ip] >> 4 !== 4) return false;
  const ihl = (frame[ip] & 0x0f) * 4;
  const dst = `${frame[ip + 16]}.${frame[ip + 17]}.${frame[ip + 18]}.${frame[ip + 19]}`;
  if (dst !== alias) return false;
  const proto = frame[ip + 9];
  const l4 = ip + ihl;
  if (proto === 6) {
    if (frame.length < l4 + 14) return false;
    const flags = frame[l4 + 13];
    // SYN without ACK: a connection the guest starts (no socket exists for it yet).
    return (flags & 0x02) !== 0 && (flags & 0x10) === 0;
  }
  if (proto === 17) {
    if (frame.length < l4 + 4) return false;
    return frame.readUInt16BE(l4 + 2) !== 67; // DHCP is answered before the alias check
  }
  if (proto === 1) return frame.length > l4 && frame[l4] === 8; // echo request
  return false;
}

/** Splits a byte stream of [u32 length][frame] records; calls onFrame for each complete one. */
export function frameReader(onFrame) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (buf.length < 4 + len) break;
      onFrame(buf.subarray(4, 4 + len));
      buf = buf.subarray(4 + len);
    }
  };
}

/**
 * Listens on two unix sockets for QEMU's filter-redirector: frames the guest sends arrive on `outPath`,
 * and those that pass go back to QEMU on `inPath`. Resolves once both listen. `onDrop(frame)` is
 * called for each dropped frame; `onClosed()` when QEMU goes away.
 */
export async function startNatFilter({ outPath, inPath, alias, onDrop = () => {}, onClosed = () => {} }) {
  let back = null;
  const pending = [];
  let open = 2;
  const closed = () => {
    if (--open === 0) onClosed();
  };
  const send = (frame) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(frame.length, 0);
    if (back) back.write(Buffer.concat([head, frame]));
    else pending.push(Buffer.concat([head, frame]));
  };
  const inServer = createServer((sock) => {
    back = sock;
    for (const p of pending.splice(0)) sock.write(p);
    sock.on("error", () => undefined);
    sock.on("close", closed);
    sock.on("data", () => undefined);
  });
  const outServer = createServer((sock) => {
    sock.on("error", () => undefined);
    sock.on("close", closed);
    sock.on(
      "data",
      frameReader((frame) => {
        if (dropsFrame(frame, alias)) onDrop(frame);
        else send(Buffer.from(frame));
      }),
    );
  });
  await Promise.all([listen(inServer, inPath), listen(outServer, outPath)]);
  return {
    close() {
      inServer.close();
      outServer.close();
    },
  };
}

function listen(server, path) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
}
