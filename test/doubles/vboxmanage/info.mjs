// TEST DOUBLE of VBoxManage (not VirtualBox): `showvminfo --machinereadable`, in the order and with
// the names showVMInfo() in src/VBox/Frontends/VBoxManage/VBoxManageInfo.cpp prints them (6.1.38 and
// 7.0.18), for what the double models: machine, CPU/firmware, boot order, state, graphics, storage
// controllers and attachments, network adapters with their NAT rules, and a fixed tail. Values are
// VirtualBox's own names (storageControllerTypeToName: "VirtioSCSI", "IntelAhci", "PIIX4"; graphics
// "vmsvga"; NIC types "82540EM", "virtio"), never the spelling an option was given in.
//
// Version differences modelled:
//   - 7.0 prints `encryption="disabled"` after the name; 6.1 has no such key;
//   - 7.0 prints `virtvmsavevmload` and `iommu`, 6.1 does not;
//   - the NVRAM file of an EFI machine is `NvramFile` in 7.0, `BIOS NVRAM File` in 6.1;
//   - per-attachment keys: 7.0 names them with port and unit ("SATA-nonrotational-0-0",
//     "IDE-IsEjected-1-0"); 6.1 leaves those out ("SATA-nonrotational", "IDE-IsEjected"), as the
//     source comment in showMediumAttachments says;
//   - strings are quoted with `"` and `\` escaped by a backslash; keys are quoted only for storage
//     attachments (outputMachineReadableStringWithFmtName with fQuoteName) or when they contain '='.
import { BUSES } from "./storage.mjs";

const OS_DESCRIPTIONS = {
  Debian_64: "Debian (64-bit)",
  Debian: "Debian (32-bit)",
  Ubuntu_64: "Ubuntu (64-bit)",
  RedHat_64: "Red Hat (64-bit)",
  Oracle_64: "Oracle (64-bit)",
  Fedora_64: "Fedora (64-bit)",
  Linux_64: "Other Linux (64-bit)",
  Linux26_64: "Linux 2.6 / 3.x / 4.x / 5.x (64-bit)",
  Other: "Other/Unknown",
  Other_64: "Other/Unknown (64-bit)",
};

const escape = (s) => String(s).replace(/\\/g, "\\\\").replace(/"/g, '\\"');
const q = (s) => `"${escape(s)}"`;
const onoff = (b) => q(b ? "on" : "off");

export function machineReadable(m, { major }) {
  const L = [];
  const str = (k, v) => L.push(`${k.includes("=") ? q(k) : k}=${q(v)}`);
  const num = (k, v) => L.push(`${k}=${v}`);
  const att = (k, v) => L.push(`${q(k)}=${q(v)}`);
  str("name", m.name);
  if (major === "7.0") str("encryption", "disabled");
  str("groups", (m.groups ?? ["/"]).join(","));
  str("ostype", OS_DESCRIPTIONS[m.ostype] ?? m.ostype);
  str("UUID", m.uuid);
  str("CfgFile", m.settingsFile);
  str("SnapFldr", `${m.folder}/Snapshots`);
  str("LogFldr", `${m.folder}/Logs`);
  str("hardwareuuid", m.uuid);
  num("memory", m.memory);
  str("pagefusion", "off");
  num("vram", m.vram);
  num("cpuexecutioncap", 100);
  str("hpet", "off");
  str("cpu-profile", "host");
  str("chipset", m.chipset ?? "piix3");
  str("firmware", m.firmware);
  num("cpus", m.cpus);
  str("pae", m.pae ? "on" : "off");
  str("longmode", m.longmode ? "on" : "off");
  str("triplefaultreset", m.triplefaultreset ? "on" : "off");
  str("apic", "on");
  str("x2apic", "on");
  str("nested-hw-virt", "off");
  num("cpuid-portability-level", 0);
  str("bootmenu", "messageandmenu");
  m.boot.forEach((b, i) => str(`boot${i + 1}`, b));
  str("acpi", m.acpi ? "on" : "off");
  str("ioapic", m.ioapic ? "on" : "off");
  str("biosapic", "apic");
  num("biossystemtimeoffset", 0);
  if (m.firmware.startsWith("EFI")) str(major === "7.0" ? "NvramFile" : "BIOS NVRAM File", `${m.folder}/${m.name}.nvram`);
  str("rtcuseutc", m.rtcuseutc ? "on" : "off");
  str("hwvirtex", m.hwvirtex ? "on" : "off");
  str("nestedpaging", "on");
  str("largepages", "off");
  str("vtxvpid", "on");
  str("vtxux", "on");
  if (major === "7.0") {
    str("virtvmsavevmload", "on");
    str("iommu", "none");
  }
  str("paravirtprovider", "default");
  str("effparavirtprovider", "kvm");
  str("VMState", m.state);
  str("VMStateChangeTime", m.stateChangeTime);
  str("graphicscontroller", m.graphicscontroller.toLowerCase());
  num("monitorcount", 1);
  str("accelerate3d", "off");
  str("accelerate2dvideo", "off");
  str("teleporterenabled", "off");
  num("teleporterport", 0);
  str("teleporteraddress", "");
  str("teleporterpassword", "");
  str("tracing-enabled", "off");
  str("tracing-allow-vm-access", "off");
  str("tracing-config", "");
  str("autostart-enabled", "off");
  num("autostart-delay", 0);
  str("defaultfrontend", "");
  str("vmprocpriority", "default");
  m.controllers.forEach((c, i) => {
    str(`storagecontrollername${i}`, c.name);
    str(`storagecontrollertype${i}`, c.type);
    L.push(`storagecontrollerinstance${i}="0"`);
    L.push(`storagecontrollermaxportcount${i}="${BUSES[c.busKey].maxPorts}"`);
    L.push(`storagecontrollerportcount${i}="${c.portCount}"`);
    L.push(`storagecontrollerbootable${i}="${c.bootable === false ? "off" : "on"}"`);
  });
  for (const c of m.controllers) {
    const devices = BUSES[c.busKey].devices;
    for (let p = 0; p < c.portCount; p++) {
      for (let d = 0; d < devices; d++) {
        const a = m.attachments.find((x) => x.controller === c.name && x.port === p && x.device === d);
        const tag = (t) => (major === "7.0" ? `${c.name}-${t}-${p}-${d}` : `${c.name}-${t}`);
        if (!a) {
          att(`${c.name}-${p}-${d}`, "none");
        } else if (a.medium === "emptydrive") {
          att(`${c.name}-${p}-${d}`, "emptydrive");
          if (a.type === "dvd") att(tag("IsEjected"), "off");
        } else {
          att(`${c.name}-${p}-${d}`, a.medium);
          att(`${c.name}-ImageUUID-${p}-${d}`, a.uuid ?? m.uuid);
          if (a.type === "dvd") {
            att(tag("tempeject"), "off");
            att(tag("IsEjected"), "off");
          }
          if (/^(sata|usb)$/i.test(c.name)) att(tag("hot-pluggable"), "off");
          att(tag("nonrotational"), a.nonrotational ? "on" : "off");
          att(tag("discard"), a.discard ? "on" : "off");
        }
      }
    }
  }
  m.nics.forEach((n, i) => {
    const k = i + 1;
    if (!n.enabled) {
      str(`nic${k}`, "none");
      return;
    }
    if (n.attachment === "nat") str(`natnet${k}`, n.natnet || "nat");
    str(`macaddress${k}`, n.mac);
    str(`cableconnected${k}`, n.cable ? "on" : "off");
    str(`nic${k}`, n.attachment);
    str(`nictype${k}`, n.adapter);
    str(`nicspeed${k}`, "0");
    if (n.attachment === "nat") {
      for (const [key, v] of [["mtu", 0], ["sockSnd", 64], ["sockRcv", 64], ["tcpWndSnd", 64], ["tcpWndRcv", 64]]) L.push(`${key}="${v}"`);
      n.natpf.forEach((r, j) => str(`Forwarding(${j})`, `${r.name},${r.proto},${r.hostIp},${r.hostPort},${r.guestIp},${r.guestPort}`));
    }
  });
  str("hidpointing", "ps2mouse");
  str("hidkeyboard", "ps2kbd");
  for (let u = 1; u <= 4; u++) str(`uart${u}`, "off");
  for (let l = 1; l <= 2; l++) str(`lpt${l}`, "off");
  str("audio", m.audio?.enabled ? m.audio.driver : "none");
  str("audio_out", "off");
  str("audio_in", "off");
  str("clipboard", "disabled");
  str("draganddrop", "disabled");
  if (m.state === "running") str("SessionName", m.sessionType ?? "headless");
  str("vrde", "off");
  str("usb", "off");
  str("ehci", "off");
  str("xhci", "off");
  str("recording_enabled", "off");
  if (m.description) str("description", m.description);
  num("GuestMemoryBalloon", 0);
  return L.join("\n") + "\n";
}

/** `showvminfo` without --machinereadable: the first lines (the double prints no more). */
export function humanReadable(m) {
  const state = { poweroff: "powered off", aborted: "aborted", gurumeditation: "guru meditation", running: "running", paused: "paused" }[m.state] ?? m.state;
  return `${"Name:".padEnd(28)} ${m.name}\n${"UUID:".padEnd(28)} ${m.uuid}\n${"State:".padEnd(28)} ${state} (since ${m.stateChangeTime})\n`;
}

export { onoff };
