package thing

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// ControlHandler applies a control (desired property values) from the cloud. params is the
// raw JSON object exactly as received, already checked against the template: every key is a
// writable (rw) property and every value is in range. A nil return answers code 0; an
// error answers CodeFailed, or the code of a *ReplyError (see Errorf).
type ControlHandler func(ctx context.Context, params []byte) error

// ActionHandler executes an action (RPC) from the cloud. input is the raw JSON object of the
// action's input, already checked against the template. output is marshaled to JSON (nil
// means {}; []byte and json.RawMessage are taken as JSON text), checked against the action's
// output definition and sent as the action_reply "response". An error answers CodeFailed or
// the code of a *ReplyError, with the error text as status.
type ActionHandler func(ctx context.Context, actionID string, input []byte) (output any, err error)

// ServiceHandler receives notifications on the service topic ($thing/down/service), for
// example "unbind_device" or "bind_device", with the whole raw message. These need no reply.
type ServiceHandler func(ctx context.Context, method string, msg []byte)

// Option configures a Thing.
type Option func(*options) error

type options struct {
	pid, dn         string
	control         ControlHandler
	action          ActionHandler
	actionEncoded   func(ctx context.Context, actionID string, input []byte) ([]byte, error) // typed (NewDevice)
	wantProduct     string                                                                   // NewDevice: the generated product
	service         ServiceHandler
	binding         func(ctx context.Context, n BindingNotice)
	logger          *slog.Logger
	resync          *bool // nil: on for the connection's own device, off for WithDevice
	handlerTimeout  time.Duration
	maxActions      int
	now             func() time.Time
	controlQueueLen int
}

func defaultOptions() options {
	return options{
		handlerTimeout:  30 * time.Second,
		maxActions:      4,
		controlQueueLen: 64,
	}
}

// WithDevice makes the Thing speak for another device on the connection (a gateway's
// sub-device). The default is the connection's own product and device name. For another
// device the automatic pending-control re-sync is off unless WithResyncOnConnect(true) is
// given (see there).
func WithDevice(productID, deviceName string) Option {
	return func(o *options) error {
		if productID == "" || deviceName == "" {
			return errors.New("thing: WithDevice: product ID and device name must not be empty")
		}
		if containsTopicChars(productID) || containsTopicChars(deviceName) {
			return errors.New("thing: WithDevice: product ID and device name must not contain '/', '+' or '#'")
		}
		o.pid, o.dn = productID, deviceName
		return nil
	}
}

// WithControlHandler sets the handler for "control" messages. Without one, controls are
// answered with CodeFailed ("no control handler") so the cloud knows they were not applied.
func WithControlHandler(h ControlHandler) Option {
	return func(o *options) error { o.control = h; return nil }
}

// WithActionHandler sets the handler for "action" messages. Without one, actions are answered
// with CodeFailed.
func WithActionHandler(h ActionHandler) Option {
	return func(o *options) error { o.action = h; return nil }
}

// WithServiceHandler sets the handler for service-topic messages that are neither replies
// (those reach BindAppToken, RequestUnbind, ...) nor, when WithBindingHandler is set,
// bind_device/unbind_device: the value-added services of docs/PROTOCOL.md §7.6. Without one
// they are logged at Info level.
func WithServiceHandler(h ServiceHandler) Option {
	return func(o *options) error { o.service = h; return nil }
}

// WithLogger sets the logger; the default is the connection's logger.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("thing: WithLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithResyncOnConnect turns the automatic pending-control re-sync on or off: after New and
// after every reconnect the Thing asks for control sent while it was offline (get_status
// type control), applies it through the control handler and clears it (clear_control).
//
// The default is on for the connection's own device and off for a device given with
// WithDevice: a gateway's sub-device may only use its topics once the gateway has brought it
// online again after a reconnect, so the gateway calls SyncPendingControl at that point.
func WithResyncOnConnect(on bool) Option {
	return func(o *options) error { o.resync = &on; return nil }
}

// WithHandlerTimeout bounds each control/action/service handler call (default 30s); the
// handler's ctx is cancelled when it expires. Controls are applied one at a time, so a
// control handler that ignores its ctx holds up the controls behind it (they are answered
// with CodeInternal once the queue of 64 is full).
func WithHandlerTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("thing: WithHandlerTimeout: duration must be positive")
		}
		o.handlerTimeout = d
		return nil
	}
}

// WithMaxConcurrentActions bounds how many action handlers run at once (default 4). An
// action arriving while all slots are busy is answered with CodeInternal (503) at once.
// Controls are always applied one at a time, in arrival order.
func WithMaxConcurrentActions(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return errors.New("thing: WithMaxConcurrentActions: need at least 1")
		}
		o.maxActions = n
		return nil
	}
}

// WithClock sets the clock used for message timestamps. The default is the connection's
// corrected clock (Transport.Now; explorer.Conn.Now follows the platform's time even on a
// device whose own clock is wrong). Useful for deterministic output in tests and examples.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("thing: WithClock: nil clock")
		}
		o.now = now
		return nil
	}
}

func containsTopicChars(s string) bool {
	for _, r := range s {
		if r == '/' || r == '+' || r == '#' {
			return true
		}
	}
	return false
}
