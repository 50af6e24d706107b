// Package stream is the platform emulator's live event stream: a hub that fans platform events
// (device online/offline, reported properties, events, control and action replies, OTA
// progress, log lines, ...) out to Server-Sent-Event subscribers (`GET /api/stream`), used by
// the web console and by scripts (`curl -N`).
//
// Everything a subscriber can make the hub keep is bounded:
//
//   - each subscriber has a buffer of Config.Buffer events; a subscriber whose buffer is full is
//     dropped (its stream ends) and counted, so one slow reader never blocks the platform or
//     grows its memory. A dropped EventSource reconnects with Last-Event-ID and is replayed
//     what it missed from the history, or told to resynchronise ("reset" event);
//   - at most Config.MaxSubscribers streams are open at once (503 beyond);
//   - the replay history keeps the newest Config.History events.
//
// Wire format (one SSE message per event):
//
//	id: 42
//	event: reported
//	data: {"device":"P1/lamp","at":1700000000000,"data":{...}}
//
// Query parameters: device=PID/DN (repeatable) keeps only that device's events (plus
// device-less ones such as "hello"); type=NAME (repeatable) keeps only those event types.
package stream

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
)

// Config bounds a Hub. Zero fields take the defaults.
type Config struct {
	Buffer         int           // events buffered per subscriber (default 256)
	MaxSubscribers int           // concurrent streams (default 64)
	History        int           // events kept for Last-Event-ID replay (default 1024)
	Heartbeat      time.Duration // comment line sent when idle, keeps proxies open (default 15s)
	Now            func() time.Time
}

// Event is one published event as subscribers receive it.
type Event struct {
	ID     uint64          `json:"-"`
	Type   string          `json:"-"`
	Device string          `json:"device,omitempty"`
	At     int64           `json:"at"` // Unix milliseconds
	Data   json.RawMessage `json:"data,omitempty"`

	frame []byte // the encoded SSE message, built once
}

// Stats counts what the hub did.
type Stats struct {
	Subscribers int    `json:"subscribers"`
	Published   uint64 `json:"published"`
	// Dropped counts subscribers cut because their buffer was full.
	Dropped uint64 `json:"dropped_subscribers"`
	// Refused counts streams refused because MaxSubscribers were open.
	Refused uint64 `json:"refused_subscribers"`
	// EncodeErrors counts events whose data could not be encoded (published without data).
	EncodeErrors uint64 `json:"encode_errors"`
}

type subscriber struct {
	ch      chan *Event
	devices []string
	types   []string
	gone    chan struct{} // closed when the hub drops the subscriber
}

func (s *subscriber) wants(e *Event) bool {
	if len(s.types) > 0 && !slices.Contains(s.types, e.Type) {
		return false
	}
	return len(s.devices) == 0 || e.Device == "" || slices.Contains(s.devices, e.Device)
}

// Hub fans events out to subscribers. Create it with New; the zero value is not usable.
type Hub struct {
	cfg Config

	mu      sync.Mutex
	nextID  uint64
	subs    map[*subscriber]struct{}
	history []*Event // ring, oldest first once full
	head    int      // index of the oldest entry when len(history) == cfg.History
	closed  bool
	done    chan struct{}

	published, dropped, refused, encodeErrors atomic.Uint64
	active                                    atomic.Int64 // open streams, read without the lock
}

// New returns a hub bounded by cfg.
func New(cfg Config) *Hub {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	if cfg.MaxSubscribers <= 0 {
		cfg.MaxSubscribers = 64
	}
	if cfg.History <= 0 {
		cfg.History = 1024
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Hub{cfg: cfg, subs: map[*subscriber]struct{}{}, done: make(chan struct{})}
}

// Publish sends an event of type typ about device ("PID/DN", or "" for none) to every
// subscriber that wants it. data is JSON-encoded once (json.RawMessage and []byte holding JSON
// are sent as they are). Publish never blocks on a subscriber.
func (h *Hub) Publish(typ, device string, data any) {
	var raw json.RawMessage
	switch v := data.(type) {
	case nil:
	case json.RawMessage:
		raw = v
	case []byte:
		raw = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			h.encodeErrors.Add(1)
		} else {
			raw = b
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.nextID++
	e := &Event{ID: h.nextID, Type: typ, Device: device, At: h.cfg.Now().UnixMilli(), Data: raw}
	e.frame = encodeFrame(e)
	h.published.Add(1)
	if len(h.history) < h.cfg.History {
		h.history = append(h.history, e)
	} else {
		h.history[h.head] = e
		h.head = (h.head + 1) % len(h.history)
	}
	for s := range h.subs {
		if !s.wants(e) {
			continue
		}
		select {
		case s.ch <- e:
		default:
			// Full: cut this subscriber rather than block the platform or buffer without bound.
			delete(h.subs, s)
			close(s.gone)
			h.dropped.Add(1)
		}
	}
}

func encodeFrame(e *Event) []byte {
	body, err := json.MarshalWithOption(e, json.DisableHTMLEscape())
	if err != nil { // cannot happen: every field is plain or already JSON
		body = []byte(`{}`)
	}
	var b strings.Builder
	b.Grow(len(body) + len(e.Type) + 32)
	b.WriteString("id: ")
	b.WriteString(strconv.FormatUint(e.ID, 10))
	b.WriteString("\nevent: ")
	b.WriteString(sanitizeLine(e.Type))
	b.WriteString("\ndata: ")
	b.Write(body) // compact JSON has no raw newlines
	b.WriteString("\n\n")
	return []byte(b.String())
}

// sanitizeLine keeps an event type from breaking the SSE framing.
func sanitizeLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// Active reports whether any stream is open (cheap: publishers use it to skip building events
// nobody would receive).
func (h *Hub) Active() bool { return h.active.Load() > 0 }

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n := len(h.subs)
	h.mu.Unlock()
	return Stats{Subscribers: n, Published: h.published.Load(), Dropped: h.dropped.Load(), Refused: h.refused.Load(), EncodeErrors: h.encodeErrors.Load()}
}

// Close ends every stream; later Publish calls do nothing and new streams are refused.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
}

// replayLocked returns the history after id and whether it covers everything since id.
func (h *Hub) replayLocked(after uint64) ([]*Event, bool) {
	n := len(h.history)
	var out []*Event
	for i := range n {
		e := h.history[(h.head+i)%n]
		if e.ID > after {
			out = append(out, e)
		}
	}
	complete := after >= h.nextID || (len(out) > 0 && out[0].ID == after+1)
	return out, complete
}

// ServeHTTP serves one SSE stream (GET only). writeError answers errors as JSON.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "stream: response writer cannot flush")
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "device" && k != "type" && k != "access_token" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("stream: unknown query parameter %q (want device=PID/DN or type=NAME)", k))
			return
		}
	}
	sub := &subscriber{ch: make(chan *Event, h.cfg.Buffer), devices: q["device"], types: q["type"], gone: make(chan struct{})}
	for _, d := range sub.devices {
		if p, n, ok := strings.Cut(d, "/"); !ok || p == "" || n == "" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("stream: device=%q: want PID/DN", d))
			return
		}
	}
	var lastID uint64
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("stream: Last-Event-ID %q: want the id of an event", v))
			return
		}
		lastID = id
	}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "stream: platform is shutting down")
		return
	}
	if len(h.subs) >= h.cfg.MaxSubscribers {
		h.mu.Unlock()
		h.refused.Add(1)
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("stream: %d streams already open (the limit); close one", h.cfg.MaxSubscribers))
		return
	}
	var replay []*Event
	complete := true
	if lastID > 0 {
		replay, complete = h.replayLocked(lastID)
	}
	current := h.nextID
	h.subs[sub] = struct{}{}
	h.active.Add(1)
	h.mu.Unlock()
	defer h.active.Add(-1)
	defer h.unsubscribe(sub)

	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// hello tells the client the newest id; reset asks it to refetch state it cannot replay.
	hello, _ := json.Marshal(map[string]any{"last_id": current})
	fmt.Fprintf(w, "retry: 2000\nevent: hello\ndata: %s\n\n", hello)
	if !complete {
		fmt.Fprintf(w, "event: reset\ndata: {\"reason\":\"events since %d are no longer kept; refetch state\"}\n\n", lastID)
	}
	for _, e := range replay {
		if sub.wants(e) {
			_, _ = w.Write(e.frame)
		}
	}
	flusher.Flush()

	tick := time.NewTicker(h.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case e := <-sub.ch:
			// Events queued here were published after the replay snapshot (same lock).
			if _, err := w.Write(e.frame); err != nil {
				return
			}
			// Write whatever else is queued before flushing once.
			for more := true; more; {
				select {
				case e := <-sub.ch:
					if _, err := w.Write(e.frame); err != nil {
						return
					}
				default:
					more = false
				}
			}
			flusher.Flush()
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-sub.gone:
			// Dropped as too slow: say so (best effort) and end; the client reconnects.
			fmt.Fprint(w, "event: dropped\ndata: {\"reason\":\"stream fell too far behind; reconnect with Last-Event-ID\"}\n\n")
			flusher.Flush()
			return
		case <-h.done:
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (h *Hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.gone)
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
