package thing

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/tplgen/tplgen/runtime/tplwire"
)

// The service topic ($thing/down/service/{pid}/{dn}, docs/PROTOCOL.md §2.4.8) carries three
// kinds of message, all routed by the one subscription the Thing holds:
//
//   - *_reply messages (app_bind_token_reply, unbind_device_reply, ...) reach the call that
//     waits for them, matched by clientToken like every other reply;
//   - bind_device and unbind_device reach the BindingObserver (typed);
//   - every other method (the value-added services of docs/PROTOCOL.md §7.6) reaches the
//     ServiceHandler untyped, with the whole message.
//
// A program must not Subscribe the same filter on the connection itself: the connection
// keeps one handler per filter, so that would silently take these messages from the Thing.
// Use WithServiceHandler (or a Handler implementing ServiceObserver) instead.

// Service methods (docs/PROTOCOL.md §2.4.8).
const (
	methodBindDevice          = "bind_device"
	methodUnbindDevice        = "unbind_device"
	methodAppBindToken        = "app_bind_token"
	methodUnbindDeviceRequest = "unbind_device_request"
)

// BindingNotice is a bind_device or unbind_device message: a user bound the device in the
// app, or removed it (which also follows a successful RequestUnbind). No reply is expected.
type BindingNotice struct {
	// Bound is true for bind_device, false for unbind_device.
	Bound bool
	// Method is "bind_device" or "unbind_device".
	Method string
	// ClientToken is the message's clientToken.
	ClientToken string
	// Time is the message's timestamp, zero when it carried none.
	Time time.Time
	// Raw is the whole message.
	Raw []byte
}

// BindingObserver is implemented by a generated Handler that wants bind_device and
// unbind_device notices (for example to forget the user's settings on unbind). NewDevice
// wires it up when the Handler has the method; WithBindingHandler does the same for a Thing.
type BindingObserver interface {
	Binding(ctx context.Context, n BindingNotice)
}

// ServiceObserver is implemented by a generated Handler that wants the other messages of the
// service topic (value-added services, docs/PROTOCOL.md §7.6), untyped: method and the whole
// message. NewDevice wires it up when the Handler has the method.
type ServiceObserver interface {
	Service(ctx context.Context, method string, msg []byte)
}

// WithBindingHandler sets the handler of bind_device and unbind_device notices. Without one
// they go to the ServiceHandler, or are logged at Info level.
func WithBindingHandler(h func(ctx context.Context, n BindingNotice)) Option {
	return func(o *options) error { o.binding = h; return nil }
}

// Errors of BindAppToken and RequestUnbind, matched by errors.Is on the *ReplyError the
// platform's answer becomes. The protocol documents no code but 0; these are the codes the
// in-process platform (runtime/explorertest) answers, HTTP-style like the data-template codes.
var (
	// ErrBindMalformed: the request was malformed (code 400).
	ErrBindMalformed = errors.New("bind request malformed")
	// ErrBindOtherDevice: the token was issued for another device (code 403).
	ErrBindOtherDevice = errors.New("bind token of another device")
	// ErrBindUnknownToken: no such token was issued (code 404).
	ErrBindUnknownToken = errors.New("unknown bind token")
	// ErrBindTokenUsed: the token already bound a device (code 409).
	ErrBindTokenUsed = errors.New("bind token already used")
	// ErrBindTokenExpired: the token's validity ended (code 410).
	ErrBindTokenExpired = errors.New("bind token expired")
)

// bindErrors maps the reply codes of app_bind_token_reply / unbind_device_reply.
var bindErrors = map[int]error{
	400: ErrBindMalformed,
	403: ErrBindOtherDevice,
	404: ErrBindUnknownToken,
	409: ErrBindTokenUsed,
	410: ErrBindTokenExpired,
}

// BindAppToken sends the token the app handed the device during Wi-Fi provisioning
// (app_bind_token on $thing/up/service, docs/PROTOCOL.md §2.4.8, §7.10) and waits for the
// app_bind_token_reply: nil means the device is now bound to the app's user. A refusal is a
// *ReplyError carrying the code, matching ErrBindUnknownToken, ErrBindTokenExpired,
// ErrBindTokenUsed or ErrBindOtherDevice under errors.Is.
func (t *Thing) BindAppToken(ctx context.Context, token string) error {
	if token == "" {
		return errors.New("thing: BindAppToken: empty token")
	}
	seq := t.nextSeq()
	b := t.appendHead(make([]byte, 0, 96+len(token)), methodAppBindToken, seq)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, t.nowMillis(), 10)
	b = append(b, `,"params":{"token":`...)
	b = tplwire.AppendString(b, token)
	b = append(b, "}}"...)
	_, err := t.request(ctx, t.topics.upService, 1, methodAppBindToken, seq, b, methodAppBindToken+replySuffix)
	return bindError(err)
}

// RequestUnbind asks the platform to unbind the device from its user (unbind_device_request,
// what a factory reset sends) and waits for the unbind_device_reply. The platform then also
// pushes an unbind_device notice (see BindingObserver). A refusal is a *ReplyError.
func (t *Thing) RequestUnbind(ctx context.Context) error {
	seq := t.nextSeq()
	b := t.appendHead(make([]byte, 0, 128), methodUnbindDeviceRequest, seq)
	b = append(b, `,"deviceName":`...)
	b = tplwire.AppendString(b, t.dn)
	b = append(b, `,"productId":`...)
	b = tplwire.AppendString(b, t.pid)
	b = append(b, '}')
	_, err := t.request(ctx, t.topics.upService, 1, methodUnbindDeviceRequest, seq, b, "unbind_device_reply")
	return bindError(err)
}

// bindError attaches the binding sentinel of a refusal's code.
func bindError(err error) error {
	var re *ReplyError
	if errors.As(err, &re) {
		if s := bindErrors[re.Code]; s != nil {
			return &bindReplyError{ReplyError: re, kind: s}
		}
	}
	return err
}

// bindReplyError is a *ReplyError of a binding call that also matches its sentinel.
type bindReplyError struct {
	*ReplyError
	kind error
}

func (e *bindReplyError) Error() string   { return e.ReplyError.Error() + ": " + e.kind.Error() }
func (e *bindReplyError) Unwrap() []error { return []error{e.ReplyError, e.kind} }

// handleService routes one unsolicited service-topic message (replies went to their waiters).
func (t *Thing) handleService(topic string, msg *downMsg) {
	if (msg.Method == methodBindDevice || msg.Method == methodUnbindDevice) && t.opts.binding != nil {
		n := BindingNotice{Bound: msg.Method == methodBindDevice, Method: msg.Method,
			ClientToken: msg.ClientToken, Raw: msg.Raw}
		if msg.Timestamp > 0 {
			n.Time = unixAuto(msg.Timestamp)
		}
		t.log.Info("binding notice", "topic", topic, "method", msg.Method)
		if err := t.callHandler(func(ctx context.Context) error { t.opts.binding(ctx, n); return nil }); err != nil {
			t.log.Error("binding handler failed", "topic", topic, "method", msg.Method, "error", err)
		}
		return
	}
	if t.opts.service == nil {
		t.log.Info("service message without a handler", "topic", topic, "method", msg.Method)
		return
	}
	err := t.callHandler(func(ctx context.Context) error {
		t.opts.service(ctx, msg.Method, msg.Raw)
		return nil
	})
	if err != nil {
		t.log.Error("service handler failed", "topic", topic, "method", msg.Method, "error", err)
	}
}

// unixAuto reads a timestamp in seconds or milliseconds (the platform sends both).
func unixAuto(n int64) time.Time {
	if n > 1e11 {
		return time.UnixMilli(n)
	}
	return time.Unix(n, 0)
}

// BindAppToken sends the app's bind token; see Thing.BindAppToken.
func (d *Device[P, C]) BindAppToken(ctx context.Context, token string) error {
	return d.t.BindAppToken(ctx, token)
}

// RequestUnbind asks the platform to unbind the device from its user; see
// Thing.RequestUnbind.
func (d *Device[P, C]) RequestUnbind(ctx context.Context) error { return d.t.RequestUnbind(ctx) }
