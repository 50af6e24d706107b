package explorertest

// The binding feature's JSON API (same mux as api.go):
//
//	POST /api/devices/{pid}/{dn}/app-token  {"user"?:"alice","ttl"?:"10m"} -> 201 {"token","product_id",
//	                                        "device_name","user","expires_at"}: the token the app hands the
//	                                        device for app_bind_token (single use)
//	GET  /api/devices/{pid}/{dn}/binding    {"bound":false} or {"bound":true,"user","bound_at","via"}
//	POST /api/devices/{pid}/{dn}/bind       {"user":"alice"} binds from the cloud, pushes bind_device
//	POST /api/devices/{pid}/{dn}/unbind     {} unbinds from the cloud, pushes unbind_device
//
// The binding is also the "binding" section of GET /api/devices/{pid}/{dn}. Errors: 400 bad body
// (unknown fields included), 404 unknown device.

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

func (s *Server) mountBindingAPI() {
	s.mux.HandleFunc("POST /api/devices/{pid}/{dn}/app-token", s.apiAppToken)
	s.mux.HandleFunc("GET /api/devices/{pid}/{dn}/binding", s.apiBinding)
	s.mux.HandleFunc("POST /api/devices/{pid}/{dn}/bind", s.apiBind)
	s.mux.HandleFunc("POST /api/devices/{pid}/{dn}/unbind", s.apiUnbind)
}

func (s *Server) bindingJSON(id DeviceID) map[string]any {
	if bd, ok := s.Binding(id.ProductID, id.DeviceName); ok {
		return map[string]any{"bound": true, "user": bd.User, "bound_at": bd.BoundAt, "via": bd.Via}
	}
	return map[string]any{"bound": false}
}

func (s *Server) apiAppToken(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	var body struct {
		User string `json:"user"`
		TTL  string `json:"ttl"`
	}
	if !decodeOptionalBody(w, r, &body, `{"user":"U","ttl":"10m"} (both optional)`) {
		return
	}
	var ttl time.Duration
	if body.TTL != "" {
		d, err := time.ParseDuration(body.TTL)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("ttl: want a positive Go duration like 10m, got %q", body.TTL))
			return
		}
		ttl = d
	}
	if len(body.User) > 128 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("user: %d bytes, at most 128", len(body.User)))
		return
	}
	tok, err := s.IssueAppToken(id.ProductID, id.DeviceName, body.User, ttl)
	if err != nil {
		writeError(w, bindStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, tok)
}

func (s *Server) apiBinding(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.bindingJSON(id))
}

func (s *Server) apiBind(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	var body struct {
		User string `json:"user"`
	}
	if !decodeOptionalBody(w, r, &body, `{"user":"U"} (optional)`) {
		return
	}
	if body.User == "" || len(body.User) > 128 {
		writeError(w, http.StatusBadRequest, "user: want 1-128 bytes, e.g. {\"user\":\"alice\"}")
		return
	}
	if err := s.BindDevice(id.ProductID, id.DeviceName, body.User); err != nil && !errors.Is(err, ErrClosed) {
		// The binding is stored; only the notice failed (e.g. the broker is restarting).
		writeError(w, bindStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.bindingJSON(id))
}

func (s *Server) apiUnbind(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	var body struct{}
	if !decodeOptionalBody(w, r, &body, "no body (or {})") {
		return
	}
	if err := s.UnbindDevice(id.ProductID, id.DeviceName); err != nil {
		writeError(w, bindStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.bindingJSON(id))
}

func bindStatus(err error) int {
	switch {
	case errors.Is(err, ErrUnknownDevice):
		return http.StatusNotFound
	case errors.Is(err, errBadBindRequest):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
