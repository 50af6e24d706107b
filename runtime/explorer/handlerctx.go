package explorer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Every received message runs its handler with a ctx that ends at the handler deadline, at
// Close, or when the handler returns. context.WithTimeout plus a time.AfterFunc overrun timer
// per message cost about eight allocations on the receive path, so instead each message gets
// one msgCtx, the channel behind Done is made only if a handler asks for it, and one overrun
// timer per subscription worker is re-armed for every message.

// closedChan is returned by Done of a msgCtx that ended before anyone asked for Done.
var closedChan = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

// msgCtx is the context.Context of one handler call.
type msgCtx struct {
	conn     *Conn
	topic    string // for the overrun log
	deadline time.Time
	slotFree atomic.Bool // the concurrency slot was given back (at return or at overrun)

	mu        sync.Mutex
	err       error
	done      chan struct{}
	stopClose func() bool // unregisters the Close watcher made by Done
	funcs     map[*afterFunc]struct{}
}

type afterFunc struct{ f func() }

func (m *msgCtx) Deadline() (time.Time, bool) { return m.deadline, true }

// Value carries no values: the Conn's own ctx has none, and returning nil keeps
// context.Cause reporting Err.
func (m *msgCtx) Value(any) any { return nil }

func (m *msgCtx) Err() error {
	m.mu.Lock()
	err := m.err
	m.mu.Unlock()
	if err == nil && m.conn.ctx.Err() != nil {
		return context.Canceled
	}
	return err
}

func (m *msgCtx) Done() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done != nil {
		return m.done
	}
	if m.err != nil {
		m.done = closedChan
		return m.done
	}
	m.done = make(chan struct{})
	// Close must end this ctx too; only a handler that waits on Done pays for the watcher.
	m.stopClose = context.AfterFunc(m.conn.ctx, func() { m.cancel(context.Canceled) })
	return m.done
}

// AfterFunc lets context.WithCancel/WithTimeout children of a handler ctx follow it without a
// goroutine each (the context package looks for this method).
func (m *msgCtx) AfterFunc(f func()) (stop func() bool) {
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	if m.funcs == nil {
		m.funcs = make(map[*afterFunc]struct{})
	}
	m.funcs[a] = struct{}{}
	m.mu.Unlock()
	return func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.funcs[a]; !ok {
			return false
		}
		delete(m.funcs, a)
		return true
	}
}

// cancel ends the ctx with err; false if it had already ended.
func (m *msgCtx) cancel(err error) bool {
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		return false
	}
	m.err = err
	if m.done != nil {
		close(m.done)
	}
	funcs, stop := m.funcs, m.stopClose
	m.funcs = nil
	m.mu.Unlock()
	if stop != nil {
		stop()
	}
	for a := range funcs {
		go a.f()
	}
	return true
}

// releaseSlot gives the handler's concurrency slot back once.
func (m *msgCtx) releaseSlot() {
	if m.slotFree.CompareAndSwap(false, true) {
		<-m.conn.sem
	}
}

// handlerRun is a subscription worker's reusable state: the overrun timer and the call it
// currently watches.
type handlerRun struct {
	c     *Conn
	s     *subscription
	timer *time.Timer
	cur   atomic.Pointer[msgCtx]
}

// overrun fires at a call's deadline: the ctx ends and the slot is given back so that one
// stuck handler cannot starve the others.
func (r *handlerRun) overrun() {
	m := r.cur.Load()
	if m == nil || time.Now().Before(m.deadline) {
		return // a stale firing for a call that already returned
	}
	if !m.cancel(context.DeadlineExceeded) {
		return
	}
	r.c.overruns.Add(1)
	r.c.log.Warn("handler still running after its deadline; its slot is released", "topic", m.topic, "timeout", r.c.opts.handlerTimeout)
	m.releaseSlot()
}

// stop ends the worker's timer.
func (r *handlerRun) stop() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// handle runs one handler call holding a concurrency slot (already taken by the caller).
func (r *handlerRun) handle(m Message) {
	c := r.c
	mc := &msgCtx{conn: c, topic: m.Topic, deadline: time.Now().Add(c.opts.handlerTimeout)}
	r.cur.Store(mc)
	if r.timer == nil {
		r.timer = time.AfterFunc(c.opts.handlerTimeout, r.overrun)
	} else {
		r.timer.Reset(c.opts.handlerTimeout)
	}
	defer r.finish(mc)
	r.s.handler(mc, m)
}

// finish ends a handler call: stops the overrun timer, ends its ctx, frees the slot and
// recovers a panic (logged with the topic, counted).
func (r *handlerRun) finish(mc *msgCtx) {
	r.timer.Stop()
	r.cur.Store(nil)
	mc.cancel(context.Canceled)
	mc.releaseSlot()
	if p := recover(); p != nil {
		r.c.panics.Add(1)
		r.c.log.Error("handler panicked; message dropped", "topic", mc.topic, "panic", p)
	}
}
