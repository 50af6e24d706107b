package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	json "github.com/goccy/go-json"
)

// The emulator's live stream, GET /api/stream (server-sent events): ctl events --follow and
// ctl ota push --watch use it, and poll instead when the emulator has no stream (404).

// maxSSEEvent bounds one event of the stream (its data lines together).
const maxSSEEvent = 4 << 20

// errNoStream: the emulator answers 404 on /api/stream (an older emulator).
var errNoStream = errors.New("the emulator has no /api/stream")

// sseEvent is one server-sent event.
type sseEvent struct {
	ID, Type string
	Data     []byte
}

// streamData is the data of the emulator's stream events.
type streamData struct {
	Device string          `json:"device"`
	At     int64           `json:"at"`
	Data   json.RawMessage `json:"data"`
}

// readSSE parses a text/event-stream and calls fn for every event (comments are skipped, data
// lines joined with "\n", an event without data is not dispatched, as the SSE format says).
// It returns fn's error, the reader's, or nil at the end of the stream.
func readSSE(r io.Reader, fn func(sseEvent) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var ev sseEvent
	var data bytes.Buffer
	hasData := false
	for {
		line, err := readLine(br, maxSSEEvent)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(line) == 0 { // dispatch
			if hasData {
				ev.Data = bytes.Clone(data.Bytes())
				if ev.Type == "" {
					ev.Type = "message"
				}
				if err := fn(ev); err != nil {
					return err
				}
			}
			ev, hasData = sseEvent{ID: ev.ID}, false // the last id persists
			data.Reset()
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Type = string(value)
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			if data.Len()+len(value) > maxSSEEvent {
				return fmt.Errorf("stream: an event larger than %d MiB", maxSSEEvent>>20)
			}
			data.Write(value)
			hasData = true
		case "id":
			if !bytes.ContainsRune(value, 0) {
				ev.ID = string(value)
			}
		}
	}
}

// readLine reads one line without its \n, \r\n or \r ending, refusing lines over max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, chunk...)
		if len(line) > max {
			return nil, fmt.Errorf("stream: a line longer than %d MiB", max>>20)
		}
		if !isPrefix {
			return line, nil
		}
	}
}

// openStream subscribes to the stream; lastID resumes after that event (Last-Event-ID).
func (c *apiClient) openStream(ctx context.Context, query url.Values, lastID string) (*http.Response, error) {
	req, err := c.newRequest(ctx, http.MethodGet, c.url(query, "api", "stream"), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", req.URL.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if resp.StatusCode == http.StatusNotFound {
			return nil, errNoStream
		}
		return nil, &apiError{Status: resp.StatusCode, Msg: errorMessage(data)}
	}
	return resp, nil
}

// follow keeps a stream subscription open until ctx ends or a callback fails (follow returns
// that error), resuming after a drop with Last-Event-ID. onOpen runs after each subscription
// is confirmed by the emulator's "hello", so that state fetched there cannot miss a change
// (changes made meanwhile arrive as events too: callers deduplicate); onEvent gets every other
// event. A "reset" (the emulator could not replay what a resumed stream missed) calls onOpen.
func (c *apiClient) follow(ctx context.Context, query url.Values, onOpen func() error, onEvent func(sseEvent) error) error {
	lastID := ""
	opened := false
	backoff := 100 * time.Millisecond
	for {
		resp, err := c.openStream(ctx, query, lastID)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errNoStream) && !opened:
			return errNoStream
		case err != nil && !opened:
			return err
		case err == nil:
			opened = true
			backoff = 100 * time.Millisecond
			var cbErr error
			// A read error ends this subscription like the end of the stream: resubscribe.
			_ = readSSE(resp.Body, func(ev sseEvent) error {
				switch ev.Type {
				case "hello":
					// {"last_id": N}: where a resubscription resumes if nothing came before.
					var h struct {
						LastID uint64 `json:"last_id"`
					}
					if lastID == "" && json.Unmarshal(ev.Data, &h) == nil && h.LastID > 0 {
						lastID = fmt.Sprint(h.LastID)
					}
					cbErr = onOpen()
				case "reset":
					cbErr = onOpen()
				default:
					if ev.ID != "" {
						lastID = ev.ID
					}
					cbErr = onEvent(ev)
				}
				return cbErr
			})
			resp.Body.Close()
			if cbErr != nil {
				return cbErr
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		// The stream ended or could not be reopened (the emulator restarted, or this reader
		// fell behind and was dropped): resubscribe after a pause.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// recentKeys remembers the last n keys seen, to print each streamed item once.
type recentKeys struct {
	n    int
	set  map[string]struct{}
	fifo []string
}

func newRecentKeys(n int) *recentKeys { return &recentKeys{n: n, set: map[string]struct{}{}} }

// add reports whether k is new, remembering it.
func (r *recentKeys) add(k string) bool {
	if _, ok := r.set[k]; ok {
		return false
	}
	r.set[k] = struct{}{}
	r.fifo = append(r.fifo, k)
	if len(r.fifo) > r.n {
		delete(r.set, r.fifo[0])
		r.fifo = r.fifo[1:]
	}
	return true
}
