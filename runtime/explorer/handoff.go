package explorer

import (
	"context"
	"sync"
	"sync/atomic"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Handing a packet to paho can block: paho's Publish/Subscribe/Unsubscribe wait, up to its
// write timeout and with no way to cancel, until its output goroutine takes the packet. That
// goroutine stops taking packets while the socket does not drain (a stalled or black-holed
// link with full buffers), and for good once the connection is lost — which can happen
// between paho's "connected?" check and its hand-over, so a packet handed over to a link that
// looked idle and healthy can still wait the whole write timeout. A caller with a 1 s ctx must
// not wait 10 s there, so the caller never makes that paho call itself: a short-lived
// goroutine does, while the caller waits for it bounded by its ctx and withdraws the packet
// if paho has not started taking it yet. Starting a goroutine that runs at once on the
// caller's P costs far less than paho's own goroutine hops per packet (docs/BENCHMARKS.md).

// Hand-over request states.
const (
	reqWaiting int32 = iota
	reqTaken
	reqWithdrawn
)

// handoffReq is one packet on its way into paho.
type handoffReq struct {
	sess *session
	// A publish (fn == nil) or another packet made by fn.
	topic   string
	qos     byte
	payload []byte
	fn      func() mqtt.Token

	state atomic.Int32
	tok   chan mqtt.Token // buffered 1
	runFn func()          // r.run, made once: `go r.runFn()` allocates nothing
}

// handoffPool recycles requests whose goroutine has finished with them.
var handoffPool = sync.Pool{New: func() any {
	r := &handoffReq{tok: make(chan mqtt.Token, 1)}
	r.runFn = r.run
	return r
}}

// maxHandoffs bounds the goroutines of one session inside a paho hand-over at the same time.
// On a jammed link each may sit there until paho's write timeout; callers beyond the bound
// wait for a slot, bounded by their ctx.
const maxHandoffs = 64

// testHookHandoff, when set by a test, runs on the hand-over goroutine just before the packet
// for topic (the filter, for a subscription) is given to paho.
var testHookHandoff atomic.Pointer[func(topic string)]

// handoff hands one packet to paho and returns its token. taken=false means paho never got
// the packet (err says why: ctx ended, the connection or the Conn went away), so it cannot be
// on the wire. taken=true with an error means the caller stopped waiting while paho was
// taking it: it may still go out. fn is used only for non-publish packets; payload must not be
// modified until the packet's token has completed, or at all if handoff returned an error.
func (c *Conn) handoff(ctx context.Context, sess *session, topic string, qos byte, payload []byte, fn func() mqtt.Token) (tok mqtt.Token, taken bool, err error) {
	select {
	case sess.slots <- struct{}{}:
	default:
		select {
		case sess.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-sess.down:
			return nil, false, ErrNotConnected
		case <-c.ctx.Done():
			return nil, false, ErrClosed
		}
	}
	r := handoffPool.Get().(*handoffReq)
	r.sess, r.topic, r.qos, r.payload, r.fn = sess, topic, qos, payload, fn
	r.state.Store(reqWaiting)
	go r.runFn()
	select {
	case tok = <-r.tok:
		r.sess, r.payload, r.fn = nil, nil, nil // drop the references before pooling
		handoffPool.Put(r)
		return tok, true, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-sess.down:
		err = ErrNotConnected
	case <-c.ctx.Done():
		err = ErrClosed
	}
	// r is not pooled from here on: its goroutine may still use it.
	if r.state.CompareAndSwap(reqWaiting, reqWithdrawn) {
		return nil, false, err
	}
	return nil, true, err // paho has it (or is taking it): it may still go out
}

// run gives r's packet to paho (unless its caller withdrew it first) and sends back the
// token; it holds one of the session's slots until paho has taken the packet.
func (r *handoffReq) run() {
	sess := r.sess
	if !r.state.CompareAndSwap(reqWaiting, reqTaken) {
		<-sess.slots
		return
	}
	if h := testHookHandoff.Load(); h != nil {
		(*h)(r.topic)
	}
	var tok mqtt.Token
	if r.fn != nil {
		tok = r.fn()
	} else {
		tok = sess.client.Publish(r.topic, r.qos, false, r.payload)
	}
	<-sess.slots
	r.tok <- tok // the last use of r: its caller may pool it right after
}
