// Package rrpc is the device side of the platform's synchronous cloud-to-device calls (RRPC)
// and of product-wide broadcasts (docs/PROTOCOL.md §7.3, §7.4).
//
// RRPC: the cloud publishes a request on $rrpc/rxd/{pid}/{dn}/{processId} and waits (4 s on
// the platform's RRPC page, 10 s in its limits table; runtime/explorertest uses 4 s by
// default) for the device to publish its answer on $rrpc/txd/{pid}/{dn}/{processId}. Payloads
// are opaque bytes both ways. [OnRRPC] subscribes $rrpc/rxd/{pid}/{dn}/+ and answers every
// request with what the [Handler] returns, on the request's own processId.
//
// The protocol has no error reply. A Handler that returns an error (or panics, or returns a
// reply over the 16 KiB publish limit) sends nothing: the error is logged with the processId
// and the caller in the cloud sees its timeout. Applications that need error answers put them
// in the reply payload.
//
// Broadcast: [OnBroadcast] subscribes $broadcast/rxd/{pid}/{dn}, where the cloud delivers a
// product-wide message (≤ 8 KiB) to every online device of the product.
//
// Both subscriptions are QoS 0 (as the official SDKs subscribe them) and survive reconnects
// (the explorer.Conn re-subscribes). Requests are handled one at a time in arrival order, each
// bounded by the connection's handler timeout (explorer.WithHandlerTimeout).
//
// Whether Explorer products (rather than IoT Hub products) expose RRPC is unconfirmed
// (docs/PROTOCOL.md §9 item 12); the emulator offers it to every product.
//
// # The official Python SDK's calls
//
//	rrpcInit(productId, deviceName, callback)   OnRRPC(ctx, conn, handler)
//	rrpcReply(productId, deviceName, reply, n)  the handler's return value
//	broadcastInit(productId, deviceName, cb)    OnBroadcast(ctx, conn, handler)
//
// A gateway serves a sub-device's RRPC with [WithDevice]. A device built on runtime/thing (every
// generated Device) calls dev.OnRRPC and dev.OnBroadcast, which serve its own identity and stop
// at dev.Close.
package rrpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/internal/nilconn"
)

// MaxBroadcast is the platform's limit on a broadcast payload (docs/PROTOCOL.md §7.4).
const MaxBroadcast = 8 * 1024

// Handler answers one RRPC request. The returned bytes are published as the reply; an error
// sends no reply (see the package doc). ctx ends at the connection's handler deadline.
type Handler func(ctx context.Context, payload []byte) ([]byte, error)

// BroadcastHandler receives one broadcast payload.
type BroadcastHandler func(ctx context.Context, payload []byte)

// Conn is the connection OnRRPC and OnBroadcast run on. *explorer.Conn implements it, and so
// does every runtime/thing Transport: a generated device reaches this package through its
// OnRRPC and OnBroadcast methods (thing.Device), which pass their own connection.
type Conn interface {
	// Publish sends the reply (QoS 0).
	Publish(ctx context.Context, topic string, qos byte, payload []byte) error
	// Subscribe routes the request or broadcast topic to this package's handler.
	Subscribe(ctx context.Context, filter string, qos byte, h explorer.Handler) error
	// ProductID and DeviceName name the connection's own device, served unless WithDevice
	// names another.
	ProductID() string
	DeviceName() string
	// Logger is the connection's logger; nil logs nothing.
	Logger() *slog.Logger
}

// Option configures OnRRPC and OnBroadcast.
type Option func(*options) error

type options struct {
	pid, dn string
	log     *slog.Logger
}

// WithDevice serves another device than the connection's own (a gateway's sub-device).
func WithDevice(productID, deviceName string) Option {
	return func(o *options) error {
		if err := checkPart("product id", productID); err != nil {
			return err
		}
		if err := checkPart("device name", deviceName); err != nil {
			return err
		}
		o.pid, o.dn = productID, deviceName
		return nil
	}
}

// WithLogger sets the logger for dropped requests; the default is the connection's logger.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("rrpc: WithLogger: nil logger")
		}
		o.log = l
		return nil
	}
}

func checkPart(field, v string) error {
	if v == "" {
		return fmt.Errorf("rrpc: %s is empty", field)
	}
	if i := strings.IndexAny(v, "/+#"); i >= 0 {
		return fmt.Errorf("rrpc: %s %q contains %q, which is not allowed in a topic level", field, v, v[i])
	}
	return nil
}

func newOptions(conn Conn, opts []Option) (options, error) {
	o := options{pid: conn.ProductID(), dn: conn.DeviceName(), log: conn.Logger()}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

// RequestFilter is the subscription filter for RRPC requests of a device.
func RequestFilter(productID, deviceName string) string {
	return "$rrpc/rxd/" + productID + "/" + deviceName + "/+"
}

// RequestTopic is the topic of the request with processID.
func RequestTopic(productID, deviceName, processID string) string {
	return "$rrpc/rxd/" + productID + "/" + deviceName + "/" + processID
}

// ReplyTopic is the topic the answer to processID is published on.
func ReplyTopic(productID, deviceName, processID string) string {
	return "$rrpc/txd/" + productID + "/" + deviceName + "/" + processID
}

// BroadcastTopic is the topic a device receives broadcasts on.
func BroadcastTopic(productID, deviceName string) string {
	return "$broadcast/rxd/" + productID + "/" + deviceName
}

// ErrBadTopic is wrapped by ParseTopic errors.
var ErrBadTopic = errors.New("rrpc: malformed RRPC topic")

// ParseTopic splits $rrpc/{rxd|txd}/{pid}/{dn}/{processId} into its parts. dir is "rxd" (a
// request) or "txd" (a reply). The error names the topic and the broken level.
func ParseTopic(topic string) (dir, productID, deviceName, processID string, err error) {
	parts := strings.Split(topic, "/")
	switch {
	case len(parts) != 5:
		return "", "", "", "", fmt.Errorf("%w %q: want $rrpc/{rxd|txd}/{pid}/{dn}/{processId}, got %d levels", ErrBadTopic, topic, len(parts))
	case parts[0] != "$rrpc":
		return "", "", "", "", fmt.Errorf("%w %q: first level %q is not $rrpc", ErrBadTopic, topic, parts[0])
	case parts[1] != "rxd" && parts[1] != "txd":
		return "", "", "", "", fmt.Errorf("%w %q: direction %q is not rxd or txd", ErrBadTopic, topic, parts[1])
	}
	for i, name := range []string{"product id", "device name", "processId"} {
		v := parts[2+i]
		if v == "" || strings.ContainsAny(v, "+#") {
			return "", "", "", "", fmt.Errorf("%w %q: %s %q is empty or a wildcard", ErrBadTopic, topic, name, v)
		}
	}
	return parts[1], parts[2], parts[3], parts[4], nil
}

// OnRRPC subscribes to the device's RRPC requests and answers each with h's result on its
// processId. Subscribing again replaces the handler. Stop with conn.Unsubscribe(RequestFilter(...)).
func OnRRPC(ctx context.Context, conn Conn, h Handler, opts ...Option) error {
	if nilconn.Is(conn) || h == nil {
		return errors.New("rrpc: OnRRPC needs a connection and a handler")
	}
	o, err := newOptions(conn, opts)
	if err != nil {
		return err
	}
	filter := RequestFilter(o.pid, o.dn)
	return conn.Subscribe(ctx, filter, 0, func(ctx context.Context, m explorer.Message) {
		serve(ctx, conn, o, h, m)
	})
}

func serve(ctx context.Context, conn Conn, o options, h Handler, m explorer.Message) {
	dir, pid, dn, pidOf, err := ParseTopic(m.Topic)
	if err != nil || dir != "rxd" || pid != o.pid || dn != o.dn {
		o.log.Warn("rrpc: request on an unexpected topic dropped", "topic", m.Topic, "err", err)
		return
	}
	reply, err := call(ctx, h, m.Payload)
	if err != nil {
		o.log.Warn("rrpc: handler failed; no reply sent (the caller sees a timeout)", "topic", m.Topic, "process_id", pidOf, "err", err)
		return
	}
	if len(reply) > explorer.MaxPayloadSize {
		o.log.Error("rrpc: reply over the publish limit; not sent", "process_id", pidOf, "bytes", len(reply), "limit", explorer.MaxPayloadSize)
		return
	}
	if err := conn.Publish(ctx, ReplyTopic(pid, dn, pidOf), 0, reply); err != nil {
		o.log.Warn("rrpc: reply not sent", "process_id", pidOf, "err", err)
	}
}

// call runs h, turning a panic into an error so that the request is logged like any failure.
func call(ctx context.Context, h Handler, payload []byte) (reply []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h(ctx, payload)
}

// OnBroadcast subscribes to the product's broadcasts for the device and hands each payload to
// h. Subscribing again replaces the handler. Stop with conn.Unsubscribe(BroadcastTopic(...)).
func OnBroadcast(ctx context.Context, conn Conn, h BroadcastHandler, opts ...Option) error {
	if nilconn.Is(conn) || h == nil {
		return errors.New("rrpc: OnBroadcast needs a connection and a handler")
	}
	o, err := newOptions(conn, opts)
	if err != nil {
		return err
	}
	return conn.Subscribe(ctx, BroadcastTopic(o.pid, o.dn), 0, func(ctx context.Context, m explorer.Message) {
		h(ctx, m.Payload)
	})
}
