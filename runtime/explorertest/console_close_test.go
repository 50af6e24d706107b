package explorertest

import (
	"bufio"
	"io"
	"net/http"
	"testing"
)

// An open /api/stream (a console left open) ends cleanly when the platform closes: the
// response is complete (its chunked body terminated), not cut off after Shutdown gave up
// waiting for it.
func TestCloseEndsOpenStreams(t *testing.T) {
	s := newThingServer(t)
	resp, err := http.Get(s.HTTPURL() + "/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	sr := sseReader{br}
	if typ, _ := sr.next(t); typ != "hello" {
		t.Fatalf("first event %s", typ)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("the stream was cut off instead of ending: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
