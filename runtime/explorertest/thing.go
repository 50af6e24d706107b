package explorertest

// The cloud's data-template (物模型) behaviour: it answers the device's $thing/up/* messages the way
// IoT Explorer does (docs/PROTOCOL.md §2.4, codes §2.6), keeps each device's reported state, stores
// control sent while a device is offline, and gives tests a cloud-side Go API (SendControl,
// InvokeAction, Reported, Events, WaitReported, ...).
//
// Files: thing.go (the feature: state and registration), thing_uplink.go (answers to
// $thing/up/*), thing_control.go (cloud-initiated control and actions), thing_api.go (the
// Server methods), thing_types.go (public types and codes), wire.go (untrusted-JSON helpers).

import (
	"log/slog"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/template"
)

// thingDevice is the platform's record of one device's data-template state.
type thingDevice struct {
	reported   map[string]json.RawMessage
	reportedAt map[string]int64 // ms of the report that last set each property
	pending    map[string]json.RawMessage
	events     []EventRecord // newest last; resliced from the front, so amortized O(1) per event
	eventBytes int           // size of events as counted by eventSize
	dropped    int           // events dropped to stay within maxEventsKept / maxEventBytes
	info       *InfoReport
}

// eventSize is what one record counts against maxEventBytes.
func eventSize(e *EventRecord) int {
	return len(e.Params) + len(e.ClientToken) + len(e.EventID) + 64
}

// addEvents appends recs and drops the oldest beyond the bounds. Call with tc.mu held.
func (d *thingDevice) addEvents(recs []EventRecord) {
	for i := range recs {
		d.eventBytes += eventSize(&recs[i])
	}
	d.events = append(d.events, recs...)
	drop := 0
	for len(d.events)-drop > maxEventsKept || (d.eventBytes > maxEventBytes && drop < len(d.events)-1) {
		d.eventBytes -= eventSize(&d.events[drop])
		d.events[drop] = EventRecord{} // release its params now
		drop++
	}
	d.events = d.events[drop:]
	d.dropped += drop
}

// result is what a waiting SendControl/InvokeAction receives: the reply, or why the device's
// answer could not be read.
type result[T any] struct {
	rep T
	err error
}

type replyKey struct {
	dev   DeviceID
	token string
}

// thingCloud holds the data-template state of one Server. It depends on the server only
// through the funcs below, which keeps it testable and the coupling visible.
type thingCloud struct {
	publish func(topic string, payload []byte, qos byte) error
	online  func(id DeviceID) bool
	exists  func(id DeviceID) bool
	now     func() time.Time
	log     *slog.Logger
	// onChange reports a state change to the console stream and persistence (Server.changed,
	// console.go); it never blocks and may be called with mu held.
	onChange func(kind string, id DeviceID, data any)

	mu       sync.Mutex
	products map[string]*template.Template
	devices  map[DeviceID]*thingDevice
	controls map[replyKey]chan result[ControlReply]
	actions  map[replyKey]chan result[ActionReply]
	changed  chan struct{} // closed and replaced on every state change (broadcast to waiters)
}

func newThingCloud() *thingCloud {
	return &thingCloud{
		now:      time.Now,
		log:      slog.New(slog.DiscardHandler),
		onChange: func(string, DeviceID, any) {},
		products: map[string]*template.Template{},
		devices:  map[DeviceID]*thingDevice{},
		controls: map[replyKey]chan result[ControlReply]{},
		actions:  map[replyKey]chan result[ActionReply]{},
		changed:  make(chan struct{}),
	}
}

// notifyLocked wakes everything waiting for a state change. Call with tc.mu held.
func (tc *thingCloud) notifyLocked() {
	close(tc.changed)
	tc.changed = make(chan struct{})
}

// deviceLocked returns (creating) the state of id. Call with tc.mu held.
func (tc *thingCloud) deviceLocked(id DeviceID) *thingDevice {
	d := tc.devices[id]
	if d == nil {
		d = &thingDevice{reported: map[string]json.RawMessage{}, reportedAt: map[string]int64{}}
		tc.devices[id] = d
	}
	return d
}

// emptyDevice stands in for a device with no state yet; read it, never modify it.
var emptyDevice = &thingDevice{}

// peekLocked returns id's state for reading without creating it. Call with tc.mu held.
func (tc *thingCloud) peekLocked(id DeviceID) *thingDevice {
	if d := tc.devices[id]; d != nil {
		return d
	}
	return emptyDevice
}

func (tc *thingCloud) template(pid string) *template.Template {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.products[pid]
}

// initThing is the data-template feature's init (features.go): it creates the state in
// s.thing and registers the uplink handlers, the device-state callback and the JSON API.
func (s *Server) initThing() error {
	tc := newThingCloud()
	tc.publish = s.Publish
	tc.online = func(id DeviceID) bool { return s.Online(id.ProductID, id.DeviceName) }
	tc.exists = func(id DeviceID) bool { _, ok := s.Device(id.ProductID, id.DeviceName); return ok }
	tc.now = s.clock
	tc.log = s.log
	tc.onChange = s.changed
	s.thing = tc
	s.handleUplink("$thing/up/property/", tc.handleProperty)
	s.handleUplink("$thing/up/event/", tc.handleEvent)
	s.handleUplink("$thing/up/action/", tc.handleAction)
	s.onDeviceState(func(id DeviceID, online bool) {
		if !online {
			tc.deviceOffline(id)
		}
	})
	s.onDeviceRemoved(func(id DeviceID) {
		tc.mu.Lock()
		delete(tc.devices, id)
		tc.notifyLocked()
		tc.mu.Unlock()
	})
	s.initAPI()
	return nil
}
