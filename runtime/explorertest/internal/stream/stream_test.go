package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// frame is one parsed SSE message.
type frame struct {
	id, event, data string
}

type client struct {
	resp *http.Response
	r    *bufio.Reader
}

func connect(t *testing.T, url string, hdr map[string]string) *client {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return &client{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next reads the next message, skipping comments.
func (c *client) next(t *testing.T) frame {
	t.Helper()
	var f frame
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading stream: %v (partial %+v)", err, f)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if f.event != "" || f.data != "" {
				return f
			}
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry: "):
		case strings.HasPrefix(line, "id: "):
			f.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			f.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			f.data = line[6:]
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
}

func newServer(t *testing.T, cfg Config) (*Hub, *httptest.Server) {
	h := New(cfg)
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return h, srv
}

func TestStreamDeliversAndFilters(t *testing.T) {
	h, srv := newServer(t, Config{Now: func() time.Time { return time.UnixMilli(1700000000000) }})
	all := connect(t, srv.URL, nil)
	one := connect(t, srv.URL+"?device=P/a&type=reported", nil)
	for _, c := range []*client{all, one} {
		if f := c.next(t); f.event != "hello" || f.data != `{"last_id":0}` {
			t.Fatalf("first frame %+v", f)
		}
	}
	h.Publish("online", "P/a", map[string]bool{"online": true})
	h.Publish("reported", "P/b", json.RawMessage(`{"x":1}`))
	h.Publish("reported", "P/a", json.RawMessage(`{"power":1}`))
	var got []string
	for range 3 {
		f := all.next(t)
		got = append(got, f.id+" "+f.event+" "+f.data)
	}
	want := []string{
		`1 online {"device":"P/a","at":1700000000000,"data":{"online":true}}`,
		`2 reported {"device":"P/b","at":1700000000000,"data":{"x":1}}`,
		`3 reported {"device":"P/a","at":1700000000000,"data":{"power":1}}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f := one.next(t); f.id != "3" {
		t.Fatalf("filtered stream got %+v, want only event 3", f)
	}
	if s := h.Stats(); s.Published != 3 || s.Subscribers != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReplayAfterLastEventID(t *testing.T) {
	h, srv := newServer(t, Config{History: 3})
	for i := range 5 {
		h.Publish("log", "", map[string]int{"i": i})
	}
	// Events 3..5 are kept: resuming after 2 replays them all.
	c := connect(t, srv.URL, map[string]string{"Last-Event-ID": "2"})
	if f := c.next(t); f.event != "hello" {
		t.Fatalf("%+v", f)
	}
	for _, id := range []string{"3", "4", "5"} {
		if f := c.next(t); f.id != id {
			t.Fatalf("replay: got %+v, want id %s", f, id)
		}
	}
	// Resuming after 1: event 2 is gone, so the client is told to resynchronise.
	c = connect(t, srv.URL, map[string]string{"Last-Event-ID": "1"})
	c.next(t) // hello
	if f := c.next(t); f.event != "reset" {
		t.Fatalf("want reset, got %+v", f)
	}
	if f := c.next(t); f.id != "3" {
		t.Fatalf("after reset: %+v", f)
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	h, srv := newServer(t, Config{Buffer: 2, History: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	fast := connect(t, srv.URL+"?type=never", nil)
	fast.next(t) // hello
	// The slow client reads nothing: once the socket buffers fill, its channel fills and the
	// hub cuts it instead of blocking Publish.
	big := json.RawMessage(`"` + strings.Repeat("x", 256<<10) + `"`)
	for i := 0; h.Stats().Dropped == 0; i++ {
		if i == 4000 {
			t.Fatal("slow subscriber never dropped")
		}
		h.Publish("blob", "", big)
	}
	if s := h.Stats(); s.Dropped != 1 || s.Subscribers != 1 {
		t.Fatalf("stats %+v: want one dropped, the filtered one kept", s)
	}
	// The slow client's stream ends (after whatever was in flight) with a "dropped" notice.
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "event: dropped") {
		t.Fatalf("stream of %d bytes ended without the dropped notice", len(body))
	}
}

func TestLimitsAndBadRequests(t *testing.T) {
	h, srv := newServer(t, Config{MaxSubscribers: 1})
	connect(t, srv.URL, nil).next(t)
	for _, tc := range []struct {
		query, hdr string
		status     int
		msg        string
	}{
		{"", "", 503, "1 streams already open"},
		{"?devce=P/a", "", 400, `unknown query parameter "devce"`},
		{"?device=Pa", "", 400, `device="Pa": want PID/DN`},
		{"", "abc", 400, `Last-Event-ID "abc"`},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tc.query, nil)
		if tc.hdr != "" {
			req.Header.Set("Last-Event-ID", tc.hdr)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || !strings.Contains(body.Error, tc.msg) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %q %v, want %d %q", tc.query, tc.hdr, resp.StatusCode, body.Error, err, tc.status, tc.msg)
		}
	}
	if s := h.Stats(); s.Refused != 1 {
		t.Fatalf("refused = %d", s.Refused)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	h, srv := newServer(t, Config{})
	c := connect(t, srv.URL, nil)
	c.next(t)
	h.Close()
	if _, err := io.ReadAll(c.r); err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	h.Publish("x", "", nil) // no panic after Close
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("after Close: %d", resp.StatusCode)
	}
}

func TestUnencodableDataCounted(t *testing.T) {
	h, srv := newServer(t, Config{})
	c := connect(t, srv.URL, nil)
	c.next(t)
	h.Publish("x", "", func() {})
	if f := c.next(t); f.event != "x" || !strings.HasPrefix(f.data, `{"at":`) || strings.Contains(f.data, `"data"`) {
		t.Fatalf("data %q", f.data)
	}
	if h.Stats().EncodeErrors != 1 {
		t.Fatal("encode error not counted")
	}
}
