package explorer

import (
	"context"
	"errors"
	"time"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

// timeWaiter is one ServerTime call waiting for the platform's answer.
type timeWaiter struct {
	sent time.Time
	ch   chan timeSample
}

// timeSample is the server's time and the device clock's reading when the reply arrived.
type timeSample struct{ server, local time.Time }

// plausibleSince: a device clock before this instant is taken as never set (a board without
// a real-time clock boots at 1970), so Dial and the OnConnect hooks wait for the server time
// before anything is stamped.
var plausibleSince = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Now returns the device clock (WithClock) corrected by the offset to the platform's clock
// learnt over $sys/operation after the latest connect (docs/PROTOCOL.md §7.1). Until the
// first answer it is the device clock alone. Every timestamp the runtime writes should come
// from here.
func (c *Conn) Now() time.Time {
	return c.opts.now().Add(time.Duration(c.clockOffset.Load()))
}

// ClockOffset returns the correction Now applies to the device clock (server − device) and
// whether it has been learnt from the platform yet.
func (c *Conn) ClockOffset() (offset time.Duration, known bool) {
	return time.Duration(c.clockOffset.Load()), c.clockKnown.Load()
}

// clockSuspect reports whether the device clock looks never set.
func (c *Conn) clockSuspect() bool { return c.opts.now().Before(plausibleSince) }

// syncClock learns the clock offset from the platform, bounded by ctx and the ack timeout.
// A platform or broker that does not answer only leaves the offset as it was.
func (c *Conn) syncClock(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ackTimeout)
	defer cancel()
	if _, err := c.ServerTime(ctx); err != nil {
		if c.ctx.Err() == nil {
			c.log.Warn("server time unavailable; timestamps use the device clock", "err", err, "offset_known", c.clockKnown.Load())
		}
		return
	}
	off, _ := c.ClockOffset()
	c.log.Debug("clock synchronised with the platform", "offset", off.String())
}

// timeReply is the platform's answer on $sys/operation/result/{pid}/{dn} (docs/PROTOCOL.md §7.1).
type timeReply struct {
	Type     string `json:"type"`
	Time     *int64 `json:"time"`
	NTPTime1 *int64 `json:"ntptime1"`
	NTPTime2 *int64 `json:"ntptime2"`
}

func (c *Conn) sysOperationTopics() (up, down string) {
	return "$sys/operation/" + c.cfg.ProductID + "/" + c.cfg.DeviceName,
		"$sys/operation/result/" + c.cfg.ProductID + "/" + c.cfg.DeviceName
}

// ServerTime asks the platform for its clock over $sys/operation and returns it corrected
// for the round trip: (ntptime1 + ntptime2 + recvMs − sendMs) / 2. It waits for ctx and at
// most the ack timeout (ErrTimeout); while disconnected it fails at once with ErrNotConnected.
// The reply subscription is made on first use and kept. Every answer also updates the
// offset Now applies (the Conn asks by itself after every connect).
func (c *Conn) ServerTime(ctx context.Context) (time.Time, error) {
	up, down := c.sysOperationTopics()
	what := "server time on " + quote(down)
	c.mu.Lock()
	live, sess := c.live, c.sess
	needSub := c.timeSub == nil || c.subs[down] != c.timeSub // absent, or replaced by the user
	c.mu.Unlock()
	if !live {
		// A queued request would come back late and skew the round-trip correction.
		return time.Time{}, newError(ErrNotConnected, nil, what)
	}
	if needSub {
		s, err := c.subscribe(ctx, down, 0, c.handleTimeReply, false)
		if err != nil {
			return time.Time{}, err
		}
		c.mu.Lock()
		c.timeSub = s
		c.mu.Unlock()
	}
	w := &timeWaiter{sent: c.opts.now(), ch: make(chan timeSample, 1)}
	c.mu.Lock()
	c.timeReq = append(c.timeReq, w)
	c.mu.Unlock()
	defer c.dropTimeWaiter(w)

	// Sent on the live session only, never through the offline queue: a request queued while
	// the link is down would come back late (skewing the correction) and would take a slot
	// of the program's own queue.
	connLost, err := c.sendNow(ctx, sess, up, 0, []byte(`{"type":"get","resource":["time"]}`))
	if connLost {
		return time.Time{}, newError(ErrNotConnected, err, what)
	}
	if err != nil {
		return time.Time{}, err
	}
	t := time.NewTimer(c.opts.ackTimeout)
	defer t.Stop()
	select {
	case st := <-w.ch:
		c.clockOffset.Store(int64(st.server.Sub(st.local)))
		c.clockKnown.Store(true)
		return st.server, nil
	case <-ctx.Done():
		return time.Time{}, newError(ctx.Err(), nil, what)
	case <-c.ctx.Done():
		return time.Time{}, newError(ErrClosed, nil, what)
	case <-t.C:
		return time.Time{}, newErrorf(ErrTimeout, nil, what, "no reply within %v", c.opts.ackTimeout)
	}
}

func (c *Conn) dropTimeWaiter(w *timeWaiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.timeReq {
		if x == w {
			c.timeReq = append(c.timeReq[:i], c.timeReq[i+1:]...)
			return
		}
	}
}

// handleTimeReply answers every waiting ServerTime call: replies carry no token.
func (c *Conn) handleTimeReply(_ context.Context, m Message) {
	recv := c.opts.now()
	var r timeReply
	err := jsonguard.Unmarshal(m.Payload, &r)
	if err == nil && r.Type != "get" {
		return // other operations share the topic (e.g. remote SSH switches)
	}
	if err == nil && r.NTPTime1 == nil && r.Time == nil {
		err = errors.New("no ntptime1/ntptime2 or time field")
	}
	if err != nil {
		c.log.Warn("bad server time reply", "topic", m.Topic, "err", err)
		return
	}
	c.mu.Lock()
	waiters := c.timeReq
	c.timeReq = nil
	c.mu.Unlock()
	for _, w := range waiters {
		w.ch <- timeSample{server: serverTime(r, w.sent, recv), local: recv}
	}
}

// serverTime applies docs/PROTOCOL.md §7.1; without ntptime fields it falls back to "time".
func serverTime(r timeReply, sent, recv time.Time) time.Time {
	if r.NTPTime1 == nil {
		return time.Unix(*r.Time, 0)
	}
	t2 := *r.NTPTime1
	if r.NTPTime2 != nil {
		t2 = *r.NTPTime2
	}
	ms := (*r.NTPTime1 + t2 + recv.UnixMilli() - sent.UnixMilli()) / 2
	return time.UnixMilli(ms)
}
