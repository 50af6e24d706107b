package explorer

import (
	"context"
	"errors"
	"sort"
)

// pending is a publish waiting in the offline queue (or being flushed from it).
type pending struct {
	seq     uint64
	topic   string
	qos     byte
	payload []byte
	done    chan struct{}
	err     error
	sending bool // taken by the flusher; can no longer be withdrawn
	// drops counts connections that dropped while it was in flight. The platform answers
	// a publish it refuses (ACL) by disconnecting, so a message that keeps doing that
	// would otherwise be re-sent after every reconnect forever.
	drops     int
	abandoned bool // its caller stopped waiting: do not re-send it after another drop
}

// maxInFlightDrops is how many connection losses a QoS 1 message may witness in flight
// before it is given up.
const maxInFlightDrops = 3

func (p *pending) finish(err error) {
	select {
	case <-p.done:
	default:
		p.err = err
		close(p.done)
	}
}

// Publish sends payload to topic with QoS 0 or 1.
//
// Connected: QoS 0 returns once the message is written, QoS 1 once the broker's PUBACK
// arrives (or ErrTimeout after the ack timeout; the message may still arrive).
//
// Disconnected: the message joins the bounded offline queue, which is flushed in publish
// order after the reconnect and before any newer publish. A QoS 0 message returns nil as soon
// as it is queued; a QoS 1 message waits for its PUBACK after the flush, bounded by ctx.
// If ctx ends while the message is still queued it is withdrawn and ctx's error returned.
// A full queue returns ErrQueueFull at once. A QoS 1 message whose connection drops before
// the PUBACK is queued again and re-sent (at-least-once; the receiver may see it twice).
//
// The topic is checked first: ≤ 255 bytes, ≤ 10 levels, no wildcards; payload ≤ 16 KiB.
// The payload is copied when queued, so the caller may reuse it after Publish returns.
func (c *Conn) Publish(ctx context.Context, topic string, qos byte, payload []byte) error {
	if err := checkPublishTopic(topic); err != nil {
		return err
	}
	what := "publish " + quote(topic)
	if err := checkQoS(qos, what); err != nil {
		return err
	}
	if len(payload) > MaxPayloadSize {
		return newError(ErrPayloadTooLarge, nil, what, "%d bytes, the platform allows at most %d", len(payload), MaxPayloadSize)
	}
	var seq uint64 // publish order, fixed at the first attempt
	requeue := false
	for {
		if err := ctx.Err(); err != nil {
			if requeue {
				return newError(err, nil, what, "connection lost before the PUBACK; the message may have been delivered")
			}
			return newError(err, nil, what, "not sent")
		}
		c.mu.Lock()
		if seq == 0 {
			c.seq++
			seq = c.seq
		}
		if c.state == StateClosed {
			c.mu.Unlock()
			return newError(ErrClosed, nil, what)
		}
		if c.live {
			sess := c.sess
			c.mu.Unlock()
			err, connLost := c.sendNow(ctx, sess, topic, qos, payload)
			if !connLost {
				return err
			}
			c.markDown(sess)
			requeue = true
			continue // queue it, or resend on a newer connection
		}
		p, err := c.enqueue(seq, topic, qos, payload, requeue)
		if p != nil && requeue {
			p.drops = 1
		}
		c.mu.Unlock()
		if err != nil {
			return err
		}
		if qos == 0 && !requeue {
			return nil // documented: accepted into the queue
		}
		return c.waitQueued(ctx, p)
	}
}

// sendNow publishes on sess and waits. connLost reports that the connection went away
// before the message was confirmed, so the caller should queue it again.
func (c *Conn) sendNow(ctx context.Context, sess *session, topic string, qos byte, payload []byte) (err error, connLost bool) {
	what := "publish " + quote(topic)
	tok := sess.client.Publish(topic, qos, false, payload)
	switch werr := c.waitToken(ctx, tok, c.opts.ackTimeout); {
	case werr == nil:
		return nil, false
	case errors.Is(werr, ErrClosed):
		return newError(ErrClosed, nil, what), false
	case isCtxErr(werr):
		return newError(werr, nil, what, "stopped waiting; the message may still be delivered"), false
	case werr == errTokenTimeout:
		return newError(ErrTimeout, nil, what, "no PUBACK within %v; the message may still be delivered", c.opts.ackTimeout), false
	case !sess.client.IsConnectionOpen():
		return werr, true
	default:
		return newError(ErrNotConnected, werr, what), false
	}
}

// enqueue puts a message into the offline queue in publish order. A message coming back
// from a dropped connection (requeue) may exceed the limit: it was already accepted.
// Caller holds c.mu.
func (c *Conn) enqueue(seq uint64, topic string, qos byte, payload []byte, requeue bool) (*pending, error) {
	what := "publish " + quote(topic)
	if !requeue {
		if c.opts.queueSize == 0 {
			return nil, newError(ErrNotConnected, nil, what, "offline queue disabled (WithQueueSize(0))")
		}
		if len(c.queue) >= c.opts.queueSize {
			return nil, newError(ErrQueueFull, nil, what, "%d messages waiting for the reconnect", len(c.queue))
		}
	}
	p := &pending{
		seq:     seq,
		topic:   topic,
		qos:     qos,
		payload: append([]byte(nil), payload...),
		done:    make(chan struct{}),
	}
	i := sort.Search(len(c.queue), func(i int) bool { return c.queue[i].seq > seq })
	c.queue = append(c.queue, nil)
	copy(c.queue[i+1:], c.queue[i:])
	c.queue[i] = p
	return p, nil
}

// waitQueued waits until the flusher has sent p; if ctx ends first p is withdrawn unless
// it is already on the wire.
func (c *Conn) waitQueued(ctx context.Context, p *pending) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-p.done:
		return p.err
	default:
	}
	what := "publish " + quote(p.topic)
	if p.sending {
		p.abandoned = true
		return newError(ctx.Err(), nil, what, "stopped waiting; the message is being sent")
	}
	c.removeQueued(p)
	p.finish(ctx.Err())
	return newError(ctx.Err(), nil, what, "not sent: withdrawn from the offline queue")
}

// removeQueued deletes p from the queue. Caller holds c.mu.
func (c *Conn) removeQueued(p *pending) {
	for i, q := range c.queue {
		if q == p {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			return
		}
	}
}

// nextQueued returns the oldest queued publish. Caller holds c.mu.
func (c *Conn) nextQueued() *pending {
	if len(c.queue) == 0 {
		return nil
	}
	return c.queue[0]
}

// flushOne sends the oldest queued message on sess. It returns false if the connection is
// gone (the message stays queued for the next connection).
func (c *Conn) flushOne(sess *session, p *pending) bool {
	c.mu.Lock()
	if len(c.queue) == 0 || c.queue[0] != p {
		c.mu.Unlock()
		return true // withdrawn meanwhile
	}
	p.sending = true
	c.mu.Unlock()

	err, connLost := c.sendNow(c.ctx, sess, p.topic, p.qos, p.payload)
	c.mu.Lock()
	defer c.mu.Unlock()
	if connLost {
		p.sending = false
		p.drops++
		if p.abandoned || p.drops >= maxInFlightDrops {
			c.removeQueued(p)
			c.droppedPubs.Add(1)
			c.log.Error("queued publish given up: the connection dropped while it was in flight",
				"topic", p.topic, "drops", p.drops, "caller_waiting", !p.abandoned)
			p.finish(newError(ErrNotConnected, nil, "publish "+quote(p.topic),
				"given up after the connection dropped %d times while it was in flight; the platform may be refusing it (topic ACL, payload)", p.drops))
		}
		return false
	}
	c.removeQueued(p)
	if err != nil {
		c.log.Error("queued publish failed", "topic", p.topic, "err", err)
	}
	p.finish(err)
	return true
}
