// TEST DOUBLE of VBoxManage: how a registered machine runs on QEMU (not VirtualBox). VirtualBox's
// default chipset is PIIX3 (QEMU's "pc" machine, whose PIIX IDE channels VirtualBox's IDE controller
// maps to); SATA is an AHCI device; VirtualBox's VirtioSCSI is virtio-scsi-pci; its LsiLogic SCSI and
// LsiLogicSas have no exact QEMU model (lsi53c895a and mptsas1068 stand in); NIC 1..8 in NAT mode is
// QEMU user networking with the same 10.0.2.0/24 layout (guest 10.0.2.15, host alias 10.0.2.2, DNS
// 10.0.2.3), each NAT rule a hostfwd, IPv4 only as VirtualBox's NAT engine is; NIC types: the Intel
// ones are e1000, "virtio" is virtio-net-pci, the AMD PCnet ones are pcnet.
//
// Two QMP monitors: one for VBoxManage commands (controlvm), one kept by the VM process
// (vmprocess.mjs) for events. `-d cpu_reset` logs "Triple fault" before QEMU resets the CPU, which is
// how the VM process tells a triple fault (a Guru Meditation in VirtualBox) from a guest reboot.
import { connect } from "node:net";
import { aliasAddress } from "./nat.mjs";

const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";

const VGA = { VBoxVGA: "std", VMSVGA: "vmware", VBoxSVGA: "std", Null: "none" };
const NIC_MODEL = { "82540EM": "e1000", "82543GC": "e1000", "82545EM": "e1000", virtio: "virtio-net-pci", Am79C970A: "pcnet", Am79C973: "pcnet", Am79C960: "pcnet" };
const HBA = { sata: "ahci", virtio: "virtio-scsi-pci", scsi: "lsi53c895a", sas: "mptsas1068" };

/** Whether NIC `n` needs the VirtualBox 7 loopback filter (NAT, localhost-reachable off). */
export function needsNatFilter(n) {
  return n.enabled && n.attachment === "nat" && n.localhostReachable === false;
}

/** Pure: the qemu-system-x86_64 argv for a machine (state-file shape). */
export function qemuArgs(m, paths) {
  const args = [
    // The UUID in -name lets the double (and tests) tell this machine's process from others.
    "-name", `${m.name},debug-threads=off`, "-uuid", m.uuid,
    "-machine", "pc", "-accel", "tcg",
    "-m", String(m.memory), "-smp", String(m.cpus),
    "-rtc", m.rtcuseutc ? "base=utc" : "base=localtime",
    "-display", "none", "-vga", VGA[m.graphicscontroller] ?? "std",
    "-serial", `file:${paths.consoleLog}`,
    "-qmp", `unix:${paths.qmpSocket},server=on,wait=off`,
    "-qmp", `unix:${paths.eventSocket},server=on,wait=off`,
    "-pidfile", paths.pidFile,
    "-d", "cpu_reset", "-D", paths.resetLog,
  ];
  if (!m.acpi) args.push("-no-acpi");
  if (m.firmware.startsWith("EFI")) {
    args.push("-drive", `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, "-drive", `if=pflash,format=raw,file=${paths.efiVars}`);
  }
  const hbas = m.controllers.filter((c) => HBA[c.busKey]);
  for (const [i, c] of hbas.entries()) args.push("-device", `${HBA[c.busKey]},id=hba${i}`);
  const busFor = (c, a) => {
    if (c.busKey === "ide") return `bus=ide.${a.port},unit=${a.device}`;
    const i = hbas.indexOf(c);
    return c.busKey === "sata" ? `bus=hba${i}.${a.port}` : `bus=hba${i}.0,scsi-id=${a.port}`;
  };
  const scsiLike = (c) => c.busKey === "virtio" || c.busKey === "scsi" || c.busKey === "sas";
  for (const a of m.attachments) {
    const c = m.controllers.find((x) => x.name === a.controller);
    if (!c || a.medium === "none" || a.medium === "emptydrive" || !(c.busKey === "ide" || HBA[c.busKey])) continue;
    const id = `d-${a.controller}-${a.port}-${a.device}`.replace(/[^A-Za-z0-9-]/g, "_");
    const bootIndex = bootIndexFor(m, a.type);
    if (a.type === "hdd") {
      const fmt = /\.vmdk$/i.test(a.medium) ? "vmdk" : /\.vdi$/i.test(a.medium) ? "vdi" : /\.vhd$/i.test(a.medium) ? "vpc" : "raw";
      args.push("-drive", `if=none,id=${id},file=${a.medium},format=${fmt}${a.discard ? ",discard=unmap" : ""}`);
      args.push("-device", `${scsiLike(c) ? "scsi-hd" : "ide-hd"},drive=${id},${busFor(c, a)}${a.nonrotational ? ",rotation_rate=1" : ""}${bootIndex}`);
    } else if (a.type === "dvd") {
      args.push("-drive", `if=none,id=${id},file=${a.medium},format=raw,media=cdrom,readonly=on`);
      args.push("-device", `${scsiLike(c) ? "scsi-cd" : "ide-cd"},drive=${id},${busFor(c, a)}${bootIndex}`);
    }
  }
  let nics = 0;
  m.nics.forEach((n, i) => {
    if (!n.enabled || n.attachment !== "nat") return;
    const net = n.natnet || "10.0.2.0/24";
    const fwd = n.natpf.map((r) => `,hostfwd=${r.proto}:${r.hostIp}:${r.hostPort}-${r.guestIp}:${r.guestPort}`).join("");
    const id = `nic${i + 1}`;
    args.push("-netdev", `user,id=${id},ipv6=off,net=${net}${fwd}`);
    args.push("-device", `${NIC_MODEL[n.adapter] ?? "e1000"},netdev=${id},mac=${n.mac.replace(/(..)(?!$)/g, "$1:")}`);
    if (i === 0 && needsNatFilter(n) && paths.natFilter) {
      // Frames the guest sends pass through the VM process, which drops what VirtualBox 7 drops.
      args.push("-chardev", `socket,id=${id}out,path=${paths.natFilter.outPath}`, "-chardev", `socket,id=${id}in,path=${paths.natFilter.inPath}`);
      args.push("-object", `filter-redirector,id=${id}lo,netdev=${id},queue=rx,outdev=${id}out,indev=${id}in`);
    }
    nics++;
  });
  if (nics === 0) args.push("-nic", "none");
  return args;
}

/** The alias address the NAT filter of NIC 1 guards (the double filters NIC 1 only). */
export const natAlias = (n) => aliasAddress(n.natnet || "10.0.2.0/24");

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
