package resstore

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Handler serves GET, HEAD and PUT on /{key}.
func (s *Store) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Store) serve(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, "/")
	if key == "" || strings.Contains(key, "/") {
		http.Error(w, "no such object", http.StatusNotFound)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.serveGet(w, r, key)
	case http.MethodPut:
		s.servePut(w, r, key)
	default:
		http.Error(w, "method not allowed (GET, HEAD or PUT)", http.StatusMethodNotAllowed)
	}
}

func (s *Store) serveGet(w http.ResponseWriter, r *http.Request, key string) {
	f, obj, err := s.Open(key)
	if err != nil {
		http.Error(w, "no such object", http.StatusNotFound)
		return
	}
	defer f.Close()
	if why := s.checkSignature(key, http.MethodGet, r.URL.Query()); why != "" {
		http.Error(w, why, http.StatusForbidden)
		return
	}
	if r.Method == http.MethodGet {
		s.recordRange(key, r.Header.Get("Range"))
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+obj.MD5+`"`)
	http.ServeContent(&cutWriter{ResponseWriter: w, s: s, key: key, req: r}, r, obj.Name, time.Time{}, f)
}

func (s *Store) servePut(w http.ResponseWriter, r *http.Request, key string) {
	s.mu.Lock()
	sl := s.slots[key]
	s.mu.Unlock()
	if sl == nil {
		http.Error(w, "no such upload slot", http.StatusNotFound)
		return
	}
	if why := s.checkSignature(key, http.MethodPut, r.URL.Query()); why != "" {
		http.Error(w, why, http.StatusForbidden)
		return
	}
	s.mu.Lock()
	if sl.used {
		s.mu.Unlock()
		http.Error(w, "upload slot already used", http.StatusConflict)
		return
	}
	sl.used = true
	s.mu.Unlock()
	release := func() {
		s.mu.Lock()
		sl.used = false
		s.mu.Unlock()
	}
	if cm := r.Header.Get("Content-MD5"); cm != "" {
		b, err := base64.StdEncoding.DecodeString(cm)
		if err != nil || (sl.obj.MD5 != "" && hex.EncodeToString(b) != sl.obj.MD5) {
			release()
			http.Error(w, fmt.Sprintf("Content-MD5 %q does not match the announced MD5 %s", clip(cm), sl.obj.MD5), http.StatusBadRequest)
			return
		}
		if sl.obj.MD5 == "" {
			sl.obj.MD5 = hex.EncodeToString(b)
		}
	}
	limit := sl.obj.Size
	if limit == 0 {
		limit = s.lim.MaxObjectSize
	}
	if r.ContentLength > limit {
		release()
		http.Error(w, fmt.Sprintf("body of %d bytes is larger than the allowed %d", r.ContentLength, limit), http.StatusRequestEntityTooLarge)
		return
	}
	obj := sl.obj
	err := s.write(&obj, http.MaxBytesReader(w, r.Body, limit), limit, sl.obj.Size, sl.obj.MD5)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		release()
		http.Error(w, fmt.Sprintf("body is larger than the allowed %d bytes", limit), http.StatusRequestEntityTooLarge)
		return
	case errors.Is(err, ErrFull):
		release()
		http.Error(w, err.Error(), http.StatusInsufficientStorage)
		return
	case err != nil:
		release()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	delete(s.slots, key)
	fn := s.uploaded
	s.mu.Unlock()
	s.changed(key) // the slot is now an object
	w.Header().Set("ETag", `"`+obj.MD5+`"`)
	w.WriteHeader(http.StatusOK)
	if fn != nil {
		fn(obj)
	}
}

// cutWriter aborts the response once it has written up to a configured offset.
type cutWriter struct {
	http.ResponseWriter
	s     *Store
	key   string
	req   *http.Request
	start int64
	sent  int64
	init  bool
	cut   int64 // absolute offset to cut at, -1 none
	rate  int64 // bytes per second, 0 unlimited
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if !c.init {
		c.init = true
		c.cut = -1
		if cr := c.Header().Get("Content-Range"); cr != "" {
			fmt.Sscanf(cr, "bytes %d-", &c.start)
		}
		c.s.mu.Lock()
		c.rate = c.s.rates[c.key]
		offs := c.s.cuts[c.key]
		for i, off := range offs {
			if off > c.start {
				c.cut = off
				c.s.cuts[c.key] = append(offs[:i:i], offs[i+1:]...)
				break
			}
		}
		c.s.mu.Unlock()
	}
	if c.cut >= 0 && c.start+c.sent+int64(len(p)) >= c.cut {
		n := int(c.cut - c.start - c.sent)
		if n > 0 {
			m, _ := c.ResponseWriter.Write(p[:n])
			c.sent += int64(m)
		}
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // closes the connection mid-body
	}
	if c.rate > 0 {
		return c.throttled(p)
	}
	n, err := c.ResponseWriter.Write(p)
	c.sent += int64(n)
	return n, err
}

// throttled writes p in small chunks, sleeping to keep about c.rate bytes per second; it stops
// when the client has gone.
func (c *cutWriter) throttled(p []byte) (int, error) {
	written := 0
	chunk := int(max(c.rate/20, 512))
	for written < len(p) {
		n := min(chunk, len(p)-written)
		m, err := c.ResponseWriter.Write(p[written : written+n])
		written += m
		c.sent += int64(m)
		if err != nil {
			return written, err
		}
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case <-c.req.Context().Done():
			return written, c.req.Context().Err()
		case <-time.After(time.Duration(int64(n) * int64(time.Second) / c.rate)):
		}
	}
	return written, nil
}

var _ io.Writer = (*cutWriter)(nil)
