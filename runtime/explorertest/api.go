package explorertest

// The platform's JSON API on the server's HTTP mux (used by `tplgen emulate` and by people poking
// at an emulated product with curl):
//
//	GET  /api/devices                              [{"product_id","device_name","online"}]
//	GET  /api/devices/{pid}/{dn}                   {"product_id","device_name","online","reported",
//	                                                "pending_control","info","events","events_dropped"
//	                                                (when > 0), + contributed keys}
//	POST /api/devices/{pid}/{dn}/control           {"params":{...}} -> {"code","status"} (device's control_reply)
//	POST /api/devices/{pid}/{dn}/actions/{action}  {"params":{...}} -> {"code","status","response"}
//
// Errors are {"error":"..."} with: 400 bad body or params, 404 unknown device/product/action,
// 409 device offline (actions) or went offline before replying (control and actions: the
// outcome is unknown and nothing was stored, retry — see SendControl), 502 device replied with a response that does not match the
// template, 504 no reply in time. Control to an offline device is stored as pending and answered
// 202 {"pending":true,"status":"..."}. POST endpoints take ?timeout=<Go duration> (default 10s).

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"net/http"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
	"github.com/tplgen/tplgen/runtime/template"
)

const (
	defaultAPITimeout = 10 * time.Second
	maxAPIBody        = 64 << 10
)

// apiDevice is one row of GET /api/devices.
type apiDevice struct {
	ProductID  string `json:"product_id"`
	DeviceName string `json:"device_name"`
	Online     bool   `json:"online"`
	// LastSeen is when the device last connected or disconnected (Unix ms; 0 = never).
	LastSeen int64 `json:"last_seen"`
}

type apiParams struct {
	Params json.RawMessage `json:"params"`
}

type apiError struct {
	Error string `json:"error"`
}

func (s *Server) initAPI() {
	s.mux.HandleFunc("GET /api/devices", s.apiListDevices)
	s.mux.HandleFunc("GET /api/devices/{pid}/{dn}", s.apiGetDevice)
	s.mux.HandleFunc("POST /api/devices/{pid}/{dn}/control", s.apiControl)
	s.mux.HandleFunc("POST /api/devices/{pid}/{dn}/actions/{action}", s.apiAction)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshalJSON(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = marshalJSON(apiError{Error: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{Error: msg})
}

func (s *Server) apiListDevices(w http.ResponseWriter, r *http.Request) {
	devs := s.Devices() // sorted by product id, then device name
	out := make([]apiDevice, 0, len(devs))
	for _, d := range devs {
		// Online (not DeviceInfo.Online) also counts sub-devices online through their gateway.
		out = append(out, apiDevice{ProductID: d.ID.ProductID, DeviceName: d.ID.DeviceName, Online: s.Online(d.ID.ProductID, d.ID.DeviceName), LastSeen: unixMilli(s.lastSeen(d.ID))})
	}
	writeJSON(w, http.StatusOK, out)
}

// pathDevice resolves {pid}/{dn}, answering 404 when the device is not registered.
func (s *Server) pathDevice(w http.ResponseWriter, r *http.Request) (DeviceID, bool) {
	id := DeviceID{ProductID: r.PathValue("pid"), DeviceName: r.PathValue("dn")}
	if _, ok := s.Device(id.ProductID, id.DeviceName); !ok {
		writeError(w, http.StatusNotFound, "device "+id.String()+" is not registered")
		return id, false
	}
	return id, true
}

func (s *Server) apiGetDevice(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	events := s.Events(id.ProductID, id.DeviceName)
	if events == nil {
		events = []EventRecord{} // [] rather than null for API clients
	}
	doc := map[string]any{
		"product_id":  id.ProductID,
		"device_name": id.DeviceName,
		"online":      s.Online(id.ProductID, id.DeviceName),
		"reported":    s.templateOrder(id.ProductID, s.Reported(id.ProductID, id.DeviceName)),
		"reported_at": s.reportedAt(id),
		"last_seen":   unixMilli(s.lastSeen(id)),
		"events":      events,
	}
	if p := s.PendingControl(id.ProductID, id.DeviceName); p != nil {
		doc["pending_control"] = s.templateOrder(id.ProductID, p)
	}
	if gw, ok := s.gatewayOf(id); ok {
		doc["gateway"] = map[string]string{"product_id": gw.ProductID, "device_name": gw.DeviceName}
	}
	if n := s.eventsDropped(id); n > 0 {
		doc["events_dropped"] = n
	}
	if info, ok := s.ReportedInfo(id.ProductID, id.DeviceName); ok {
		doc["info"] = info.Raw
	}
	s.feat.mu.Lock()
	details := s.feat.details
	s.feat.mu.Unlock()
	for _, c := range details {
		if v := c.fn(id); v != nil {
			doc[c.key] = v
		}
	}
	writeJSON(w, http.StatusOK, doc)
}

// apiRequest decodes {"params":{...}} and derives the reply deadline.
func apiRequest(w http.ResponseWriter, r *http.Request) (json.RawMessage, context.Context, context.CancelFunc, bool) {
	timeout := defaultAPITimeout
	if t := r.URL.Query().Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "timeout: want a positive Go duration like 5s, got "+t)
			return nil, nil, nil, false
		}
		timeout = d
	}
	var body apiParams
	data, err := jsonguard.ReadAll(r.Body, maxAPIBody)
	if err == nil {
		err = decodeStrict(data, &body)
	}
	if err == nil && !isNull(body.Params) && body.Params[0] != '{' {
		err = fmt.Errorf("params must be a JSON object, got %s", clip(body.Params))
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "body: "+err.Error()+`; want {"params":{...}}`)
		return nil, nil, nil, false
	}
	if isNull(body.Params) {
		body.Params = json.RawMessage(`{}`)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	return body.Params, ctx, cancel, true
}

// apiStatus maps a cloud API error to an HTTP status.
func apiStatus(err error) int {
	switch {
	case errors.Is(err, ErrUnknownDevice), errors.Is(err, ErrNoTemplate):
		return http.StatusNotFound
	case errors.Is(err, ErrDeviceOffline):
		return http.StatusConflict
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusGatewayTimeout
	default: // template check errors and malformed params
		return http.StatusBadRequest
	}
}

func (s *Server) apiControl(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	params, ctx, cancel, ok := apiRequest(w, r)
	if !ok {
		return
	}
	defer cancel()
	if string(params) == "{}" || len(bytes.TrimSpace(params[1:len(params)-1])) == 0 {
		writeError(w, http.StatusBadRequest, `body.params: empty control: name at least one rw property, e.g. {"params":{"power_switch":1}}`)
		return
	}
	rep, err := s.SendControl(ctx, id.ProductID, id.DeviceName, params)
	if errors.Is(err, ErrControlPending) {
		writeJSON(w, http.StatusAccepted, map[string]any{"pending": true, "status": err.Error()})
		return
	}
	if err != nil {
		writeError(w, apiStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": rep.Code, "status": rep.Status, "client_token": rep.ClientToken})
}

func (s *Server) apiAction(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	action := r.PathValue("action")
	if tpl, ok := s.Product(id.ProductID); ok && tpl.Action(action) == nil {
		writeError(w, http.StatusNotFound, "action "+action+" is not defined for product "+id.ProductID)
		return
	}
	params, ctx, cancel, ok := apiRequest(w, r)
	if !ok {
		return
	}
	defer cancel()
	rep, err := s.InvokeAction(ctx, id.ProductID, id.DeviceName, action, params)
	if rep != nil {
		body := map[string]any{"code": rep.Code, "status": rep.Status, "response": rep.Response, "client_token": rep.ClientToken}
		status := http.StatusOK
		if err != nil && (errors.Is(err, template.ErrInvalidValue) || errors.Is(err, template.ErrUnknownID) || errors.Is(err, template.ErrMalformed)) {
			status, body["error"] = http.StatusBadGateway, err.Error()
		}
		if rep.Response == nil {
			body["response"] = json.RawMessage(`{}`)
		}
		writeJSON(w, status, body)
		return
	}
	writeError(w, apiStatus(err), err.Error())
}
