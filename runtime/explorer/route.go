package explorer

import (
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// subscription is one filter with its handler and ordered backlog. It has no goroutine of
// its own while idle: a gateway holds thousands of subscriptions (four per sub-device), so
// a worker is started when a message arrives and ends once the backlog has stayed empty for
// workerLinger (a steady stream keeps its worker and does not pay a goroutine start per
// message).
type subscription struct {
	filter  string
	qos     byte
	handler Handler
	sentGen uint64 // connection generation on which the broker acknowledged it; guarded by Conn.mu
	owned   bool   // made with SubscribeOwned: another Subscribe may not replace it

	mu      sync.Mutex
	backlog []Message // messages waiting for the handler, oldest at head
	head    int
	running bool          // a worker goroutine exists (busy or lingering)
	wake    chan struct{} // tells a lingering worker that a message arrived
	stopped bool
	quit    chan struct{} // closed by stop
}

// workerLinger is how long a subscription's worker waits for more messages before it ends.
const workerLinger = 100 * time.Millisecond

func newSubscription(filter string, qos byte, h Handler) *subscription {
	return &subscription{filter: filter, qos: qos, handler: h, quit: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// stop drops the backlog; a handler already running finishes.
func (s *subscription) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	s.backlog, s.head = nil, 0
	close(s.quit)
}

// push appends m to the backlog. It returns full=true if the backlog already holds limit
// messages, and start=true if the caller must start a worker.
func (s *subscription) push(m Message, limit int) (start, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false, false // unsubscribed meanwhile: as if it had arrived a moment later
	}
	if len(s.backlog)-s.head >= limit {
		return false, true
	}
	s.backlog = append(s.backlog, m)
	if s.running {
		select {
		case s.wake <- struct{}{}:
		default: // already signalled
		}
		return false, false
	}
	s.running = true
	return true, false
}

// pop takes the oldest waiting message; ok=false means there is none (or the subscription
// stopped).
func (s *subscription) pop() (m Message, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.head == len(s.backlog) {
		return Message{}, false
	}
	m = s.backlog[s.head]
	s.backlog[s.head] = Message{}
	s.head++
	if s.head == len(s.backlog) {
		s.backlog, s.head = s.backlog[:0], 0
	}
	return m, true
}

// retire marks the worker gone if the backlog is still empty; false means a message
// arrived meanwhile and the worker must go on.
func (s *subscription) retire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped && s.head != len(s.backlog) {
		return false
	}
	s.running = false
	if cap(s.backlog) > 32 { // give a burst's buffer back
		s.backlog = nil
	}
	return true
}

// isWildcard reports whether filter contains an MQTT wildcard level.
func isWildcard(filter string) bool { return strings.ContainsAny(filter, "+#") }

// putSub installs s under its filter and returns the subscription it replaces. Exact filters
// are found by map lookup on the topic; only wildcard filters are also kept in c.wild, which
// dispatch scans. Caller holds c.mu.
func (c *Conn) putSub(s *subscription) (old *subscription) {
	old = c.subs[s.filter]
	c.subs[s.filter] = s
	if isWildcard(s.filter) {
		c.wild[s.filter] = s
	}
	return old
}

// removeSub deletes the subscription to filter (only s if s != nil) and returns it. Caller
// holds c.mu.
func (c *Conn) removeSub(filter string, s *subscription) *subscription {
	cur, ok := c.subs[filter]
	if !ok || (s != nil && cur != s) {
		return nil
	}
	delete(c.subs, filter)
	delete(c.wild, filter)
	return cur
}

// dispatch runs on paho's router goroutine: it only enqueues, never blocks. The cost is one
// map lookup plus a scan of the wildcard filters, whatever the number of exact ones.
func (c *Conn) dispatch(pm mqtt.Message) {
	m := Message{Topic: pm.Topic(), Payload: pm.Payload(), QoS: pm.Qos()}
	matched := false
	c.mu.Lock()
	// A filter equal to the topic always matches it (topicMatches' first case).
	if s := c.subs[m.Topic]; s != nil {
		matched = true
		c.enqueue1(s, m)
	}
	for f, s := range c.wild {
		if f != m.Topic && topicMatches(f, m.Topic) {
			matched = true
			c.enqueue1(s, m)
		}
	}
	c.mu.Unlock()
	if !matched {
		c.log.Debug("message without subscription ignored", "topic", m.Topic)
	}
}

// enqueue1 hands m to s, starting its worker if it is idle. Caller holds c.mu, so Close
// (which detaches every subscription under c.mu before waiting for workers) never races
// the worker's subWG.Add.
func (c *Conn) enqueue1(s *subscription, m Message) {
	start, full := s.push(m, c.opts.handlerBacklog)
	if full {
		n := c.dropped.Add(1)
		c.log.Error("handler backlog full: message dropped (slow handler?)",
			"topic", m.Topic, "filter", s.filter, "backlog", c.opts.handlerBacklog, "dropped_total", n)
		return
	}
	if start {
		c.subWG.Add(1)
		go c.work(s)
	}
}

// work handles s's backlog in order, one message at a time, and ends when it has been
// empty for workerLinger.
func (c *Conn) work(s *subscription) {
	defer c.subWG.Done()
	run := &handlerRun{c: c, s: s}
	defer run.stop()
	var idle *time.Timer
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	for {
		m, ok := s.pop()
		if !ok {
			if idle == nil {
				idle = time.NewTimer(workerLinger)
			} else {
				idle.Reset(workerLinger)
			}
			select {
			case <-s.wake:
			case <-idle.C:
				if s.retire() {
					return
				}
			case <-s.quit:
				return
			case <-c.ctx.Done():
				s.stop()
				return
			}
			continue
		}
		select {
		case c.sem <- struct{}{}:
		case <-s.quit:
			return
		case <-c.ctx.Done():
			s.stop() // closed: nothing more will be handled
			return
		}
		run.handle(m)
	}
}
