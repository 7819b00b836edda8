// TEST DOUBLE — not vCenter. What vcsim 0.24.2 lacks in the content library: GET /rest/com/vmware/content/library/item/storage
// ?library_item_id=<id> (vCenter's Library.Item.Storage.list, which Packer's "Library/Item" ISO
// paths and vmkiln's source.iso.content_library read). The simulator keeps an item's files at
// <datastore local path>/contentlib-<library id>/<item id>/<file name> and sets a datastore's
// summary.url to that same local path, so each storage URI here is summary.url + the path below it
// — the shape a real vCenter answers (ds:///vmfs/volumes/<uuid>/contentlib-…), resolved the same way.
//
// The item, its library and its files are read through the simulator's own REST handlers (with the
// caller's session, so an unauthenticated call fails as it would there); only the datastore comes
// from the simulator's object map. The /api flavour (GET /api/content/library/item/{id}/storage,
// api.go) answers the same list unwrapped.
package main

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const libraryItemStoragePath = "/rest/com/vmware/content/library/item/storage"

type storageInfo struct {
	Name           string            `json:"name"`
	StorageBacking map[string]string `json:"storage_backing"`
	StorageURIs    []string          `json:"storage_uris"`
	ChecksumInfo   map[string]string `json:"checksum_info,omitempty"`
	Size           int64             `json:"size"`
	Cached         bool              `json:"cached"`
	Version        string            `json:"version"`
}

// restGet asks the simulator's REST handler for path with the caller's credentials; the "value".
func (s *shim) restGet(r *http.Request, p string, into interface{}) int {
	req := httptest.NewRequest(http.MethodGet, p, nil)
	req.Header = r.Header.Clone()
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return rec.Code
	}
	var body struct {
		Value json.RawMessage `json:"value"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &body) != nil || json.Unmarshal(body.Value, into) != nil {
		return http.StatusInternalServerError
	}
	return http.StatusOK
}

// libraryItemStorage answers the storage list of item `id`, inside {"value": …} when wrapped (/rest).
func (s *shim) libraryItemStorage(w http.ResponseWriter, r *http.Request, id string, wrapped bool) {
	fail := func(code int) {
		if wrapped {
			w.WriteHeader(code)
		} else {
			apiError(w, code, nil)
		}
	}
	var item struct {
		LibraryID string `json:"library_id"`
	}
	if code := s.restGet(r, "/rest/com/vmware/content/library/item/id:"+url.PathEscape(id), &item); code != http.StatusOK {
		fail(code)
		return
	}
	var lib struct {
		Storage []struct {
			DatastoreID string `json:"datastore_id"`
			Type        string `json:"type"`
		} `json:"storage_backings"`
	}
	if code := s.restGet(r, "/rest/com/vmware/content/library/id:"+url.PathEscape(item.LibraryID), &lib); code != http.StatusOK || len(lib.Storage) == 0 {
		fail(http.StatusInternalServerError)
		return
	}
	var files []struct {
		Name    string `json:"name"`
		Size    int64  `json:"size"`
		Version string `json:"version"`
	}
	if code := s.restGet(r, "/rest/com/vmware/content/library/item/file?library_item_id="+url.QueryEscape(id), &files); code != http.StatusOK {
		fail(code)
		return
	}
	dsID := lib.Storage[0].DatastoreID
	ds, _ := simulator.Map.Get(types.ManagedObjectReference{Type: "Datastore", Value: dsID}).(*simulator.Datastore)
	if ds == nil {
		fail(http.StatusInternalServerError)
		return
	}
	var summaryURL, localPath string
	simulator.Map.WithLock(ds, func() {
		summaryURL = ds.Summary.Url
		localPath = ds.Info.GetDatastoreInfo().Url
	})
	rel := path.Join("contentlib-"+item.LibraryID, id)
	out := []storageInfo{}
	for _, f := range files {
		info := storageInfo{
			Name:           f.Name,
			StorageBacking: map[string]string{"type": "DATASTORE", "datastore_id": dsID},
			StorageURIs:    []string{strings.TrimSuffix(summaryURL, "/") + "/" + rel + "/" + url.PathEscape(f.Name)},
			Size:           f.Size,
			Cached:         true,
			Version:        f.Version,
		}
		// checksum_info as vCenter's answer carries one (algorithm + hex digest).
		if fh, err := os.Open(filepath.Join(localPath, rel, f.Name)); err == nil {
			h := sha1.New()
			_, _ = io.Copy(h, fh)
			_ = fh.Close()
			info.ChecksumInfo = map[string]string{"algorithm": "SHA1", "checksum": hex.EncodeToString(h.Sum(nil))}
		}
		out = append(out, info)
	}
	if wrapped {
		writeJSON(w, map[string]interface{}{"value": out})
	} else {
		writeJSON(w, out)
	}
}
