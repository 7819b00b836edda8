// TEST DOUBLE — not vCenter. OvfManager.CreateDescriptor, which vcsim lacks (govmomi 0.24.2 and
// its newest simulator/ovf_manager.go implement only CreateImportSpec). Every vSphere export
// client calls it after the disks are down: govc export.ovf (govmomi cli/export/ovf.go
// ovfx.Run: lease.Complete, then ovf.Manager.CreateDescriptor) and VMware's
// pyvmomi-community-samples export_vm.py, both passing CreateDescriptorParams.ovfFiles (deviceId =
// the lease's device key, path, size) so the References name the downloaded files.
//
// The descriptor describes the VM's hardware the way vSphere's own do (the vSphere-made
// descriptors in govmomi's ovf/fixtures/external, e.g. SimpleVm.ovf): OVF 1.0 envelope with the
// vmw namespace, References with the files the client names, DiskSection in bytes with the
// streamOptimized format, NetworkSection, OperatingSystemSection (vmw:osType = guestId),
// VirtualHardwareSection with vssd:VirtualSystemType = config.version, one rasd Item per CPU,
// memory (byte * 2^20), controller, disk, CD-ROM, floppy, NIC and video card (ovf:required="false"),
// rasd children in schema order, and vmw:Config firmware. Media are not included
// (includeImageFiles is not supported): a CD-ROM is described by its backing kind only, as vSphere
// does without includeImageFiles. An ovfFiles deviceId that names no disk of the VM is refused
// with InvalidArgument.
//
// Not modelled: vApps, snapshots (cdp.snapshot), exportOption, vApp properties, the vmw:Config keys
// of advanced settings, extraConfig.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"net/http"
	"reflect"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// descriptorRecord is what GET /_test/descriptors shows of a CreateDescriptor answer.
type descriptorRecord struct {
	VM       string          `json:"vm"`
	Name     string          `json:"name"`
	OvfFiles []ovfFileRecord `json:"ovfFiles"`
	SHA256   string          `json:"sha256"`
}

type ovfFileRecord struct {
	DeviceID string `json:"deviceId"`
	Path     string `json:"path"`
	Size     int64  `json:"size"`
}

// deviceKey is a disk's key in an export lease: /<vm>/<controller type><bus>:<unit>.
func deviceKey(vm types.ManagedObjectReference, devices []types.BaseVirtualDevice, disk *types.VirtualDisk) string {
	ctl := "VirtualController"
	bus := int32(0)
	for _, d := range devices {
		if d.GetVirtualDevice().Key == disk.ControllerKey {
			if c, ok := d.(types.BaseVirtualController); ok {
				ctl = reflect.TypeOf(d).Elem().Name()
				bus = c.GetVirtualController().BusNumber
			}
		}
	}
	unit := int32(0)
	if disk.UnitNumber != nil {
		unit = *disk.UnitNumber
	}
	return fmt.Sprintf("/%s/%s%d:%d", vm.Value, ctl, bus, unit)
}

func diskCapacity(d *types.VirtualDisk) int64 {
	if d.CapacityInBytes > 0 {
		return d.CapacityInBytes
	}
	return d.CapacityInKB * 1024
}

func (s *shim) createDescriptor(w http.ResponseWriter, req *types.CreateDescriptor) {
	vm := vmByRef(req.Obj)
	if vm == nil {
		if simulator.Map.Get(req.Obj) == nil {
			writeFault(w, "ManagedObjectNotFound", "", fmt.Sprintf("<obj type=%q>%s</obj>", req.Obj.Type, req.Obj.Value))
		} else {
			writeFault(w, "NotSupported", "The harness describes virtual machines only.", "")
		}
		return
	}
	var ovf string
	var bad string
	simulator.Map.WithLock(vm, func() { ovf, bad = describe(vm, req.Cdp) })
	if bad != "" {
		writeFault(w, "InvalidArgument", bad, "<invalidProperty>cdp.ovfFiles</invalidProperty>")
		return
	}
	sum := sha256.Sum256([]byte(ovf))
	s.mu.Lock()
	files := []ovfFileRecord{}
	for _, f := range req.Cdp.OvfFiles {
		files = append(files, ovfFileRecord{DeviceID: f.DeviceId, Path: f.Path, Size: f.Size})
	}
	s.descs = append(s.descs, descriptorRecord{VM: req.Obj.Value, Name: req.Cdp.Name, OvfFiles: files, SHA256: hex.EncodeToString(sum[:])})
	s.mu.Unlock()
	writeResult(w, "CreateDescriptorResponse", fmt.Sprintf("<returnval><ovfDescriptor>%s</ovfDescriptor></returnval>", html.EscapeString(ovf)))
}

const streamOptimizedFormat = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

// item is one rasd Item: its fields by rasd element name (written in schema order, which is
// alphabetical), and whether it is ovf:required="false".
type item struct {
	fields   map[string]string
	optional bool
}

var rasdOrder = []string{"Address", "AddressOnParent", "AllocationUnits", "AutomaticAllocation", "Connection", "Description", "ElementName", "HostResource", "InstanceID", "Parent", "ResourceSubType", "ResourceType", "VirtualQuantity"}

// controllerKinds: ResourceType and ResourceSubType of each controller class vSphere exports.
var controllerKinds = map[string][2]string{
	"VirtualIDEController":         {"5", ""},
	"VirtualLsiLogicController":    {"6", "lsilogic"},
	"VirtualLsiLogicSASController": {"6", "lsilogicsas"},
	"VirtualBusLogicController":    {"6", "buslogic"},
	"ParaVirtualSCSIController":    {"6", "VirtualSCSI"},
	"VirtualAHCIController":        {"20", "vmware.sata.ahci"},
	"VirtualNVMEController":        {"20", "vmware.nvme.controller"},
	"VirtualUSBController":         {"23", "vmware.usb.ehci"},
	"VirtualUSBXHCIController":     {"23", "vmware.usb.xhci"},
}

var nicKinds = map[string]string{
	"VirtualE1000": "E1000", "VirtualE1000e": "E1000e", "VirtualVmxnet3": "VmxNet3", "VirtualVmxnet2": "VmxNet2", "VirtualPCNet32": "PCNet32",
}

// describe builds the descriptor; a non-empty second value is why the ovfFiles are refused.
func describe(vm *simulator.VirtualMachine, cdp types.OvfCreateDescriptorParams) (string, string) {
	name := cdp.Name
	if name == "" {
		name = vm.Name
	}
	devices := vm.Config.Hardware.Device
	files := map[string]types.OvfFile{}
	for _, f := range cdp.OvfFiles {
		if _, dup := files[f.DeviceId]; dup {
			return "", fmt.Sprintf("two ovfFiles name device %s", f.DeviceId)
		}
		files[f.DeviceId] = f
	}
	used := map[string]bool{}

	var refs, disks, nets []string
	var items []item
	instance := 0
	add := func(it item) string {
		instance++
		it.fields["InstanceID"] = fmt.Sprint(instance)
		items = append(items, it)
		return fmt.Sprint(instance)
	}
	add(item{fields: map[string]string{"AllocationUnits": "hertz * 10^6", "Description": "Number of Virtual CPUs", "ElementName": fmt.Sprintf("%d virtual CPU(s)", vm.Config.Hardware.NumCPU), "ResourceType": "3", "VirtualQuantity": fmt.Sprint(vm.Config.Hardware.NumCPU)}})
	add(item{fields: map[string]string{"AllocationUnits": "byte * 2^20", "Description": "Memory Size", "ElementName": fmt.Sprintf("%dMB of memory", vm.Config.Hardware.MemoryMB), "ResourceType": "4", "VirtualQuantity": fmt.Sprint(vm.Config.Hardware.MemoryMB)}})

	parents := map[int32]string{} // device key -> InstanceID of its controller item
	counts := map[string]int{}
	label := func(d types.BaseVirtualDevice, kind string) string {
		counts[kind]++
		if info := d.GetVirtualDevice().DeviceInfo; info != nil && info.GetDescription().Label != "" {
			return info.GetDescription().Label
		}
		return fmt.Sprintf("%s %d", kind, counts[kind])
	}
	for _, d := range devices {
		class := reflect.TypeOf(d).Elem().Name()
		kind, ok := controllerKinds[class]
		if !ok {
			continue
		}
		f := map[string]string{"ElementName": label(d, "Controller"), "ResourceType": kind[0]}
		if kind[1] != "" {
			f["ResourceSubType"] = kind[1]
		}
		if c, ok := d.(types.BaseVirtualController); ok && kind[0] != "23" {
			f["Address"] = fmt.Sprint(c.GetVirtualController().BusNumber)
		}
		parents[d.GetVirtualDevice().Key] = add(item{fields: f})
	}
	child := func(d types.BaseVirtualDevice, f map[string]string) {
		v := d.GetVirtualDevice()
		if p, ok := parents[v.ControllerKey]; ok {
			f["Parent"] = p
		}
		if v.UnitNumber != nil {
			f["AddressOnParent"] = fmt.Sprint(*v.UnitNumber)
		}
		if c := v.Connectable; c != nil && f["ResourceType"] != "17" {
			f["AutomaticAllocation"] = fmt.Sprint(c.StartConnected)
		}
	}
	for _, d := range devices {
		disk, ok := d.(*types.VirtualDisk)
		if !ok {
			continue
		}
		id := fmt.Sprintf("vmdisk%d", len(disks)+1)
		attrs := fmt.Sprintf(`ovf:capacity="%d" ovf:capacityAllocationUnits="byte" ovf:diskId="%s"`, diskCapacity(disk), id)
		key := deviceKey(vm.Self, devices, disk)
		if f, ok := files[key]; ok {
			used[key] = true
			fileID := fmt.Sprintf("file%d", len(refs)+1)
			refs = append(refs, fmt.Sprintf(`<File ovf:href="%s" ovf:id="%s" ovf:size="%d"/>`, html.EscapeString(f.Path), fileID, f.Size))
			attrs += fmt.Sprintf(` ovf:fileRef="%s"`, fileID)
			if f.PopulatedSize > 0 {
				attrs += fmt.Sprintf(` ovf:populatedSize="%d"`, f.PopulatedSize)
			}
		}
		attrs += fmt.Sprintf(` ovf:format="%s"`, streamOptimizedFormat)
		disks = append(disks, fmt.Sprintf("<Disk %s/>", attrs))
		f := map[string]string{"ElementName": label(d, "Hard Disk"), "HostResource": "ovf:/disk/" + id, "ResourceType": "17"}
		child(d, f)
		add(item{fields: f})
	}
	for key := range files {
		if !used[key] {
			return "", fmt.Sprintf("ovfFiles names device %s, which is not a disk of %s", key, vm.Self.Value)
		}
	}
	for _, d := range devices {
		var f map[string]string
		switch dev := d.(type) {
		case *types.VirtualCdrom:
			sub := "vmware.cdrom.remotepassthrough"
			switch dev.Backing.(type) {
			case *types.VirtualCdromIsoBackingInfo:
				sub = "vmware.cdrom.iso"
			case *types.VirtualCdromAtapiBackingInfo:
				sub = "vmware.cdrom.atapi"
			case *types.VirtualCdromPassthroughBackingInfo:
				sub = "vmware.cdrom.passthrough"
			case *types.VirtualCdromRemoteAtapiBackingInfo:
				sub = "vmware.cdrom.remoteatapi"
			}
			f = map[string]string{"ElementName": label(d, "CD/DVD drive"), "ResourceSubType": sub, "ResourceType": "15"}
		case *types.VirtualFloppy:
			sub := "vmware.floppy.remotedevice"
			switch dev.Backing.(type) {
			case *types.VirtualFloppyImageBackingInfo:
				sub = "vmware.floppy.image"
			case *types.VirtualFloppyDeviceBackingInfo:
				sub = "vmware.floppy.device"
			}
			f = map[string]string{"ElementName": label(d, "Floppy drive"), "ResourceSubType": sub, "ResourceType": "14"}
		case types.BaseVirtualEthernetCard:
			network := networkName(dev.GetVirtualEthernetCard().Backing)
			f = map[string]string{"ElementName": label(d, "Network adapter"), "ResourceType": "10"}
			if sub, ok := nicKinds[reflect.TypeOf(d).Elem().Name()]; ok {
				f["ResourceSubType"] = sub
			}
			if network != "" {
				f["Connection"] = network
				seen := false
				for _, n := range nets {
					seen = seen || n == network
				}
				if !seen {
					nets = append(nets, network)
				}
			}
		}
		if f == nil {
			continue
		}
		child(d, f)
		if _, ok := f["Parent"]; !ok && f["ResourceType"] == "10" {
			delete(f, "AddressOnParent") // a NIC's unit number is on the PCI bus, which is not exported
		}
		add(item{fields: f})
	}
	for _, d := range devices {
		if _, ok := d.(*types.VirtualMachineVideoCard); ok {
			add(item{fields: map[string]string{"ElementName": label(d, "Video card"), "ResourceType": "24"}, optional: true})
		}
	}

	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` + "\n")
	b.WriteString("  <References>\n")
	for _, r := range refs {
		b.WriteString("    " + r + "\n")
	}
	b.WriteString("  </References>\n")
	b.WriteString("  <DiskSection>\n    <Info>Virtual disk information</Info>\n")
	for _, d := range disks {
		b.WriteString("    " + d + "\n")
	}
	b.WriteString("  </DiskSection>\n")
	if len(nets) > 0 {
		b.WriteString("  <NetworkSection>\n    <Info>The list of logical networks</Info>\n")
		for _, n := range nets {
			fmt.Fprintf(&b, "    <Network ovf:name=\"%s\">\n      <Description>The %s network</Description>\n    </Network>\n", html.EscapeString(n), html.EscapeString(n))
		}
		b.WriteString("  </NetworkSection>\n")
	}
	fmt.Fprintf(&b, "  <VirtualSystem ovf:id=\"%s\">\n    <Info>A virtual machine</Info>\n    <Name>%s</Name>\n", html.EscapeString(name), html.EscapeString(name))
	fmt.Fprintf(&b, "    <OperatingSystemSection ovf:id=\"%d\" vmw:osType=\"%s\">\n      <Info>The kind of installed guest operating system</Info>\n", cimOsID(vm.Config.GuestId), html.EscapeString(vm.Config.GuestId))
	if vm.Config.GuestFullName != "" {
		fmt.Fprintf(&b, "      <Description>%s</Description>\n", html.EscapeString(vm.Config.GuestFullName))
	}
	b.WriteString("    </OperatingSystemSection>\n")
	b.WriteString("    <VirtualHardwareSection>\n      <Info>Virtual hardware requirements</Info>\n      <System>\n")
	fmt.Fprintf(&b, "        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>\n        <vssd:InstanceID>0</vssd:InstanceID>\n        <vssd:VirtualSystemIdentifier>%s</vssd:VirtualSystemIdentifier>\n        <vssd:VirtualSystemType>%s</vssd:VirtualSystemType>\n      </System>\n", html.EscapeString(name), html.EscapeString(vm.Config.Version))
	for _, it := range items {
		if it.optional {
			b.WriteString("      <Item ovf:required=\"false\">\n")
		} else {
			b.WriteString("      <Item>\n")
		}
		for _, k := range rasdOrder {
			if v, ok := it.fields[k]; ok {
				fmt.Fprintf(&b, "        <rasd:%s>%s</rasd:%s>\n", k, html.EscapeString(v), k)
			}
		}
		b.WriteString("      </Item>\n")
	}
	firmware := vm.Config.Firmware
	if firmware == "" {
		firmware = "bios"
	}
	fmt.Fprintf(&b, "      <vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"%s\"/>\n", html.EscapeString(firmware))
	b.WriteString("    </VirtualHardwareSection>\n  </VirtualSystem>\n</Envelope>\n")
	return b.String(), ""
}

// networkName is the name a NIC's backing connects to (a standard port group, or the name of the
// distributed port group it names).
func networkName(backing types.BaseVirtualDeviceBackingInfo) string {
	switch b := backing.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		return b.DeviceName
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		ref := types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey}
		if pg, ok := simulator.Map.Get(ref).(*simulator.DistributedVirtualPortgroup); ok {
			return pg.Name
		}
	}
	return ""
}

// cimOsID is the OperatingSystemSection ovf:id (DMTF CIM_OperatingSystem OSType) for a guestId,
// from a small table of the guests vmkiln builds: 96 Debian 64-bit, 94 Ubuntu 64-bit, 80 RHEL
// 64-bit, 107 CentOS 64-bit, 101 Linux 64-bit, 102 Other 64-bit, 1 Other. vSphere maps every
// guestId; vmw:osType carries the guestId itself, which is what vSphere reads back.
func cimOsID(guest string) int {
	g := strings.ToLower(guest)
	is64 := strings.Contains(g, "64")
	switch {
	case strings.HasPrefix(g, "debian") && is64:
		return 96
	case strings.HasPrefix(g, "ubuntu") && is64:
		return 94
	case strings.HasPrefix(g, "rhel") && is64:
		return 80
	case strings.HasPrefix(g, "centos") && is64:
		return 107
	case strings.Contains(g, "linux") && is64:
		return 101
	case is64:
		return 102
	}
	return 1
}
