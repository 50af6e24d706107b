package explorertest

import (
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// How to add a feature
//
// A feature is one job of the cloud (data template, gateway, OTA, dynamic registration, ...).
// Each one follows the same pattern, so a new feature is a new file plus two one-line edits:
//
//  1. Its state is a type of its own (e.g. `type logCloud struct{ mu sync.Mutex; ... }`),
//     held in one field of Server (server.go, block "Features") that its init sets once.
//     There is no package-level state: two Servers in one test binary never share anything,
//     and Restart keeps every feature's state because the field outlives broker generations.
//  2. Its init is `func (s *Server) initXxx() error`, listed in initFeatures below. It runs
//     once in NewServer before any listener starts, creates the state, assigns the field and
//     registers what the feature needs:
//       - s.handleUplink(prefix, fn): device publishes whose topic starts with prefix;
//       - s.onDeviceState(fn): a device going online or offline;
//       - s.onSubscribed(fn): a device subscribing to a filter the ACL accepted;
//       - s.onDeviceRemoved(fn): forget a device RemoveDevice deleted (required for any
//         per-device state: API clients may create and delete devices without end);
//       - s.mux.HandleFunc(pattern, fn): HTTP(S) routes (Go 1.22 patterns; JSON API routes
//         live under /api/ and answer with writeJSON/writeError, api.go);
//       - s.addDeviceDetail(key, fn): a section of GET /api/devices/{pid}/{dn};
//       - s.addCloser(fn): release resources (files, goroutines) at the end of Close;
//       - s.proxyAllowed / s.proxiedOnline: gateway only (ACL and presence of sub-devices).
//  3. Its exported API is methods on Server in the feature's own file(s), each answering
//     ErrClosed after Close where it would otherwise touch released resources
//     (s.isFinished()). Untrusted input (payloads, request bodies) is decoded only through
//     unmarshalUntrusted / jsonguard (wire.go), with every refusal naming topic and field.
//  4. Anything a device or API client can make the feature keep is bounded (count and size
//     caps, oldest dropped, drops counted).
//
// devlog.go is the shortest complete feature (state type, initDevLog, onDeviceRemoved,
// bounded per-device storage, JSON API routes): read it before writing a new one.
//
// Uplink handlers and state callbacks of one connection run in order on a goroutine of their
// own (never the broker's), so they may call s.Publish synchronously and may block briefly;
// a slow handler delays only that connection's later events. Different connections are
// handled concurrently. Close waits for handlers in flight, then runs the closers.

// initFeatures runs every feature's init, in order (the gateway first: the ACL consults it).
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
		{"binding", s.initBinding},
		{"devlog", s.initDevLog},
		{"resources", s.initResources},
		{"console", s.initConsole}, // after every feature: it wraps their routes and state
		{"persist", s.initPersist}, // last: restores the sections the features registered
	} {
		if err := f.init(); err != nil {
			return fmt.Errorf("explorertest: feature %s: %w", f.name, err)
		}
	}
	return nil
}

// uplink is one device publish handed to a feature.
type uplink struct {
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
	fn     func(uplink)
}

// features holds the registered extension callbacks and the per-connection serial queues.
type features struct {
	mu        sync.Mutex
	routes    []route
	stateFns  []func(DeviceID, bool)
	subFns    []func(DeviceID, string)
	removeFns []func(DeviceID)
	closers   []func()
	details   []deviceDetail
	queues    map[DeviceID]*serialQueue
	closed    bool
	wg        sync.WaitGroup
}

type serialQueue struct{ items []func() }

func (f *features) init() { f.queues = map[DeviceID]*serialQueue{} }

// handleUplink registers fn for device publishes whose topic starts with topicPrefix
// (e.g. "$thing/up/property/"). Every matching handler runs, in registration order. Call it
// only from a feature's init.
func (s *Server) handleUplink(topicPrefix string, fn func(u uplink)) {
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

// onSubscribed registers fn to be told when a device subscribes to a filter the platform
// accepted. fn runs on the broker's goroutine before the SUBACK is written, so it must only
// record (take a lock, call s.changed) and never publish or block.
func (s *Server) onSubscribed(fn func(id DeviceID, filter string)) {
	s.feat.mu.Lock()
	defer s.feat.mu.Unlock()
	s.feat.subFns = append(s.feat.subFns, fn)
}

// emitSubscribed runs the subscription callbacks for an accepted filter of id.
func (s *Server) emitSubscribed(id DeviceID, filter string) {
	s.feat.mu.Lock()
	fns := s.feat.subFns
	s.feat.mu.Unlock()
	for _, fn := range fns {
		fn(id, filter)
	}
}

// onDeviceRemoved registers fn to drop everything the feature keeps about a device that
// RemoveDevice deleted (so creating and deleting devices cannot grow the platform). fn runs once
// when RemoveDevice returns and once more after the device's uplinks still in flight, so it
// must be idempotent.
func (s *Server) onDeviceRemoved(fn func(id DeviceID)) {
	s.feat.mu.Lock()
	defer s.feat.mu.Unlock()
	s.feat.removeFns = append(s.feat.removeFns, fn)
}

// emitRemoved runs the removal callbacks for id now and again behind id's queued uplinks.
func (s *Server) emitRemoved(id DeviceID) {
	s.feat.mu.Lock()
	fns := s.feat.removeFns
	s.feat.mu.Unlock()
	all := func() {
		for _, fn := range fns {
			fn(id)
		}
	}
	s.feat.call(s, id, all)
	s.feat.run(s, id, all)
}

// deviceDetail is one feature-contributed section of GET /api/devices/{pid}/{dn}.
type deviceDetail struct {
	key string
	fn  func(id DeviceID) any
}

// addDeviceDetail adds section key to GET /api/devices/{pid}/{dn}, filled by fn (nil adds
// nothing). Keys must not collide with the built-in ones (product_id, device_name, online,
// reported, pending_control, info, events) or another feature's.
func (s *Server) addDeviceDetail(key string, fn func(id DeviceID) any) {
	s.feat.mu.Lock()
	defer s.feat.mu.Unlock()
	s.feat.details = append(s.feat.details, deviceDetail{key: key, fn: fn})
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
	h.s.dispatchUplink(sess.id, unaliasSys(pk.TopicName), pk.Payload, pk.FixedHeader.Qos)
}

// dispatchUplink hands a device message — from the broker (OnPublished) or from another
// transport (HTTP publish) — to the matching uplink handlers, on client's serial queue so it is
// ordered with that device's other uplinks. payload is copied only when a handler matches (the
// broker may reuse its buffer once the hook returns), and each handler gets its own copy so one
// cannot corrupt another's view.
func (s *Server) dispatchUplink(client DeviceID, topic string, payload []byte, qos byte) {
	s.logBody("explorertest: uplink", client, topic, qos, payload)
	s.feat.mu.Lock()
	var fns []func(uplink)
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
		owner = client
	}
	payload = append([]byte(nil), payload...)
	s.feat.run(s, client, func() {
		for _, fn := range fns {
			fn(uplink{Client: client, Device: owner, Topic: topic, Payload: append([]byte(nil), payload...), QoS: qos})
		}
	})
}
