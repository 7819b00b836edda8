// vcsim for vmkiln's vSphere tests, built from Debian's govmomi 0.24.2 in GOPATH mode (Debian ships
// no vcsim program). It starts the simulator's default vCenter inventory on 127.0.0.1 with a
// 2048-bit certificate given on the command line (the built-in one is 1024-bit, which Debian's
// OpenSSL rejects), and puts shim.go in front of /sdk for the methods 0.24.2 lacks.
//
// Prints one JSON line {"url": ..., "datastore": ...} on stdout when ready; exits on SIGTERM/SIGINT,
// removing the simulator's temporary datastore directories.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator" // registers the /rest endpoints (session, content library)
	"github.com/vmware/govmomi/vim25/types"
)

func main() {
	listen := flag.String("l", "127.0.0.1:0", "listen address")
	certFile := flag.String("tlscert", "", "PEM certificate (required)")
	keyFile := flag.String("tlskey", "", "PEM private key (required)")
	username := flag.String("username", "", "require this login user (any non-empty one when empty)")
	password := flag.String("password", "", "require this login password")
	flag.Parse()
	if *certFile == "" || *keyFile == "" {
		log.Fatal("-tlscert and -tlskey are required")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatalf("loading the TLS key pair: %s", err)
	}

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		log.Fatalf("creating the inventory: %s", err)
	}
	defer model.Remove()

	u := &url.URL{Host: *listen}
	if *username != "" {
		u.User = url.UserPassword(*username, *password)
	}
	model.Service.Listen = u
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	model.Service.RegisterEndpoints = true
	server := model.Service.NewServer()

	sh := newShim(server.Config.Handler)
	defer sh.cleanup()
	server.Config.Handler = sh

	datastore := ""
	for _, ref := range simulator.Map.All("Datastore") {
		ds := simulator.Map.Get(ref.Reference()).(*simulator.Datastore)
		datastore = ds.Info.GetDatastoreInfo().Url
		break
	}
	ready, _ := json.Marshal(map[string]string{
		"url":       fmt.Sprintf("https://%s/sdk", server.Listener.Addr().String()),
		"datastore": datastore,
	})
	fmt.Println(string(ready))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	server.Close()
}

// vmByRef returns the simulator's VM object for a moref, or nil.
func vmByRef(ref types.ManagedObjectReference) *simulator.VirtualMachine {
	vm, _ := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	return vm
}
