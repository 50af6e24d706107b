package explorer

import (
	"context"
	"net"
	"sync/atomic"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Handing a packet to paho can block: paho's Publish/Subscribe wait (up to its write
// timeout) until its writer goroutine takes the packet, and that writer is stuck while the
// socket does not drain (a stalled or black-holed link with full buffers). A caller with a
// 1 s ctx must not wait 10 s there. So a packet is handed over on the caller's goroutine only
// when the writer is idle and nobody else is handing one over (the common case, no extra
// goroutine hop); otherwise it goes through the session's sender goroutine while the caller
// waits for it bounded by its ctx, and withdraws it if paho has not taken it yet.

// trackedConn is the socket given to paho; it counts writes in progress so a caller can see
// that paho's writer is busy.
type trackedConn struct {
	net.Conn
	writing atomic.Int32
}

func (t *trackedConn) Write(b []byte) (int, error) {
	t.writing.Add(1)
	n, err := t.Conn.Write(b)
	t.writing.Add(-1)
	return n, err
}

// Hand-over request states.
const (
	reqWaiting int32 = iota
	reqTaken
	reqWithdrawn
)

// handoffReq is one packet waiting for the session's sender goroutine.
type handoffReq struct {
	// A publish (fn == nil) or another packet made by fn.
	topic   string
	qos     byte
	payload []byte
	fn      func() mqtt.Token

	state atomic.Int32
	tok   chan mqtt.Token // buffered 1
}

// senderBacklog bounds the hand-over requests waiting for the sender; callers beyond it wait
// (bounded by their ctx) to enter.
const senderBacklog = 64

// handoff hands one packet to paho and returns its token. taken=false means paho never got
// the packet (err says why: ctx ended, the connection or the Conn went away), so it cannot
// be on the wire. fn is used only for non-publish packets.
func (c *Conn) handoff(ctx context.Context, sess *session, topic string, qos byte, payload []byte, fn func() mqtt.Token) (tok mqtt.Token, taken bool, err error) {
	if c.direct(sess) {
		if fn != nil {
			tok = fn()
		} else {
			tok = sess.client.Publish(topic, qos, false, payload)
		}
		sess.handing.Add(-1)
		return tok, true, nil
	}
	r := &handoffReq{topic: topic, qos: qos, payload: payload, fn: fn, tok: make(chan mqtt.Token, 1)}
	c.startSender(sess)
	select {
	case sess.sendq <- r:
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case <-sess.ctx.Done():
		return nil, false, ErrNotConnected
	case <-c.ctx.Done():
		return nil, false, ErrClosed
	}
	select {
	case tok = <-r.tok:
		return tok, true, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-sess.ctx.Done():
		err = ErrNotConnected
	case <-c.ctx.Done():
		err = ErrClosed
	}
	if r.state.CompareAndSwap(reqWaiting, reqWithdrawn) {
		return nil, false, err
	}
	return nil, true, err // paho has it (or is taking it): it may still go out
}

// maxDirectHandoffs bounds the callers handing packets to paho on their own goroutine at
// the same time: they are the ones exposed if the link stalls at that very moment.
const maxDirectHandoffs = 4

// direct reports whether the caller may hand its packet to paho itself: paho's writer is not
// inside a socket write and few others are handing over. On true the caller holds a
// sess.handing count and must release it.
func (c *Conn) direct(sess *session) bool {
	w := sess.wconn
	if w != nil && w.writing.Load() != 0 {
		return false
	}
	if sess.handing.Add(1) <= maxDirectHandoffs && (w == nil || w.writing.Load() == 0) {
		return true
	}
	sess.handing.Add(-1)
	return false
}

// startSender starts sess's sender goroutine once. Close does not wait for it: it may sit in
// paho's hand-over until paho's write timeout, and it touches nothing of the Conn's but the
// session it serves.
func (c *Conn) startSender(sess *session) {
	sess.senderOnce.Do(func() {
		sess.sendq = make(chan *handoffReq, senderBacklog)
		go c.runSender(sess)
	})
}

// runSender hands queued requests to paho one at a time until the session ends.
func (c *Conn) runSender(sess *session) {
	for {
		select {
		case <-sess.ctx.Done():
			return
		case r := <-sess.sendq:
			if !r.state.CompareAndSwap(reqWaiting, reqTaken) {
				continue // its caller gave up
			}
			sess.handing.Add(1)
			var tok mqtt.Token
			if r.fn != nil {
				tok = r.fn()
			} else {
				tok = sess.client.Publish(r.topic, r.qos, false, r.payload)
			}
			sess.handing.Add(-1)
			r.tok <- tok
		}
	}
}
