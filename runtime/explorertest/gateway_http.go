package explorertest

// The gateway feature's JSON API (same mux as api.go). Cloud-initiated operations are named
// after the protocol's message types (docs/PROTOCOL.md §5.2), so any SDK's gateway can be
// tested against them:
//
//	GET  /api/gateways/{pid}/{dn}/subdevices            [{"product_id","device_name","online"}]
//	POST /api/gateways/{pid}/{dn}/change                {"status":1|0,"devices":[{"product_id","device_name"}]}
//	                                                    binds (1) or unbinds (0) on the platform, then
//	                                                    pushes change
//	POST /api/gateways/{pid}/{dn}/unbind_all            {} unbinds every sub-device, pushes unbind_all
//	POST /api/gateways/{pid}/{dn}/search_devices        {"status":1|0} pushes search_devices
//	POST /api/gateways/{pid}/{dn}/describe_sub_devices  {} pushes the platform's bind list
//
// The POST routes answer once the gateway acknowledges (?timeout=<Go duration>, default 10s):
// 200 {"sent":<message>,"ack":<the gateway's acknowledgement>}. When no acknowledgement comes
// in time — the gateway is offline, or its SDK does not acknowledge that type (only the C SDK
// acknowledges unbind_all, search_devices and a cloud-sent describe_sub_devices) — the answer is
// 202 {"sent":<message>,"ack":null,"status":"..."}: the platform's side (binding changes) is
// done either way. Errors: 400 bad body (unknown fields included), 404 unknown gateway or
// sub-device, 409 sub-device bound to another gateway.
//
// Products have no node type here, so any device may be driven as a gateway. A device that
// subscribed to its own $gateway/operation/result topic, or has sub-devices, gets a
// "gateway_role" section {"subscribed","sub_devices"} in GET /api/devices/{pid}/{dn}; the
// console shows its gateway tools only then.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

func (s *Server) mountGatewayAPI() {
	s.mux.HandleFunc("GET /api/gateways/{pid}/{dn}/subdevices", s.apiSubDevices)
	s.mux.HandleFunc("POST /api/gateways/{pid}/{dn}/change", s.apiGatewayChange)
	s.mux.HandleFunc("POST /api/gateways/{pid}/{dn}/unbind_all", s.apiGatewayUnbindAll)
	s.mux.HandleFunc("POST /api/gateways/{pid}/{dn}/search_devices", s.apiGatewaySearch)
	s.mux.HandleFunc("POST /api/gateways/{pid}/{dn}/describe_sub_devices", s.apiGatewayDescribe)
}

func (s *Server) apiSubDevices(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	type row struct {
		ProductID  string `json:"product_id"`
		DeviceName string `json:"device_name"`
		Online     bool   `json:"online"`
	}
	out := []row{}
	for _, sd := range s.SubDevices(id.ProductID, id.DeviceName) {
		out = append(out, row{sd.ID.ProductID, sd.ID.DeviceName, sd.Online})
	}
	writeJSON(w, http.StatusOK, out)
}

// gwRequest reads a gateway operation's body strictly into v (an empty body counts as {}) and
// the ?timeout for the acknowledgement.
func gwRequest(w http.ResponseWriter, r *http.Request, v any, shape string) (time.Duration, bool) {
	timeout := defaultAPITimeout
	if t := r.URL.Query().Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "timeout: want a positive Go duration like 5s, got "+t)
			return 0, false
		}
		timeout = d
	}
	return timeout, decodeOptionalBody(w, r, v, shape)
}

// gwOperate runs op (which sends the message to gateway id) and answers with the gateway's
// acknowledgement of type ackType, or 202 when none arrives within timeout.
func (s *Server) gwOperate(w http.ResponseWriter, r *http.Request, id DeviceID, timeout time.Duration, ackType string, op func() (sent any, err error)) {
	since := s.gatewayAcks(id)
	sent, err := op()
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrUnknownDevice):
			status = http.StatusNotFound
		case errors.Is(err, ErrBoundElsewhere):
			status = http.StatusConflict
		case errors.Is(err, errBadGatewayRequest):
			status = http.StatusBadRequest
		}
		writeError(w, status, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	ack, _, err := s.WaitGatewayAck(ctx, id.ProductID, id.DeviceName, ackType, since)
	if err != nil {
		writeJSON(w, http.StatusAccepted, map[string]any{"sent": sent, "ack": nil,
			"status": fmt.Sprintf("sent; no %s acknowledgement from %s within %v (offline, or its SDK does not acknowledge it)", ackType, id, timeout)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sent": sent, "ack": ack})
}

var errBadGatewayRequest = errors.New("bad gateway request")

type gwDeviceRef struct {
	ProductID  string `json:"product_id"`
	DeviceName string `json:"device_name"`
}

func (s *Server) apiGatewayChange(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	var body struct {
		Status  *int          `json:"status"`
		Devices []gwDeviceRef `json:"devices"`
	}
	timeout, ok := gwRequest(w, r, &body, `{"status":1|0,"devices":[{"product_id":"P","device_name":"D"}]}`)
	if !ok {
		return
	}
	s.gwOperate(w, r, id, timeout, "change", func() (any, error) {
		switch {
		case body.Status == nil || (*body.Status != 0 && *body.Status != 1):
			return nil, fmt.Errorf("%w: status: want 1 (bind) or 0 (unbind)", errBadGatewayRequest)
		case len(body.Devices) == 0:
			return nil, fmt.Errorf("%w: devices: want at least one {\"product_id\",\"device_name\"}", errBadGatewayRequest)
		}
		subs := make([]DeviceID, len(body.Devices))
		for i, d := range body.Devices {
			if d.ProductID == "" || d.DeviceName == "" {
				return nil, fmt.Errorf("%w: devices[%d]: product_id and device_name are required", errBadGatewayRequest, i)
			}
			subs[i] = DeviceID(d)
		}
		var err error
		if *body.Status == 1 {
			err = s.BindSubDevices(id.ProductID, id.DeviceName, subs...)
		} else {
			err = s.UnbindSubDevices(id.ProductID, id.DeviceName, subs...)
		}
		return map[string]any{"type": "change", "payload": map[string]any{"status": *body.Status, "devices": body.Devices}}, err
	})
}

func (s *Server) apiGatewayUnbindAll(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	var body struct{}
	timeout, ok := gwRequest(w, r, &body, "no body (or {})")
	if !ok {
		return
	}
	s.gwOperate(w, r, id, timeout, "unbind_all", func() (any, error) {
		return map[string]any{"type": "unbind_all"}, s.UnbindAllSubDevices(id.ProductID, id.DeviceName)
	})
}

func (s *Server) apiGatewaySearch(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	var body struct {
		Status *int `json:"status"`
	}
	timeout, ok := gwRequest(w, r, &body, `{"status":1|0}`)
	if !ok {
		return
	}
	s.gwOperate(w, r, id, timeout, "search_devices", func() (any, error) {
		if body.Status == nil {
			return nil, fmt.Errorf("%w: status: missing (1 starts searching, 0 stops)", errBadGatewayRequest)
		}
		return map[string]any{"type": "search_devices", "payload": map[string]any{"status": *body.Status}}, s.SearchSubDevices(id.ProductID, id.DeviceName, *body.Status)
	})
}

func (s *Server) apiGatewayDescribe(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	var body struct{}
	timeout, ok := gwRequest(w, r, &body, "no body (or {})")
	if !ok {
		return
	}
	s.gwOperate(w, r, id, timeout, "change", func() (any, error) {
		devs := []gwDeviceRef{}
		for _, sd := range s.SubDevices(id.ProductID, id.DeviceName) {
			devs = append(devs, gwDeviceRef{sd.ID.ProductID, sd.ID.DeviceName})
		}
		return map[string]any{"type": "describe_sub_devices", "payload": map[string]any{"devices": devs}}, s.DescribeSubDevices(id.ProductID, id.DeviceName)
	})
}
