// TEST DOUBLE of VBoxManage (not VirtualBox): the guest OS type ↔ CIM OS id mapping VirtualBox's
// appliance code uses, for the Linux and generic types (a subset of g_aOsTypes in
// src/VBox/Main/src-server/ApplianceImpl.cpp and the CIMOSType_T values in
// src/VBox/Main/include/ovfreader.h). Import takes the first entry with the id
// (convertCIMOSType2VBoxOSType); export takes the entry of the type (convertVBoxOSType2CIMOSType).

const TABLE = [
  [0, "Other"],
  [1, "Other"],
  [36, "Linux"],
  [79, "RedHat"],
  [80, "RedHat_64"],
  [93, "Ubuntu"],
  [94, "Ubuntu_64"],
  [95, "Debian"],
  [96, "Debian_64"],
  [99, "Linux26"],
  [100, "Linux26_64"],
  [101, "Linux26_64"],
  [102, "Other_64"],
  [108, "Oracle"],
  [109, "Oracle_64"],
  [100, "Fedora_64"],
  [99, "Fedora"],
  [100, "ArchLinux_64"],
];

export function cimToVBox(cim) {
  return TABLE.find(([c]) => c === cim)?.[1] ?? (cim === 102 ? "Other_64" : "Other");
}

export function vboxToCim(osType, longMode = true) {
  const hit = TABLE.find(([, t]) => t.toLowerCase() === String(osType).toLowerCase());
  if (hit) return hit[0];
  return longMode ? 102 : 1;
}
