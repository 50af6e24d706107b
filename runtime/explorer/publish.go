package explorer

import (
	"context"
	"errors"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// maxInFlightDrops is how many connection losses a QoS 1 message may witness in flight
// before it is given up.
const maxInFlightDrops = 3

// pubWhat names a publish in errors; built only on failure paths.
func pubWhat(topic string) string { return "publish " + quote(topic) }

// checkPublish validates a publish before anything is queued or sent.
func checkPublish(topic string, qos byte, payload []byte) error {
	if err := checkPublishTopic(topic); err != nil {
		return err
	}
	if qos > 1 {
		return checkQoS(qos, pubWhat(topic))
	}
	if len(payload) > MaxPayloadSize {
		return newErrorf(ErrPayloadTooLarge, nil, pubWhat(topic), "%d bytes, the platform allows at most %d", len(payload), MaxPayloadSize)
	}
	return nil
}

// Publish sends payload to topic with QoS 0 or 1 and returns once the broker has it: QoS 0
// when the message is written to the connection, QoS 1 when the PUBACK arrives.
//
// Publish never outlives ctx (by more than scheduling noise), whatever the network does, and
// a message never goes out after Publish reported that it was not sent:
//
//   - Connected: the message is sent at once. No PUBACK within the ack timeout returns
//     ErrTimeout; ctx ending first returns ctx's error. In both cases the message may still
//     be delivered (it is on the wire).
//   - Disconnected: the message waits in the bounded offline queue for the reconnect (flushed
//     in publish order, before any newer publish). If ctx ends while it is still queued it is
//     withdrawn and never sent: the error wraps ErrNotSent and ctx's error, and a retry cannot
//     make a duplicate. A full queue returns ErrQueueFull, a disabled one (WithQueueSize(0))
//     ErrNotConnected, both with ErrNotSent, at once.
//   - A QoS 1 message whose connection drops before the PUBACK is queued again and re-sent
//     (at-least-once: the receiver may see it twice).
//
// To hand a message over and return without waiting for the connection, use Enqueue.
//
// The topic is checked first: ≤ 255 bytes, ≤ 10 levels, no wildcards; payload ≤ 16 KiB.
// Publish does not keep payload after it returns.
func (c *Conn) Publish(ctx context.Context, topic string, qos byte, payload []byte) error {
	if err := checkPublish(topic, qos, payload); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return notSentf(err, pubWhat(topic), "ctx already ended")
	}
	c.mu.Lock()
	c.seq++
	seq := c.seq
	switch {
	case c.state == StateClosed:
		c.mu.Unlock()
		return notSentf(ErrClosed, pubWhat(topic), "the Conn is closed")
	case !c.live:
		p, err := c.enqueueLocked(seq, topic, qos, payload, false)
		c.mu.Unlock()
		if err != nil {
			return err
		}
		return c.waitQueued(ctx, p)
	}
	sess := c.sess
	c.mu.Unlock()
	// paho may still read the packet after Publish returned (ctx ended while the write was
	// pending), so it gets a copy of its own.
	own := append([]byte(nil), payload...)
	connLost, err := c.sendNow(ctx, sess, topic, qos, own)
	if !connLost {
		return err
	}
	// The connection went away under the message: queue it again (it keeps its place) and
	// wait for the next connection.
	c.markDown(sess)
	c.mu.Lock()
	if c.state == StateClosed {
		c.mu.Unlock()
		return newErrorf(ErrClosed, nil, pubWhat(topic), "closed after the connection dropped in flight; the message may have been delivered")
	}
	p, _ := c.enqueueLocked(seq, topic, qos, payload, true)
	p.sent, p.drops = true, 1
	c.mu.Unlock()
	return c.waitQueued(ctx, p)
}

// Enqueue puts the message into the offline queue and returns at once, without waiting for
// the connection or the broker: it is sent in queue order when connected (now, or after the
// reconnect) and kept across connection losses until the broker has it (QoS 1: PUBACK). This
// is the explicit fire-and-forget publish; only Close discards queued messages (logged with
// their count), and a QoS 1 message the platform keeps refusing (the connection drops while
// it is in flight three times) is given up and counted in Stats().GivenUp.
//
// It fails at once with ErrQueueFull when the queue holds WithQueueSize messages, and with
// ErrNotConnected when the queue is disabled. Messages published with Publish while
// connected do not wait behind enqueued ones. The payload is copied.
func (c *Conn) Enqueue(topic string, qos byte, payload []byte) error {
	if err := checkPublish(topic, qos, payload); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == StateClosed {
		return notSentf(ErrClosed, pubWhat(topic), "the Conn is closed")
	}
	c.seq++
	p, err := c.enqueueLocked(c.seq, topic, qos, payload, false)
	if err != nil {
		return err
	}
	p.queued = true
	c.kickFlusherLocked()
	return nil
}

// sendNow publishes on sess and waits for paho's token. connLost reports that the connection
// went away before the message was confirmed (or before paho took it), so the caller should
// queue it again.
func (c *Conn) sendNow(ctx context.Context, sess *session, topic string, qos byte, payload []byte) (connLost bool, err error) {
	tok, taken, herr := c.handoff(ctx, sess, topic, qos, payload, nil)
	if herr != nil {
		switch {
		case !taken && isCtxErr(herr):
			return false, notSentf(herr, pubWhat(topic), "the connection did not take it in time")
		case !taken && errors.Is(herr, ErrNotConnected):
			return true, nil
		case errors.Is(herr, ErrClosed):
			if !taken {
				return false, notSentf(ErrClosed, pubWhat(topic), "closed before the message was sent")
			}
			return false, newError(ErrClosed, nil, pubWhat(topic))
		case errors.Is(herr, ErrNotConnected):
			return true, nil
		}
		return false, newErrorf(herr, nil, pubWhat(topic), "stopped waiting; the message may still be delivered")
	}
	timeout := c.opts.ackTimeout
	if qos == 0 {
		// A QoS 0 token completes once the packet is written; paho's write timeout ends a
		// stuck write by dropping the connection, so no timer of our own is needed.
		timeout = 0
	}
	switch werr := c.waitToken(ctx, tok, timeout); {
	case werr == nil:
		return false, nil
	case errors.Is(werr, ErrClosed):
		return false, newError(ErrClosed, nil, pubWhat(topic))
	case isCtxErr(werr):
		return false, newErrorf(werr, nil, pubWhat(topic), "stopped waiting; the message may still be delivered")
	case werr == errTokenTimeout:
		return false, newErrorf(ErrTimeout, nil, pubWhat(topic), "no PUBACK within %v; the message may still be delivered", c.opts.ackTimeout)
	case c.lostAfterFailure(ctx, sess):
		return true, nil
	default:
		return false, newError(ErrNotConnected, werr, pubWhat(topic))
	}
}

// lossReportWait bounds how long a failed packet waits for paho to report its connection
// lost (lostAfterFailure).
const lossReportWait = time.Second

// lostAfterFailure reports whether a packet's failed token means that sess's connection is
// gone. paho fails the token of a packet it could not write a moment before it reports the
// connection lost, so a failure seen while the connection still looks open waits for that
// report (briefly, and within ctx) instead of handing the caller an error for a message that
// the next connection would have delivered.
func (c *Conn) lostAfterFailure(ctx context.Context, sess *session) bool {
	if !sess.client.IsConnectionOpen() {
		return true
	}
	t := time.NewTimer(lossReportWait)
	defer t.Stop()
	select {
	case <-sess.down:
		return true
	case <-t.C:
	case <-ctx.Done():
	case <-c.ctx.Done():
	}
	return !sess.client.IsConnectionOpen()
}

// enqueueLocked puts a message into the offline queue in publish order. A message coming
// back from a dropped connection (force) may exceed the limit: it was already accepted.
// Caller holds c.mu.
func (c *Conn) enqueueLocked(seq uint64, topic string, qos byte, payload []byte, force bool) (*pending, error) {
	if !force && c.opts.queueSize == 0 {
		return nil, buildError([]error{ErrNotSent, ErrNotConnected}, nil, pubWhat(topic), "offline queue disabled (WithQueueSize(0))")
	}
	p := &pending{
		seq:     seq,
		topic:   topic,
		qos:     qos,
		payload: append([]byte(nil), payload...),
		done:    make(chan struct{}),
	}
	if err := c.queue.push(p, force); err != nil {
		return nil, buildError([]error{ErrNotSent, ErrQueueFull}, nil, pubWhat(topic),
			"the offline queue holds its limit of "+itoa(c.opts.queueSize)+" messages waiting for the reconnect")
	}
	return p, nil
}

// waitQueued waits until a flusher has sent p; if ctx ends first p is withdrawn unless it is
// already on the wire.
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
	if p.sending {
		p.abandoned = true
		return newErrorf(ctx.Err(), nil, pubWhat(p.topic), "stopped waiting while the message was being sent; it may be delivered")
	}
	c.queue.remove(p)
	p.finish(ctx.Err())
	if p.sent {
		return newErrorf(ctx.Err(), nil, pubWhat(p.topic), "withdrawn from the offline queue after its connection dropped in flight; it may have been delivered")
	}
	return notSentf(ctx.Err(), pubWhat(p.topic), "withdrawn from the offline queue")
}

// kickFlusherLocked starts the live flusher when enqueued messages wait on a live
// connection. Caller holds c.mu.
func (c *Conn) kickFlusherLocked() {
	if c.flushing || !c.live || c.queue.len() == 0 {
		return
	}
	c.flushing = true
	c.flushDone = make(chan struct{})
	c.wg.Add(1)
	go c.flushLive(c.sess, c.flushDone)
}

// flushLive sends enqueued messages while the connection stays live.
func (c *Conn) flushLive(sess *session, done chan struct{}) {
	defer c.wg.Done()
	defer close(done)
	for {
		c.mu.Lock()
		p := c.queue.head()
		if !c.live || c.sess != sess || p == nil {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if !c.flushOne(sess, p) {
			c.markDown(sess)
			c.mu.Lock()
			c.flushing = false
			c.mu.Unlock()
			return
		}
	}
}

// waitFlusher waits for a live flusher of an older connection to end, so that two flushers
// never send the same message.
func (c *Conn) waitFlusher() {
	c.mu.Lock()
	done := c.flushDone
	c.mu.Unlock()
	if done != nil {
		<-done
	}
}

// flushOne sends the oldest queued message on sess. It returns false if the connection is
// gone (the message stays queued for the next connection).
func (c *Conn) flushOne(sess *session, p *pending) bool {
	c.mu.Lock()
	if c.queue.head() != p || p.sending {
		c.mu.Unlock()
		return true // withdrawn or taken meanwhile
	}
	p.sending = true
	c.mu.Unlock()

	connLost, err := c.sendNow(c.ctx, sess, p.topic, p.qos, p.payload)
	c.mu.Lock()
	defer c.mu.Unlock()
	p.sending = false
	if connLost {
		p.sent = true
		p.drops++
		if p.abandoned || p.drops >= maxInFlightDrops {
			c.queue.remove(p)
			c.droppedPubs.Add(1)
			c.log.Error("queued publish given up: the connection dropped while it was in flight",
				"topic", p.topic, "drops", p.drops, "caller_waiting", !p.abandoned && !p.queued)
			p.finish(newErrorf(ErrNotConnected, nil, pubWhat(p.topic),
				"given up after the connection dropped %d times while it was in flight; the platform may be refusing it (topic ACL, payload)", p.drops))
		}
		return false
	}
	c.queue.remove(p)
	if err != nil {
		c.log.Error("queued publish failed", "topic", p.topic, "err", err)
	}
	p.finish(err)
	return true
}

// waitToken waits for a paho token, ctx, the Conn's close, and (if timeout > 0) a timeout.
// It returns errTokenTimeout, ctx's error, ErrClosed, or the token's error.
func (c *Conn) waitToken(ctx context.Context, tok mqtt.Token, timeout time.Duration) error {
	select {
	case <-tok.Done():
		return tok.Error()
	default:
	}
	var tc <-chan time.Time
	if timeout > 0 {
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > timeout {
			t := time.NewTimer(timeout)
			defer t.Stop()
			tc = t.C
		}
	}
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	case <-tc:
		return errTokenTimeout
	}
}

var errTokenTimeout = errors.New("no answer from the broker")
