package explorer

import "strconv"

// State is the lifecycle state of a Conn.
type State int32

const (
	// StateConnecting: Dial is making the first connection.
	StateConnecting State = iota
	// StateConnected: connected; publishes go straight to the broker.
	StateConnected
	// StateReconnecting: the connection dropped; publishes are queued while it is re-established.
	StateReconnecting
	// StateClosed: Close was called; the Conn is unusable.
	StateClosed
)

// String returns "connecting", "connected", "reconnecting" or "closed".
func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Stats are counters of events that the Conn handled on its own; they are also logged.
type Stats struct {
	// Reconnects counts successful reconnects after a lost connection.
	Reconnects uint64
	// DroppedMessages counts received messages dropped because a subscription's backlog was full.
	DroppedMessages uint64
	// HandlerPanics counts handler calls that panicked (recovered and logged).
	HandlerPanics uint64
	// HandlerOverruns counts handler calls still running at their deadline.
	HandlerOverruns uint64
	// GivenUp counts QoS 1 publishes dropped from the offline queue because the connection
	// went down while each was in flight several times (or once after its caller gave up):
	// the platform disconnects a client whose publish it refuses. The caller, if still
	// waiting, gets an error wrapping ErrNotConnected.
	GivenUp uint64
	// Queued is the number of publishes waiting in the offline queue right now.
	Queued int
}
