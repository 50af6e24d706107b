package firmware

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzServe: any request path, query and Range header get a definite status, never a panic; the
// log keeps the record clipped; only a valid signed URL of the stored object serves its bytes.
func FuzzServe(f *testing.F) {
	s, err := NewStore(f.TempDir(), WithRequestLog(8))
	if err != nil {
		f.Fatal(err)
	}
	data := payload(1000)
	img, err := s.Put("PRODUCT001", "1.0.0", bytes.NewReader(data))
	if err != nil {
		f.Fatal(err)
	}
	valid := s.SignedPath(img.ID, time.Now().Add(time.Hour))
	f.Add(valid, "")
	f.Add(valid, "bytes=10-1000")
	f.Add(valid, "bytes=5000-")
	f.Add("/"+img.ID+"?expires=1&sign=x", "bytes=0-0")
	f.Add("/PRODUCT001_1.0.0_?sign=", "")
	f.Add("/a/b/c", "bytes=-1")
	f.Add("/%2F_"+img.ID, "")
	h := s.Handler()
	f.Fuzz(func(t *testing.T, target, rng string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \t\r\n#") {
			return // not a request line a client can send
		}
		req, err := http.NewRequest(http.MethodGet, "http://firmware.test"+target, nil)
		if err != nil {
			return
		}
		req.Header.Set("Range", rng)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusPartialContent:
			if !strings.Contains(target, "sign=") {
				t.Fatalf("%s served without a signature", target)
			}
			if rec.Code == http.StatusOK && !bytes.Equal(rec.Body.Bytes(), data) {
				t.Fatalf("%s: 200 with %d bytes that are not the image", target, rec.Body.Len())
			}
		case http.StatusForbidden, http.StatusNotFound, http.StatusRequestedRangeNotSatisfiable:
		default:
			t.Fatalf("%s (Range %q): status %d", target, rng, rec.Code)
		}
		for _, r := range s.Requests() {
			if len(r.ID) > MaxRecordedField || len(r.Range) > MaxRecordedField {
				t.Fatalf("record not clipped: %d/%d bytes", len(r.ID), len(r.Range))
			}
		}
		if n := len(s.Requests()); n > 8 {
			t.Fatalf("log holds %d records, bound 8", n)
		}
	})
}
