package explorertest

// RRPC and broadcast, the cloud side (docs/PROTOCOL.md §7.3, §7.4).
//
// CallRRPC publishes the payload on $rrpc/rxd/{pid}/{dn}/{processId} (QoS 0) and waits for the
// device's publish on $rrpc/txd/{pid}/{dn}/{processId}. processIds are decimal counters unique
// per server. A reply whose processId nobody waits for (late, or made up) is dropped and
// counted. The device going offline fails its pending calls at once.
//
// Broadcast publishes one payload (≤ 8 KiB) on $broadcast/rxd/{pid}/{dn} of every online
// device of the product, sub-devices online through a gateway included.
//
// JSON API (payloads are opaque bytes: give "payload" as text or "payload_base64"):
//
//	POST /api/devices/{pid}/{dn}/rrpc[?timeout=4s]  {"payload":"..."} ->
//	     200 {"process_id","payload","payload_base64"}  ("payload" only when the reply is UTF-8)
//	     404 unknown device, 409 offline (or went offline), 413 over 16 KiB,
//	     429 too many calls in flight, 504 no reply in time
//	POST /api/products/{pid}/broadcast              {"payload":"..."} ->
//	     200 {"delivered":N,"devices":["dn",...]}; 404 no device in the product, 413 over 8 KiB
//
// Bounds: at most rrpcMaxPerDevice calls wait per device and rrpcMaxCalls in all (the caller
// gets ErrRRPCBusy); a device cannot make the platform keep anything: unmatched replies are
// dropped.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// DefaultRRPCTimeout is how long CallRRPC waits by default (the RRPC page of the platform's
// documentation says 4 s; its limits table says 10 s, see docs/PROTOCOL.md §9 item 12).
const DefaultRRPCTimeout = 4 * time.Second

// MaxBroadcast is the platform's limit on a broadcast payload (docs/PROTOCOL.md §7.4).
const MaxBroadcast = 8 * 1024

const (
	rrpcMaxPerDevice = 32
	rrpcMaxCalls     = 4096
)

// Errors of RRPC and broadcast.
var (
	ErrRRPCTimeout = errors.New("no RRPC reply from the device in time")
	ErrRRPCBusy    = errors.New("too many RRPC calls waiting")
	ErrTooLarge    = errors.New("payload too large")
	ErrNoDevices   = errors.New("no device registered in the product")
)

type rrpcWaiter struct {
	id    DeviceID
	reply chan []byte
	gone  chan struct{} // closed when the device goes offline
}

type rrpcCloud struct {
	s       *Server
	seq     atomic.Uint64
	dropped atomic.Uint64 // replies nobody waited for

	mu       sync.Mutex
	waiters  map[string]*rrpcWaiter // processId -> waiter
	byDevice map[DeviceID]int
}

// rrpc returns the feature's state (Server field rr), or nil after Close.
func (s *Server) rrpc() *rrpcCloud {
	if s.isFinished() {
		return nil
	}
	return s.rr
}

// initRRPC wires RRPC and broadcast into the server (called from initFeatures).
func (s *Server) initRRPC() error {
	rc := &rrpcCloud{s: s, waiters: map[string]*rrpcWaiter{}, byDevice: map[DeviceID]int{}}
	s.rr = rc
	s.handleUplink("$rrpc/txd/", rc.handleReply)
	s.onDeviceState(rc.deviceState)
	s.mux.HandleFunc("POST /api/devices/{pid}/{dn}/rrpc", s.apiRRPC)
	s.mux.HandleFunc("POST /api/products/{pid}/broadcast", s.apiBroadcast)
	return nil
}

func (rc *rrpcCloud) handleReply(u uplink) {
	parts := strings.Split(u.Topic, "/")
	if len(parts) != 5 || parts[4] == "" {
		rc.s.log.Warn("explorertest: rrpc reply on a malformed topic dropped", "topic", u.Topic)
		rc.dropped.Add(1)
		return
	}
	rc.mu.Lock()
	w := rc.waiters[parts[4]]
	if w != nil && w.id == u.Device {
		delete(rc.waiters, parts[4])
	} else {
		w = nil
	}
	rc.mu.Unlock()
	if w == nil {
		rc.dropped.Add(1)
		rc.s.log.Info("explorertest: rrpc reply nobody waits for dropped (late or unknown processId)", "topic", u.Topic)
		return
	}
	w.reply <- u.Payload // buffered 1, and the waiter was removed: never blocks
}

func (rc *rrpcCloud) deviceState(id DeviceID, online bool) {
	if online {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, w := range rc.waiters {
		if w.id == id {
			select {
			case <-w.gone:
			default:
				close(w.gone)
			}
		}
	}
}

// CallRRPC sends payload to the device as an RRPC request and returns its reply. timeout ≤ 0
// means DefaultRRPCTimeout. Errors: ErrUnknownDevice, ErrDeviceOffline (also when the device
// drops during the call), ErrTooLarge (over MaxPayload), ErrRRPCBusy, ErrRRPCTimeout.
func (s *Server) CallRRPC(ctx context.Context, pid, dn string, payload []byte, timeout time.Duration) (processID string, reply []byte, err error) {
	rc := s.rrpc()
	if rc == nil {
		return "", nil, ErrClosed
	}
	id := DeviceID{pid, dn}
	if _, ok := s.Device(pid, dn); !ok {
		return "", nil, fmt.Errorf("rrpc to %s: %w", id, ErrUnknownDevice)
	}
	if len(payload) > MaxPayload {
		return "", nil, fmt.Errorf("rrpc to %s: %w: %d bytes, the limit is %d", id, ErrTooLarge, len(payload), MaxPayload)
	}
	if !s.Online(pid, dn) {
		return "", nil, fmt.Errorf("rrpc to %s: %w", id, ErrDeviceOffline)
	}
	if timeout <= 0 {
		timeout = DefaultRRPCTimeout
	}
	processID = strconv.FormatUint(rc.seq.Add(1), 10)
	w := &rrpcWaiter{id: id, reply: make(chan []byte, 1), gone: make(chan struct{})}
	rc.mu.Lock()
	if len(rc.waiters) >= rrpcMaxCalls || rc.byDevice[id] >= rrpcMaxPerDevice {
		n := rc.byDevice[id]
		rc.mu.Unlock()
		return "", nil, fmt.Errorf("rrpc to %s: %w (%d for this device, at most %d; %d in all)", id, ErrRRPCBusy, n, rrpcMaxPerDevice, rrpcMaxCalls)
	}
	rc.waiters[processID] = w
	rc.byDevice[id]++
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		if rc.waiters[processID] == w {
			delete(rc.waiters, processID)
		}
		if rc.byDevice[id]--; rc.byDevice[id] <= 0 {
			delete(rc.byDevice, id)
		}
		rc.mu.Unlock()
	}()
	topic := "$rrpc/rxd/" + pid + "/" + dn + "/" + processID
	if err := s.Publish(topic, payload, 0); err != nil {
		return processID, nil, fmt.Errorf("rrpc to %s: %w", id, err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-w.reply:
		return processID, r, nil
	case <-w.gone:
		return processID, nil, fmt.Errorf("rrpc to %s (processId %s): %w: it disconnected before replying", id, processID, ErrDeviceOffline)
	case <-t.C:
		return processID, nil, fmt.Errorf("rrpc to %s (processId %s): %w (%v)", id, processID, ErrRRPCTimeout, timeout)
	case <-ctx.Done():
		return processID, nil, fmt.Errorf("rrpc to %s (processId %s): %w", id, processID, ctx.Err())
	}
}

// RRPCDroppedReplies counts device replies that matched no waiting call.
func (s *Server) RRPCDroppedReplies() uint64 {
	if rc := s.rrpc(); rc != nil {
		return rc.dropped.Load()
	}
	return 0
}

// Broadcast delivers payload to every online device of product pid and returns their names,
// sorted. Errors: ErrTooLarge (over MaxBroadcast), ErrNoDevices (no device in the product).
func (s *Server) Broadcast(pid string, payload []byte) ([]string, error) {
	if len(payload) > MaxBroadcast {
		return nil, fmt.Errorf("broadcast to %s: %w: %d bytes, the limit is %d", pid, ErrTooLarge, len(payload), MaxBroadcast)
	}
	known := false
	var names []string
	for _, d := range s.Devices() {
		if d.ID.ProductID != pid {
			continue
		}
		known = true
		if s.Online(pid, d.ID.DeviceName) {
			names = append(names, d.ID.DeviceName)
		}
	}
	if !known {
		return nil, fmt.Errorf("broadcast to %s: %w", pid, ErrNoDevices)
	}
	sort.Strings(names)
	for _, dn := range names {
		if err := s.Publish("$broadcast/rxd/"+pid+"/"+dn, payload, 0); err != nil {
			return nil, fmt.Errorf("broadcast to %s/%s: %w", pid, dn, err)
		}
	}
	return names, nil
}

// apiPayload is the body of the RRPC and broadcast endpoints.
type apiPayload struct {
	Payload       *string `json:"payload"`
	PayloadBase64 *string `json:"payload_base64"`
}

// readAPIPayload decodes {"payload"} or {"payload_base64"} (exactly one), answering 400 itself.
func readAPIPayload(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	var p apiPayload
	if !decodeBody(w, r, &p, `{"payload":"text"} or {"payload_base64":"..."}`) {
		return nil, false
	}
	switch {
	case p.Payload != nil && p.PayloadBase64 != nil:
		writeError(w, http.StatusBadRequest, "give payload or payload_base64, not both")
	case p.Payload != nil:
		return []byte(*p.Payload), true
	case p.PayloadBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*p.PayloadBase64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "payload_base64: not standard base64: "+err.Error())
			return nil, false
		}
		return b, true
	default:
		writeError(w, http.StatusBadRequest, `body needs "payload" (text) or "payload_base64"`)
	}
	return nil, false
}

func (s *Server) apiRRPC(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	timeout := DefaultRRPCTimeout
	if t := r.URL.Query().Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 || d > time.Minute {
			writeError(w, http.StatusBadRequest, "timeout: want a Go duration in (0, 1m], like 4s; got "+t)
			return
		}
		timeout = d
	}
	payload, ok := readAPIPayload(w, r)
	if !ok {
		return
	}
	pidOf, reply, err := s.CallRRPC(r.Context(), id.ProductID, id.DeviceName, payload, timeout)
	if err != nil {
		writeError(w, rrpcStatus(err), err.Error())
		return
	}
	out := map[string]any{"process_id": pidOf, "payload_base64": base64.StdEncoding.EncodeToString(reply)}
	if utf8.Valid(reply) {
		out["payload"] = string(reply)
	}
	writeJSON(w, http.StatusOK, out)
}

func rrpcStatus(err error) int {
	switch {
	case errors.Is(err, ErrUnknownDevice), errors.Is(err, ErrNoDevices):
		return http.StatusNotFound
	case errors.Is(err, ErrDeviceOffline):
		return http.StatusConflict
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrRRPCBusy):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrRRPCTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

func (s *Server) apiBroadcast(w http.ResponseWriter, r *http.Request) {
	pid := r.PathValue("pid")
	payload, ok := readAPIPayload(w, r)
	if !ok {
		return
	}
	names, err := s.Broadcast(pid, payload)
	if err != nil {
		writeError(w, rrpcStatus(err), err.Error())
		return
	}
	if names == nil {
		names = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"delivered": len(names), "devices": names})
}
