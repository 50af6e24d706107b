// Package resstore is the test platform's object store for resources (files other than
// firmware, docs/PROTOCOL.md §7.5): objects on disk (never whole in memory), downloaded and
// uploaded through presigned, expiring URLs shaped like the real cloud's object storage URLs:
// {base}/{key}?sign-query, one path segment.
//
// GET and HEAD serve an object with Range support; PUT fills an upload slot reserved with
// Reserve (size and MD5 announced up front: the body must match both, a Content-MD5 header is
// checked when sent). Everything is bounded: objects in all and per owner, bytes on disk, size
// of one object, open upload slots. Faults for resume tests: CutAt closes a download after a
// given byte offset.
//
// Errors on the wire are plain text with an HTTP status: 403 bad or expired signature (the text
// says which), 404 unknown object, 405 method, 409 slot already used, 413 body over the
// announced size, 400 MD5 or size mismatch, 507 store full.
package resstore

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors of the store.
var (
	ErrNotFound = errors.New("resstore: no such object")
	ErrInvalid  = errors.New("resstore: invalid object")
	ErrFull     = errors.New("resstore: store full")
	ErrClosed   = errors.New("resstore: store closed")
)

// Object is one stored file.
type Object struct {
	Key     string    // opaque id, the URL path segment
	Owner   string    // who it belongs to, e.g. "PID" (cloud library) or "PID/dn" (device upload)
	Name    string    // resource name
	Version string    // resource version (may be empty for device uploads of the $resource API)
	Type    string    // resource type (FILE, AUDIO, ...)
	Size    int64     // bytes
	MD5     string    // lower-case hex
	Created time.Time // when stored
	path    string
}

// Limits bound what the store keeps.
type Limits struct {
	MaxObjects      int   // objects in all (default 10000)
	MaxPerOwner     int   // objects per owner (default 1000, the platform's per-device limit)
	MaxBytes        int64 // bytes on disk in all (default 1 GiB, the platform's per-account limit)
	MaxObjectSize   int64 // bytes of one object (default 256 MiB)
	MaxPendingSlots int   // reserved, not yet filled upload slots (default 1000)
}

func (l *Limits) fill() {
	if l.MaxObjects <= 0 {
		l.MaxObjects = 10000
	}
	if l.MaxPerOwner <= 0 {
		l.MaxPerOwner = 1000
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 1 << 30
	}
	if l.MaxObjectSize <= 0 {
		l.MaxObjectSize = 256 << 20
	}
	if l.MaxPendingSlots <= 0 {
		l.MaxPendingSlots = 1000
	}
}

// slot is a reserved upload.
type slot struct {
	obj  Object // without path; Size and MD5 as announced
	used bool
}

// Store holds objects. Create it with New.
type Store struct {
	dir    string
	ownDir bool
	key    []byte
	now    func() time.Time
	lim    Limits

	mu       sync.Mutex
	closed   bool
	objects  map[string]*Object
	slots    map[string]*slot
	bytes    int64
	cuts     map[string][]int64
	rates    map[string]int64
	ranges   map[string][]string // Range headers of GETs per key (bounded)
	uploaded func(Object)
	onChange func(key string)
}

// Option configures New.
type Option func(*Store)

// WithClock sets the time source of URL expiry (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithLimits sets the bounds (zero fields keep their defaults).
func WithLimits(l Limits) Option { return func(s *Store) { s.lim = l } }

// SigningKeySize is the length of the URL-signing key.
const SigningKeySize = 32

// WithSigningKey signs URLs with key (SigningKeySize bytes) instead of a random key, so URLs
// issued by an earlier store with the same key stay valid until they expire.
func WithSigningKey(key []byte) Option {
	return func(s *Store) { s.key = append([]byte(nil), key...) }
}

// New keeps objects in dir, or in a fresh temporary directory removed by Close when dir is "".
func New(dir string, opts ...Option) (*Store, error) {
	s := &Store{dir: dir, now: time.Now, objects: map[string]*Object{}, slots: map[string]*slot{}, cuts: map[string][]int64{}, rates: map[string]int64{}, ranges: map[string][]string{}}
	for _, o := range opts {
		o(s)
	}
	s.lim.fill()
	switch {
	case s.key == nil:
		s.key = make([]byte, SigningKeySize)
		if _, err := rand.Read(s.key); err != nil {
			return nil, fmt.Errorf("resstore: signing key: %w", err)
		}
	case len(s.key) != SigningKeySize:
		return nil, fmt.Errorf("%w: signing key has %d bytes, want %d", ErrInvalid, len(s.key), SigningKeySize)
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "explorertest-resources-")
		if err != nil {
			return nil, fmt.Errorf("resstore: %w", err)
		}
		s.dir, s.ownDir = d, true
	} else if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("resstore: %w", err)
	}
	return s, nil
}

// Close forgets every object and removes the directory if the store created it.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.objects, s.slots = map[string]*Object{}, map[string]*slot{}
	if s.ownDir {
		return os.RemoveAll(s.dir)
	}
	return nil
}

// OnUploaded sets fn to be called (on the HTTP goroutine) after a PUT filled a slot.
func (s *Store) OnUploaded(fn func(Object)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uploaded = fn
}

// OnChange sets fn to be called, without the store's lock, after an object or slot was added
// or removed (key is the object's or slot's key; Get and Slot tell what it is now). Adopt and
// AdoptSlot do not call it: they put back what the caller already has.
func (s *Store) OnChange(fn func(key string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = fn
}

func (s *Store) changed(key string) {
	s.mu.Lock()
	fn := s.onChange
	s.mu.Unlock()
	if fn != nil {
		fn(key)
	}
}

// SigningKey returns the URL-signing key (to be given back with WithSigningKey).
func (s *Store) SigningKey() []byte { return append([]byte(nil), s.key...) }

func newKey() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// checkNewLocked checks the count bounds for one more object of owner.
func (s *Store) checkNewLocked(owner string, size int64) error {
	if s.closed {
		return ErrClosed
	}
	n := 0
	for _, o := range s.objects {
		if o.Owner == owner {
			n++
		}
	}
	for _, sl := range s.slots {
		if !sl.used && sl.obj.Owner == owner {
			n++
		}
	}
	switch {
	case len(s.objects)+len(s.slots) >= s.lim.MaxObjects:
		return fmt.Errorf("%w: %d objects, the limit is %d", ErrFull, len(s.objects)+len(s.slots), s.lim.MaxObjects)
	case n >= s.lim.MaxPerOwner:
		return fmt.Errorf("%w: %s has %d objects, the limit is %d", ErrFull, owner, n, s.lim.MaxPerOwner)
	case size > s.lim.MaxObjectSize:
		return fmt.Errorf("%w: %d bytes, one object may have at most %d", ErrInvalid, size, s.lim.MaxObjectSize)
	case s.bytes+size > s.lim.MaxBytes:
		return fmt.Errorf("%w: %d bytes stored, %d more would pass the limit of %d", ErrFull, s.bytes, size, s.lim.MaxBytes)
	}
	return nil
}

// Put stores what r yields (streamed to disk while hashing, at most MaxObjectSize bytes).
func (s *Store) Put(owner, name, version, typ string, r io.Reader) (Object, error) {
	if owner == "" || name == "" {
		return Object{}, fmt.Errorf("%w: owner and name are required", ErrInvalid)
	}
	s.mu.Lock()
	err := s.checkNewLocked(owner, 0)
	s.mu.Unlock()
	if err != nil {
		return Object{}, err
	}
	key := newKey()
	obj := Object{Key: key, Owner: owner, Name: name, Version: version, Type: typ}
	if err := s.write(&obj, r, s.lim.MaxObjectSize, 0, ""); err != nil {
		return Object{}, err
	}
	s.changed(key)
	return obj, nil
}

// write streams r into {key}.part (at most max bytes; wantSize and wantMD5 checked when set),
// renames it to {key} once verified and records the object.
func (s *Store) write(obj *Object, r io.Reader, max, wantSize int64, wantMD5 string) error {
	path := filepath.Join(s.dir, obj.Key)
	part := path + partSuffix
	f, err := os.OpenFile(part, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("resstore: %w", err)
	}
	h := md5.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(r, max+1), make([]byte, 64<<10))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	sum := hex.EncodeToString(h.Sum(nil))
	switch {
	case err != nil:
		err = fmt.Errorf("resstore: storing %s: %w", obj.Name, err)
	case n > max:
		err = fmt.Errorf("%w: more than %d bytes", ErrInvalid, max)
	case n == 0:
		err = fmt.Errorf("%w: empty body", ErrInvalid)
	case wantSize > 0 && n != wantSize:
		err = fmt.Errorf("%w: body has %d bytes, announced %d", ErrInvalid, n, wantSize)
	case wantMD5 != "" && !strings.EqualFold(wantMD5, sum):
		err = fmt.Errorf("%w: MD5 of the body is %s, announced %s", ErrInvalid, sum, strings.ToLower(wantMD5))
	}
	if err != nil {
		os.Remove(part)
		return err
	}
	obj.Size, obj.MD5, obj.Created, obj.path = n, sum, s.now(), path
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkNewLocked(obj.Owner, n); err != nil {
		os.Remove(part)
		return err
	}
	if err := os.Rename(part, path); err != nil {
		os.Remove(part)
		return fmt.Errorf("resstore: storing %s: %w", obj.Name, err)
	}
	s.objects[obj.Key] = obj
	s.bytes += n
	return nil
}

// partSuffix names a file still being written.
const partSuffix = ".part"

// Reserve creates an upload slot for an object of size bytes with the given MD5 (hex) and
// returns its key; a PUT to its signed URL fills it. Size 0 means not announced (any size up
// to MaxObjectSize), md5hex "" likewise (a Content-MD5 header is still checked).
func (s *Store) Reserve(owner, name, version, typ string, size int64, md5hex string) (string, error) {
	if owner == "" || name == "" {
		return "", fmt.Errorf("%w: owner and name are required", ErrInvalid)
	}
	if size < 0 {
		return "", fmt.Errorf("%w: size %d is not a byte count", ErrInvalid, size)
	}
	if md5hex != "" {
		if b, err := hex.DecodeString(md5hex); err != nil || len(b) != md5.Size {
			return "", fmt.Errorf("%w: md5 %q is not 32 hex characters", ErrInvalid, clip(md5hex))
		}
	}
	key := newKey()
	s.mu.Lock()
	err := s.addSlotLocked(Object{Key: key, Owner: owner, Name: name, Version: version, Type: typ, Size: size, MD5: strings.ToLower(md5hex)})
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	s.changed(key)
	return key, nil
}

// addSlotLocked records an open upload slot within the bounds.
func (s *Store) addSlotLocked(obj Object) error {
	if err := s.checkNewLocked(obj.Owner, obj.Size); err != nil {
		return err
	}
	open := 0
	for _, sl := range s.slots {
		if !sl.used {
			open++
		}
	}
	if open >= s.lim.MaxPendingSlots {
		return fmt.Errorf("%w: %d upload slots open, the limit is %d", ErrFull, open, s.lim.MaxPendingSlots)
	}
	s.slots[obj.Key] = &slot{obj: obj}
	return nil
}

// Slot returns the description of an open upload slot (Size and MD5 as announced, zero when
// not announced).
func (s *Store) Slot(key string) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.slots[key]
	if !ok {
		return Object{}, false
	}
	return sl.obj, true
}

// Get returns the object with key.
func (s *Store) Get(key string) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	if !ok {
		return Object{}, false
	}
	return *o, true
}

// Open opens an object's content.
func (s *Store) Open(key string) (*os.File, Object, error) {
	o, ok := s.Get(key)
	if !ok {
		return nil, Object{}, fmt.Errorf("%w: %q", ErrNotFound, clip(key))
	}
	f, err := os.Open(o.path)
	if err != nil {
		return nil, Object{}, fmt.Errorf("%w: %q", ErrNotFound, clip(key))
	}
	return f, o, nil
}

// List returns the objects of owner, oldest first.
func (s *Store) List(owner string) []Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Object
	for _, o := range s.objects {
		if o.Owner == owner {
			out = append(out, *o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Created.Before(out[j].Created) || out[i].Created.Equal(out[j].Created) && out[i].Key < out[j].Key
	})
	return out
}

// Delete removes an object (or an unused slot).
func (s *Store) Delete(key string) error {
	s.mu.Lock()
	o, ok := s.objects[key]
	if ok {
		delete(s.objects, key)
		delete(s.ranges, key)
		delete(s.cuts, key)
		delete(s.rates, key)
		s.bytes -= o.Size
	}
	_, slotOK := s.slots[key]
	delete(s.slots, key)
	s.mu.Unlock()
	if !ok {
		if slotOK {
			s.changed(key)
			return nil
		}
		return fmt.Errorf("%w: %q", ErrNotFound, clip(key))
	}
	defer s.changed(key)
	if err := os.Remove(o.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("resstore: delete %s: %w", key, err)
	}
	return nil
}

// DeleteOwner removes every object and upload slot of owner (a removed device's uploads)
// and returns how many it removed.
func (s *Store) DeleteOwner(owner string) (int, error) {
	s.mu.Lock()
	var keys []string
	for k, o := range s.objects {
		if o.Owner == owner {
			keys = append(keys, k)
		}
	}
	for k, sl := range s.slots {
		if sl.obj.Owner == owner {
			if _, isObject := s.objects[k]; !isObject {
				keys = append(keys, k)
			}
		}
	}
	s.mu.Unlock()
	n := 0
	var errs []error
	for _, k := range keys {
		switch err := s.Delete(k); {
		case err == nil:
			n++
		case !errors.Is(err, ErrNotFound): // ErrNotFound: deleted meanwhile
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// URL returns base + "/" + key + a signed query allowing method (GET or PUT) until expires.
func (s *Store) URL(base, key, method string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	q := url.Values{"q-expires": {exp}, "q-method": {method}, "q-signature": {s.sign(key, method, exp)}}
	return strings.TrimRight(base, "/") + "/" + key + "?" + q.Encode()
}

func (s *Store) sign(key, method, exp string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(key + "\n" + method + "\n" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// checkSignature returns "" when q signs method on key and has not expired.
func (s *Store) checkSignature(key, method string, q url.Values) string {
	exp, sig, m := q.Get("q-expires"), q.Get("q-signature"), q.Get("q-method")
	if exp == "" || sig == "" || m == "" {
		return "the URL has no signature (q-expires, q-method, q-signature)"
	}
	if m != method {
		return fmt.Sprintf("the URL is signed for %s, not %s", clip(m), method)
	}
	if !hmac.Equal([]byte(sig), []byte(s.sign(key, m, exp))) {
		return "signature does not match"
	}
	t, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return "bad q-expires"
	}
	if s.now().Unix() > t {
		return fmt.Sprintf("URL expired at %s", time.Unix(t, 0).UTC().Format(time.RFC3339))
	}
	return ""
}

// CutAt closes the connection of the next downloads of key when they reach each offset.
func (s *Store) CutAt(key string, offsets ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cuts[key] = append(s.cuts[key], offsets...)
}

// SetRate throttles downloads of key to about bytesPerSec (0 removes the limit).
func (s *Store) SetRate(key string, bytesPerSec int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bytesPerSec <= 0 {
		delete(s.rates, key)
		return
	}
	s.rates[key] = bytesPerSec
}

// maxRangesKept bounds the Range log of one key.
const maxRangesKept = 100

// Ranges returns the Range headers of the GETs of key so far ("" for a whole download),
// oldest first (at most the last 100).
func (s *Store) Ranges(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges[key]...)
}

func (s *Store) recordRange(key, rng string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[key]; !ok {
		return
	}
	r := append(s.ranges[key], rng)
	if len(r) > maxRangesKept {
		r = r[len(r)-maxRangesKept:]
	}
	s.ranges[key] = r
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// ContentMD5 is the base64 Content-MD5 header value of a hex MD5.
func ContentMD5(md5hex string) string {
	b, err := hex.DecodeString(md5hex)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}
