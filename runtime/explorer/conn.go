package explorer

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// closeWait bounds how long Close waits for running handlers and hooks.
const closeWait = 5 * time.Second

// Conn is a device's connection to the platform. It reconnects by itself until Close; all
// methods are safe for concurrent use.
type Conn struct {
	cfg    Config
	addr   brokerAddr
	opts   options
	log    *slog.Logger
	tlsCfg *tls.Config

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // supervisor, hooks, callbacks
	subWG  sync.WaitGroup // subscription workers

	sem chan struct{} // bounds concurrently running handlers

	mu    sync.Mutex
	state State
	sess  *session // current connection, nil while down
	live  bool     // sess is up, subscriptions restored and queue flushed: publish directly
	gen   uint64
	seq   uint64
	queue outbox // the offline queue
	// flushing: a live flusher sends enqueued messages; flushDone closes when it ends.
	flushing  bool
	flushDone chan struct{}
	subs      map[string]*subscription // by filter
	wild      map[string]*subscription // the wildcard filters among subs
	hooks     map[uint64]func(ctx context.Context)
	hookSeq   uint64
	timeReq   []*timeWaiter
	timeSub   *subscription

	reconnects, dropped, panics, overruns, droppedPubs atomic.Uint64
	clockOffset                                        atomic.Int64 // server − device clock, ns
	clockKnown                                         atomic.Bool
}

// Dial validates cfg and opts, connects, and returns a live Conn. It makes one connection
// attempt bounded by ctx and the connect timeout; the error says what failed
// (ErrBadCredentials, ErrNotAuthorized, ErrTLS, ErrConnectionRefused, ErrTimeout, or ctx's
// error). Once Dial has succeeded the Conn reconnects by itself.
func Dial(ctx context.Context, cfg Config, opts ...Option) (*Conn, error) {
	addr, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		if opt == nil {
			return nil, optErr("nil Option")
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if !addr.tls && !o.plainTCP {
		return nil, configErr("Broker %q is not encrypted, so the password would cross the network in clear; use tls:// or wss://, or pass WithPlainTCP()", cfg.Broker)
	}
	if !addr.tls && cfg.Certificate != nil {
		return nil, configErr("certificate device %s/%s needs a TLS broker (tls:// or wss://), got %q", cfg.ProductID, cfg.DeviceName, cfg.Broker)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	c := &Conn{
		cfg:   cfg,
		addr:  addr,
		opts:  o,
		log:   o.logger.With("product_id", cfg.ProductID, "device_name", cfg.DeviceName),
		sem:   make(chan struct{}, o.handlerConcurrency),
		subs:  make(map[string]*subscription),
		wild:  make(map[string]*subscription),
		hooks: make(map[uint64]func(ctx context.Context)),
		queue: newMemOutbox(o.queueSize),
		state: StateConnecting,
	}
	c.tlsCfg = c.tlsConfig()
	c.ctx, c.cancel = context.WithCancel(context.Background())

	sess, err := c.firstConnect(ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.log.Info("connected", "broker", addr.String())
	c.established(sess, true)
	c.wg.Add(1)
	go c.supervise(sess)
	if c.clockSuspect() {
		// A device without a real-time clock: learn the time before the caller stamps
		// anything (bounded by ctx and the ack timeout; a failure is only logged).
		c.syncClock(ctx)
	}
	return c, nil
}

// firstConnect makes Dial's connection attempt, retried with backoff under WithConnectRetry
// while the failure is one the network can heal.
func (c *Conn) firstConnect(ctx context.Context) (*session, error) {
	bo := backoff{min: c.opts.backoffMin, max: c.opts.backoffMax, rand: rand.Int64N}
	for attempt := 1; ; attempt++ {
		sess, err := c.connectOnce(ctx)
		if err == nil || !c.opts.connectRetry || !(errors.Is(err, ErrConnectionRefused) || errors.Is(err, ErrTimeout)) || ctx.Err() != nil {
			return sess, err
		}
		delay := bo.next()
		c.log.Warn("broker not reachable yet; retrying", "attempt", attempt, "in", delay.String(), "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, newErrorf(ctx.Err(), err, "connect "+c.cfg.ProductID+"/"+c.cfg.DeviceName+" to "+c.addr.String(),
				"gave up waiting for the network after %d attempts", attempt)
		case <-t.C:
		}
	}
}

// ProductID returns the device's product id.
func (c *Conn) ProductID() string { return c.cfg.ProductID }

// DeviceName returns the device's name.
func (c *Conn) DeviceName() string { return c.cfg.DeviceName }

// Logger returns the Conn's logger (with product_id and device_name attributes), for layers
// built on the connection.
func (c *Conn) Logger() *slog.Logger { return c.log }

// State returns the current lifecycle state.
func (c *Conn) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// IsConnected reports whether the connection is up (StateConnected).
func (c *Conn) IsConnected() bool { return c.State() == StateConnected }

// Stats returns counters of what the Conn handled on its own.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	queued := c.queue.len()
	c.mu.Unlock()
	return Stats{
		Reconnects:      c.reconnects.Load(),
		DroppedMessages: c.dropped.Load(),
		HandlerPanics:   c.panics.Load(),
		HandlerOverruns: c.overruns.Load(),
		GivenUp:         c.droppedPubs.Load(),
		Queued:          queued,
	}
}

// OnConnect registers fn to run after every reconnect from now on, once subscriptions are
// restored and the offline queue is flushed. fn runs on its own goroutine with a ctx that
// ends when that connection drops or the Conn closes. Call remove to unregister.
func (c *Conn) OnConnect(fn func(ctx context.Context)) (remove func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hookSeq++
	id := c.hookSeq
	c.hooks[id] = fn
	return func() {
		c.mu.Lock()
		delete(c.hooks, id)
		c.mu.Unlock()
	}
}

// Close disconnects and releases everything. Publishes still in the offline queue are
// discarded (logged with their count); blocked calls return ErrClosed. Close waits up to
// 5 s for running handlers and OnConnect hooks (so calling Close from inside one of them
// returns only after that wait). It is idempotent. A goroutine that was handing a packet to
// a jammed or dying connection may stay inside paho for up to the connect timeout (paho's
// write timeout) after Close; no caller waits for it.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.state == StateClosed {
		c.mu.Unlock()
		return nil
	}
	c.state = StateClosed
	c.live = false
	sess := c.sess
	c.sess = nil
	queue := c.queue.drain()
	subs := c.subs
	c.subs = map[string]*subscription{}
	c.wild = map[string]*subscription{}
	c.mu.Unlock()

	c.cancel()
	if sess != nil {
		sess.cancel()
		sess.client.Disconnect(250)
	}
	if len(queue) > 0 {
		c.log.Warn("closed with unsent publishes; they are discarded", "count", len(queue))
	}
	for _, p := range queue {
		p.finish(notSentf(ErrClosed, pubWhat(p.topic), "closed before the message was sent"))
	}
	for _, s := range subs {
		s.stop()
	}
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		c.subWG.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
		c.log.Warn("Close: handlers or OnConnect hooks still running after 5s; not waiting for them")
	}
	c.log.Info("closed")
	return nil
}

// supervise owns the connection lifecycle: it restores state after each connect and
// reconnects with backoff after each loss, until Close.
func (c *Conn) supervise(sess *session) {
	defer c.wg.Done()
	bo := backoff{min: c.opts.backoffMin, max: c.opts.backoffMax, rand: rand.Int64N}
	for {
		var why error
		select {
		case <-c.ctx.Done():
			return
		case why = <-sess.lost:
		}
		c.lost(sess, why)
		// A connection that dropped soon after it was made (flapping network, or another
		// login with the same identity kicking us) keeps the backoff growing instead of
		// hammering the platform, which allows one CONNECT per 5 s per device.
		if time.Since(sess.since) >= c.opts.backoffMax {
			bo.cur = 0
		}
		for {
			delay := bo.next()
			c.log.Info("reconnecting", "in", delay.String())
			t := time.NewTimer(delay)
			select {
			case <-c.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			var err error
			sess, err = c.connectOnce(c.ctx)
			if err == nil {
				c.reconnects.Add(1)
				c.log.Info("reconnected", "broker", c.addr.String())
				if !c.established(sess, false) {
					sess.client.Disconnect(0)
					return // closed meanwhile
				}
				break
			}
			if c.ctx.Err() != nil {
				return
			}
			level := slog.LevelWarn
			if errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrNotAuthorized) || errors.Is(err, ErrTLS) {
				level = slog.LevelError // will not heal by itself
			}
			c.log.Log(c.ctx, level, "reconnect failed", "err", err)
		}
	}
}

// lost marks the connection down so publishes queue from now on.
func (c *Conn) lost(sess *session, why error) {
	c.mu.Lock()
	if c.sess == sess {
		c.sess = nil
		c.live = false
		if c.state != StateClosed {
			c.state = StateReconnecting
		}
	}
	c.mu.Unlock()
	sess.cancel()
	c.log.Warn("connection lost", "err", why)
	for _, fn := range c.opts.onConnectionLost {
		c.goSafe("OnConnectionLost", func() { fn(why) })
	}
}

// markDown is called when an operation on sess failed because its connection is gone,
// possibly before paho reported the loss; it stops direct publishing on that session.
func (c *Conn) markDown(sess *session) {
	c.mu.Lock()
	if c.sess == sess {
		c.live = false
	}
	c.mu.Unlock()
}

// established installs sess, re-subscribes, flushes the offline queue and runs the hooks.
// It returns false if the Conn was closed meanwhile.
func (c *Conn) established(sess *session, first bool) bool {
	c.mu.Lock()
	if c.state == StateClosed {
		c.mu.Unlock()
		return false
	}
	c.gen++
	sess.gen = c.gen
	sess.since = time.Now()
	sess.ctx, sess.cancel = context.WithCancel(c.ctx)
	c.sess = sess
	c.mu.Unlock()
	c.waitFlusher()

	for {
		c.mu.Lock()
		if c.sess != sess {
			c.mu.Unlock()
			return c.ctx.Err() == nil // lost again (or closed) before finishing
		}
		subs := c.unrestoredSubs(sess.gen)
		var p *pending
		if len(subs) == 0 {
			p = c.queue.head()
		}
		if len(subs) == 0 && p == nil {
			c.live = true
			c.state = StateConnected
			// Hooks added with OnConnect exist only after Dial returned, so on the first
			// connect just the option callbacks run.
			hooks := append([]func(context.Context){}, c.opts.onConnect...)
			if !first {
				hooks = append(hooks, c.sortedHooks()...)
			}
			c.mu.Unlock()
			// Learn the clock offset after every connect. With a clock that was never set the
			// hooks (which re-report state with timestamps) wait for it; otherwise they do not.
			suspect := c.clockSuspect()
			if !first || !suspect { // Dial syncs a suspect clock itself before returning
				c.goSafe("clock sync", func() {
					c.syncClock(sess.ctx)
					if suspect {
						c.runHooks(sess, hooks)
					}
				})
			}
			if first || !suspect {
				c.runHooks(sess, hooks)
			}
			return true
		}
		c.mu.Unlock()
		var ok bool
		if len(subs) > 0 {
			ok = c.restore(sess, subs)
		} else {
			ok = c.flushOne(sess, p)
		}
		if !ok {
			c.markDown(sess)
			return c.ctx.Err() == nil // the supervisor waits for paho's loss report
		}
	}
}

// runHooks starts each OnConnect hook on its own goroutine.
func (c *Conn) runHooks(sess *session, hooks []func(context.Context)) {
	for _, h := range hooks {
		c.goSafe("OnConnect", func() { h(sess.ctx) })
	}
}

// sortedHooks returns the registered hooks in registration order. Caller holds c.mu.
func (c *Conn) sortedHooks() []func(context.Context) {
	out := make([]func(context.Context), 0, len(c.hooks))
	for id := uint64(1); id <= c.hookSeq; id++ {
		if h, ok := c.hooks[id]; ok {
			out = append(out, h)
		}
	}
	return out
}

// goSafe runs fn on a tracked goroutine, logging a panic instead of crashing the program.
func (c *Conn) goSafe(what string, fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				c.panics.Add(1)
				c.log.Error(what+" callback panicked", "panic", r)
			}
		}()
		fn()
	}()
}
