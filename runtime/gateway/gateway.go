package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"sort"
	"sync"
	"time"

	"github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/thing"
)

// Device names a sub-device.
type Device struct {
	ProductID  string
	DeviceName string
}

// String returns "pid/dn".
func (d Device) String() string { return d.ProductID + "/" + d.DeviceName }

// SubDevice is a sub-device with the credential its bind request is signed with: the PSK
// (DeviceSecret) or, for certificate devices, the certificate file's bytes.
type SubDevice struct {
	Device
	DeviceSecret string
	Certificate  []byte
}

// String describes the sub-device without its credential (Device's String would otherwise
// be promoted and %#v would print the DeviceSecret).
func (s SubDevice) String() string {
	return fmt.Sprintf("gateway.SubDevice{%s auth:%s <secret redacted>}", s.Device, s.authType())
}

// GoString is String, so %#v does not print the secret either.
func (s SubDevice) GoString() string { return s.String() }

// LogValue keeps the credential out of structured logs.
func (s SubDevice) LogValue() slog.Value {
	return slog.GroupValue(slog.String("product", s.ProductID), slog.String("device", s.DeviceName),
		slog.String("auth", s.authType()))
}

func (s SubDevice) authType() string {
	switch {
	case len(s.Certificate) > 0:
		return "certificate"
	case s.DeviceSecret != "":
		return "psk"
	}
	return "none"
}

// Result is the outcome of an operation for one sub-device; Err is nil on success and a
// *ResultError for a non-zero platform result.
type Result struct {
	Device Device
	Err    error
}

// Results are the per-device outcomes of one call.
type Results []Result

// Err joins the per-device errors, or returns nil when every device succeeded.
func (rs Results) Err() error {
	var errs []error
	for _, r := range rs {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

// Change is a cloud-initiated topology change (the user bound or unbound sub-devices in the app).
type Change struct {
	Bound   bool // true: bind (status 1), false: unbind (status 0)
	Devices []Device
}

// Defaults.
const (
	DefaultBatchSize = 50
	DefaultTimeout   = 20 * time.Second // the C SDK's wait for a gateway result
)

// Option configures a Gateway.
type Option func(*Gateway) error

// WithLogger sets the logger (discard by default).
func WithLogger(l *slog.Logger) Option {
	return func(g *Gateway) error {
		if l == nil {
			return errors.New("gateway: WithLogger(nil)")
		}
		g.log = l
		return nil
	}
}

// WithBatchSize caps how many sub-devices go into one request (1..500, default 50). Requests
// are also cut by size: each stays within the platform's 16 KB payload limit whatever the
// count (a bind entry, with its signature, takes about 200 bytes; an online entry about 50).
func WithBatchSize(n int) Option {
	return func(g *Gateway) error {
		if n < 1 || n > 500 {
			return fmt.Errorf("gateway: batch size %d outside 1..500", n)
		}
		g.batch = n
		return nil
	}
}

// WithTimeout bounds each operation whose ctx has no deadline (default 20 s).
func WithTimeout(d time.Duration) Option {
	return func(g *Gateway) error {
		if d <= 0 {
			return fmt.Errorf("gateway: timeout %v must be positive", d)
		}
		g.timeout = d
		return nil
	}
}

// WithSignMethod chooses the HMAC of bind signatures (default hmacsha256).
func WithSignMethod(m SignMethod) Option {
	return func(g *Gateway) error {
		if _, err := m.hash(); err != nil {
			return err
		}
		g.sign = m
		return nil
	}
}

// WithChangeHandler receives cloud-initiated bind/unbind notifications. A nil error is
// acknowledged with result 0, an error with -2.
func WithChangeHandler(fn func(ctx context.Context, c Change) error) Option {
	return func(g *Gateway) error { g.onChange = fn; return nil }
}

// WithUnbindAllHandler receives the cloud's unbind_all; local state is cleared either way.
func WithUnbindAllHandler(fn func(ctx context.Context) error) Option {
	return func(g *Gateway) error { g.onUnbindAll = fn; return nil }
}

// WithSearchHandler receives search_devices (start/stop looking for new sub-devices; status
// is passed through as sent).
func WithSearchHandler(fn func(ctx context.Context, status int) error) Option {
	return func(g *Gateway) error { g.onSearch = fn; return nil }
}

// WithClock overrides the clock used for bind timestamps (default: the connection's
// platform-corrected clock, explorer.Conn.Now, so a device whose clock is wrong still signs
// binds the platform accepts).
func WithClock(now func() time.Time) Option {
	return func(g *Gateway) error { g.now = now; return nil }
}

type waitKey struct {
	op  string
	dev Device
}

// Gateway is a gateway device's topology client. It is safe for concurrent use.
type Gateway struct {
	conn               *explorer.Conn
	upTopic, downTopic string
	log                *slog.Logger
	batch              int
	timeout            time.Duration
	sign               SignMethod
	now                func() time.Time
	onChange           func(context.Context, Change) error
	onUnbindAll        func(context.Context) error
	onSearch           func(context.Context, int) error
	removeHook         func()

	mu        sync.Mutex
	closed    bool
	waiters   map[waitKey][]chan int
	describes []chan []Device
	online    map[Device]bool
	boundSet  map[Device]bool // bound as far as this gateway saw (answers a pushed describe)
	things    map[Device][]*thing.Thing
	syncs     map[Device]*syncRun // running background pending-control syncs
	quiet     map[Device]int      // devices being taken offline/unbound: no new syncs
}

// New subscribes the gateway's operation result topic on conn and returns the Gateway.
// After every reconnect it re-onlines the sub-devices that were online.
func New(ctx context.Context, conn *explorer.Conn, opts ...Option) (*Gateway, error) {
	if conn == nil {
		return nil, errors.New("gateway: nil connection")
	}
	g := &Gateway{
		conn:      conn,
		upTopic:   "$gateway/operation/" + conn.ProductID() + "/" + conn.DeviceName(),
		downTopic: "$gateway/operation/result/" + conn.ProductID() + "/" + conn.DeviceName(),
		log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		batch:     DefaultBatchSize,
		timeout:   DefaultTimeout,
		sign:      HMACSHA256,
		now:       conn.Now, // the platform-corrected clock: bind timestamps expire (805)
		waiters:   map[waitKey][]chan int{},
		online:    map[Device]bool{},
		boundSet:  map[Device]bool{},
		things:    map[Device][]*thing.Thing{},
		syncs:     map[Device]*syncRun{},
		quiet:     map[Device]int{},
	}
	for _, o := range opts {
		if err := o(g); err != nil {
			return nil, err
		}
	}
	if err := conn.Subscribe(ctx, g.downTopic, 1, g.handle); err != nil {
		return nil, fmt.Errorf("gateway: subscribe %s: %w", g.downTopic, err)
	}
	g.removeHook = conn.OnConnect(g.reonline)
	return g, nil
}

// Conn returns the gateway's connection, which sub-devices' generated code runs on
// (pass thing.WithDevice(pid, dn) to the generated New).
func (g *Gateway) Conn() *explorer.Conn { return g.conn }

// Close stops handling results; outstanding calls end with ErrClosed.
func (g *Gateway) Close(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	for k, chans := range g.waiters {
		for _, ch := range chans {
			close(ch)
		}
		delete(g.waiters, k)
	}
	for _, ch := range g.describes {
		close(ch)
	}
	g.describes = nil
	for _, r := range g.syncs {
		r.cancel()
	}
	g.mu.Unlock()
	g.removeHook()
	return g.conn.Unsubscribe(ctx, g.downTopic)
}

// IsOnline reports the local view of a sub-device's status (the Python SDK's isSubdevStatusOnline).
func (g *Gateway) IsOnline(d Device) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.online[d]
}

// SetLocalStatus overrides the local view of a sub-device's status without telling the
// platform (the Python SDK's updateSubdevStatus); it decides what is re-onlined after a reconnect.
func (g *Gateway) SetLocalStatus(d Device, online bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if online {
		g.online[d] = true
	} else {
		delete(g.online, d)
	}
}

// OnlineDevices lists the sub-devices the gateway has brought online, sorted.
func (g *Gateway) OnlineDevices() []Device {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Device, 0, len(g.online))
	for d := range g.online {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Bind binds sub-devices to this gateway, each signed with its own credential.
func (g *Gateway) Bind(ctx context.Context, subs ...SubDevice) (Results, error) {
	entries := make([]wireDevice, len(subs))
	for i, s := range subs {
		if err := checkDevice(s.Device); err != nil {
			return nil, err
		}
		e, err := g.bindEntry(s)
		if err != nil {
			return nil, err
		}
		entries[i] = e
	}
	return g.do(ctx, opBind, entries)
}

func (g *Gateway) bindEntry(s SubDevice) (wireDevice, error) {
	key, auth := s.DeviceSecret, "psk"
	switch {
	case s.DeviceSecret != "" && len(s.Certificate) > 0:
		return wireDevice{}, fmt.Errorf("gateway: bind %s: give DeviceSecret or Certificate, not both", s.Device)
	case len(s.Certificate) > 0:
		key, auth = CertificateBindKey(s.Certificate), "certificate"
	case s.DeviceSecret == "":
		return wireDevice{}, fmt.Errorf("gateway: bind %s: DeviceSecret or Certificate is required to sign the request", s.Device)
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1<<31-1))
	if err != nil {
		return wireDevice{}, fmt.Errorf("gateway: bind %s: random: %w", s.Device, err)
	}
	random, ts := n.Int64()+1, g.now().Unix()
	sig, err := SignBind(key, s.ProductID, s.DeviceName, random, ts, g.sign)
	if err != nil {
		return wireDevice{}, err
	}
	return wireDevice{
		ProductID: s.ProductID, DeviceName: s.DeviceName, Signature: sig,
		Random: random, Timestamp: ts, SignMethod: string(g.sign), AuthType: auth,
	}, nil
}

// Unbind removes sub-devices from this gateway. Background pending-control syncs of those
// sub-devices are stopped first (see Offline).
func (g *Gateway) Unbind(ctx context.Context, devs ...Device) (Results, error) {
	return g.leave(ctx, opUnbind, devs)
}

// Online brings sub-devices online; their topics become usable on the gateway's connection.
func (g *Gateway) Online(ctx context.Context, devs ...Device) (Results, error) {
	rs, err := g.simple(ctx, opOnline, devs)
	var up []Device
	for _, r := range rs {
		if r.Err == nil {
			up = append(up, r.Device)
		}
	}
	g.syncPending(up)
	return rs, err
}

// Offline takes sub-devices offline. A background pending-control sync still running for
// one of them is stopped, and waited for, before the request is sent: a publish for a
// sub-device that is already offline gets the gateway disconnected by the platform.
func (g *Gateway) Offline(ctx context.Context, devs ...Device) (Results, error) {
	return g.leave(ctx, opOffline, devs)
}

// leave sends an offline or unbind request once the devices' background syncs are over.
func (g *Gateway) leave(ctx context.Context, op string, devs []Device) (Results, error) {
	ctx, cancel := g.bound(ctx)
	defer cancel()
	release, err := g.quiesce(ctx, devs)
	if err != nil {
		return nil, fmt.Errorf("gateway: %s: waiting for pending-control syncs to stop: %w", op, err)
	}
	defer release()
	return g.simple(ctx, op, devs)
}

func (g *Gateway) simple(ctx context.Context, op string, devs []Device) (Results, error) {
	entries := make([]wireDevice, len(devs))
	for i, d := range devs {
		if err := checkDevice(d); err != nil {
			return nil, err
		}
		entries[i] = wireDevice{ProductID: d.ProductID, DeviceName: d.DeviceName}
	}
	return g.do(ctx, op, entries)
}

func checkDevice(d Device) error {
	if d.ProductID == "" || d.DeviceName == "" {
		return fmt.Errorf("gateway: sub-device %q: ProductID and DeviceName are required", d.String())
	}
	return nil
}

// Describe asks the platform for the sub-devices bound to this gateway.
func (g *Gateway) Describe(ctx context.Context) ([]Device, error) {
	ctx, cancel := g.bound(ctx)
	defer cancel()
	ch := make(chan []Device, 1)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	g.describes = append(g.describes, ch)
	g.mu.Unlock()
	defer g.dropDescribe(ch)
	if err := g.publish(ctx, request{Type: opDescribe}); err != nil {
		return nil, err
	}
	select {
	case devs, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		return devs, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("gateway: describe_sub_devices: no result: %w", ctx.Err())
	}
}

func (g *Gateway) dropDescribe(ch chan []Device) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, c := range g.describes {
		if c == ch {
			g.describes = append(g.describes[:i], g.describes[i+1:]...)
			return
		}
	}
}

func (g *Gateway) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, g.timeout)
}

// do sends entries in batches and waits for every device's result.
func (g *Gateway) do(ctx context.Context, op string, entries []wireDevice) (Results, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	ctx, cancel := g.bound(ctx)
	defer cancel()

	chans := make([]chan int, len(entries))
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, ErrClosed
	}
	for i, e := range entries {
		k := waitKey{op, Device{e.ProductID, e.DeviceName}}
		chans[i] = make(chan int, 1)
		g.waiters[k] = append(g.waiters[k], chans[i])
	}
	g.mu.Unlock()
	defer g.forget(op, entries, chans)

	reqs, err := g.batches(op, entries)
	if err != nil {
		return nil, err
	}
	for _, b := range reqs {
		if err := g.publishRaw(ctx, b); err != nil {
			return nil, err
		}
	}
	results := make(Results, len(entries))
	for i, e := range entries {
		d := Device{e.ProductID, e.DeviceName}
		select {
		case code, ok := <-chans[i]:
			if !ok {
				return nil, ErrClosed
			}
			results[i] = Result{Device: d}
			if code != 0 {
				results[i].Err = &ResultError{Op: op, Device: d, Code: code}
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("gateway: %s %s: no result: %w", op, d, ctx.Err())
		}
	}
	return results, nil
}

func (g *Gateway) forget(op string, entries []wireDevice, chans []chan int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, e := range entries {
		k := waitKey{op, Device{e.ProductID, e.DeviceName}}
		list := g.waiters[k]
		for j, c := range list {
			if c == chans[i] {
				list = append(list[:j], list[j+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(g.waiters, k)
		} else {
			g.waiters[k] = list
		}
	}
}

func (g *Gateway) publish(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("gateway: encode request: %w", err)
	}
	return g.publishRaw(ctx, b)
}

func (g *Gateway) publishRaw(ctx context.Context, b []byte) error {
	if err := g.conn.Publish(ctx, g.upTopic, 1, b); err != nil {
		return fmt.Errorf("gateway: publish %s: %w", g.upTopic, err)
	}
	return nil
}

// reonline runs after every (re)connect: it asks again for results lost with the old
// connection, and brings back the sub-devices that were online (the platform may forget
// proxied sessions with the gateway's connection).
func (g *Gateway) reonline(ctx context.Context) {
	g.resendOutstanding(ctx)
	devs := g.OnlineDevices()
	if len(devs) == 0 {
		return
	}
	rs, err := g.Online(ctx, devs...)
	if err == nil {
		err = rs.Err()
	}
	if err != nil {
		g.log.Warn("gateway: re-online after reconnect failed", "devices", len(devs), "err", err)
		return
	}
	g.log.Info("gateway: sub-devices back online after reconnect", "devices", len(devs))
}
