package explorertest

// The web console and the live stream (issue 13): the console page at "/" (package
// internal/console), GET /api/stream (package internal/stream), the API token that guards /api/
// when the platform is reachable beyond loopback, JSON errors for every route, and the change
// feed through which features report state changes.
//
// Change feed. A feature calls s.changed(kind, id, data) (or s.changedKey for state that is not
// per device) right after it changed something; the call never blocks and may be made with
// the feature's own lock held. One goroutine then, in order: publishes the change on the
// stream (kind = SSE event type; data as given, or a snapshot for "ota"), and, with --data,
// writes the feature's persisted section (persist.go). The queue is bounded: beyond
// maxQueuedChanges the newest change is dropped, counted and logged.

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorertest/internal/console"
	"github.com/tplgen/tplgen/runtime/explorertest/internal/stream"
)

// Change kinds (SSE event types on /api/stream; persisted sections use the same names).
const (
	changeDevice   = "device"   // online/offline; data {"online","last_seen"}
	changeRegistry = "devices"  // a device was added or removed
	changeProduct  = "products" // key: product id
	changeReported = "reported" // data reportedChange
	changeEvent    = "event"    // data EventRecord
	changePending  = "pending"  // pending control set or cleared
	changeThing    = "update"   // other data-template state (report_info)
	changeControl  = "control"  // data controlChange
	changeAction   = "action"   // data actionChange
	changeOTA      = "ota"      // job changed; the stream carries the job document
	changeFirmware = "firmware" // key: firmware image id (uploaded or deleted)
	changeGateway  = "gateway"  // sub-device bound/unbound/online/offline (data: its gateway); a new gateway
	changeBinding  = "binding"  // app-user binding set or removed; the stream carries the binding
	changeLog      = "log"      // a platform log record (consoleLogHandler)
	changeDevLog   = "devlog"   // a device uploaded log lines or its level changed; data {"total","level"}
)

// streamEventTypes are the event types GET /api/stream sends (besides its opening "hello"),
// listed in the OpenAPI description; a test keeps it equal to the change kinds.
var streamEventTypes = []string{changeDevice, changeRegistry, changeProduct, changeReported, changeEvent,
	changePending, changeThing, changeControl, changeAction, changeOTA, changeFirmware, changeGateway,
	changeBinding, changeLog, changeDevLog, changeResources, changeResObject, changeAppTokens, changeDynreg}

// maxQueuedChanges bounds the change feed between features and its goroutine.
const maxQueuedChanges = 1 << 16

type reportedChange struct {
	Params    json.RawMessage `json:"params"`
	Timestamp int64           `json:"timestamp"`
}

type controlChange struct {
	Params json.RawMessage `json:"params"`
	Code   int             `json:"code"`
	Status string          `json:"status,omitempty"`
}

type actionChange struct {
	Action   string          `json:"action"`
	Params   json.RawMessage `json:"params"`
	Code     int             `json:"code"`
	Status   string          `json:"status,omitempty"`
	Response json.RawMessage `json:"response,omitempty"`
}

type change struct {
	kind string
	dev  DeviceID // zero for keyed changes
	key  string   // dev.String() for device changes
	data any
}

// consoleState is the console feature's state (Server.cons).
type consoleState struct {
	hub   *stream.Hub
	token string // required on /api/ when non-empty
	ready atomic.Bool

	mu       sync.Mutex
	queue    []change
	busy     bool // the goroutine is applying a batch
	idle     *sync.Cond
	wake     chan struct{}
	dropped  uint64
	stopped  bool // the feed goroutine ended (flushChanges must not wait for it)
	lastSeen map[DeviceID]time.Time
	stop     chan struct{}
	done     chan struct{}
}

// WithAPIToken requires token on the JSON API (/api/...): "Authorization: Bearer TOKEN", or
// ?access_token=TOKEN on /api/stream (browsers' EventSource cannot set headers). Device-facing
// routes (firmware downloads, dynamic registration, HTTP publish, log upload) have their own
// signatures and stay open, and so does the console page itself, which asks for the token.
func WithAPIToken(token string) Option {
	return func(c *config) error {
		if strings.TrimSpace(token) != token || token == "" {
			return optErr("WithAPIToken: token is empty or has surrounding spaces")
		}
		c.apiToken = token
		return nil
	}
}

func (s *Server) initConsole() error {
	cs := s.cons // created by openData with the API token
	cs.hub = stream.New(stream.Config{Now: s.clock})
	cs.wake = make(chan struct{}, 1)
	cs.lastSeen = map[DeviceID]time.Time{}
	cs.stop, cs.done = make(chan struct{}), make(chan struct{})
	cs.idle = sync.NewCond(&cs.mu)
	s.onDeviceState(func(id DeviceID, online bool) {
		now := s.clock()
		cs.mu.Lock()
		cs.lastSeen[id] = now
		cs.mu.Unlock()
		s.changed(changeDevice, id, map[string]any{"online": online, "last_seen": now.UnixMilli()})
	})
	go s.runChangeFeed()
	s.addCloser(func() {
		close(cs.stop)
		<-cs.done
		cs.hub.Close()
	})
	s.mux.Handle("GET /api/stream", cs.hub)
	s.mux.HandleFunc("GET /api/products", s.apiListProducts)
	s.mux.HandleFunc("GET /api/products/{pid}", s.apiGetProduct)
	s.mux.HandleFunc("POST /api/devices", s.apiCreateDevice)
	s.mux.HandleFunc("DELETE /api/devices/{pid}/{dn}", s.apiDeleteDevice)
	s.mux.HandleFunc("GET /api/platform", s.apiPlatform)
	s.mux.HandleFunc("GET /api/openapi.json", s.apiOpenAPI)
	s.mux.Handle("/", s.fallback(console.Handler()))
	return nil
}

// changed reports a change of device id's state of the given kind (see the change kinds).
// It never blocks and may be called with a feature's lock held.
func (s *Server) changed(kind string, id DeviceID, data any) {
	s.enqueueChange(change{kind: kind, dev: id, key: id.String(), data: data})
}

// changedKey reports a change of keyed (not per-device) state, e.g. a firmware image.
func (s *Server) changedKey(kind, key string) {
	s.enqueueChange(change{kind: kind, key: key})
}

func (s *Server) enqueueChange(c change) {
	cs := s.cons
	if cs == nil || !cs.ready.Load() {
		return // before the console feature started, or while persist restores state
	}
	if s.data == nil && !cs.hub.Active() {
		return // nobody listens and nothing is persisted: keep the hot path free
	}
	cs.mu.Lock()
	if len(cs.queue) >= maxQueuedChanges {
		cs.dropped++
		n := cs.dropped
		cs.mu.Unlock()
		if n == 1 || n%1000 == 0 {
			s.log.Warn("explorertest: change feed full: change dropped (stream and --data lag behind)", "kind", c.kind, "key", c.key, "dropped", n)
		}
		return
	}
	cs.queue = append(cs.queue, c)
	cs.mu.Unlock()
	select {
	case cs.wake <- struct{}{}:
	default:
	}
}

func (s *Server) runChangeFeed() {
	cs := s.cons
	defer close(cs.done)
	for {
		select {
		case <-cs.wake:
		case <-cs.stop:
			s.drainChanges() // what was reported before Close is still written
			cs.mu.Lock()
			cs.stopped = true
			cs.idle.Broadcast()
			cs.mu.Unlock()
			return
		}
		s.drainChanges()
	}
}

func (s *Server) drainChanges() {
	cs := s.cons
	for {
		cs.mu.Lock()
		batch := cs.queue
		cs.queue = nil
		cs.busy = len(batch) > 0
		if !cs.busy {
			cs.idle.Broadcast()
			cs.mu.Unlock()
			return
		}
		cs.mu.Unlock()
		if s.data != nil {
			s.data.startBatch()
		}
		for _, c := range batch {
			s.applyChange(c)
		}
	}
}

// flushChanges waits until every change reported so far has been published and persisted.
func (s *Server) flushChanges() {
	cs := s.cons
	if cs == nil {
		return
	}
	select {
	case cs.wake <- struct{}{}:
	default:
	}
	cs.mu.Lock()
	for (len(cs.queue) > 0 || cs.busy) && !cs.stopped {
		cs.idle.Wait()
	}
	cs.mu.Unlock()
}

func (s *Server) applyChange(c change) {
	cs := s.cons
	if cs.hub.Active() {
		data := c.data
		device := c.key
		switch c.kind {
		case changeOTA:
			data = s.otaJobJSON(c.dev)
		case changeBinding:
			data = s.bindingJSON(c.dev)
		case changePending:
			data = map[string]any{"pending_control": s.PendingControl(c.dev.ProductID, c.dev.DeviceName)}
		case changeFirmware, changeProduct, changeResObject, changeDynreg:
			device, data = "", map[string]string{"key": c.key}
		case changeGateway:
			if gw, ok := data.(DeviceID); ok {
				data = map[string]string{"gateway": gw.String(), "sub_device": c.key}
				cs.hub.Publish(c.kind, gw.String(), data) // the gateway's page shows its sub-devices
			}
		}
		cs.hub.Publish(c.kind, device, data)
	}
	if s.data != nil {
		s.data.apply(c)
	}
}

// lastSeen is when the device last connected or disconnected (zero when never).
func (s *Server) lastSeen(id DeviceID) time.Time {
	cs := s.cons
	if cs == nil {
		return time.Time{}
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.lastSeen[id]
}

// ---------------------------------------------------------------------------------------------
// Root handler: API token and JSON errors for unknown routes and methods

// rootHandler serves the mux behind the API token check.
func (s *Server) rootHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cs := s.cons; cs != nil && cs.token != "" && strings.HasPrefix(r.URL.Path, "/api/") && !cs.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tplgen emulate"`)
			writeError(w, http.StatusUnauthorized, "this platform's API needs its token (printed by tplgen emulate, or --api-token): send \"Authorization: Bearer TOKEN\"")
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

func (cs *consoleState) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok && r.URL.Path == "/api/stream" {
		got, ok = r.URL.Query().Get("access_token"), true
	}
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(cs.token)) == 1
}

// probeMethods are the methods tried to tell "no such route" (404) from "wrong method" (405).
var probeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch}

// fallback serves everything no other pattern matched: the console page, or a JSON 404/405.
func (s *Server) fallback(page http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range probeMethods {
			probe := r.Clone(context.Background())
			probe.Method = m
			if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s %s (the routes are listed in /api/openapi.json)", r.Method, r.URL.Path))
			return
		}
		page.ServeHTTP(w, r)
	})
}

// ---------------------------------------------------------------------------------------------
// Products, device creation and deletion, platform status

type apiProduct struct {
	ProductID  string `json:"product_id"`
	Properties int    `json:"properties"`
	Events     int    `json:"events"`
	Actions    int    `json:"actions"`
}

func (s *Server) apiListProducts(w http.ResponseWriter, r *http.Request) {
	tc := s.thing
	tc.mu.Lock()
	out := make([]apiProduct, 0, len(tc.products))
	for pid, tpl := range tc.products {
		out = append(out, apiProduct{pid, len(tpl.Properties), len(tpl.Events), len(tpl.Actions)})
	}
	tc.mu.Unlock()
	sortBy(out, func(p apiProduct) string { return p.ProductID })
	writeJSON(w, http.StatusOK, out)
}

// Products lists the product ids that have a data template, sorted.
func (s *Server) Products() []string {
	tc := s.thing
	tc.mu.Lock()
	out := make([]string, 0, len(tc.products))
	for pid := range tc.products {
		out = append(out, pid)
	}
	tc.mu.Unlock()
	sort.Strings(out)
	return out
}

func (s *Server) apiGetProduct(w http.ResponseWriter, r *http.Request) {
	pid := r.PathValue("pid")
	tpl, ok := s.Product(pid)
	if !ok {
		writeError(w, http.StatusNotFound, "product "+pid+" has no data template")
		return
	}
	writeJSON(w, http.StatusOK, console.TemplateView(pid, tpl))
}

// apiNewDevice is the body of POST /api/devices.
type apiNewDevice struct {
	ProductID    string `json:"product_id"`
	DeviceName   string `json:"device_name"`
	DeviceSecret string `json:"device_secret,omitempty"`
}

// maxAPIDevices bounds how many devices API clients can make the platform keep.
const maxAPIDevices = 10000

func (s *Server) apiCreateDevice(w http.ResponseWriter, r *http.Request) {
	var body apiNewDevice
	if !decodeBody(w, r, &body, `{"product_id":"P","device_name":"D","device_secret":"(optional base64)"}`) {
		return
	}
	switch {
	case body.ProductID == "":
		writeError(w, http.StatusBadRequest, "body.product_id: required")
		return
	case body.DeviceName == "":
		writeError(w, http.StatusBadRequest, "body.device_name: required")
		return
	}
	if len(s.Devices()) >= maxAPIDevices {
		writeError(w, http.StatusConflict, fmt.Sprintf("the platform already holds %d devices (the limit); delete some first", maxAPIDevices))
		return
	}
	var opts []DeviceOption
	if body.DeviceSecret != "" {
		opts = append(opts, WithSecret(body.DeviceSecret))
	}
	if _, ok := s.Device(body.ProductID, body.DeviceName); ok {
		writeError(w, http.StatusConflict, "device "+body.ProductID+"/"+body.DeviceName+" already exists")
		return
	}
	secret, err := s.AddDevice(body.ProductID, body.DeviceName, opts...)
	if err != nil {
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "explorertest: "))
		return
	}
	s.log.Info("api: device created", "device", body.ProductID+"/"+body.DeviceName)
	writeJSON(w, http.StatusCreated, apiNewDevice{body.ProductID, body.DeviceName, secret})
}

func (s *Server) apiDeleteDevice(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	if err := s.RemoveDevice(id.ProductID, id.DeviceName); err != nil {
		writeError(w, http.StatusNotFound, strings.TrimPrefix(err.Error(), "explorertest: "))
		return
	}
	s.log.Info("api: device deleted", "device", id.String())
	writeJSON(w, http.StatusOK, map[string]any{"deleted": id.String()})
}

func (s *Server) apiPlatform(w http.ResponseWriter, r *http.Request) {
	cs := s.cons
	cs.mu.Lock()
	// queued 0 and busy false: every change reported so far is published and persisted.
	feed := map[string]any{"queued": len(cs.queue), "busy": cs.busy, "dropped": cs.dropped}
	cs.mu.Unlock()
	doc := map[string]any{"stream": cs.hub.Stats(), "changes": feed, "api_token": cs.token != ""}
	if s.data != nil {
		doc["data"] = s.data.stats()
	}
	writeJSON(w, http.StatusOK, doc)
}

// maxLoggedBody is how much of a message body a debug log line shows.
const maxLoggedBody = 4096

// logBody logs a message with its body at debug level (the MQTT bodies carry no secrets: device
// secrets only sign the CONNECT, and dynamic registration runs over HTTP).
func (s *Server) logBody(msg string, dev DeviceID, topic string, qos byte, payload []byte) {
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	body := string(payload)
	if len(payload) > maxLoggedBody {
		body = strings.ToValidUTF8(string(payload[:maxLoggedBody]), "") + fmt.Sprintf("…(%d bytes)", len(payload))
	}
	s.log.Debug(msg, "device", dev.String(), "topic", topic, "qos", qos, "bytes", len(payload), "payload", body)
}

// ---------------------------------------------------------------------------------------------
// Platform log on the stream

// consoleLogHandler is the platform's slog handler: every record goes to the logger the
// platform was given (WithLogger), and records at info and above, or at any level that logger
// keeps, are also published on /api/stream as "log" events while someone listens (the
// console's platform log): {"level","msg","attrs"}, the event's device taken from the record's
// "device" attribute.
type consoleLogHandler struct {
	s      *Server
	inner  slog.Handler
	attrs  []slog.Attr // from WithAttrs, keys already prefixed by the groups open then
	prefix string      // open groups, "a.b."
}

// Enabled implements slog.Handler.
func (h *consoleLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l) || (l >= slog.LevelInfo && h.streaming())
}

func (h *consoleLogHandler) streaming() bool {
	cs := h.s.cons
	return cs != nil && cs.hub != nil && cs.ready.Load() && cs.hub.Active()
}

// Handle implements slog.Handler.
func (h *consoleLogHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.inner.Enabled(ctx, r.Level) {
		err = h.inner.Handle(ctx, r)
	}
	if !h.streaming() {
		return err
	}
	attrs := map[string]any{}
	device := ""
	var add func(prefix string, a slog.Attr)
	add = func(prefix string, a slog.Attr) {
		v := a.Value.Resolve()
		if v.Kind() == slog.KindGroup {
			p := prefix
			if a.Key != "" {
				p += a.Key + "."
			}
			for _, g := range v.Group() {
				add(p, g)
			}
			return
		}
		if a.Key == "" {
			return
		}
		var val any
		switch v.Kind() {
		case slog.KindString:
			val = v.String()
		case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool:
			val = v.Any()
		default: // times, durations, errors, anything else: as text
			val = v.String()
		}
		if prefix+a.Key == "device" {
			if d, ok := val.(string); ok {
				device = d
			}
		}
		attrs[prefix+a.Key] = val
	}
	for _, a := range h.attrs {
		add("", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		add(h.prefix, a)
		return true
	})
	h.s.enqueueChange(change{kind: changeLog, key: device, data: map[string]any{"level": r.Level.String(), "msg": r.Message, "attrs": attrs}})
	return err
}

// WithAttrs implements slog.Handler.
func (h *consoleLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.inner = h.inner.WithAttrs(as)
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		c.attrs = append(c.attrs, slog.Attr{Key: h.prefix + a.Key, Value: a.Value})
	}
	return &c
}

// WithGroup implements slog.Handler.
func (h *consoleLogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.inner = h.inner.WithGroup(name)
	c.prefix = h.prefix + name + "."
	return &c
}
