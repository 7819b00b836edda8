// The HTTP shim in front of vcsim's /sdk: answers the SOAP methods govmomi 0.24.2's simulator lacks
// and passes everything else through unchanged.
//   PutUsbScanCodes  records each call's key events; GET /_test/scancodes?vm=<moref> returns them.
//   ExportVm         converts each of the VM's disks (the datastore file its backing names) to a
//                    streamOptimized VMDK with qemu-img, as vSphere serves it, and returns an
//                    HttpNfcLease whose device URLs use "*" for the host, as vSphere does.
//   HttpNfcLeaseProgress/Complete/Abort on those leases are recorded (GET /_test/leases) and then
//                    passed to the simulator's own lease object.
//   GET /rest/com/vmware/content/library/item/storage  a content-library item's files on their
//                    datastore (library_storage.go).
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type keyEvent struct {
	UsbHidCode int32           `json:"usbHidCode"`
	Modifiers  map[string]bool `json:"modifiers"`
}

type leaseRecord struct {
	VM       string            `json:"vm"`
	Files    map[string]string `json:"-"`
	Progress []int32           `json:"progress"`
	State    string            `json:"state"` // ready, done, aborted
}

type shim struct {
	next    http.Handler
	mu      sync.Mutex
	keys    map[string][]map[string][]keyEvent // vm moref -> calls -> {"keyEvents": [...]}
	leases  map[string]*leaseRecord            // lease moref -> record
	tempDir string
	counter int
}

func newShim(next http.Handler) *shim {
	dir, err := os.MkdirTemp("", "vcsim-shim-")
	if err != nil {
		log.Fatal(err)
	}
	return &shim{next: next, keys: map[string][]map[string][]keyEvent{}, leases: map[string]*leaseRecord{}, tempDir: dir}
}

func (s *shim) cleanup() { _ = os.RemoveAll(s.tempDir) }

func (s *shim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/_test/scancodes":
		s.mu.Lock()
		defer s.mu.Unlock()
		calls := s.keys[r.URL.Query().Get("vm")]
		if calls == nil {
			calls = []map[string][]keyEvent{}
		}
		writeJSON(w, calls)
		return
	case r.URL.Path == "/_test/leases":
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJSON(w, s.leases)
		return
	case strings.HasPrefix(r.URL.Path, "/nfc/") && s.serveLeaseFile(w, r):
		return
	case r.URL.Path == libraryItemStoragePath && r.Method == http.MethodGet:
		s.libraryItemStorage(w, r)
		return
	case r.URL.Path == "/sdk" && r.Method == http.MethodPost:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		method, err := simulator.UnmarshalBody(types.TypeFunc(), body)
		if err == nil && s.handle(w, method) {
			return
		}
	}
	s.next.ServeHTTP(w, r)
}

// handle answers the methods the shim owns; false passes the request to the simulator.
func (s *shim) handle(w http.ResponseWriter, m *simulator.Method) bool {
	switch req := m.Body.(type) {
	case *types.PutUsbScanCodes:
		if vmByRef(req.This) == nil {
			writeFault(w, "ManagedObjectNotFound", fmt.Sprintf("<obj type=%q>%s</obj>", req.This.Type, req.This.Value))
			return true
		}
		var events []keyEvent
		for _, e := range req.Spec.KeyEvents {
			mods := map[string]bool{}
			if md := e.Modifiers; md != nil {
				set := func(name string, v *bool) {
					if v != nil && *v {
						mods[name] = true
					}
				}
				set("leftControl", md.LeftControl)
				set("leftShift", md.LeftShift)
				set("leftAlt", md.LeftAlt)
				set("leftGui", md.LeftGui)
				set("rightControl", md.RightControl)
				set("rightShift", md.RightShift)
				set("rightAlt", md.RightAlt)
				set("rightGui", md.RightGui)
			}
			events = append(events, keyEvent{UsbHidCode: e.UsbHidCode, Modifiers: mods})
		}
		s.mu.Lock()
		s.keys[req.This.Value] = append(s.keys[req.This.Value], map[string][]keyEvent{"keyEvents": events})
		s.mu.Unlock()
		writeResult(w, "PutUsbScanCodesResponse", fmt.Sprintf("<returnval>%d</returnval>", len(events)))
		return true
	case *types.ExportVm:
		s.exportVM(w, req.This)
		return true
	case *types.HttpNfcLeaseProgress:
		s.mu.Lock()
		if l := s.leases[req.This.Value]; l != nil {
			l.Progress = append(l.Progress, req.Percent)
		}
		s.mu.Unlock()
	case *types.HttpNfcLeaseComplete:
		s.endLease(req.This.Value, "done")
	case *types.HttpNfcLeaseAbort:
		s.endLease(req.This.Value, "aborted")
	}
	return false
}

func (s *shim) endLease(id string, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.leases[id]; l != nil {
		l.State = state
		for _, f := range l.Files {
			_ = os.Remove(f)
		}
	}
}

func (s *shim) exportVM(w http.ResponseWriter, ref types.ManagedObjectReference) {
	vm := vmByRef(ref)
	if vm == nil {
		writeFault(w, "ManagedObjectNotFound", fmt.Sprintf("<obj type=%q>%s</obj>", ref.Type, ref.Value))
		return
	}
	var state types.VirtualMachinePowerState
	var disks []string
	simulator.Map.WithLock(vm, func() {
		state = vm.Runtime.PowerState
		for _, d := range vm.Config.Hardware.Device {
			if disk, ok := d.(*types.VirtualDisk); ok {
				if b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					disks = append(disks, b.GetVirtualDeviceFileBackingInfo().FileName)
				}
			}
		}
	})
	// vSphere refuses to export a running VM.
	if state != types.VirtualMachinePowerStatePoweredOff {
		writeFault(w, "InvalidPowerState", fmt.Sprintf("<requestedState>poweredOff</requestedState><existingState>%s</existingState>", state))
		return
	}
	s.mu.Lock()
	s.counter++
	id := fmt.Sprintf("shimlease-%d", s.counter)
	s.mu.Unlock()

	rec := &leaseRecord{VM: ref.Value, Files: map[string]string{}, Progress: []int32{}, State: "ready"}
	var urls []types.HttpNfcLeaseDeviceUrl
	var capacityKB int64
	for i, name := range disks {
		src, err := datastorePath(name)
		if err != nil {
			writeFault(w, "FileNotFound", fmt.Sprintf("<file>%s</file>", html.EscapeString(name)))
			return
		}
		target := fmt.Sprintf("disk-%d.vmdk", i)
		dst := filepath.Join(s.tempDir, id+"-"+target)
		out, err := exec.Command("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", src, dst).CombinedOutput()
		if err != nil {
			writeFault(w, "SystemError", fmt.Sprintf("<reason>%s</reason>", html.EscapeString(fmt.Sprintf("qemu-img convert %s: %s: %s", src, err, out))))
			return
		}
		st, _ := os.Stat(dst)
		info, _ := exec.Command("qemu-img", "info", "--output=json", dst).Output()
		var parsed struct {
			VirtualSize int64 `json:"virtual-size"`
		}
		_ = json.Unmarshal(info, &parsed)
		capacityKB += parsed.VirtualSize / 1024
		rec.Files[target] = dst
		yes := true
		key := fmt.Sprintf("/%s/VirtualLsiLogicController0:%d", ref.Value, i)
		urls = append(urls, types.HttpNfcLeaseDeviceUrl{
			Key: key, ImportKey: key, Disk: &yes, TargetId: target, FileSize: st.Size(),
			Url: fmt.Sprintf("https://*/nfc/%s/%s", id, target),
		})
	}
	lease := &simulator.HttpNfcLease{HttpNfcLease: mo.HttpNfcLease{
		Info: &types.HttpNfcLeaseInfo{
			Lease: types.ManagedObjectReference{Type: "HttpNfcLease", Value: id}, Entity: ref, DeviceUrl: urls,
			TotalDiskCapacityInKB: capacityKB, LeaseTimeout: 300,
		},
		State: types.HttpNfcLeaseStateReady,
	}}
	lease.Self = types.ManagedObjectReference{Type: "HttpNfcLease", Value: id}
	simulator.Map.Put(lease)
	s.mu.Lock()
	s.leases[id] = rec
	s.mu.Unlock()
	writeResult(w, "ExportVmResponse", fmt.Sprintf(`<returnval type="HttpNfcLease">%s</returnval>`, id))
}

// serveLeaseFile serves GET /nfc/<lease>/<file> for the shim's own leases.
func (s *shim) serveLeaseFile(w http.ResponseWriter, r *http.Request) bool {
	p := strings.Split(r.URL.Path, "/")
	if len(p) != 4 {
		return false
	}
	s.mu.Lock()
	rec := s.leases[p[2]]
	s.mu.Unlock()
	if rec == nil {
		return false
	}
	file, ok := rec.Files[p[3]]
	if !ok || rec.State != "ready" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return true
	}
	http.ServeFile(w, r, file)
	return true
}

// datastorePath maps "[LocalDS_0] dir/file.vmdk" to the simulator's local file.
func datastorePath(name string) (string, error) {
	if !strings.HasPrefix(name, "[") || !strings.Contains(name, "]") {
		return "", fmt.Errorf("not a datastore path: %s", name)
	}
	end := strings.Index(name, "]")
	dsName, rel := name[1:end], strings.TrimSpace(name[end+1:])
	for _, ref := range simulator.Map.All("Datastore") {
		ds := simulator.Map.Get(ref.Reference()).(*simulator.Datastore)
		if ds.Name == dsName {
			return filepath.Join(ds.Info.GetDatastoreInfo().Url, rel), nil
		}
	}
	return "", fmt.Errorf("no datastore %s", dsName)
}

func writeJSON(w http.ResponseWriter, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

const envelopeStart = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>`
const envelopeEnd = `</soapenv:Body></soapenv:Envelope>`

func writeResult(w http.ResponseWriter, element string, inner string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, `%s<%s xmlns="urn:vim25">%s</%s>%s`, envelopeStart, element, inner, element, envelopeEnd)
}

// writeFault answers like vSphere: an empty faultstring and the fault type in detail.
func writeFault(w http.ResponseWriter, fault string, inner string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `%s<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring></faultstring><detail><%sFault xmlns="urn:vim25" xsi:type="%s">%s</%sFault></detail></soapenv:Fault>%s`,
		envelopeStart, fault, fault, inner, fault, envelopeEnd)
}
