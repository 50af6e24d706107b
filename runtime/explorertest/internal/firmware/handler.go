package firmware

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Handler serves GET/HEAD {prefix}{object}?expires=&sign= (object as in ObjectName; the bare
// id is accepted too) with Range support (via http.ServeContent): 404 for an unknown object,
// 403 for a missing, bad or expired signature, 405 for other methods. Faults set with CutAt
// and SetRate apply.
func (s *Store) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Store) serve(w http.ResponseWriter, r *http.Request) {
	rec := &Request{Range: r.Header.Get("Range")}
	if s.onReq != nil {
		defer func() { // registered first, so it runs last: the status is final
			s.mu.Lock()
			done := *rec
			s.mu.Unlock()
			s.onReq(done)
		}()
	}
	// The escaped path: an object name escapes "/" in a version, which must not split it.
	object, ok := strings.CutPrefix(r.URL.EscapedPath(), s.prefix)
	if !ok || object == "" || strings.Contains(object, "/") {
		rec.ID = object
		rec.Status = http.StatusNotFound
		s.record(rec)
		http.Error(w, "no such firmware", http.StatusNotFound)
		return
	}
	id, known := s.objectID(object)
	rec.ID = id
	if !known {
		rec.ID = object
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rec.Status = http.StatusMethodNotAllowed
		s.record(rec)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	img, ok := s.Get(id)
	if !known || !ok {
		rec.Status = http.StatusNotFound
		s.record(rec)
		http.Error(w, "no such firmware", http.StatusNotFound)
		return
	}
	if why := s.checkSignature(id, r.URL.Query()); why != "" {
		rec.Status = http.StatusForbidden
		s.record(rec)
		http.Error(w, why, http.StatusForbidden)
		return
	}
	f, err := os.Open(img.path)
	if err != nil {
		rec.Status = http.StatusNotFound
		s.record(rec)
		http.Error(w, "no such firmware", http.StatusNotFound)
		return
	}
	defer f.Close()
	fw := &faultWriter{ResponseWriter: w, s: s, id: id, rate: s.rate(id), req: r, rec: rec}
	s.record(rec)
	defer s.update(rec, func(rec *Request) { // runs on the fault panic too
		if rec.Status == 0 {
			rec.Status = http.StatusOK
		}
	})
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(fw, r, img.Version+".bin", time.Time{}, f)
}

// faultWriter tracks the absolute file offset of the body and applies cut and rate faults.
type faultWriter struct {
	http.ResponseWriter
	s    *Store
	id   string
	rate int64
	req  *http.Request
	rec  *Request // logged; changed only through s.update
	off  int64

	wroteHeader bool
}

func (w *faultWriter) WriteHeader(code int) {
	if code == http.StatusPartialContent {
		if rest, ok := strings.CutPrefix(w.Header().Get("Content-Range"), "bytes "); ok {
			start, _, _ := strings.Cut(rest, "-")
			w.off, _ = strconv.ParseInt(start, 10, 64)
		}
	}
	w.s.update(w.rec, func(r *Request) { r.Status, r.Start = code, w.off })
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *faultWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	rc := http.NewResponseController(w.ResponseWriter)
	written := 0
	for len(p) > 0 {
		chunk := p
		if w.rate > 0 {
			// Small slices keep the rate smooth (about 20 writes a second).
			chunk = chunk[:min(int64(len(chunk)), max(1, w.rate/20))]
		}
		cut := w.s.takeCut(w.id, w.off, int64(len(chunk)))
		if cut >= 0 {
			chunk = chunk[:cut]
		}
		n, err := w.ResponseWriter.Write(chunk)
		written += n
		w.off += int64(n)
		w.s.update(w.rec, func(r *Request) { r.Sent += int64(n) })
		if err != nil {
			return written, err
		}
		if cut >= 0 {
			w.s.update(w.rec, func(r *Request) { r.Cut = true })
			rc.Flush()
			panic(http.ErrAbortHandler) // closes the connection mid-body
		}
		p = p[len(chunk):]
		if w.rate > 0 {
			rc.Flush()
			t := time.NewTimer(time.Duration(int64(len(chunk)) * int64(time.Second) / w.rate))
			select {
			case <-t.C:
			case <-w.req.Context().Done():
				t.Stop()
				return written, w.req.Context().Err()
			}
		}
	}
	return written, nil
}
