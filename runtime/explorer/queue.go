package explorer

import "sort"

// pending is a publish waiting in the offline queue (or being flushed from it).
type pending struct {
	seq     uint64 // publish order, fixed when the publish was first attempted
	topic   string
	qos     byte
	payload []byte
	done    chan struct{}
	err     error
	// queued: accepted with Conn.Enqueue; nobody waits for it and it stays queued until
	// the broker has it (or Close).
	queued  bool
	sending bool // taken by a flusher; can no longer be withdrawn
	sent    bool // was on the wire at least once (a connection dropped before its PUBACK)
	// drops counts connections that dropped while it was in flight. The platform answers
	// a publish it refuses (ACL) by disconnecting, so a message that keeps doing that
	// would otherwise be re-sent after every reconnect forever.
	drops     int
	abandoned bool // its caller stopped waiting: do not re-send it after another drop
}

// finish records the outcome once and wakes the waiting caller, if any.
func (p *pending) finish(err error) {
	select {
	case <-p.done:
	default:
		p.err = err
		close(p.done)
	}
}

// outbox is the offline queue: publishes waiting for a connection, oldest first. Conn holds
// it behind this interface so the ordering and bounding rules live in one small type; all
// calls are made with Conn.mu held.
type outbox interface {
	// push adds p in seq order. It fails with ErrQueueFull when the queue holds its limit,
	// unless force is set (a message coming back from a dropped connection was already
	// accepted once and must not be lost to the limit).
	push(p *pending, force bool) error
	// head returns the oldest message, or nil.
	head() *pending
	// remove deletes p; false if it was not queued.
	remove(p *pending) bool
	// len is the number of queued messages.
	len() int
	// drain empties the queue and returns what it held, oldest first.
	drain() []*pending
}

// memOutbox is the in-memory outbox: a slice sorted by seq, bounded by limit.
type memOutbox struct {
	limit int
	items []*pending
}

func newMemOutbox(limit int) *memOutbox { return &memOutbox{limit: limit} }

func (q *memOutbox) push(p *pending, force bool) error {
	if !force && len(q.items) >= q.limit {
		return ErrQueueFull
	}
	// New messages have the highest seq, so the search ends at once; only a requeued
	// message goes back in front of newer ones.
	i := sort.Search(len(q.items), func(i int) bool { return q.items[i].seq > p.seq })
	q.items = append(q.items, nil)
	copy(q.items[i+1:], q.items[i:])
	q.items[i] = p
	return nil
}

func (q *memOutbox) head() *pending {
	if len(q.items) == 0 {
		return nil
	}
	return q.items[0]
}

func (q *memOutbox) remove(p *pending) bool {
	for i, x := range q.items {
		if x == p {
			copy(q.items[i:], q.items[i+1:])
			q.items[len(q.items)-1] = nil
			q.items = q.items[:len(q.items)-1]
			return true
		}
	}
	return false
}

func (q *memOutbox) len() int { return len(q.items) }

func (q *memOutbox) drain() []*pending {
	out := q.items
	q.items = nil
	return out
}
