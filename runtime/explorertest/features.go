package explorertest

import (
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Extension points for the platform's features (thing.go, gateway.go, ota.go, dynreg.go, ...).
//
// A feature is a function `func (s *Server) initXxx() error` listed in initFeatures. It runs
// once in NewServer before any listener starts and may:
//   - s.handleUplink(prefix, fn): receive device publishes whose topic starts with prefix;
//   - s.onDeviceState(fn): learn when a device goes online/offline;
//   - s.mux.HandleFunc(pattern, fn): serve HTTP(S) routes;
//   - set s.proxyAllowed (gateway only);
//   - s.addCloser(fn): release its resources in Close.
//
// Uplink handlers and state callbacks of one connection run in order on a goroutine of their
// own (never the broker's), so they may call s.Publish synchronously and may block briefly;
// a slow handler delays only that connection's later events. Different connections are
// handled concurrently. Close waits for handlers in flight.
//
// Restart keeps every feature's state: features hold it in the Server, not in the broker.

// initFeatures runs every feature's init, in order. Add one line per feature.
func (s *Server) initFeatures() error {
	for _, f := range []struct {
		name string
		init func() error
	}{
		{"sys", s.initSys},
		{"gateway", s.initGateway},
		{"thing", s.initThing},
		{"ota", s.initOTA},
		{"dynreg", s.initDynreg},
		{"rrpc", s.initRRPC},
		{"httppub", s.initHTTPPublish},
		// Features append here, e.g. {"thing", s.initThing},
	} {
		if err := f.init(); err != nil {
			return fmt.Errorf("explorertest: feature %s: %w", f.name, err)
		}
	}
	return nil
}

// Uplink is one device publish handed to a feature.
type Uplink struct {
	// Client is the device whose connection published (a gateway for proxied sub-device topics).
	Client DeviceID
	// Device is the {pid}/{dn} parsed from the topic.
	Device DeviceID
	// Topic is the full topic name.
	Topic string
	// Payload is the message body; the handler owns it.
	Payload []byte
	// QoS is the publish QoS (0 or 1).
	QoS byte
}

type route struct {
	prefix string
	fn     func(Uplink)
}

// features holds the registered extension callbacks and the per-connection serial queues.
type features struct {
	mu       sync.Mutex
	routes   []route
	stateFns []func(DeviceID, bool)
	closers  []func()
	queues   map[DeviceID]*serialQueue
	closed   bool
	wg       sync.WaitGroup
}

type serialQueue struct{ items []func() }

func (f *features) init() { f.queues = map[DeviceID]*serialQueue{} }

// handleUplink registers fn for device publishes whose topic starts with topicPrefix
// (e.g. "$thing/up/property/"). Every matching handler runs, in registration order. Call it
// only from a feature's init.
func (s *Server) handleUplink(topicPrefix string, fn func(u Uplink)) {
	s.feat.mu.Lock()
	defer s.feat.mu.Unlock()
	s.feat.routes = append(s.feat.routes, route{prefix: topicPrefix, fn: fn})
}

// onDeviceState registers fn to be told when a device goes online (authenticated connection)
// or offline (connection closed, taken over by a second login, device removed, server
// restarting). Calls for one device are ordered with that connection's uplinks.
func (s *Server) onDeviceState(fn func(id DeviceID, online bool)) {
	s.feat.mu.Lock()
	defer s.feat.mu.Unlock()
	s.feat.stateFns = append(s.feat.stateFns, fn)
}

// addCloser registers fn to run at the end of Close (also when NewServer fails after the
// feature's init), after the broker and all handlers have stopped. Closers run in reverse order.
func (s *Server) addCloser(fn func()) {
	s.feat.mu.Lock()
	defer s.feat.mu.Unlock()
	s.feat.closers = append(s.feat.closers, fn)
}

func (s *Server) runClosers() {
	s.feat.mu.Lock()
	closers := s.feat.closers
	s.feat.closers = nil
	s.feat.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
}

// emitState queues the device-state callbacks for id.
func (s *Server) emitState(id DeviceID, online bool) {
	s.feat.mu.Lock()
	fns := s.feat.stateFns
	s.feat.mu.Unlock()
	if len(fns) == 0 {
		return
	}
	s.feat.run(s, id, func() {
		for _, fn := range fns {
			fn(id, online)
		}
	})
}

// run queues fn on key's serial queue, starting its goroutine if idle.
func (f *features) run(s *Server, key DeviceID, fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	q := f.queues[key]
	if q == nil {
		q = &serialQueue{}
		f.queues[key] = q
		f.wg.Add(1)
		go f.drain(s, key, q)
	}
	q.items = append(q.items, fn)
}

func (f *features) drain(s *Server, key DeviceID, q *serialQueue) {
	defer f.wg.Done()
	for {
		f.mu.Lock()
		if len(q.items) == 0 {
			delete(f.queues, key)
			f.mu.Unlock()
			return
		}
		fn := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		f.mu.Unlock()
		f.call(s, key, fn)
	}
}

// call runs one callback; a panic is logged with its stack instead of killing the test binary.
func (f *features) call(s *Server, key DeviceID, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("explorertest: feature handler panicked", "device", key.String(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	fn()
}

// wait stops accepting work and waits for queued callbacks to finish.
func (f *features) wait() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
}

// OnPublished hands a device publish to the matching uplink handlers.
func (h *platformHook) OnPublished(cl *mqtt.Client, pk packets.Packet) {
	if cl.Net.Inline {
		return
	}
	sess := sessionOf(cl)
	if sess == nil {
		return
	}
	topic := unaliasSys(pk.TopicName)
	s := h.s
	s.feat.mu.Lock()
	var fns []func(Uplink)
	for _, r := range s.feat.routes {
		if strings.HasPrefix(topic, r.prefix) {
			fns = append(fns, r.fn)
		}
	}
	s.feat.mu.Unlock()
	if len(fns) == 0 {
		return
	}
	owner, ok := topicOwner(topic)
	if !ok {
		owner = sess.id
	}
	payload := append([]byte(nil), pk.Payload...)
	s.feat.run(s, sess.id, func() {
		for _, fn := range fns {
			// Each handler gets its own copy so one cannot corrupt another's view.
			fn(Uplink{Client: sess.id, Device: owner, Topic: topic, Payload: append([]byte(nil), payload...), QoS: pk.FixedHeader.Qos})
		}
	})
}
