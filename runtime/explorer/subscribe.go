package explorer

import (
	"context"
	"errors"
	"sort"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Message is one received PUBLISH.
type Message struct {
	Topic   string // the topic it was published to (not the subscription filter)
	Payload []byte // owned by the handler
	QoS     byte   // delivery QoS, 0 or 1
}

// Handler handles received messages. ctx ends at the handler deadline (WithHandlerTimeout)
// or when the Conn closes.
type Handler func(ctx context.Context, m Message)

// Subscribe subscribes to filter (MQTT wildcards allowed) and routes matching messages to h.
// Messages of one subscription are handled in arrival order, one at a time; different
// subscriptions run concurrently up to WithHandlerConcurrency. Subscribing again to the same
// filter replaces its handler.
//
// Connected, Subscribe waits for the SUBACK (bounded by ctx and the ack timeout) and reports
// a refusal. Disconnected, the subscription is recorded and sent on reconnect, and Subscribe
// returns nil. Every subscription is re-sent after every reconnect.
//
// A filter subscribed with SubscribeOwned (a Thing's data-template topics) is not replaced:
// Subscribe returns an error wrapping ErrFilterOwned instead.
func (c *Conn) Subscribe(ctx context.Context, filter string, qos byte, h Handler) error {
	_, err := c.subscribe(ctx, filter, qos, h, false)
	return err
}

// SubscribeOwned is Subscribe for a layer built on the connection (runtime/thing's Thing, a
// gateway): the subscription cannot be replaced by a later Subscribe or SubscribeOwned to the
// same filter, which fail with ErrFilterOwned, so a program subscribing a Thing's topic by
// mistake gets an error rather than silently taking the Thing's messages. Unsubscribe
// removes it as usual.
func (c *Conn) SubscribeOwned(ctx context.Context, filter string, qos byte, h Handler) error {
	_, err := c.subscribe(ctx, filter, qos, h, true)
	return err
}

func (c *Conn) subscribe(ctx context.Context, filter string, qos byte, h Handler, owned bool) (*subscription, error) {
	what := "subscribe " + quote(filter)
	if err := checkFilter(filter, "subscribe"); err != nil {
		return nil, err
	}
	if err := checkQoS(qos, what); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, newErrorf(ErrInvalidConfig, nil, what, "nil handler")
	}
	s := newSubscription(filter, qos, h)
	s.owned = owned
	c.mu.Lock()
	if c.state == StateClosed {
		c.mu.Unlock()
		return nil, newError(ErrClosed, nil, what)
	}
	if cur := c.subs[filter]; cur != nil && cur.owned {
		c.mu.Unlock()
		return nil, newErrorf(ErrFilterOwned, nil, what, "the filter belongs to a layer on this connection (a Thing's topic): use its handlers (for the service topic thing.WithServiceHandler) instead")
	}
	old := c.putSub(s)
	live, sess := c.live, c.sess
	c.mu.Unlock()
	if old != nil {
		old.stop()
	}
	if !live {
		return s, nil
	}
	err := c.sendSubscribe(ctx, sess, s)
	if err == nil || errors.Is(err, ErrNotConnected) {
		return s, nil // on a lost connection the reconnect re-sends it
	}
	c.mu.Lock()
	c.removeSub(filter, s)
	c.mu.Unlock()
	s.stop()
	return nil, err
}

// sendSubscribe sends SUBSCRIBE for s on sess and checks the SUBACK.
func (c *Conn) sendSubscribe(ctx context.Context, sess *session, s *subscription) error {
	tok, _, err := c.handoff(ctx, sess, s.filter, 0, nil, func() mqtt.Token { return sess.client.Subscribe(s.filter, s.qos, nil) })
	if err != nil {
		return c.tokenError(ctx, err, sess, "subscribe "+quote(s.filter), "SUBACK")
	}
	return c.awaitSuback(ctx, sess, s, tok)
}

// tokenError turns a failed hand-over or token wait into the package's error for what;
// ack names the answer that did not come. nil means err is none of those: the broker or
// paho refused the packet on a connection that stays up.
func (c *Conn) tokenError(ctx context.Context, err error, sess *session, what, ack string) error {
	switch {
	case errors.Is(err, ErrClosed):
		return newError(ErrClosed, nil, what)
	case isCtxErr(err):
		return newError(err, nil, what)
	case err == errTokenTimeout:
		return newErrorf(ErrTimeout, nil, what, "no %s within %v", ack, c.opts.ackTimeout)
	case errors.Is(err, ErrNotConnected) || c.lostAfterFailure(ctx, sess):
		c.markDown(sess)
		return newError(ErrNotConnected, err, what)
	}
	return nil
}

// awaitSuback waits for the SUBACK of s's SUBSCRIBE (tok) and records the acknowledgement.
func (c *Conn) awaitSuback(ctx context.Context, sess *session, s *subscription, tok mqtt.Token) error {
	what := "subscribe " + quote(s.filter)
	if err := c.waitToken(ctx, tok, c.opts.ackTimeout); err != nil {
		if e := c.tokenError(ctx, err, sess, what, "SUBACK"); e != nil {
			return e
		}
		return newErrorf(ErrNotAuthorized, err, what, "SUBSCRIBE failed")
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		if rc, ok := st.Result()[s.filter]; ok && rc == 0x80 {
			return newErrorf(ErrNotAuthorized, nil, what, "the broker refused the subscription (SUBACK 0x80): check that the topic belongs to this device")
		}
	}
	c.mu.Lock()
	s.sentGen = sess.gen
	c.mu.Unlock()
	return nil
}

// unrestoredSubs returns the subscriptions not yet acknowledged on connection gen, sorted
// by filter for determinism. Caller holds c.mu.
func (c *Conn) unrestoredSubs(gen uint64) []*subscription {
	var out []*subscription
	for _, s := range c.subs {
		if s.sentGen != gen {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].filter < out[j].filter })
	return out
}

// restoreWindow is how many restoring SUBSCRIBEs may await their SUBACK at once. One at a
// time, a gateway with thousands of sub-device topics would need as many round trips before
// it could publish again; unbounded, a slow broker could time out the tail of the burst.
const restoreWindow = 32

// restore re-subscribes subs on a new connection, restoreWindow SUBSCRIBEs in flight at a
// time; false means the connection is gone. A refused or unanswered SUBSCRIBE is logged
// and not retried on this connection.
func (c *Conn) restore(sess *session, subs []*subscription) bool {
	toks := make([]mqtt.Token, 0, min(len(subs), restoreWindow))
	for len(subs) > 0 {
		batch := subs[:min(len(subs), restoreWindow)]
		subs = subs[len(batch):]
		toks = toks[:0]
		for _, s := range batch {
			// Through handoff: paho's Subscribe can block up to its write timeout when the
			// connection dies under it, and the supervisor must notice the loss at once.
			tok, _, err := c.handoff(c.ctx, sess, s.filter, 0, nil, func() mqtt.Token { return sess.client.Subscribe(s.filter, s.qos, nil) })
			if err != nil {
				return false // the connection is gone, or the Conn closed
			}
			toks = append(toks, tok)
		}
		for i, s := range batch {
			err := c.awaitSuback(c.ctx, sess, s, toks[i])
			if err == nil {
				continue
			}
			if errors.Is(err, ErrNotConnected) || errors.Is(err, ErrClosed) {
				return false
			}
			c.log.Error("restoring subscription failed", "topic", s.filter, "err", err)
			c.mu.Lock()
			s.sentGen = sess.gen // do not loop on it; the next reconnect tries again
			c.mu.Unlock()
		}
	}
	return true
}

// Unsubscribe removes the subscriptions to the given filters. Queued messages of those
// subscriptions are dropped. Connected, it waits for the UNSUBACK (ctx, ack timeout).
func (c *Conn) Unsubscribe(ctx context.Context, filters ...string) error {
	if len(filters) == 0 {
		return nil
	}
	for _, f := range filters {
		if err := checkFilter(f, "unsubscribe"); err != nil {
			return err
		}
	}
	what := "unsubscribe " + quote(filters[0])
	c.mu.Lock()
	if c.state == StateClosed {
		c.mu.Unlock()
		return newError(ErrClosed, nil, what)
	}
	var removed []*subscription
	for _, f := range filters {
		if s := c.removeSub(f, nil); s != nil {
			removed = append(removed, s)
		}
	}
	live, sess := c.live, c.sess
	c.mu.Unlock()
	for _, s := range removed {
		s.stop()
	}
	if !live {
		return nil // clean session: nothing to undo on the broker
	}
	tok, _, err := c.handoff(ctx, sess, "", 0, nil, func() mqtt.Token { return sess.client.Unsubscribe(filters...) })
	if err == nil {
		err = c.waitToken(ctx, tok, c.opts.ackTimeout)
	}
	if err == nil {
		return nil
	}
	if e := c.tokenError(ctx, err, sess, what, "UNSUBACK"); e != nil {
		if errors.Is(e, ErrNotConnected) {
			return nil // the connection is gone, and with it the subscription
		}
		return e
	}
	return newError(ErrNotConnected, err, what)
}

// Subscriber is the part of a connection OwnedSubscribe needs: *Conn, or any wrapper of one.
type Subscriber interface {
	Subscribe(ctx context.Context, filter string, qos byte, h Handler) error
}

// OwnedSubscribe returns conn's SubscribeOwned when conn has one (*Conn does) and its Subscribe
// otherwise. Layers built on a connection (runtime/thing, runtime/devlog, runtime/resource)
// subscribe through it: their subscriptions cannot be replaced by a program's own Subscribe
// where the connection supports that, and they still work on a wrapped or fake connection
// that does not.
func OwnedSubscribe(conn Subscriber) func(ctx context.Context, filter string, qos byte, h Handler) error {
	if o, ok := conn.(interface {
		SubscribeOwned(ctx context.Context, filter string, qos byte, h Handler) error
	}); ok {
		return o.SubscribeOwned
	}
	return conn.Subscribe
}
