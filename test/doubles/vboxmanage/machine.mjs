// TEST DOUBLE of VBoxManage (not VirtualBox): a registered machine as the double keeps it in its
// state file, with the defaults VirtualBox gives a new machine.
//
// Defaults followed (VirtualBox 7.0.18 / 6.1.38 sources):
//   - Machine::init → NetworkAdapter::i_applyDefaults (src/VBox/Main/src-server/NetworkAdapterImpl.cpp):
//     with an OS type, adapter 1 is enabled, attached to NAT, given a MAC; every adapter is of the OS
//     type's default kind (82540EM for the Linux types) with its cable connected;
//   - NATEngine::i_applyDefaults (NATEngineImpl.cpp, 7.0 only): localhost-reachable off for new
//     machines; a 6.1 NAT always reaches the host's loopback (the engine has no such setting);
//   - 8 network adapters on the default PIIX3 chipset (Global::getMaxNetworkAdapters);
//   - boot order floppy, dvd, disk, none; BIOS firmware; 128 MB, 1 CPU when no OS type says more.
import { randomBytes } from "node:crypto";

export const MAX_NICS = 8;

/** VirtualBox MACs start with 08:00:27 (Host::i_generateMACAddress uses Oracle's prefix). */
export function generateMac() {
  return `080027${randomBytes(3).toString("hex").toUpperCase()}`;
}

export function newNic(slot, { osType, major }) {
  const first = slot === 0 && osType !== undefined;
  return {
    enabled: first,
    attachment: first ? "nat" : "null",
    adapter: "82540EM",
    cable: true,
    mac: first ? generateMac() : generateMac(),
    natpf: [],
    natnet: "",
    // 6.1 has no setting; its NAT always reaches the host's loopback (recorded as true).
    localhostReachable: major === "6.1",
  };
}

export function newMachine({ uuid, name, ostype, basefolder, folder, settingsFile, major }) {
  return {
    uuid,
    name,
    ostype: ostype ?? "Other",
    description: "",
    groups: ["/"],
    basefolder,
    folder,
    settingsFile,
    memory: 128,
    cpus: 1,
    vram: 8,
    firmware: "BIOS",
    acpi: true,
    ioapic: false,
    pae: false,
    longmode: true,
    hwvirtex: true,
    triplefaultreset: false,
    rtcuseutc: false,
    graphicscontroller: "VBoxVGA",
    chipset: "piix3",
    boot: ["floppy", "dvd", "disk", "none"],
    audio: { enabled: true, driver: "default" },
    nics: Array.from({ length: MAX_NICS }, (_, i) => newNic(i, { osType: ostype, major })),
    controllers: [],
    attachments: [],
    other: {},
    state: "poweroff",
    stateChangeTime: nowIso(),
    pid: null,
    scancodes: [],
    guestproperties: {},
  };
}

export function nowIso() {
  // VirtualBox prints nanoseconds: 2019-05-29T17:58:48.335000000
  return new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000000");
}

/** The machine's NIC 1 NAT rules etc., for code that only cares about adapter 1. */
export const nic1 = (m) => m.nics[0];
