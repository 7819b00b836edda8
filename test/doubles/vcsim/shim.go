// TEST DOUBLE — not vCenter. The HTTP shim in front of govmomi 0.24.2's simulator (vcsim): it adds
// the methods vcsim lacks and makes strict what vcsim is lenient about, so the vSphere driver is
// tested against vCenter's rules. Every rule modelled here names its source in
// test/doubles/README.md ("vcsim") and in the comment where it is implemented.
//
//	PutUsbScanCodes   keys are recorded (GET /_test/scancodes?vm=<moref>); a VM that is not powered
//	                  on gets InvalidPowerState, as vSphere answers a console operation then.
//	ExportVm + HttpNfcLease*   lease.go: initializing → ready after a delay, downloads need the SOAP
//	                  session cookie, the lease times out without HttpNfcLeaseProgress.
//	OvfManager.CreateDescriptor   descriptor.go: the OVF descriptor from the VM's hardware.
//	/api (vCenter 7.0U2+)   api.go: the content-library endpoints the driver uses, answered by
//	                  vcsim's own /rest handlers behind the /api request and answer shapes.
//	GET /rest/com/vmware/content/library/item/storage   library_storage.go.
//
// Everything else passes through to the simulator unchanged.
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
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// config holds the knobs tests set on the command line (main.go).
type config struct {
	// leaseTimeout is HttpNfcLeaseInfo.leaseTimeout: vSphere's is 300 s; tests use a few seconds.
	leaseTimeout time.Duration
	// leaseInitDelay is the least time an export lease stays `initializing`.
	leaseInitDelay time.Duration
	// nfcBytesPerSecond paces NFC downloads (0: as fast as the loopback goes). A test knob, not a
	// vCenter behaviour: it makes a download outlast a short lease timeout. POST /_test/nfc changes it.
	nfcBytesPerSecond int64
}

type keyEvent struct {
	UsbHidCode int32           `json:"usbHidCode"`
	Modifiers  map[string]bool `json:"modifiers"`
}

type shim struct {
	next    http.Handler
	cfg     config
	mu      sync.Mutex
	keys    map[string][]map[string][]keyEvent // vm moref -> calls -> {"keyEvents": [...]}
	leases  map[string]*shimLease              // lease moref -> lease
	descs   []descriptorRecord                 // CreateDescriptor answers, in order
	rest    restState                          // api.go
	tempDir string
	counter int
}

func newShim(next http.Handler, cfg config) *shim {
	dir, err := os.MkdirTemp("", "vcsim-shim-")
	if err != nil {
		log.Fatal(err)
	}
	return &shim{
		next: next, cfg: cfg, keys: map[string][]map[string][]keyEvent{}, leases: map[string]*shimLease{}, descs: []descriptorRecord{}, tempDir: dir,
		rest: restState{flavors: map[string]bool{"rest": true}, log: []string{}},
	}
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
		writeJSON(w, s.leaseRecords())
		return
	case r.URL.Path == "/_test/descriptors":
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJSON(w, s.descs)
		return
	case r.URL.Path == "/_test/nfc":
		// POST ?bytesPerSecond=N changes the download pace for the downloads that start next.
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.Method == http.MethodPost {
			var n int64
			if _, err := fmt.Sscan(r.URL.Query().Get("bytesPerSecond"), &n); err != nil || n < 0 {
				http.Error(w, "bytesPerSecond=N (0: unpaced)", http.StatusBadRequest)
				return
			}
			s.cfg.nfcBytesPerSecond = n
		}
		writeJSON(w, map[string]int64{"bytesPerSecond": s.cfg.nfcBytesPerSecond})
		return
	case r.URL.Path == "/_test/rest":
		s.restControl(w, r)
		return
	case strings.HasPrefix(r.URL.Path, "/nfc/") && s.serveLeaseFile(w, r):
		return
	case strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/rest/"):
		s.serveREST(w, r)
		return
	case r.URL.Path == "/sdk" && r.Method == http.MethodPost:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		method, err := simulator.UnmarshalBody(types.TypeFunc(), body)
		if err == nil && s.handle(w, r, method) {
			return
		}
	}
	s.next.ServeHTTP(w, r)
}

// handle answers the methods the shim owns; false passes the request to the simulator.
func (s *shim) handle(w http.ResponseWriter, r *http.Request, m *simulator.Method) bool {
	switch req := m.Body.(type) {
	case *types.PutUsbScanCodes:
		s.putUsbScanCodes(w, req)
		return true
	case *types.ExportVm:
		s.exportVM(w, req.This)
		return true
	case *types.HttpNfcLeaseProgress:
		return s.leaseProgress(w, req)
	case *types.HttpNfcLeaseComplete:
		return s.leaseEnd(w, req.This, "HttpNfcLeaseComplete", "done")
	case *types.HttpNfcLeaseAbort:
		return s.leaseEnd(w, req.This, "HttpNfcLeaseAbort", "aborted")
	case *types.CreateDescriptor:
		s.createDescriptor(w, req)
		return true
	}
	return false
}

// putUsbScanCodes records the keys of a powered-on VM. A VM that is not powered on has no console
// to type into: vSphere refuses with InvalidPowerState (requestedState poweredOn), the fault it
// gives every operation that needs a running VM — vcsim's own VirtualMachine.ShutdownGuest
// (simulator/virtual_machine.go) answers the same fault for the same reason, with the message
// vSphere prints for it ("The attempted operation cannot be performed in the current state (Powered
// off)."). The API reference lists no fault of its own for PutUsbScanCodes (pyVmomi's
// _typeinfo_vim.py, generated from it, declares none), so the fault type is the convention above.
func (s *shim) putUsbScanCodes(w http.ResponseWriter, req *types.PutUsbScanCodes) {
	vm := vmByRef(req.This)
	if vm == nil {
		writeFault(w, "ManagedObjectNotFound", "", fmt.Sprintf("<obj type=%q>%s</obj>", req.This.Type, req.This.Value))
		return
	}
	var state types.VirtualMachinePowerState
	simulator.Map.WithLock(vm, func() { state = vm.Runtime.PowerState })
	if state != types.VirtualMachinePowerStatePoweredOn {
		writeInvalidPowerState(w, types.VirtualMachinePowerStatePoweredOn, state)
		return
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
}

// powerStateWords is how vSphere's InvalidPowerState message names a state.
var powerStateWords = map[types.VirtualMachinePowerState]string{
	types.VirtualMachinePowerStatePoweredOff: "Powered off",
	types.VirtualMachinePowerStatePoweredOn:  "Powered on",
	types.VirtualMachinePowerStateSuspended:  "Suspended",
}

func writeInvalidPowerState(w http.ResponseWriter, requested, existing types.VirtualMachinePowerState) {
	msg := fmt.Sprintf("The attempted operation cannot be performed in the current state (%s).", powerStateWords[existing])
	writeFault(w, "InvalidPowerState", msg, fmt.Sprintf("<requestedState>%s</requestedState><existingState>%s</existingState>", requested, existing))
}

// vmByRef returns the simulator's VM object for a moref, or nil.
func vmByRef(ref types.ManagedObjectReference) *simulator.VirtualMachine {
	vm, _ := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	return vm
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

// writeFault answers like vSphere: the fault type in <detail> (the faultstring is often empty).
func writeFault(w http.ResponseWriter, fault string, message string, inner string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `%s<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring><detail><%sFault xmlns="urn:vim25" xsi:type="%s">%s</%sFault></detail></soapenv:Fault>%s`,
		envelopeStart, html.EscapeString(message), fault, fault, inner, fault, envelopeEnd)
}
