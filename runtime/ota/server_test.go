package ota

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fwServer is a small firmware HTTP server for the download-engine tests: Range support via
// http.ServeContent, plus faults (cut the connection at absolute offsets, ignore Range, fixed
// status) and a rate limit. The platform's real firmware server lives in
// runtime/explorertest/internal/firmware (not importable from here).
type fwServer struct {
	*httptest.Server
	data []byte

	mu          sync.Mutex
	cuts        []int64 // absolute offsets; each cuts one response that crosses it
	ignoreRange bool
	status      int
	cutStatus   int // status to answer with after a cut happened (0 = keep serving)
	rate        int // bytes per second, 0 = unlimited
	ranges      []string
	started     chan string // receives the Range header of each request (non-blocking)
}

func newFWServer(t testing.TB, data []byte, tlsServer bool) *fwServer {
	s := &fwServer{data: data, started: make(chan string, 1000)}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // expected TLS and abort noise
	if tlsServer {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *fwServer) firmware(version string) Firmware {
	sum := md5.Sum(s.data)
	return Firmware{Version: version, URL: s.URL + "/fw.bin?sign=secret-" + version, MD5: hex.EncodeToString(sum[:]), Size: int64(len(s.data))}
}

func (s *fwServer) setCuts(offsets ...int64) { s.mu.Lock(); s.cuts = offsets; s.mu.Unlock() }
func (s *fwServer) setRate(bps int)          { s.mu.Lock(); s.rate = bps; s.mu.Unlock() }
func (s *fwServer) setStatus(code int)       { s.mu.Lock(); s.status = code; s.mu.Unlock() }
func (s *fwServer) rangesSeen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func (s *fwServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	status, ignore, rate := s.status, s.ignoreRange, s.rate
	s.mu.Unlock()
	select {
	case s.started <- r.Header.Get("Range"):
	default:
	}
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	if ignore {
		r.Header.Del("Range")
	}
	http.ServeContent(&faultWriter{ResponseWriter: w, s: s, rate: rate, req: r}, r, "fw.bin", time.Time{}, bytes.NewReader(s.data))
}

// faultWriter tracks the absolute file offset of the body being written and applies the
// configured cut and rate limit.
type faultWriter struct {
	http.ResponseWriter
	s    *fwServer
	req  *http.Request
	rate int
	off  int64
}

func (w *faultWriter) WriteHeader(code int) {
	if code == http.StatusPartialContent {
		cr := w.Header().Get("Content-Range")
		if rest, ok := strings.CutPrefix(cr, "bytes "); ok {
			start, _, _ := strings.Cut(rest, "-")
			w.off, _ = strconv.ParseInt(start, 10, 64)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *faultWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p
		if w.rate > 0 && len(chunk) > w.rate/20 {
			chunk = chunk[:max(1, w.rate/20)]
		}
		cut := w.takeCut(int64(len(chunk)))
		if cut >= 0 {
			chunk = chunk[:cut]
		}
		n, err := w.ResponseWriter.Write(chunk)
		written += n
		w.off += int64(n)
		if err != nil {
			return written, err
		}
		if cut >= 0 {
			w.ResponseWriter.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // close the connection mid-body
		}
		p = p[len(chunk):]
		if w.rate > 0 {
			w.ResponseWriter.(http.Flusher).Flush()
			select {
			case <-time.After(time.Duration(len(chunk)) * time.Second / time.Duration(w.rate)):
			case <-w.req.Context().Done():
				return written, w.req.Context().Err()
			}
		}
	}
	return written, nil
}

// takeCut returns how many of the next n bytes may be written before a cut, or -1.
func (w *faultWriter) takeCut(n int64) int64 {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	for i, c := range w.s.cuts {
		if c >= w.off && c < w.off+n {
			w.s.cuts = append(w.s.cuts[:i:i], w.s.cuts[i+1:]...)
			if w.s.cutStatus != 0 {
				w.s.status = w.s.cutStatus
			}
			return c - w.off
		}
	}
	return -1
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
