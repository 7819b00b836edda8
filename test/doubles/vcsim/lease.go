// TEST DOUBLE — not vCenter. VirtualMachine.ExportVm and its HttpNfcLease, as strict as vSphere:
//
//   - The lease starts `initializing` and turns `ready` once the disks are prepared, at least
//     -lease-init-delay after ExportVm (vSphere API reference, HttpNfcLease: "Initializing: the
//     initial state … while the corresponding import/export task is preparing the objects"; govmomi's
//     newer simulator does the same: simulator/http_nfc_lease.go newHttpNfcLease, then ready()).
//     `info` is set only when ready ("The info property is only valid when the lease is in the ready
//     state").
//   - A ready lease that gets no HttpNfcLeaseProgress for info.leaseTimeout seconds times out: state
//     `error`, error = Timedout, its URLs stop serving and a download in flight is cut (API reference,
//     HttpNfcLease: "The client must call HttpNfcLeaseProgress periodically to keep the lease alive …
//     Failure to do so causes the lease to time out and enter the error state"; HttpNfcLeaseInfo
//     .leaseTimeout: "The client extends the lease by calling HttpNfcLeaseProgress before the timeout
//     has expired"). HttpNfcLeaseProgress, Complete and Abort on a timed-out lease fault with
//     Timedout, the fault pyVmomi's _typeinfo_vim.py (generated from the API) declares for the three.
//     vSphere's timeout is 300 s (govmomi simulator/http_nfc_lease.go ready()); -lease-timeout
//     shortens it for tests.
//   - Downloads need the SOAP session cookie (vmware_soap_session): a request without a live session
//     gets 401. vSphere's clients all send it with the disk GET — govmomi's vim25/soap/client.go
//     Client.DownloadRequest goes through the client's cookie jar, and VMware's
//     pyvmomi-community-samples export_vm.py download_device passes the session cookie — while
//     vcsim treats the URL as a bearer token (simulator/http_nfc_lease.go, the nfcLease comment).
//   - Device URLs use "*" for the host (HttpNfcLeaseDeviceUrl.url: the client substitutes the host it
//     connected to; govmomi simulator/http_nfc_lease.go leaseURL) and keys name the disk's controller
//     and unit, "/vm-42/VirtualLsiLogicController0:0", which CreateDescriptor's OvfFile.deviceId
//     names again (descriptor.go).
//   - Each disk is served as a streamOptimized VMDK (what vSphere's export serves) of the disk
//     device's capacity: qemu-img converts the datastore file the backing names, grown to the
//     device's capacity when a test put a smaller image there.
//   - After HttpNfcLeaseComplete or Abort the lease object is gone (govmomi
//     simulator/http_nfc_lease.go HttpNfcLeaseComplete removes it): later calls get
//     ManagedObjectNotFound.
//
// Not modelled: the VM being locked while the lease is held, HttpNfcLeaseGetManifest, uploads.
package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type shimLease struct {
	// The first field: the simulator's property collector reads the object through it
	// (simulator/property_collector.go getManagedObject takes an embedded mo type at field 0).
	mo.HttpNfcLease

	vm    types.ManagedObjectReference
	files map[string]string // targetId -> local file

	// Guarded by shim.mu.
	state      string // initializing, ready, done, aborted, timedout, error
	created    time.Time
	readyAt    time.Time
	lastSeen   time.Time
	progress   []int32
	keepAlives []float64 // seconds after ready of each HttpNfcLeaseProgress
	downloads  []downloadRecord
	cut        chan struct{} // closed when the lease leaves `ready`: downloads in flight end
}

type downloadRecord struct {
	File    string  `json:"file"`
	Status  int     `json:"status"`
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	Cut     bool    `json:"cut"`
}

// leaseRecord is what GET /_test/leases shows of a lease.
type leaseRecord struct {
	VM             string           `json:"vm"`
	State          string           `json:"state"`
	TimeoutSeconds float64          `json:"timeoutSeconds"`
	InitSeconds    float64          `json:"initSeconds"`
	Progress       []int32          `json:"progress"`
	KeepAlives     []float64        `json:"keepAlives"`
	Downloads      []downloadRecord `json:"downloads"`
}

func (s *shim) leaseRecords() map[string]leaseRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]leaseRecord{}
	for id, l := range s.leases {
		rec := leaseRecord{
			VM: l.vm.Value, State: l.state, TimeoutSeconds: s.cfg.leaseTimeout.Seconds(),
			Progress: append([]int32{}, l.progress...), KeepAlives: append([]float64{}, l.keepAlives...),
			Downloads: append([]downloadRecord{}, l.downloads...),
		}
		if !l.readyAt.IsZero() {
			rec.InitSeconds = l.readyAt.Sub(l.created).Seconds()
		}
		out[id] = rec
	}
	return out
}

// setMo changes the lease's managed-object fields under the lock the property collector reads with.
func (l *shimLease) setMo(f func(m *mo.HttpNfcLease)) {
	simulator.Map.WithLock(l.Self, func() { f(&l.HttpNfcLease) })
}

type exportDisk struct {
	src      string
	key      string
	capacity int64
}

func (s *shim) exportVM(w http.ResponseWriter, ref types.ManagedObjectReference) {
	vm := vmByRef(ref)
	if vm == nil {
		writeFault(w, "ManagedObjectNotFound", "", fmt.Sprintf("<obj type=%q>%s</obj>", ref.Type, ref.Value))
		return
	}
	var state types.VirtualMachinePowerState
	var disks []exportDisk
	var badPath string
	simulator.Map.WithLock(vm, func() {
		state = vm.Runtime.PowerState
		devices := vm.Config.Hardware.Device
		for _, d := range devices {
			disk, ok := d.(*types.VirtualDisk)
			if !ok {
				continue
			}
			b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
			if !ok {
				continue
			}
			name := b.GetVirtualDeviceFileBackingInfo().FileName
			src, err := datastorePath(name)
			if err != nil {
				badPath = name
				return
			}
			disks = append(disks, exportDisk{src: src, key: deviceKey(ref, devices, disk), capacity: diskCapacity(disk)})
		}
	})
	// vSphere exports only a powered-off VM (ExportVm declares InvalidPowerState).
	if state != types.VirtualMachinePowerStatePoweredOff {
		writeInvalidPowerState(w, types.VirtualMachinePowerStatePoweredOff, state)
		return
	}
	if badPath != "" {
		writeFault(w, "FileNotFound", "", fmt.Sprintf("<file>%s</file>", html.EscapeString(badPath)))
		return
	}
	s.mu.Lock()
	s.counter++
	id := fmt.Sprintf("shimlease-%d", s.counter)
	l := &shimLease{
		HttpNfcLease: mo.HttpNfcLease{State: types.HttpNfcLeaseStateInitializing},
		vm:           ref, files: map[string]string{}, state: "initializing", created: time.Now(),
		progress: []int32{}, keepAlives: []float64{}, downloads: []downloadRecord{}, cut: make(chan struct{}),
	}
	l.Self = types.ManagedObjectReference{Type: "HttpNfcLease", Value: id}
	s.leases[id] = l
	s.mu.Unlock()
	simulator.Map.Put(l)
	go s.prepareLease(l, disks)
	writeResult(w, "ExportVmResponse", fmt.Sprintf(`<returnval type="HttpNfcLease">%s</returnval>`, id))
}

// prepareLease converts the disks (the export task's preparation), then makes the lease ready.
func (s *shim) prepareLease(l *shimLease, disks []exportDisk) {
	var urls []types.HttpNfcLeaseDeviceUrl
	var capacityKB int64
	for i, d := range disks {
		target := fmt.Sprintf("disk-%d.vmdk", i)
		dst := filepath.Join(s.tempDir, l.Self.Value+"-"+target)
		size, err := streamOptimized(d.src, dst, d.capacity)
		if err != nil {
			s.failLease(l, err.Error())
			return
		}
		capacityKB += d.capacity / 1024
		l.files[target] = dst
		yes := true
		urls = append(urls, types.HttpNfcLeaseDeviceUrl{
			Key: d.key, ImportKey: d.key, Disk: &yes, TargetId: target, FileSize: size,
			Url: fmt.Sprintf("https://*/nfc/%s/%s", l.Self.Value, target),
		})
	}
	if wait := s.cfg.leaseInitDelay - time.Since(l.created); wait > 0 {
		time.Sleep(wait)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.state != "initializing" { // aborted while it was prepared
		l.removeFiles()
		return
	}
	l.state = "ready"
	l.readyAt = time.Now()
	l.lastSeen = l.readyAt
	l.setMo(func(m *mo.HttpNfcLease) {
		m.Info = &types.HttpNfcLeaseInfo{
			Lease: l.Self, Entity: l.vm, DeviceUrl: urls, TotalDiskCapacityInKB: capacityKB,
			LeaseTimeout: int32(s.cfg.leaseTimeout / time.Second),
		}
		m.InitializeProgress = 100
		m.State = types.HttpNfcLeaseStateReady
	})
	go s.watchLease(l)
}

func (s *shim) failLease(l *shimLease, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.state = "error"
	l.setMo(func(m *mo.HttpNfcLease) {
		m.State = types.HttpNfcLeaseStateError
		m.Error = &types.LocalizedMethodFault{Fault: &types.SystemError{Reason: reason}, LocalizedMessage: reason}
	})
	l.removeFiles()
}

// watchLease times the lease out when HttpNfcLeaseProgress stops coming.
func (s *shim) watchLease(l *shimLease) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		s.mu.Lock()
		if l.state != "ready" {
			s.mu.Unlock()
			return
		}
		if time.Since(l.lastSeen) > s.cfg.leaseTimeout {
			l.state = "timedout"
			l.setMo(func(m *mo.HttpNfcLease) {
				m.State = types.HttpNfcLeaseStateError
				m.Error = &types.LocalizedMethodFault{Fault: &types.Timedout{}, LocalizedMessage: "Operation timed out."}
			})
			close(l.cut)
			l.removeFiles()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

func (l *shimLease) removeFiles() {
	for _, f := range l.files {
		_ = os.Remove(f)
	}
}

func (s *shim) ownLease(ref types.ManagedObjectReference) *shimLease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leases[ref.Value]
}

// leaseFault answers a call on a lease that is not ready (true); false when it is ready.
func leaseFault(w http.ResponseWriter, l *shimLease) bool {
	switch l.state {
	case "ready":
		return false
	case "timedout":
		writeFault(w, "Timedout", "Operation timed out.", "")
	case "done", "aborted":
		writeFault(w, "ManagedObjectNotFound", "", fmt.Sprintf(`<obj type="HttpNfcLease">%s</obj>`, l.Self.Value))
	default: // initializing, error
		writeFault(w, "InvalidState", "The operation is not allowed in the current state.", "")
	}
	return true
}

func (s *shim) leaseProgress(w http.ResponseWriter, req *types.HttpNfcLeaseProgress) bool {
	l := s.ownLease(req.This)
	if l == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.state == "initializing" { // nothing to keep alive yet; the reference declares no fault for it
		writeResult(w, "HttpNfcLeaseProgressResponse", "")
		return true
	}
	if leaseFault(w, l) {
		return true
	}
	l.lastSeen = time.Now()
	l.progress = append(l.progress, req.Percent)
	l.keepAlives = append(l.keepAlives, l.lastSeen.Sub(l.readyAt).Seconds())
	l.setMo(func(m *mo.HttpNfcLease) { m.TransferProgress = req.Percent })
	writeResult(w, "HttpNfcLeaseProgressResponse", "")
	return true
}

// leaseEnd answers HttpNfcLeaseComplete (to "done") and HttpNfcLeaseAbort (to "aborted").
func (s *shim) leaseEnd(w http.ResponseWriter, ref types.ManagedObjectReference, method string, to string) bool {
	l := s.ownLease(ref)
	if l == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Abort also ends a lease still initializing; Complete needs a ready one.
	if !(to == "aborted" && l.state == "initializing") && leaseFault(w, l) {
		return true
	}
	if l.state == "ready" {
		close(l.cut)
	}
	l.state = to
	l.removeFiles()
	simulator.Map.Remove(l.Self)
	writeResult(w, method+"Response", "")
	return true
}

// serveLeaseFile serves GET /nfc/<lease>/<file> for the shim's own leases (false: not ours).
func (s *shim) serveLeaseFile(w http.ResponseWriter, r *http.Request) bool {
	p := strings.Split(r.URL.Path, "/")
	if len(p) != 4 {
		return false
	}
	s.mu.Lock()
	l := s.leases[p[2]]
	s.mu.Unlock()
	if l == nil {
		return false
	}
	rec := downloadRecord{File: p[3]}
	record := func() {
		s.mu.Lock()
		l.downloads = append(l.downloads, rec)
		s.mu.Unlock()
	}
	if !s.soapSessionValid(r) {
		rec.Status = http.StatusUnauthorized
		record()
		http.Error(w, "no valid vmware_soap_session cookie", http.StatusUnauthorized)
		return true
	}
	s.mu.Lock()
	file, ok := l.files[p[3]]
	ready := l.state == "ready"
	cut := l.cut
	rate := s.cfg.nfcBytesPerSecond
	s.mu.Unlock()
	if !ok || !ready {
		rec.Status = http.StatusNotFound
		record()
		http.NotFound(w, r)
		return true
	}
	if r.Method != http.MethodGet {
		rec.Status = http.StatusMethodNotAllowed
		record()
		w.WriteHeader(http.StatusMethodNotAllowed)
		return true
	}
	f, err := os.Open(file)
	if err != nil {
		rec.Status = http.StatusNotFound
		record()
		http.NotFound(w, r)
		return true
	}
	defer f.Close()
	st, _ := f.Stat()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(st.Size()))
	w.WriteHeader(http.StatusOK)
	rec.Status = http.StatusOK
	start := time.Now()
	buf := make([]byte, 256*1024)
	for {
		select {
		case <-cut:
			// The lease timed out or ended: the connection drops mid-body.
			rec.Cut = true
			rec.Seconds = time.Since(start).Seconds()
			record()
			panic(http.ErrAbortHandler)
		default:
		}
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				break
			}
			rec.Bytes += int64(n)
			if rate > 0 {
				due := start.Add(time.Duration(float64(rec.Bytes) / float64(rate) * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					select {
					case <-time.After(d):
					case <-cut:
					}
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			break
		}
	}
	rec.Seconds = time.Since(start).Seconds()
	record()
	return true
}

// soapSessionValid asks the simulator whether the request's vmware_soap_session cookie is a live
// session: SessionManager.currentSession is only readable within one.
func (s *shim) soapSessionValid(r *http.Request) bool {
	c, err := r.Cookie("vmware_soap_session")
	if err != nil || c.Value == "" {
		return false
	}
	si := simulator.Map.Get(types.ManagedObjectReference{Type: "ServiceInstance", Value: "ServiceInstance"}).(*simulator.ServiceInstance)
	pc, sm := si.Content.PropertyCollector, *si.Content.SessionManager
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>`+
		`<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">%s</_this><specSet><propSet><type>SessionManager</type><pathSet>currentSession</pathSet></propSet>`+
		`<objectSet><obj type="SessionManager">%s</obj></objectSet></specSet><options></options></RetrievePropertiesEx></soapenv:Body></soapenv:Envelope>`, pc.Value, sm.Value)
	req := httptest.NewRequest(http.MethodPost, "/sdk", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", "urn:vim25/6.5")
	req.AddCookie(&http.Cookie{Name: "vmware_soap_session", Value: c.Value})
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, req)
	return rec.Code == http.StatusOK && strings.Contains(rec.Body.String(), "<name>currentSession</name>")
}

// streamOptimized writes src (any format qemu-img reads) as a streamOptimized VMDK of at least
// `capacity` bytes and returns the file's size.
func streamOptimized(src, dst string, capacity int64) (int64, error) {
	info, err := exec.Command("qemu-img", "info", "--output=json", src).Output()
	if err != nil {
		return 0, fmt.Errorf("qemu-img info %s: %s", src, err)
	}
	var parsed struct {
		VirtualSize int64  `json:"virtual-size"`
		Format      string `json:"format"`
	}
	if err := json.Unmarshal(info, &parsed); err != nil {
		return 0, err
	}
	from := src
	if capacity > parsed.VirtualSize {
		// A qcow2 overlay of the device's size over the image: the export has the VM's capacity.
		from = dst + ".grow.qcow2"
		defer os.Remove(from)
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", parsed.Format, "-b", src, from, fmt.Sprint(capacity)).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("qemu-img create %s: %s: %s", from, err, out)
		}
	}
	if out, err := exec.Command("qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", from, dst).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("qemu-img convert %s: %s: %s", src, err, out)
	}
	st, err := os.Stat(dst)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
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
