// TEST TOOL — checks a VMDK with govmomi's own VMDK reader: vmdk.Import (Debian's govmomi 0.24.2,
// vmdk/import.go) reads the sparse extent header (magic KDMV, the compressed-grains flag that marks
// streamOptimized, the capacity that becomes the OVF disk's ovf:capacity), builds an import spec
// from it and uploads the file through an NFC import lease, against an in-process vcsim ESXi inventory.
// This is the path `govc import.vmdk` takes, and what vSphere's clients check before an upload.
//
// Usage: vmdkcheck FILE.vmdk → one JSON line {"ok":true}, or {"ok":false,"error":"…"} and exit 1. govmomi 0.24.2's reader checks the
// header only (vmdk/import.go stat); the grains are checked by qemu-img in the same test.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vmdk"
)

type result struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: vmdkcheck FILE.vmdk")
		os.Exit(2)
	}
	r, err := check(os.Args[1])
	if err != nil {
		r = result{OK: false, Error: err.Error()}
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
	if !r.OK {
		os.Exit(1)
	}
}

func check(file string) (result, error) {
	ctx := context.Background()
	// A standalone ESXi inventory: one host, one pool, one datastore (nothing to choose between).
	model := simulator.ESX()
	defer model.Remove()
	if err := model.Create(); err != nil {
		return result{}, err
	}
	// TLS: the NFC upload URL the lease hands out is https whatever the server speaks.
	model.Service.TLS = new(tls.Config)
	server := model.Service.NewServer()
	defer server.Close()
	c, err := govmomi.NewClient(ctx, server.URL, true)
	if err != nil {
		return result{}, err
	}
	finder := find.NewFinder(c.Client, false)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return result{}, err
	}
	finder.SetDatacenter(dc)
	ds, err := finder.DefaultDatastore(ctx)
	if err != nil {
		return result{}, err
	}
	pool, err := finder.DefaultResourcePool(ctx)
	if err != nil {
		return result{}, err
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return result{}, err
	}
	params := vmdk.ImportParams{Datacenter: dc, Pool: pool, Folder: folders.VmFolder}
	if err := vmdk.Import(ctx, c.Client, file, ds, params); err != nil {
		return result{}, err
	}
	// vcsim's Destroy removes the VM's folder with the uploaded disk (vSphere keeps a detached
	// disk), so the upload's byte count is all we can observe after: vcsim logs it on stderr.
	return result{OK: true}, nil
}
