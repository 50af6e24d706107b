package resstore

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func newStore(t *testing.T, opts ...Option) (*Store, *httptest.Server) {
	t.Helper()
	return onDir(t, "", opts...)
}

func do(t *testing.T, method, url string, body []byte, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func TestDownloadSignedURL(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, hs := newStore(t, WithClock(func() time.Time { return now }))
	data := bytes.Repeat([]byte("abc"), 1000)
	obj, err := s.Put("P", "voice.mp3", "1.0", "AUDIO", bytes.NewReader(data))
	if err != nil || obj.Size != 3000 || obj.MD5 != md5hex(data) {
		t.Fatalf("%+v %v", obj, err)
	}
	u := s.URL(hs.URL, obj.Key, "GET", now.Add(time.Minute))
	if strings.Count(strings.TrimPrefix(u, hs.URL), "/") != 1 {
		t.Fatalf("URL %s has more than one path segment", u)
	}
	if code, body := do(t, "GET", u, nil, nil); code != 200 || body != string(data) {
		t.Fatalf("get: %d", code)
	}
	if code, body := do(t, "GET", u, nil, map[string]string{"Range": "bytes=2990-"}); code != 206 || body != string(data[2990:]) {
		t.Fatalf("range: %d %q", code, body)
	}
	for _, c := range []struct {
		url  string
		code int
		msg  string
	}{
		{s.URL(hs.URL, obj.Key, "GET", now.Add(-time.Second)), 403, "URL expired"},
		{strings.Replace(u, "q-signature=", "q-signature=0", 1), 403, "signature does not match"},
		{hs.URL + "/" + obj.Key, 403, "no signature"},
		{s.URL(hs.URL, obj.Key, "PUT", now.Add(time.Minute)), 403, "signed for PUT"},
		{s.URL(hs.URL, "nosuchkey", "GET", now.Add(time.Minute)), 404, "no such object"},
	} {
		if code, body := do(t, "GET", c.url, nil, nil); code != c.code || !strings.Contains(body, c.msg) {
			t.Errorf("%s: %d %q, want %d %q", c.url, code, body, c.code, c.msg)
		}
	}
}

func TestUploadSlot(t *testing.T) {
	s, hs := newStore(t)
	data := []byte("device log archive")
	var got []Object
	s.OnUploaded(func(o Object) { got = append(got, o) })
	key, err := s.Reserve("P/d", "log.tgz", "", "FILE", int64(len(data)), md5hex(data))
	if err != nil {
		t.Fatal(err)
	}
	put := s.URL(hs.URL, key, "PUT", time.Now().Add(time.Minute))
	if code, body := do(t, "PUT", put, []byte("other bytes......."), nil); code != 400 || !strings.Contains(body, "MD5") {
		t.Fatalf("wrong body: %d %q", code, body)
	}
	if code, body := do(t, "PUT", put, append(data, 'x'), nil); code != 413 {
		t.Fatalf("oversize: %d %q", code, body)
	}
	if code, body := do(t, "PUT", put, data, map[string]string{"Content-MD5": ContentMD5(md5hex([]byte("x")))}); code != 400 || !strings.Contains(body, "Content-MD5") {
		t.Fatalf("bad Content-MD5: %d %q", code, body)
	}
	if code, body := do(t, "PUT", put, data, map[string]string{"Content-MD5": ContentMD5(md5hex(data))}); code != 200 {
		t.Fatalf("put: %d %q", code, body)
	}
	if len(got) != 1 || got[0].Owner != "P/d" || got[0].MD5 != md5hex(data) {
		t.Fatalf("uploaded %+v", got)
	}
	if code, _ := do(t, "PUT", put, data, nil); code != 404 {
		t.Fatalf("second put: %d", code)
	}
	f, _, err := s.Open(key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != string(data) {
		t.Fatalf("stored %q", b)
	}
}

func TestLimits(t *testing.T) {
	s, _ := newStore(t, WithLimits(Limits{MaxPerOwner: 2, MaxObjectSize: 10, MaxBytes: 25, MaxPendingSlots: 3}))
	for i := range 2 {
		if _, err := s.Put("A", "f", "", "", strings.NewReader("0123456789")); err != nil {
			t.Fatal(i, err)
		}
	}
	if _, err := s.Put("A", "f", "", "", strings.NewReader("x")); !errors.Is(err, ErrFull) {
		t.Fatalf("per owner: %v", err)
	}
	if _, err := s.Put("B", "f", "", "", strings.NewReader("01234567890")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("object size: %v", err)
	}
	if _, err := s.Put("B", "f", "", "", strings.NewReader("0123456")); !errors.Is(err, ErrFull) {
		t.Fatalf("total bytes: %v", err)
	}
	if _, err := s.Reserve("C", "f", "", "", 11, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("slot size: %v", err)
	}
	if _, err := s.Reserve("C", "f", "", "", 1, "zz"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad md5: %v", err)
	}
	for i := range 3 {
		if _, err := s.Reserve("D", "f", "", "", 1, ""); i < 2 && err != nil || i == 2 && !errors.Is(err, ErrFull) {
			t.Fatalf("slot %d: %v", i, err)
		}
	}
}

func TestCutAt(t *testing.T) {
	s, hs := newStore(t)
	data := bytes.Repeat([]byte{7}, 100_000)
	obj, _ := s.Put("P", "f", "1", "FILE", bytes.NewReader(data))
	s.CutAt(obj.Key, 40_000)
	resp, err := http.Get(s.URL(hs.URL, obj.Key, "GET", time.Now().Add(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(b) != 40_000 {
		t.Fatalf("read %d bytes, err %v; want a cut at 40000", len(b), err)
	}
	if code, body := do(t, "GET", s.URL(hs.URL, obj.Key, "GET", time.Now().Add(time.Minute)), nil, map[string]string{"Range": "bytes=40000-"}); code != 206 || len(body) != 60_000 {
		t.Fatalf("resume: %d %d", code, len(body))
	}
}

// DeleteOwner removes one owner's objects and open slots, files included, and nobody else's.
func TestDeleteOwner(t *testing.T) {
	s, hs := newStore(t)
	var changed []string
	s.OnChange(func(key string) { changed = append(changed, key) })
	dev, err := s.Put("P/d", "a.bin", "1", "FILE", strings.NewReader("device upload"))
	if err != nil {
		t.Fatal(err)
	}
	slot, err := s.Reserve("P/d", "b.bin", "", "FILE", 4, md5hex([]byte("abcd")))
	if err != nil {
		t.Fatal(err)
	}
	lib, err := s.Put("P", "lib.bin", "1", "FILE", strings.NewReader("product library"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Put("P/e", "c.bin", "1", "FILE", strings.NewReader("another device"))
	if err != nil {
		t.Fatal(err)
	}
	changed = nil
	n, err := s.DeleteOwner("P/d")
	if err != nil || n != 2 {
		t.Fatalf("DeleteOwner: %d, %v; want 2 removed", n, err)
	}
	if len(changed) != 2 {
		t.Errorf("OnChange saw %q, want the two removed keys", changed)
	}
	if _, ok := s.Get(dev.Key); ok {
		t.Error("the owner's object is still listed")
	}
	if _, err := os.Stat(dev.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the owner's file is still on disk: %v", err)
	}
	if code, _ := do(t, "PUT", s.URL(hs.URL, slot, "PUT", time.Now().Add(time.Minute)), []byte("abcd"), nil); code != 404 {
		t.Errorf("PUT into the owner's removed slot: %d, want 404", code)
	}
	for _, o := range []Object{lib, other} {
		if _, ok := s.Get(o.Key); !ok {
			t.Errorf("%s (owner %s) was removed too", o.Key, o.Owner)
		}
	}
	if n, err := s.DeleteOwner("P/d"); n != 0 || err != nil {
		t.Errorf("second DeleteOwner: %d, %v; want 0, nil", n, err)
	}
}
