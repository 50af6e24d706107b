package firmware

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// rawGet sends one GET with the given path and Range header and reads the status line.
func rawGet(t *testing.T, addr, path, rng string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nRange: %s\r\nConnection: close\r\n\r\n", path, rng)
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf, []byte("HTTP/1.1 404")) {
		t.Fatalf("answer %q, want 404", buf)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// Once, 300 requests with long paths added ~470 MiB to the emulator. Now the log keeps a
// bounded number of records with clipped fields.
func TestRequestLogIsBounded(t *testing.T) {
	const keep = 100
	s := newTestStore(t, WithRequestLog(keep))
	h := serveHost(t, s, "127.0.0.1:0")
	long := strings.Repeat("a", 256<<10) // 256 KiB path and Range: within the server's 1 MiB header limit
	before := heapInUse()
	for i := range 300 {
		rawGet(t, h.Addr(), fmt.Sprintf("/%d%s", i, long), "bytes="+long)
	}
	grown := int64(heapInUse()) - int64(before)
	reqs := s.Requests()
	if len(reqs) != keep || s.RequestsDropped() != 300-keep {
		t.Fatalf("log keeps %d, dropped %d; want %d and %d", len(reqs), s.RequestsDropped(), keep, 300-keep)
	}
	for _, r := range reqs {
		if len(r.ID) > MaxRecordedField || len(r.Range) > MaxRecordedField || !strings.HasSuffix(r.ID, "...") || r.Status != 404 {
			t.Fatalf("record not clipped: ID %d bytes, Range %d bytes, status %d", len(r.ID), len(r.Range), r.Status)
		}
	}
	// The newest are kept, oldest first.
	if !strings.HasPrefix(reqs[0].ID, "200a") || !strings.HasPrefix(reqs[keep-1].ID, "299a") {
		t.Errorf("kept %q .. %q, want requests 200 .. 299", reqs[0].ID[:5], reqs[keep-1].ID[:5])
	}
	// 300 x 512 KiB went through the server; what stays must be a tiny fraction of it.
	if grown > 16<<20 {
		t.Errorf("heap grew by %d MiB after 300 requests", grown>>20)
	}
}

func TestRequestLogDefaultBound(t *testing.T) {
	s := newTestStore(t)
	for range MaxRequests + 5 {
		s.record(&Request{ID: "x"})
	}
	if n := len(s.Requests()); n != MaxRequests || s.RequestsDropped() != 5 {
		t.Errorf("kept %d, dropped %d", n, s.RequestsDropped())
	}
}
