// TEST DOUBLE — not vCenter. vcsim for vmkiln's vSphere tests, built from Debian's govmomi 0.24.2
// in GOPATH mode (Debian ships no vcsim program). It starts the simulator's default vCenter
// inventory on 127.0.0.1 with a 2048-bit certificate given on the command line (the built-in one
// is 1024-bit, which Debian's OpenSSL rejects), and puts shim.go in front of it for what 0.24.2
// lacks or is lenient about (test/doubles/README.md "vcsim" lists each rule and its source).
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
	"time"

	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator" // registers the /rest endpoints (session, content library)
)

func main() {
	listen := flag.String("l", "127.0.0.1:0", "listen address")
	certFile := flag.String("tlscert", "", "PEM certificate (required)")
	keyFile := flag.String("tlskey", "", "PEM private key (required)")
	username := flag.String("username", "", "require this login user (any non-empty one when empty)")
	password := flag.String("password", "", "require this login password")
	leaseTimeout := flag.Duration("lease-timeout", 300*time.Second, "HttpNfcLeaseInfo.leaseTimeout (vSphere: 300s)")
	leaseInitDelay := flag.Duration("lease-init-delay", time.Second, "least time an export lease stays initializing")
	nfcRate := flag.Int64("nfc-bytes-per-second", 0, "pace NFC downloads (0: unpaced)")
	flag.Parse()
	if *leaseTimeout < time.Second {
		log.Fatal("-lease-timeout must be at least 1s (leaseTimeout is a number of seconds)")
	}
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

	sh := newShim(server.Config.Handler, config{leaseTimeout: *leaseTimeout, leaseInitDelay: *leaseInitDelay, nfcBytesPerSecond: *nfcRate})
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
