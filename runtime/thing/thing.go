package thing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

// setupTimeout bounds the subscriptions New makes (New has no ctx by contract).
const setupTimeout = 30 * time.Second

// resyncTimeout bounds one pending-control re-sync (get_status, handler, clear_control).
const resyncTimeout = 30 * time.Second

// Transport is the connection a Thing runs on. *explorer.Conn implements it; wrap it (to
// log, count or fault-inject) or fake it in a test. Publish must copy payload if it keeps it
// after returning; the Thing builds a new payload for every message.
type Transport interface {
	// Publish sends payload to topic at QoS 0 or 1 (see explorer.Conn.Publish, also for the
	// offline queue).
	Publish(ctx context.Context, topic string, qos byte, payload []byte) error
	// Subscribe routes messages matching filter to h.
	Subscribe(ctx context.Context, filter string, qos byte, h explorer.Handler) error
	// Unsubscribe removes subscriptions.
	Unsubscribe(ctx context.Context, filters ...string) error
	// OnConnect registers fn to run after every reconnect; remove unregisters it.
	OnConnect(fn func(ctx context.Context)) (remove func())
	// ProductID and DeviceName name the connection's own device.
	ProductID() string
	DeviceName() string
	// Logger is the connection's logger (nil for none).
	Logger() *slog.Logger
	// Now is the connection's clock, corrected to the platform's time (explorer.Conn.Now
	// follows the offset learnt from $sys/operation after each connect, so a device whose
	// own clock is wrong still stamps messages the platform accepts). Every timestamp the
	// Thing writes comes from it unless WithClock is given.
	Now() time.Time
}

// topics holds the eight data-template topics of one device.
type topics struct {
	upProperty, upEvent, upAction, upService         string
	downProperty, downEvent, downAction, downService string
}

func makeTopics(pid, dn string) topics {
	f := func(dir, kind string) string { return "$thing/" + dir + "/" + kind + "/" + pid + "/" + dn }
	return topics{
		upProperty: f("up", topicKindProperty), upEvent: f("up", topicKindEvent),
		upAction: f("up", topicKindAction), upService: f("up", topicKindService),
		downProperty: f("down", topicKindProperty), downEvent: f("down", topicKindEvent),
		downAction: f("down", topicKindAction), downService: f("down", topicKindService),
	}
}

func (t topics) down() []string {
	return []string{t.downProperty, t.downEvent, t.downAction, t.downService}
}

// Thing is the data-template protocol engine for one device ({ProductID}/{DeviceName}) on a
// connection: it sends reports, events and status requests and correlates their replies by
// clientToken, and it answers control and action messages from the cloud through the
// handlers given as options. All methods are safe for concurrent use.
type Thing struct {
	conn   Transport
	tpl    *template.Template
	opts   options
	log    *slog.Logger
	pid    string
	dn     string
	topics topics

	seq atomic.Uint64
	// tokenPrefix is the product ID as it appears inside a JSON string (clientTokens are
	// "{ProductID}-{n}").
	tokenPrefix []byte

	// ctx is cancelled by Close; handler and re-sync contexts derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	waiters  map[uint64]*waiter
	removeCB func()

	controlQ     atomic.Pointer[chan func()] // serialises controls, pending control, notices (controlQueue)
	working      bool                        // a controlWorker runs (guarded by mu; see kick)
	actionSem    chan struct{}               // bounds concurrent action handlers
	wg           sync.WaitGroup              // worker, action handlers, re-syncs
	resyncMu     sync.Mutex                  // guards the two fields below
	resyncCancel context.CancelFunc          // cancels the latest re-sync
	resyncDone   chan struct{}               // closed when the latest re-sync has finished
	done         chan struct{}               // closed by Close; stops the control worker

	feat  features                   // RRPC, broadcast, logs, files, resources (features.go)
	files atomic.Pointer[filesRoute] // NewFiles' Files, read by the downlink router
}

// New creates the engine for one device on conn, subscribes its four downlink topics
// ($thing/down/{property,event,action,service}/{pid}/{dn}) and, unless disabled with
// WithResyncOnConnect(false), starts a background re-sync of pending control now and after
// every reconnect. The device is the connection's own unless WithDevice is given. One Thing
// per device may run on a connection at a time (Close it before making another).
// *explorer.Conn is the usual conn.
func New(conn Transport, tpl *template.Template, opts ...Option) (*Thing, error) {
	if conn == nil {
		return nil, errors.New("thing: New: nil connection")
	}
	return newThing(conn, tpl, opts...)
}

func newThing(conn Transport, tpl *template.Template, opts ...Option) (*Thing, error) {
	if tpl == nil {
		return nil, errors.New("thing: New: nil template")
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	own := o.pid == "" || (o.pid == conn.ProductID() && o.dn == conn.DeviceName())
	if o.pid == "" {
		o.pid, o.dn = conn.ProductID(), conn.DeviceName()
	}
	resync := own
	if o.resync != nil {
		resync = *o.resync
	}
	if o.pid == "" || o.dn == "" {
		return nil, errors.New("thing: New: connection has no product ID/device name; use WithDevice")
	}
	if o.wantProduct != "" && o.pid != o.wantProduct {
		how := "the connection's device"
		if !own {
			how = "the device given with WithDevice"
		}
		return nil, fmt.Errorf("thing: New: this code is generated for product %s, but %s %s/%s is of product %s; use the package generated from that product's template",
			o.wantProduct, how, o.pid, o.dn, o.pid)
	}
	if o.now == nil {
		o.now = conn.Now
	}
	log := o.logger
	if log == nil {
		log = conn.Logger()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Thing{
		conn:   conn,
		tpl:    tpl,
		opts:   o,
		log:    log.With("thing", o.pid+"/"+o.dn),
		pid:    o.pid,
		dn:     o.dn,
		topics: makeTopics(o.pid, o.dn),
		// The prefix is a JSON string's content: escape what JSON needs escaped.
		tokenPrefix: func() []byte { q := tplwire.AppendString(nil, o.pid); return q[1 : len(q)-1] }(),
		waiters:     make(map[uint64]*waiter),
		actionSem:   make(chan struct{}, o.maxActions),
		done:        make(chan struct{}),
	}
	// The connection keeps one handler per topic: a second Thing for the same device would
	// silently take the first one's subscriptions, and its Close would leave the first deaf.
	if !claimDevice(conn, o.pid, o.dn) {
		return nil, fmt.Errorf("thing: New: a Thing for %s/%s already runs on this connection; Close it first", o.pid, o.dn)
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	var subscribed []string
	// Owned subscriptions (explorer.Conn) cannot be replaced by a program's own Subscribe to
	// the same topic, which would silently take the Thing's messages (the service topic's
	// replies and notices above all); it gets an error naming the reason instead.
	subscribe := explorer.OwnedSubscribe(conn)
	for _, topic := range t.topics.down() {
		if err := subscribe(ctx, topic, 0, t.onMessage); err != nil {
			if len(subscribed) > 0 {
				_ = conn.Unsubscribe(ctx, subscribed...)
			}
			t.shutdown()
			releaseDevice(conn, o.pid, o.dn)
			return nil, fmt.Errorf("thing: subscribe %s: %w", topic, err)
		}
		subscribed = append(subscribed, topic)
	}
	if resync {
		t.removeCB = conn.OnConnect(t.requestResync)
		t.requestResync(t.ctx)
	}
	return t, nil
}

// ProductID returns the product ID this Thing speaks for.
func (t *Thing) ProductID() string { return t.pid }

// DeviceName returns the device name this Thing speaks for.
func (t *Thing) DeviceName() string { return t.dn }

// Template returns the data template messages are checked against.
func (t *Thing) Template() *template.Template { return t.tpl }

// Close unsubscribes the downlink topics, fails requests still waiting for a reply with
// ErrClosed, stops what was started through the Thing (OnRRPC, OnBroadcast, NewFiles,
// NewResourceTasks, NewLogUploader, which uploads what it buffered within ctx), cancels
// running handlers' contexts and waits (bounded by ctx) for them to return. It does not close
// the connection. Calling Close again is a no-op.
func (t *Thing) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	for token, w := range t.waiters {
		w.finish(nil, ErrClosed)
		delete(t.waiters, token)
	}
	remove := t.removeCB
	t.mu.Unlock()
	if remove != nil {
		remove()
	}
	ferr := t.closeFeatures(ctx)
	err := t.conn.Unsubscribe(ctx, t.topics.down()...)
	if errors.Is(err, explorer.ErrClosed) {
		err = nil // the connection is gone: so are its subscriptions
	}
	if err != nil {
		err = fmt.Errorf("thing: close: unsubscribe: %w", err)
	}
	if err == nil {
		err = ferr
	}
	if werr := t.shutdown(ctx); werr != nil && err == nil {
		err = werr
	}
	releaseDevice(t.conn, t.pid, t.dn)
	return err
}

// running records which devices have a Thing on which connection.
var running = struct {
	sync.Mutex
	m map[runningKey]bool
}{m: map[runningKey]bool{}}

type runningKey struct {
	conn    Transport
	pid, dn string
}

func claimDevice(conn Transport, pid, dn string) bool {
	running.Lock()
	defer running.Unlock()
	k := runningKey{conn, pid, dn}
	if running.m[k] {
		return false
	}
	running.m[k] = true
	return true
}

func releaseDevice(conn Transport, pid, dn string) {
	running.Lock()
	delete(running.m, runningKey{conn, pid, dn})
	running.Unlock()
}

// shutdown cancels handlers, stops the worker and waits for goroutines (bounded by ctx).
func (t *Thing) shutdown(ctxs ...context.Context) error {
	t.cancel()
	select {
	case <-t.done:
	default:
		close(t.done)
	}
	finished := make(chan struct{})
	go func() { t.wg.Wait(); close(finished) }()
	if len(ctxs) == 0 {
		<-finished
		return nil
	}
	select {
	case <-finished:
		return nil
	case <-ctxs[0].Done():
		return fmt.Errorf("thing: close: handlers still running: %w", ctxs[0].Err())
	}
}

func (t *Thing) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// nextSeq returns a fresh request number; the clientToken is "{pid}-{seq}", the SDKs' form.
func (t *Thing) nextSeq() uint64 { return t.seq.Add(1) - 1 }

func (t *Thing) nowMillis() int64 { return t.opts.now().UnixMilli() }

// goTracked runs fn on a goroutine Close waits for; it reports false after Close.
func (t *Thing) goTracked(fn func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		fn()
	}()
	return true
}
