// TEST DOUBLE — not vCenter. The vSphere Automation REST API's two flavours:
//
//	/rest  the legacy API (vCenter 6.5 – 8): vcsim 0.24.2 serves it (vapi/simulator/simulator.go
//	       New registers every handler under rest.Path); bodies name each parameter ({"spec": …})
//	       and answers come wrapped in {"value": …}.
//	/api   vCenter 7.0U2 and later: vcsim has none of it. The shim serves the content-library
//	       endpoints vmkiln uses by handing each request to vcsim's /rest handler for the same
//	       operation and translating the shapes, as the vSphere Automation API reference defines
//	       them (developer.broadcom.com/xapis/vsphere-automation-api, Content "Library", "Library
//	       Item", "Library Item Storage", vCenter "Ovf Library Item", CIS "Session"):
//	         POST   /api/session                               → 201, the token as a JSON string
//	         DELETE /api/session                               → 204
//	         POST   /api/content/library?action=find           body = the FindSpec itself
//	         POST   /api/content/library/item?action=find      body = the FindSpec itself
//	         GET    /api/content/library/item/{id}             → the ItemModel, unwrapped
//	         DELETE /api/content/library/item/{id}             → 204
//	         GET    /api/content/library/item/{id}/storage     → the Storage.Info list, unwrapped
//	         POST   /api/vcenter/ovf/library-item/{id}?action=filter|deploy   → the result, unwrapped
//	         POST   /api/vcenter/ovf/library-item              → the CreateResult, unwrapped
//	       Errors are {"error_type": "NOT_FOUND", "messages": [...]} (the /rest
//	       {"type": "com.vmware.vapi.std.errors.not_found", "value": {"messages": [...]}} renamed).
//
// Which flavours answer is a test switch (POST /_test/rest?serve=api|rest|api,rest; default rest,
// what vcsim and vCenter before 7.0U2 serve): a flavour switched off answers 404 to every path, as
// a vCenter without it does, so a client cannot fall back to it unnoticed. GET /_test/rest lists
// the REST requests received ("METHOD /path"), for tests to see which flavour a build used.
package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
)

type restState struct {
	flavors map[string]bool
	log     []string
}

func (s *shim) restControl(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method == http.MethodPost {
		flavors := map[string]bool{}
		for _, f := range strings.Split(r.URL.Query().Get("serve"), ",") {
			if f != "api" && f != "rest" {
				http.Error(w, "serve=api|rest|api,rest", http.StatusBadRequest)
				return
			}
			flavors[f] = true
		}
		s.rest.flavors = flavors
	}
	serving := []string{}
	for _, f := range []string{"api", "rest"} {
		if s.rest.flavors[f] {
			serving = append(serving, f)
		}
	}
	writeJSON(w, map[string]interface{}{"serving": serving, "requests": s.rest.log})
}

func (s *shim) serveREST(w http.ResponseWriter, r *http.Request) {
	flavor := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
	s.mu.Lock()
	s.rest.log = append(s.rest.log, r.Method+" "+r.URL.Path)
	on := s.rest.flavors[flavor]
	s.mu.Unlock()
	if !on {
		http.NotFound(w, r)
		return
	}
	if flavor == "rest" {
		if r.URL.Path == libraryItemStoragePath && r.Method == http.MethodGet {
			s.libraryItemStorage(w, r, r.URL.Query().Get("library_item_id"), true)
			return
		}
		s.next.ServeHTTP(w, r)
		return
	}
	s.serveAPI(w, r)
}

type apiRoute struct {
	method string
	path   *regexp.Regexp
	action string // the ?action= the route needs ("" for none)
	// rest gives the /rest path and body for the request (m: the path's submatches).
	rest func(m []string, body json.RawMessage) (string, interface{})
	// status of a successful answer, and whether it has a body.
	status int
}

var (
	apiLibraryFind = regexp.MustCompile(`^/api/content/library$`)
	apiItemFind    = regexp.MustCompile(`^/api/content/library/item$`)
	apiItem        = regexp.MustCompile(`^/api/content/library/item/([^/]+)$`)
	apiOvfItem     = regexp.MustCompile(`^/api/vcenter/ovf/library-item/([^/]+)$`)
	apiOvfCreate   = regexp.MustCompile(`^/api/vcenter/ovf/library-item$`)
)

var apiRoutes = []apiRoute{
	{http.MethodPost, apiLibraryFind, "find", func(_ []string, b json.RawMessage) (string, interface{}) {
		return "/rest/com/vmware/content/library?~action=find", map[string]json.RawMessage{"spec": b}
	}, http.StatusOK},
	{http.MethodPost, apiItemFind, "find", func(_ []string, b json.RawMessage) (string, interface{}) {
		return "/rest/com/vmware/content/library/item?~action=find", map[string]json.RawMessage{"spec": b}
	}, http.StatusOK},
	{http.MethodGet, apiItem, "", func(m []string, _ json.RawMessage) (string, interface{}) {
		return "/rest/com/vmware/content/library/item/id:" + url.PathEscape(m[1]), nil
	}, http.StatusOK},
	{http.MethodDelete, apiItem, "", func(m []string, _ json.RawMessage) (string, interface{}) {
		return "/rest/com/vmware/content/library/item/id:" + url.PathEscape(m[1]), nil
	}, http.StatusNoContent},
	{http.MethodPost, apiOvfItem, "filter", func(m []string, b json.RawMessage) (string, interface{}) {
		return "/rest/com/vmware/vcenter/ovf/library-item/id:" + url.PathEscape(m[1]) + "?~action=filter", b
	}, http.StatusOK},
	{http.MethodPost, apiOvfItem, "deploy", func(m []string, b json.RawMessage) (string, interface{}) {
		return "/rest/com/vmware/vcenter/ovf/library-item/id:" + url.PathEscape(m[1]) + "?~action=deploy", b
	}, http.StatusOK},
	{http.MethodPost, apiOvfCreate, "", func(_ []string, b json.RawMessage) (string, interface{}) {
		return "/rest/com/vmware/vcenter/ovf/library-item", b
	}, http.StatusOK},
}

var apiItemStorage = regexp.MustCompile(`^/api/content/library/item/([^/]+)/storage$`)

func (s *shim) serveAPI(w http.ResponseWriter, r *http.Request) {
	p, action := r.URL.Path, r.URL.Query().Get("action")
	switch {
	case p == "/api/session" && r.Method == http.MethodPost && action == "":
		code, value, raw := s.restCall(r, http.MethodPost, "/rest/com/vmware/cis/session", nil)
		if code != http.StatusOK {
			apiError(w, code, raw)
			return
		}
		apiAnswer(w, http.StatusCreated, value)
		return
	case p == "/api/session" && r.Method == http.MethodDelete:
		code, _, raw := s.restCall(r, http.MethodDelete, "/rest/com/vmware/cis/session", nil)
		if code != http.StatusOK {
			apiError(w, code, raw)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	case apiItemStorage.MatchString(p) && r.Method == http.MethodGet:
		s.libraryItemStorage(w, r, apiItemStorage.FindStringSubmatch(p)[1], false)
		return
	}
	for _, rt := range apiRoutes {
		m := rt.path.FindStringSubmatch(p)
		if m == nil || r.Method != rt.method || action != rt.action {
			continue
		}
		var body json.RawMessage
		if r.Method == http.MethodPost {
			raw, err := io.ReadAll(r.Body)
			if err != nil || !json.Valid(raw) {
				apiAnswer(w, http.StatusBadRequest, map[string]interface{}{"error_type": "INVALID_ARGUMENT", "messages": []interface{}{}})
				return
			}
			body = raw
		}
		restPath, restBody := rt.rest(m, body)
		code, value, raw := s.restCall(r, rt.method, restPath, restBody)
		if code != http.StatusOK {
			apiError(w, code, raw)
			return
		}
		if rt.status == http.StatusNoContent {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if value == nil && rt.action == "find" {
			value = json.RawMessage("[]") // /rest omits an empty "value"; /api answers []
		}
		apiAnswer(w, rt.status, value)
		return
	}
	apiAnswer(w, http.StatusNotFound, map[string]interface{}{"error_type": "NOT_FOUND", "messages": []interface{}{}})
}

// restCall sends one request to vcsim's /rest handler with the caller's headers (so its session
// and credentials count as they would there); returns the status, the unwrapped "value" and the
// raw answer.
func (s *shim) restCall(r *http.Request, method string, path string, body interface{}) (int, json.RawMessage, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header = r.Header.Clone()
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, req)
	raw := rec.Body.Bytes()
	var wrapped struct {
		Value json.RawMessage `json:"value"`
	}
	if rec.Code == http.StatusOK && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &wrapped); err != nil {
			return http.StatusInternalServerError, nil, raw
		}
	}
	return rec.Code, wrapped.Value, raw
}

func apiAnswer(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError answers a failed /rest call in the /api error shape.
func apiError(w http.ResponseWriter, status int, raw []byte) {
	var rest struct {
		Type  string `json:"type"`
		Value struct {
			Messages []interface{} `json:"messages"`
		} `json:"value"`
	}
	_ = json.Unmarshal(raw, &rest)
	kind := strings.ToUpper(rest.Type[strings.LastIndex(rest.Type, ".")+1:])
	if kind == "" {
		kind = map[int]string{
			http.StatusUnauthorized: "UNAUTHENTICATED", http.StatusForbidden: "UNAUTHORIZED", http.StatusNotFound: "NOT_FOUND",
			http.StatusBadRequest: "INVALID_ARGUMENT",
		}[status]
	}
	if kind == "" {
		kind = "ERROR"
	}
	messages := rest.Value.Messages
	if messages == nil {
		messages = []interface{}{}
	}
	apiAnswer(w, status, map[string]interface{}{"error_type": kind, "messages": messages})
}
