package firmware

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newTestStore(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := NewStore(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func serve(t *testing.T, s *Store, useTLS bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // aborted handlers log otherwise
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func get(t *testing.T, c *http.Client, url, rng string) (*http.Response, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestPutStreamsAndDescribes(t *testing.T) {
	s := newTestStore(t)
	data := payload(300_000)
	img, err := s.Put("PID0000001", "1.0.1", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	if img.Size != int64(len(data)) || img.MD5 != hex.EncodeToString(sum[:]) || img.Version != "1.0.1" || img.ID == "" {
		t.Errorf("image = %+v", img)
	}
	if got, ok := s.Lookup("PID0000001", "1.0.1"); !ok || got.ID != img.ID {
		t.Errorf("Lookup = %+v, %v", got, ok)
	}
	again, _ := s.Put("PID0000001", "1.0.1", bytes.NewReader(data[:10]))
	if got, _ := s.Lookup("PID0000001", "1.0.1"); got.ID != again.ID {
		t.Error("re-upload of a version does not replace it for Lookup")
	}
}

func TestPutRejectsBadInput(t *testing.T) {
	s := newTestStore(t)
	for _, tc := range []struct {
		pid, version string
		r            io.Reader
		want         string
	}{
		{"", "1", strings.NewReader("x"), "product id"},
		{"P", "", strings.NewReader("x"), "version"},
		{"P", strings.Repeat("v", 33), strings.NewReader("x"), "version"},
		{"P", "1", strings.NewReader(""), "empty"},
		{"P", "1", nil, "nil reader"},
	} {
		if _, err := s.Put(tc.pid, tc.version, tc.r); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Put(%q,%q): err = %v, want %q", tc.pid, tc.version, err, tc.want)
		}
	}
}

func TestServeFullAndRange(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		s := newTestStore(t)
		srv := serve(t, s, useTLS)
		data := payload(100_000)
		img, _ := s.Put("P", "2", bytes.NewReader(data))
		url := s.URL(srv.URL, img.ID, time.Now().Add(time.Hour))
		resp, body, err := get(t, srv.Client(), url, "")
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("tls=%v full GET: %v %v %d bytes", useTLS, err, resp.Status, len(body))
		}
		resp, body, err = get(t, srv.Client(), url, "bytes=40000-")
		if err != nil || resp.StatusCode != 206 || !bytes.Equal(body, data[40000:]) {
			t.Fatalf("tls=%v ranged GET: %v %v %d bytes", useTLS, err, resp.Status, len(body))
		}
		if cr := resp.Header.Get("Content-Range"); cr != "bytes 40000-99999/100000" {
			t.Errorf("Content-Range = %q", cr)
		}
	}
}

func TestServeRefusesBadURLs(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().Unix())
	s := newTestStore(t, WithClock(func() time.Time { return time.Unix(now.Load(), 0) }))
	srv := serve(t, s, false)
	img, _ := s.Put("P", "3", bytes.NewReader(payload(10)))
	valid := s.URL(srv.URL, img.ID, time.Unix(now.Load()+60, 0))
	for name, tc := range map[string]struct {
		url    string
		status int
	}{
		"unknown id":      {s.URL(srv.URL, "ffffffffffffffff", time.Unix(now.Load()+60, 0)), 404},
		"no signature":    {srv.URL + DefaultPrefix + s.ObjectName(img.ID), 403},
		"other object":    {strings.Replace(valid, "P_3_", "P_4_", 1), 404},
		"bad signature":   {strings.Replace(valid, "sign=", "sign=00", 1), 403},
		"other image":     {strings.Replace(valid, img.ID, "0000000000000000", 1), 404},
		"past expiry":     {s.URL(srv.URL, img.ID, time.Unix(now.Load()-1, 0)), 403},
		"tampered expiry": {strings.Replace(valid, "expires=", "expires=9", 1), 403},
	} {
		resp, _, err := get(t, srv.Client(), tc.url, "")
		if err != nil || resp.StatusCode != tc.status {
			t.Errorf("%s: %v, status %v, want %d", name, err, resp.Status, tc.status)
		}
	}
	now.Add(61) // the valid URL expires
	if resp, _, _ := get(t, srv.Client(), valid, ""); resp.StatusCode != 403 {
		t.Errorf("expired URL answered %s", resp.Status)
	}
	s.Delete(img.ID)
	now.Add(-61)
	if resp, _, _ := get(t, srv.Client(), valid, ""); resp.StatusCode != 404 {
		t.Errorf("deleted image answered %s", resp.Status)
	}
}

func TestCutAtClosesConnectionAtExactOffsets(t *testing.T) {
	s := newTestStore(t)
	srv := serve(t, s, false)
	data := payload(200_000)
	img, _ := s.Put("P", "4", bytes.NewReader(data))
	s.CutAt(img.ID, 1000, 150_000)
	url := s.URL(srv.URL, img.ID, time.Now().Add(time.Hour))

	_, body, err := get(t, srv.Client(), url, "")
	if err == nil || len(body) != 1000 || !bytes.Equal(body, data[:1000]) {
		t.Fatalf("first GET: err %v, %d bytes; want an error after exactly 1000", err, len(body))
	}
	_, body, err = get(t, srv.Client(), url, "bytes=1000-")
	if err == nil || len(body) != 149_000 {
		t.Fatalf("second GET: err %v, %d bytes; want an error after 149000", err, len(body))
	}
	_, body, err = get(t, srv.Client(), url, "bytes=150000-")
	if err != nil || !bytes.Equal(body, data[150_000:]) {
		t.Fatalf("third GET: %v, %d bytes", err, len(body))
	}
	reqs := s.Requests()
	if len(reqs) != 3 || !reqs[0].Cut || !reqs[1].Cut || reqs[2].Cut || reqs[1].Start != 1000 || reqs[1].Sent != 149_000 {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestSetRateStillDeliversEverything(t *testing.T) {
	s := newTestStore(t)
	srv := serve(t, s, false)
	data := payload(20_000)
	img, _ := s.Put("P", "5", bytes.NewReader(data))
	s.SetRate(img.ID, 200_000)
	_, body, err := get(t, srv.Client(), s.URL(srv.URL, img.ID, time.Now().Add(time.Hour)), "")
	if err != nil || !bytes.Equal(body, data) {
		t.Fatalf("throttled GET: %v, %d bytes", err, len(body))
	}
}

func TestCloseRemovesOwnDirectory(t *testing.T) {
	s, err := NewStore("")
	if err != nil {
		t.Fatal(err)
	}
	img, _ := s.Put("P", "1", strings.NewReader("abc"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get(img.ID); ok {
		t.Error("image still listed after Close")
	}
	if _, err := s.Put("P", "1", strings.NewReader("abc")); err == nil {
		t.Error("Put after Close succeeded")
	}
}
