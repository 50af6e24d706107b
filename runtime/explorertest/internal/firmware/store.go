// Package firmware is the test platform's firmware store and download server: images are kept
// on disk (never whole in memory), served over HTTP(S) with Range support under expiring
// HMAC-signed URLs, with fault injection (cut a download at given offsets, throttle) for
// resume tests.
//
// URLs have the shape of the real cloud's object-storage URLs (docs/PROTOCOL.md §4): a host,
// then ONE path segment naming the object ({pid}_{version}_{id}), then the signed query, e.g.
// "http://127.0.0.1:8081/PRODUCT001_1.0.1_0a1b2c3d4e5f6a7b?expires=...&nonce=...&sign=...".
// The official SDKs depend on that shape: the Python SDK sends everything between the scheme
// and the last "/" as the Host header, and the C SDK takes host[:port] up to the first "/" as
// the host name and always connects to port 80 (443 for https). So a URL on the default port
// never names it (see BaseURL), and Serve can bind any address, the default port included.
// runtime/explorertest runs one plain and one TLS Host for its store.
//
// The request log (Requests) is bounded: at most MaxRequests records (oldest dropped, drops
// counted by RequestsDropped), each string field clipped to MaxRecordedField bytes.
package firmware

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultPrefix is the URL path under which Handler serves objects: {prefix}{object}. The root,
// so that an object URL has exactly one path segment.
const DefaultPrefix = "/"

// Request-log bounds: a device can send any number of requests with paths and headers up to
// the HTTP server's header limit (1 MiB), and the log must not keep them.
const (
	// MaxRequests is the default number of download requests kept by Requests.
	MaxRequests = 1024
	// MaxRecordedField is the longest ID or Range kept in a Request; longer values are clipped
	// and end with "...".
	MaxRecordedField = 128
)

// Errors returned by the store.
var (
	ErrNotFound = errors.New("firmware: no such image")
	ErrInvalid  = errors.New("firmware: invalid upload")
	ErrClosed   = errors.New("firmware: store closed")
)

// Image is one stored firmware image.
type Image struct {
	ID        string    // opaque id used in URLs (the "version id" of the API)
	ProductID string    // product the image belongs to
	Version   string    // firmware version, 1–32 characters
	Size      int64     // bytes
	MD5       string    // lower-case hex
	Created   time.Time // upload time
	path      string
}

// Request records one download request, for tests (which offsets were asked for, what was
// answered, whether a fault cut it).
type Request struct {
	ID     string // image id, or the requested object name when unknown (clipped)
	Range  string // the Range header as sent (clipped)
	Status int    // HTTP status answered
	Start  int64  // first byte offset of the body
	Sent   int64  // body bytes written
	Cut    bool   // the connection was closed mid-body by a fault
}

// Store holds images on disk. Its zero value is not usable; call NewStore.
type Store struct {
	dir    string
	ownDir bool
	prefix string
	key    []byte
	now    func() time.Time

	mu       sync.Mutex
	closed   bool
	images   map[string]*Image
	latest   map[string]string // pid + "\x00" + version -> id
	cuts     map[string][]int64
	rates    map[string]int64
	requests []*Request // guarded by mu, also while a request is in flight; oldest first
	maxReqs  int
	onReq    func(Request) // WithRequestHook
	dropped  int64         // requests dropped from the log
}

// Option configures NewStore.
type Option func(*Store)

// WithClock sets the time source used for URL expiry (default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithPrefix sets the URL path prefix served by Handler (default DefaultPrefix, the root). A
// longer prefix gives URLs with more than one path segment, which the official SDKs cannot
// download from (see the package doc).
func WithPrefix(p string) Option { return func(s *Store) { s.prefix = p } }

// WithRequestLog sets how many download requests Requests keeps (default MaxRequests; values
// below 1 mean 1). The oldest are dropped first and counted by RequestsDropped.
func WithRequestLog(n int) Option { return func(s *Store) { s.maxReqs = max(n, 1) } }

// SigningKeySize is the length of the URL-signing key.
const SigningKeySize = 32

// WithSigningKey signs download URLs with key (SigningKeySize bytes) instead of a random key,
// so URLs issued by an earlier store with the same key stay valid until they expire (a device
// resuming a download after the platform restarted).
func WithSigningKey(key []byte) Option {
	return func(s *Store) { s.key = append([]byte(nil), key...) }
}

// WithRequestHook calls fn with every download request once it is answered (the platform logs
// them). fn must not call back into the store's request log.
func WithRequestHook(fn func(Request)) Option { return func(s *Store) { s.onReq = fn } }

// NewStore keeps images in dir, or in a fresh temporary directory removed by Close when dir
// is empty. The URL-signing key is random per store.
func NewStore(dir string, opts ...Option) (*Store, error) {
	s := &Store{
		dir:     dir,
		prefix:  DefaultPrefix,
		now:     time.Now,
		images:  map[string]*Image{},
		latest:  map[string]string{},
		cuts:    map[string][]int64{},
		rates:   map[string]int64{},
		maxReqs: MaxRequests,
	}
	for _, o := range opts {
		o(s)
	}
	switch len(s.key) {
	case 0:
		s.key = make([]byte, SigningKeySize)
		_, _ = rand.Read(s.key) // crypto/rand.Read never fails (Go ≥ 1.24)
	case SigningKeySize:
	default:
		return nil, fmt.Errorf("firmware: signing key of %d bytes, want %d", len(s.key), SigningKeySize)
	}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "explorertest-firmware-")
		if err != nil {
			return nil, fmt.Errorf("firmware: %w", err)
		}
		s.dir, s.ownDir = d, true
	} else if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	return s, nil
}

// Close forgets every image and removes the directory if the store created it.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.images = map[string]*Image{}
	if s.ownDir {
		return os.RemoveAll(s.dir)
	}
	return nil
}

// Put stores the image read from r (streamed to disk while hashing) for product pid and
// version, and returns its description. A later Put of the same pid and version replaces it
// for Lookup; the older image stays downloadable until deleted.
func (s *Store) Put(pid, version string, r io.Reader) (Image, error) {
	if pid == "" {
		return Image{}, fmt.Errorf("%w: product id is empty", ErrInvalid)
	}
	if len(version) < 1 || len(version) > 32 {
		return Image{}, fmt.Errorf("%w: version %q must be 1–32 characters", ErrInvalid, version)
	}
	if r == nil {
		return Image{}, fmt.Errorf("%w: nil reader", ErrInvalid)
	}
	id, err := newID()
	if err != nil {
		return Image{}, err
	}
	path := filepath.Join(s.dir, id+".bin")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return Image{}, fmt.Errorf("firmware: %w", err)
	}
	h := md5.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), r, make([]byte, 128<<10))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: image is empty", ErrInvalid)
	}
	if err != nil {
		os.Remove(path)
		if errors.Is(err, ErrInvalid) {
			return Image{}, err
		}
		return Image{}, fmt.Errorf("firmware: storing %s %s: %w", pid, version, err)
	}
	img := &Image{ID: id, ProductID: pid, Version: version, Size: n, MD5: hex.EncodeToString(h.Sum(nil)), Created: s.now(), path: path}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		os.Remove(path)
		return Image{}, ErrClosed
	}
	s.images[id] = img
	s.latest[pid+"\x00"+version] = id
	return *img, nil
}

func newID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("firmware: id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Get returns the image with id.
func (s *Store) Get(id string) (Image, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.images[id]
	if !ok {
		return Image{}, false
	}
	return *img, true
}

// Lookup returns the newest image uploaded for pid and version.
func (s *Store) Lookup(pid, version string) (Image, bool) {
	s.mu.Lock()
	id, ok := s.latest[pid+"\x00"+version]
	s.mu.Unlock()
	if !ok {
		return Image{}, false
	}
	return s.Get(id)
}

// Delete removes an image; its URLs answer 404 from then on.
func (s *Store) Delete(id string) error {
	s.mu.Lock()
	img, ok := s.images[id]
	if ok {
		delete(s.images, id)
		if s.latest[img.ProductID+"\x00"+img.Version] == id {
			delete(s.latest, img.ProductID+"\x00"+img.Version)
		}
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	// An open download keeps its file handle; unlinking is safe on POSIX.
	if err := os.Remove(img.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("firmware: delete %s: %w", id, err)
	}
	return nil
}

// ObjectName is the single path segment naming image id in its URLs:
// "{pid}_{version}_{id}", product id and version path-escaped (so a "/" in a version cannot
// add a segment), or id alone for an image the store does not hold.
func (s *Store) ObjectName(id string) string {
	img, ok := s.Get(id)
	if !ok {
		return id
	}
	return objectName(img)
}

func objectName(img Image) string {
	return url.PathEscape(img.ProductID) + "_" + url.PathEscape(img.Version) + "_" + img.ID
}

// objectID returns the image id named by an object name: the text after its last "_" (ids
// are hex), checked against the image's full object name so that only the exact name serves.
func (s *Store) objectID(object string) (string, bool) {
	id := object
	if i := strings.LastIndexByte(object, '_'); i >= 0 {
		id = object[i+1:]
	}
	img, ok := s.Get(id)
	if !ok || (object != id && object != objectName(img)) {
		return "", false
	}
	return id, true
}

// SignedPath returns the path and query for downloading id until expires, e.g.
// "/PRODUCT001_1.0.1_0a1b...?expires=1700000000&nonce=...&sign=..."; prepend a base URL
// (see BaseURL, Host.URL). Every call yields a different URL (random nonce), like re-signed
// object-storage URLs. The query never contains "/" (the Python SDK looks for the last one).
func (s *Store) SignedPath(id string, expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	nonce, _ := newID()
	q := url.Values{"expires": {exp}, "nonce": {nonce}, "sign": {s.sign(id, exp, nonce)}}
	return s.prefix + s.ObjectName(id) + "?" + q.Encode()
}

// URL is SignedPath prefixed with base (e.g. "https://127.0.0.1:8443", no trailing "/").
func (s *Store) URL(base, id string, expires time.Time) string {
	return base + s.SignedPath(id, expires)
}

func (s *Store) sign(id, exp, nonce string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id + "\n" + exp + "\n" + nonce))
	return hex.EncodeToString(m.Sum(nil))
}

// checkSignature returns "" when the query carries a valid, unexpired signature for id, or
// the reason it does not.
func (s *Store) checkSignature(id string, q url.Values) string {
	exp, sig := q.Get("expires"), q.Get("sign")
	if exp == "" || sig == "" {
		return "missing signature"
	}
	want := s.sign(id, exp, q.Get("nonce"))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return "bad signature"
	}
	t, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return "bad expiry"
	}
	if s.now().Unix() > t {
		return "signature expired"
	}
	return ""
}

// CutAt injects faults: each listed absolute byte offset of image id closes the connection of
// the next response that reaches it, after exactly that many bytes of the file were sent.
func (s *Store) CutAt(id string, offsets ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cuts[id] = append(s.cuts[id], offsets...)
}

// SetRate throttles downloads of id to about bytesPerSec (0 removes the limit).
func (s *Store) SetRate(id string, bytesPerSec int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bytesPerSec <= 0 {
		delete(s.rates, id)
		return
	}
	s.rates[id] = bytesPerSec
}

// Requests returns the download requests kept in the log, oldest first, including those
// still in flight (as far as they got): a client may have read the whole body before the
// handler returns. The log keeps the newest WithRequestLog (default MaxRequests) requests.
func (s *Store) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = *r
	}
	return out
}

// takeCut consumes the first pending cut offset in [off, off+n) and returns how many bytes
// may still be written before it, or -1.
func (s *Store) takeCut(id string, off, n int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range s.cuts[id] {
		if c >= off && c < off+n {
			s.cuts[id] = append(s.cuts[id][:i:i], s.cuts[id][i+1:]...)
			return c - off
		}
	}
	return -1
}

func (s *Store) rate(id string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rates[id]
}

// RequestsDropped counts the requests dropped from the log to respect its bound.
func (s *Store) RequestsDropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// record adds a request to the log, dropping the oldest beyond the bound; later changes go
// through update (a dropped record in flight is still updated, harmlessly).
func (s *Store) record(r *Request) {
	r.ID, r.Range = clip(r.ID), clip(r.Range)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.requests) + 1 - s.maxReqs; n > 0 {
		clear(s.requests[:n])
		s.requests = s.requests[n:]
		s.dropped += int64(n)
	}
	s.requests = append(s.requests, r)
}

// clip copies at most MaxRecordedField bytes of v (a copy, so a huge request line is not
// kept alive by a substring).
func clip(v string) string {
	if len(v) <= MaxRecordedField {
		return strings.Clone(v)
	}
	return strings.Clone(v[:MaxRecordedField-3]) + "..."
}

// update changes a logged request under the lock.
func (s *Store) update(r *Request, fn func(*Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(r)
}
