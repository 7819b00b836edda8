// TEST DOUBLE of VBoxManage (not VirtualBox): the option table of `VBoxManage modifyvm`, per version,
// as g_aModifyVMOptions in src/VBox/Frontends/VBoxManage/VBoxManageModifyVM.cpp defines it for a Linux
// host build (VBOX_WITH_* as Config.kmk sets them: no PCI passthrough, no shared-clipboard transfers,
// no vmnet). Read from VirtualBox 6.1.38 and 7.0.18; each line is the option's handler id, its value
// kind and every spelling that reaches that handler. Kinds: s string, b on|off, u uint32, i int32,
// l int64, n no value, x uint32 (hex), p uint32[:uint32] (hex); "#" after the kind: the option takes
// an index (--nic<1-N>, --natpf<1-N>, ...).
//
// 7.0 accepts every 6.1 spelling and adds dash-separated ones (OPT2 in VBoxManage.h: "--os-type" beside
// "--ostype") and new options, among them --nat-localhostreachable<N> (VirtualBox 7.0 switched NAT
// access to the host's loopback off by default). 6.1 has no such option: `modifyvm --nat-localhostreachable1
// on` fails there with "Unknown option". Note the 7.0 typo "--idec-ontroller", kept as VirtualBox has it.

const V61 = `
NAME s --name
GROUPS s --groups
DESCRIPTION s --description
OSTYPE s --ostype
ICONFILE s --iconfile
MEMORY u --memory
PAGEFUSION b --pagefusion
VRAM u --vram
FIRMWARE s --firmware
ACPI b --acpi
IOAPIC b --ioapic
PAE b --pae
LONGMODE b --longmode
CPUID_PORTABILITY u --cpuid-portability-level
TFRESET b --triplefaultreset
APIC b --apic
X2APIC b --x2apic
PARAVIRTPROVIDER s --paravirtprovider
PARAVIRTDEBUG s --paravirtdebug
HWVIRTEX b --hwvirtex
NESTEDPAGING b --nestedpaging
LARGEPAGES b --largepages
VTXVPID b --vtxvpid
VTXUX b --vtxux
IBPB_ON_VM_EXIT b --ibpb-on-vm-exit
IBPB_ON_VM_ENTRY b --ibpb-on-vm-entry
SPEC_CTRL b --spec-ctrl
L1D_FLUSH_ON_SCHED b --l1d-flush-on-sched
L1D_FLUSH_ON_VM_ENTRY b --l1d-flush-on-vm-entry
MDS_CLEAR_ON_SCHED b --mds-clear-on-sched
MDS_CLEAR_ON_VM_ENTRY b --mds-clear-on-vm-entry
NESTED_HW_VIRT b --nested-hw-virt
SETCPUID p --cpuid-set
DELCPUID p --cpuid-remove
SETCPUID_OLD x --cpuidset
DELCPUID_OLD x --cpuidremove
DELALLCPUID n --cpuidremoveall
CPUS u --cpus
CPUHOTPLUG b --cpuhotplug
CPU_PROFILE s --cpu-profile
PLUGCPU u --plugcpu
UNPLUGCPU u --unplugcpu
CPU_EXECTUION_CAP u --cpuexecutioncap
RTCUSEUTC b --rtcuseutc
GRAPHICSCONTROLLER s --graphicscontroller
MONITORCOUNT u --monitorcount
ACCELERATE3D b --accelerate3d
ACCELERATE2DVIDEO b --accelerate2dvideo
BIOSLOGOFADEIN b --bioslogofadein
BIOSLOGOFADEOUT b --bioslogofadeout
BIOSLOGODISPLAYTIME u --bioslogodisplaytime
BIOSLOGOIMAGEPATH s --bioslogoimagepath
BIOSBOOTMENU s --biosbootmenu
BIOSSYSTEMTIMEOFFSET l --biossystemtimeoffset
BIOSAPIC s --biosapic
BIOSPXEDEBUG b --biospxedebug
SYSTEMUUIDLE b --system-uuid-le
BOOT s# --boot
HDA s --hda
HDB s --hdb
HDD s --hdd
IDECONTROLLER s --idecontroller
SATAPORTCOUNT u --sataportcount
SATAPORT s# --sataport
SATA s --sata
SCSIPORT s# --scsiport
SCSITYPE s --scsitype
SCSI s --scsi
DVDPASSTHROUGH s --dvdpassthrough
DVD s --dvd
FLOPPY s --floppy
NICTRACEFILE s# --nictracefile
NICTRACE b# --nictrace
NICPROPERTY s# --nicproperty
NICTYPE s# --nictype
NICSPEED u# --nicspeed
NICBOOTPRIO u# --nicbootprio
NICPROMISC s# --nicpromisc
NICBWGROUP s# --nicbandwidthgroup
NIC s# --nic
CABLECONNECTED b# --cableconnected
BRIDGEADAPTER s# --bridgeadapter
HOSTONLYADAPTER s# --hostonlyadapter
INTNET s# --intnet
GENERICDRV s# --nicgenericdrv
NATNETWORKNAME s# --nat-network --natnetwork
NATNET s# --natnet
NATBINDIP s# --natbindip
NATSETTINGS s# --natsettings
NATPF s# --natpf
NATALIASMODE s# --nataliasmode
NATTFTPPREFIX s# --nattftpprefix
NATTFTPFILE s# --nattftpfile
NATTFTPSERVER s# --nattftpserver
NATDNSPASSDOMAIN b# --natdnspassdomain
NATDNSPROXY b# --natdnsproxy
NATDNSHOSTRESOLVER b# --natdnshostresolver
MACADDRESS s# --macaddress
HIDPTR s --mouse
HIDKBD s --keyboard
UARTMODE s# --uartmode
UARTTYPE s# --uarttype
UART s# --uart
LPTMODE s# --lptmode
LPT s# --lpt
GUESTMEMORYBALLOON u --guestmemoryballoon
AUDIOCONTROLLER s --audiocontroller
AUDIOCODEC s --audiocodec
AUDIO s --audio
AUDIOIN b --audioin
AUDIOOUT b --audioout
CLIPBOARD_MODE s --clipboard-mode --clipboard
DRAGANDDROP s --draganddrop
VRDPPORT s --vrdpport
VRDPADDRESS s --vrdpaddress
VRDPAUTHTYPE s --vrdpauthtype
VRDPMULTICON b --vrdpmulticon
VRDPREUSECON b --vrdpreusecon
VRDPVIDEOCHANNEL b --vrdpvideochannel
VRDPVIDEOCHANNELQUALITY s --vrdpvideochannelquality
VRDP b --vrdp
VRDEPROPERTY s --vrdeproperty
VRDEPORT s --vrdeport
VRDEADDRESS s --vrdeaddress
VRDEAUTHTYPE s --vrdeauthtype
VRDEAUTHLIBRARY s --vrdeauthlibrary
VRDEMULTICON b --vrdemulticon
VRDEREUSECON b --vrdereusecon
VRDEVIDEOCHANNEL b --vrdevideochannel
VRDEVIDEOCHANNELQUALITY s --vrdevideochannelquality
VRDE_EXTPACK s --vrdeextpack
VRDE b --vrde
USBRENAME s --usbrename
USBXHCI b --usbxhci
USBEHCI b --usbehci
USBOHCI b --usbohci --usb
SNAPSHOTFOLDER s --snapshotfolder
TELEPORTER_ENABLED b --teleporter --teleporterenabled
TELEPORTER_PORT u --teleporterport
TELEPORTER_ADDRESS s --teleporteraddress
TELEPORTER_PASSWORD s --teleporterpassword
TELEPORTER_PASSWORD_FILE s --teleporterpasswordfile
TRACING_ENABLED b --tracing-enabled
TRACING_CONFIG s --tracing-config
TRACING_ALLOW_VM_ACCESS b --tracing-allow-vm-access
HARDWARE_UUID s --hardwareuuid
HPET b --hpet
IOCACHE b --iocache
IOCACHESIZE u --iocachesize
CHIPSET s --chipset
RECORDING b --recording
RECORDING_SCREENS s --recordingscreens
RECORDING_FILENAME s --recordingfile
RECORDING_MAXTIME i --recordingmaxtime
RECORDING_MAXSIZE i --recordingmaxsize
RECORDING_OPTIONS s --recordingopts --recordingoptions
RECORDING_VIDEO_RES s --recordingvideores --recordingvideoresolution
RECORDING_VIDEO_RATE u --recordingvideorate
RECORDING_VIDEO_FPS u --recordingvideofps
AUTOSTART_ENABLED b --autostart-enabled
AUTOSTART_DELAY u --autostart-delay
AUTOSTOP_TYPE s --autostop-type
USBCARDREADER b --usbcardreader
DEFAULTFRONTEND s --defaultfrontend
VMPROC_PRIORITY s --vm-process-priority
`;

// 7.0.18: added spellings and options (--cpuidset takes the optional-pair form the new --cpuid-set takes).
const V70_ADDED = `
OSTYPE s --os-type
ICONFILE s --icon-file
PAGEFUSION b --page-fusion
LONGMODE b --long-mode
TFRESET b --triple-fault-reset
PARAVIRTPROVIDER s --paravirt-provider
PARAVIRTDEBUG s --paravirt-debug
NESTEDPAGING b --nested-paging
LARGEPAGES b --large-pages
VTXVPID b --vtx-vpid
VTXUX b --vtx-ux
VIRT_VMSAVE_VMLOAD b --virt-vmsave-vmload
SETCPUID p --cpuidset
DELALLCPUID n --cpuid-remove-all
CPUHOTPLUG b --cpu-hotplug
PLUGCPU u --plug-cpu
UNPLUGCPU u --unplug-cpu
CPU_EXECTUION_CAP u --cpu-execution-cap
RTCUSEUTC b --rtc-use-utc
MONITORCOUNT u --monitor-count
ACCELERATE3D b --accelerate-3d
ACCELERATE2DVIDEO b --accelerate-2d-video
BIOSLOGOFADEIN b --bios-logo-fade-in
BIOSLOGOFADEOUT b --bios-logo-fade-out
BIOSLOGODISPLAYTIME u --bios-logo-display-time
BIOSLOGOIMAGEPATH s --bios-logo-image-path
BIOSBOOTMENU s --bios-boot-menu
BIOSSYSTEMTIMEOFFSET l --bios-system-time-offset
BIOSAPIC s --bios-apic
BIOSPXEDEBUG b --bios-pxe-debug
IDECONTROLLER s --idec-ontroller
SATAPORTCOUNT u --sata-port-count
SATAPORT s# --sata-port
SCSIPORT s# --scsi-port
SCSITYPE s --scsi-type
DVDPASSTHROUGH s --dvd-pass-through
NICTRACEFILE s# --nic-trace-file
NICTRACE b# --nic-trace
NICPROPERTY s# --nic-property
NICTYPE s# --nic-type
NICSPEED u# --nic-speed
NICBOOTPRIO u# --nic-boot-prio
NICPROMISC s# --nic-promisc
NICBWGROUP s# --nic-bandwidth-group
CABLECONNECTED b# --cable-connected
BRIDGEADAPTER s# --bridge-adapter
CLOUDNET s# --cloud-network --cloudnetwork
HOSTONLYADAPTER s# --host-only-adapter
GENERICDRV s# --nic-generic-drv
NATNET s# --nat-net
NATBINDIP s# --nat-bind-ip
NATSETTINGS s# --nat-settings
NATPF s# --nat-pf
NATALIASMODE s# --nat-alias-mode
NATTFTPPREFIX s# --nat-tftp-prefix
NATTFTPFILE s# --nat-tftp-file
NATTFTPSERVER s# --nat-tftp-server
NATDNSPASSDOMAIN b# --nat-dns-pass-domain
NATDNSPROXY b# --nat-dns-proxy
NATDNSHOSTRESOLVER b# --nat-dns-host-resolver
NATLOCALHOSTREACHABLE b# --nat-localhostreachable --natlocalhostreachable
MACADDRESS s# --mac-address
UARTMODE s# --uart-mode
UARTTYPE s# --uart-type
LPTMODE s# --lpt-mode
GUESTMEMORYBALLOON u --guest-memory-balloon
AUDIOCONTROLLER s --audio-controller
AUDIOCODEC s --audio-codec
AUDIODRIVER s --audio-driver --audiodriver
AUDIOENABLED b --audio-enabled --audioenabled
AUDIOIN b --audio-in
AUDIOOUT b --audio-out
DRAGANDDROP s --drag-and-drop
VRDPPORT s --vrdp-port
VRDPADDRESS s --vrdp-address
VRDPAUTHTYPE s --vrdp-auth-type
VRDPMULTICON b --vrdp-multi-con
VRDPREUSECON b --vrdp-reuse-con
VRDPVIDEOCHANNEL b --vrdp-video-channel
VRDPVIDEOCHANNELQUALITY s --vrdp-video-channel-quality
VRDEPROPERTY s --vrde-property
VRDEPORT s --vrde-port
VRDEADDRESS s --vrde-address
VRDEAUTHTYPE s --vrde-auth-type
VRDEAUTHLIBRARY s --vrde-auth-library
VRDEMULTICON b --vrde-multi-con
VRDEREUSECON b --vrde-reuse-con
VRDEVIDEOCHANNEL b --vrde-video-channel
VRDEVIDEOCHANNELQUALITY s --vrde-video-channel-quality
VRDE_EXTPACK s --vrde-extpack
USBRENAME s --usb-rename
USBXHCI b --usb-xhci
USBEHCI b --usb-ehci
USBOHCI b --usb-ohci
SNAPSHOTFOLDER s --snapshot-folder
TELEPORTER_ENABLED b --teleporter-enabled
TELEPORTER_PORT u --teleporter-port
TELEPORTER_ADDRESS s --teleporter-address
TELEPORTER_PASSWORD s --teleporter-password
TELEPORTER_PASSWORD_FILE s --teleporter-password-file
HARDWARE_UUID s --hardware-uuid
IOCACHESIZE u --iocache-size
IOMMU s --iommu
TPM_TYPE s --tpm-type
TPM_LOCATION s --tpm-location
RECORDING_SCREENS s --recording-screens
RECORDING_FILENAME s --recording-file
RECORDING_MAXTIME i --recording-max-time
RECORDING_MAXSIZE i --recording-max-size
RECORDING_OPTIONS s --recording-opts --recording-options
RECORDING_VIDEO_RES s --recording-video-res --recording-video-resolution
RECORDING_VIDEO_RATE u --recording-video-rate
RECORDING_VIDEO_FPS u --recording-video-fps
USBCARDREADER b --usb-card-reader
DEFAULTFRONTEND s --default-frontend
TESTING_ENABLED b --testing-enabled
TESTING_MMIO b --testing-mmio
TESTING_CFG_DWORD u# --testing-cfg-dword
GUEST_DEBUG_PROVIDER s --guest-debug-provider
GUEST_DEBUG_IO_PROVIDER s --guest-debug-io-provider
GUEST_DEBUG_ADDRESS s --guest-debug-address
GUEST_DEBUG_PORT u --guest-debug-port
`;

function parseTable(text) {
  const defs = [];
  for (const line of text.trim().split("\n")) {
    const [id, kind, ...names] = line.trim().split(/\s+/);
    for (const name of names) defs.push({ id, kind: kind.replace("#", ""), index: kind.endsWith("#"), name });
  }
  return defs;
}

const T61 = parseTable(V61);
const T70_ADDED = parseTable(V70_ADDED);
const T70 = [...T61.filter((d) => !T70_ADDED.some((x) => x.name === d.name)), ...T70_ADDED];

/** The modifyvm option definitions of VirtualBox `major` ("6.1" or "7.0"). */
export function modifyvmOptions(major) {
  return major === "6.1" ? T61 : T70;
}
