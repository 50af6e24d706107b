package resstore

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// onDir is a store on dir (kept by Close) served over HTTP.
func onDir(t *testing.T, dir string, opts ...Option) (*Store, *httptest.Server) {
	t.Helper()
	s, err := New(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs
}

// A second store on the same directory, given the first one's signing key and its objects and
// slots, serves what the first stored under the URLs the first issued (expired ones stay
// expired) and takes the PUT of a slot the first reserved.
func TestAdoptOnSameDirectory(t *testing.T) {
	dir := t.TempDir()
	s1, hs1 := onDir(t, dir)
	data := bytes.Repeat([]byte("resource "), 500)
	obj, err := s1.Put("P", "voice.mp3", "1", "AUDIO", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	slotKey, err := s1.Reserve("P/d", "log.txt", "", "FILE", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	slot, ok := s1.Slot(slotKey)
	if !ok || slot.Owner != "P/d" || slot.Name != "log.txt" {
		t.Fatalf("Slot = %+v %v", slot, ok)
	}
	now := time.Now()
	get := strings.TrimPrefix(s1.URL(hs1.URL, obj.Key, "GET", now.Add(time.Hour)), hs1.URL)
	expired := strings.TrimPrefix(s1.URL(hs1.URL, obj.Key, "GET", now.Add(-time.Second)), hs1.URL)
	put := strings.TrimPrefix(s1.URL(hs1.URL, slotKey, "PUT", now.Add(time.Hour)), hs1.URL)
	key := s1.SigningKey()
	s1.Close()
	if _, err := os.Stat(filepath.Join(dir, obj.Key)); err != nil {
		t.Fatalf("Close of a store on a given directory removed its file: %v", err)
	}

	s2, hs2 := onDir(t, dir, WithSigningKey(key))
	if err := s2.Adopt(obj); err != nil {
		t.Fatal(err)
	}
	if got, done, err := s2.AdoptSlot(slot); err != nil || done || got.Key != slotKey {
		t.Fatalf("AdoptSlot = %+v %v %v", got, done, err)
	}
	if code, body := do(t, "GET", hs2.URL+get, nil, nil); code != 200 || body != string(data) {
		t.Fatalf("GET with the first store's URL: %d", code)
	}
	if code, body := do(t, "GET", hs2.URL+expired, nil, nil); code != 403 || !strings.Contains(body, "expired") {
		t.Fatalf("expired URL: %d %q", code, body)
	}
	if code, body := do(t, "PUT", hs2.URL+put, []byte("late log"), nil); code != 200 {
		t.Fatalf("PUT to the adopted slot: %d %q", code, body)
	}
	if o, ok := s2.Get(slotKey); !ok || o.Size != 8 || o.MD5 != md5hex([]byte("late log")) {
		t.Fatalf("uploaded object %+v %v", o, ok)
	}
	// A store on the same directory with another key refuses them.
	s2.Close()
	s3, hs3 := onDir(t, dir)
	if err := s3.Adopt(obj); err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, "GET", hs3.URL+get, nil, nil); code != 403 || !strings.Contains(body, "signature does not match") {
		t.Fatalf("URL of another key: %d %q", code, body)
	}
}

// Adopt refuses records it cannot trust and keeps the bounds.
func TestAdoptRefusals(t *testing.T) {
	dir := t.TempDir()
	s1, _ := onDir(t, dir)
	a, _ := s1.Put("A", "a", "1", "", strings.NewReader("0123456789"))
	b, _ := s1.Put("A", "b", "1", "", strings.NewReader("abcdefghij"))
	s1.Close()

	s2, _ := onDir(t, dir, WithLimits(Limits{MaxPerOwner: 1}))
	for _, c := range []struct {
		name string
		obj  Object
		want string
	}{
		{"path key", Object{Key: "../../etc/passwd", Owner: "A", Name: "x", Size: 1, MD5: a.MD5}, "24 hex"},
		{"no file", Object{Key: "0123456789abcdef01234567", Owner: "A", Name: "x", Size: 1, MD5: a.MD5}, "missing"},
		{"size differs", Object{Key: a.Key, Owner: "A", Name: "a", Size: 11, MD5: a.MD5}, "has 10 bytes"},
		{"bad md5", Object{Key: a.Key, Owner: "A", Name: "a", Size: 10, MD5: "xyz"}, "md5"},
		{"no owner", Object{Key: a.Key, Name: "a", Size: 10, MD5: a.MD5}, "owner"},
	} {
		if err := s2.Adopt(c.obj); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if err := s2.Adopt(a); err != nil {
		t.Fatal(err)
	}
	if err := s2.Adopt(a); err == nil {
		t.Fatal("adopted twice")
	}
	if err := s2.Adopt(b); !errors.Is(err, ErrFull) {
		t.Fatalf("beyond MaxPerOwner: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, b.Key)); err != nil {
		t.Fatalf("the file of an object beyond the bounds was removed: %v", err)
	}
}

// A slot whose file is complete (the PUT finished, the caller had not saved the object) becomes
// the object; a file that is not the announced upload is refused.
func TestAdoptSlotWithCompleteFile(t *testing.T) {
	dir := t.TempDir()
	s1, _ := onDir(t, dir)
	data := []byte("the whole upload")
	k1, _ := s1.Reserve("P/d", "a.bin", "", "", int64(len(data)), md5hex(data))
	k2, _ := s1.Reserve("P/d", "b.bin", "", "", int64(len(data)), md5hex(data))
	sl1, _ := s1.Slot(k1)
	sl2, _ := s1.Slot(k2)
	s1.Close()
	os.WriteFile(filepath.Join(dir, k1), data, 0o644)
	os.WriteFile(filepath.Join(dir, k2), []byte("something else!"), 0o644)

	s2, _ := onDir(t, dir)
	o, done, err := s2.AdoptSlot(sl1)
	if err != nil || !done || o.Size != int64(len(data)) || o.MD5 != md5hex(data) {
		t.Fatalf("AdoptSlot of a complete upload = %+v %v %v", o, done, err)
	}
	if _, ok := s2.Get(k1); !ok {
		t.Fatal("not an object")
	}
	if _, ok := s2.Slot(k1); ok {
		t.Fatal("still a slot")
	}
	if _, _, err := s2.AdoptSlot(sl2); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not the upload announced") {
		t.Fatalf("AdoptSlot of a wrong file: %v", err)
	}
}

// Sweep removes cut-off uploads and files without an object, keeps the kept ones and files
// that are not the store's.
func TestSweep(t *testing.T) {
	dir := t.TempDir()
	s, _ := onDir(t, dir)
	obj, _ := s.Put("P", "a", "1", "", strings.NewReader("kept"))
	files := map[string]bool{ // name -> survives
		"0123456789abcdef01234567":      false, // no object
		"0123456789abcdef01234568.part": false, // cut off
		obj.Key + ".part":               false,
		"0123456789abcdef01234569":      true, // in keep
		"README":                        true, // not a key
	}
	for name := range files {
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644)
	}
	removed, err := s.Sweep(map[string]bool{"0123456789abcdef01234569": true})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(removed)
	var want []string
	for name, keep := range files {
		if !keep {
			want = append(want, name)
		}
	}
	sort.Strings(want)
	if strings.Join(removed, " ") != strings.Join(want, " ") {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for name, keep := range files {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != keep {
			t.Errorf("%s: present %v, want %v", name, err == nil, keep)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, obj.Key)); err != nil {
		t.Fatal("an object's file was removed")
	}
}

// OnChange reports every object and slot added or removed; a PUT with the wrong size is refused
// without losing the slot, and leaves no file behind.
func TestOnChangeAndRefusedPut(t *testing.T) {
	dir := t.TempDir()
	s, hs := onDir(t, dir)
	var mu sync.Mutex
	var keys []string
	s.OnChange(func(k string) { mu.Lock(); keys = append(keys, k); mu.Unlock() })
	obj, _ := s.Put("P", "a", "1", "", strings.NewReader("x"))
	slot, _ := s.Reserve("P/d", "b", "", "", 5, "")
	put := s.URL(hs.URL, slot, "PUT", time.Now().Add(time.Minute))
	if code, body := do(t, "PUT", put, []byte("abc"), nil); code != 400 || !strings.Contains(body, "body has 3 bytes, announced 5") {
		t.Fatalf("short PUT: %d %q", code, body)
	}
	if _, ok := s.Slot(slot); !ok {
		t.Fatal("a refused PUT closed the slot")
	}
	if code, _ := do(t, "PUT", put, []byte("abcde"), nil); code != 200 {
		t.Fatalf("retry: %d", code)
	}
	s.Delete(obj.Key)
	mu.Lock()
	got := strings.Join(keys, " ")
	mu.Unlock()
	if want := strings.Join([]string{obj.Key, slot, slot, obj.Key}, " "); got != want {
		t.Fatalf("OnChange keys %q, want %q", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != slot {
		t.Fatalf("files left: %v", entries)
	}
}

func TestSigningKeySize(t *testing.T) {
	if _, err := New(t.TempDir(), WithSigningKey([]byte("short"))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short key: %v", err)
	}
}
