// TEST DOUBLE of VBoxManage: how a registered machine runs on QEMU. VirtualBox's default chipset is
// PIIX3 (QEMU's "pc" machine, which has the PIIX IDE channels VirtualBox's IDE controller maps to),
// SATA is an AHCI device, NIC 1 in NAT mode is QEMU user networking (same 10.0.2.0/24 layout: the
// guest is 10.0.2.15, the host 10.0.2.2) with each NAT rule a hostfwd, the NIC is an Intel 82540EM
// (e1000), as VirtualBox's default; the VirtIO SCSI controller is virtio-scsi-pci and NIC type
// "virtio" is virtio-net-pci.
import { connect } from "node:net";

const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";

const VGA = { vboxvga: "std", vmsvga: "vmware", vboxsvga: "std", none: "none" };

/** Pure: the qemu-system-x86_64 argv for a machine (state-file shape). */
export function qemuArgs(m, paths) {
  const args = [
    // The UUID in -name lets the double (and tests) tell this machine's process from others.
    "-name", `${m.name},debug-threads=off`, "-uuid", m.uuid,
    "-machine", "pc", "-accel", "tcg",
    "-m", String(m.memory), "-smp", String(m.cpus),
    "-rtc", m.rtcuseutc === "on" ? "base=utc" : "base=localtime",
    "-display", "none", "-vga", VGA[m.graphicscontroller] ?? "std",
    "-serial", `file:${paths.consoleLog}`,
    "-qmp", `unix:${paths.qmpSocket},server=on,wait=off`,
    "-daemonize", "-pidfile", paths.pidFile,
  ];
  if (m.firmware === "efi") {
    args.push("-drive", `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, "-drive", `if=pflash,format=raw,file=${paths.efiVars}`);
  }
  const sata = m.controllers.filter((c) => c.bus === "sata");
  for (const [i] of sata.entries()) args.push("-device", `ahci,id=sata${i}`);
  const virtio = m.controllers.filter((c) => c.bus === "virtio");
  for (const [i] of virtio.entries()) args.push("-device", `virtio-scsi-pci,id=virtio${i}`);
  const busFor = (c, a) =>
    c.bus === "sata" ? `bus=sata${sata.indexOf(c)}.${a.port}` : c.bus === "virtio" ? `bus=virtio${virtio.indexOf(c)}.0,channel=0,scsi-id=${a.port},lun=0` : `bus=ide.${a.port},unit=${a.device}`;
  for (const a of m.attachments) {
    const c = m.controllers.find((x) => x.name === a.controller);
    if (!c || a.medium === "none" || a.medium === "emptydrive") continue;
    const id = `${a.controller}-${a.port}-${a.device}`.replace(/[^A-Za-z0-9-]/g, "_");
    const bootIndex = bootIndexFor(m, a.type);
    if (a.type === "hdd") {
      const fmt = /\.vmdk$/i.test(a.medium) ? "vmdk" : /\.vdi$/i.test(a.medium) ? "vdi" : "raw";
      args.push("-drive", `if=none,id=${id},file=${a.medium},format=${fmt}${a.discard === "on" ? ",discard=unmap" : ""}`);
      const dev = c.bus === "virtio" ? "scsi-hd" : "ide-hd";
      args.push("-device", `${dev},drive=${id},${busFor(c, a)}${a.nonrotational === "on" ? ",rotation_rate=1" : ""}${bootIndex}`);
    } else {
      args.push("-drive", `if=none,id=${id},file=${a.medium},format=raw,media=cdrom,readonly=on`);
      args.push("-device", `${c.bus === "virtio" ? "scsi-cd" : "ide-cd"},drive=${id},${busFor(c, a)}${bootIndex}`);
    }
  }
  if (m.nic1 === "nat") {
    const fwd = m.natpf1.map((r) => `,hostfwd=${r.proto}:${r.hostIp}:${r.hostPort}-${r.guestIp}:${r.guestPort}`).join("");
    args.push("-netdev", `user,id=nic1${fwd}`, "-device", `${m.nictype1 === "virtio" ? "virtio-net-pci" : "e1000"},netdev=nic1`);
  } else {
    args.push("-nic", "none");
  }
  return args;
}

/** VirtualBox boots in boot1..boot4 order: the first hdd/dvd gets bootindex by its position there. */
function bootIndexFor(m, type) {
  const want = type === "hdd" ? "disk" : "dvd";
  const i = (m.boot ?? ["disk", "dvd", "none", "none"]).indexOf(want);
  return i < 0 ? "" : `,bootindex=${i}`;
}

/**
 * PS/2 set-1 bytes → QMP input-send-event key events with "number" key values. QEMU's key numbers
 * are set-1 make codes with the e0-prefixed (extended) keys as 0x80 | code; bit 7 of a byte is the
 * break (release) flag.
 */
export function scancodesToQmpEvents(codes) {
  const out = [];
  let extended = false;
  for (const c of codes) {
    const n = parseInt(c, 16);
    if (n === 0xe0) {
      extended = true;
      continue;
    }
    out.push({ type: "key", data: { down: (n & 0x80) === 0, key: { type: "number", data: (n & 0x7f) | (extended ? 0x80 : 0) } } });
    extended = false;
  }
  return out;
}

/** One QMP session: greeting, qmp_capabilities, then the commands in order. */
export function qmp(socketPath, commands, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const replies = [];
    let buf = "";
    let stage = -1; // -1: greeting, 0: capabilities, 1..n: commands
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`QMP ${socketPath}: timed out`));
    }, timeoutMs);
    const sendNext = () => {
      const cmd = stage === 0 ? { execute: "qmp_capabilities" } : commands[stage - 1];
      sock.write(JSON.stringify(cmd) + "\n");
    };
    sock.setEncoding("utf8");
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      // `quit` closes the socket right after (or instead of) its reply.
      if (stage > commands.length || commands[stage - 1]?.execute === "quit") resolve(replies);
      else reject(new Error(`QMP ${socketPath}: connection closed`));
    });
    sock.on("data", (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.event) continue;
        if (stage >= 1) {
          if (msg.error) {
            clearTimeout(timer);
            sock.destroy();
            reject(new Error(`QMP ${commands[stage - 1].execute}: ${msg.error.desc}`));
            return;
          }
          replies.push(msg.return);
        }
        stage++;
        if (stage > commands.length) {
          clearTimeout(timer);
          sock.end();
          resolve(replies);
          return;
        }
        sendNext();
      }
    });
  });
}
