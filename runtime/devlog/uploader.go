package devlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/internal/devhttp"
	"github.com/tplgen/tplgen/runtime/internal/nilconn"
)

// ErrClosed is returned by calls on a closed Uploader.
var ErrClosed = errors.New("devlog: uploader closed")

// Stats counts what the Uploader did.
type Stats struct {
	Level     Level  // the level in force
	Buffered  int    // lines waiting for upload
	Uploaded  uint64 // lines the platform accepted
	Batches   uint64 // successful uploads
	Dropped   uint64 // lines lost: buffer full, or a batch the platform refused for good
	Failures  uint64 // failed upload attempts (retried or not)
	LastError string // the last upload error, "" after a success
}

// Conn is the connection an Uploader asks for the log level on. *explorer.Conn implements it,
// and so does every runtime/thing Transport: a generated device reaches this package through
// its NewLogUploader method (thing.Device), which passes its own connection.
type Conn interface {
	// Publish sends the get_log_level request.
	Publish(ctx context.Context, topic string, qos byte, payload []byte) error
	// Subscribe and Unsubscribe manage the level topic. A connection that also has
	// SubscribeOwned (explorer.Conn) gets the topic owned, so a program's own Subscribe of it
	// fails instead of silently taking the cloud's level messages.
	Subscribe(ctx context.Context, filter string, qos byte, h explorer.Handler) error
	Unsubscribe(ctx context.Context, filters ...string) error
	// OnConnect registers fn to run after every reconnect (the level is asked again then).
	OnConnect(fn func(ctx context.Context)) (remove func())
	// ProductID and DeviceName name the connection's own device, whose logs are uploaded.
	ProductID() string
	DeviceName() string
	// Logger logs the Uploader's own problems; nil logs nothing.
	Logger() *slog.Logger
	// Now is the connection's clock corrected to the platform's (explorer.Conn.Now), used
	// for line times and signatures unless WithClock is given.
	Now() time.Time
}

// Uploader buffers log records and uploads them. Create it with New; it is safe for
// concurrent use.
type Uploader struct {
	conn   Conn
	pid    string
	dn     string
	o      options
	signer *devhttp.Signer
	url    string
	client *http.Client
	log    *slog.Logger // the connection's logger, for the uploader's own problems

	level  atomic.Int32
	token  atomic.Uint64
	notify chan struct{}
	stop   chan struct{}
	done   chan struct{}
	unhook func()

	upMu sync.Mutex // one upload at a time (background loop, Flush, Close)

	mu         sync.Mutex
	lines      []string // oldest first
	headSeq    uint64   // sequence number of lines[0]
	bytes      int
	dropped    uint64 // total
	unreported uint64 // dropped since the last upload that reported it
	closed     bool
	uploaded   uint64
	batches    uint64
	failures   uint64
	lastErr    string
	waiters    map[string]chan Level // clientToken -> RequestLevel waiter
}

// New starts an Uploader for the device of conn. cfg gives the credentials that sign uploads
// (the same explorer.Config the connection was dialled with; its ProductID and DeviceName must
// be the connection's). It subscribes to the log level topic and asks for the level now and
// after every reconnect.
func New(ctx context.Context, conn Conn, cfg explorer.Config, opts ...Option) (*Uploader, error) {
	if nilconn.Is(conn) {
		return nil, errors.New("devlog: nil connection")
	}
	if cfg.ProductID != conn.ProductID() || cfg.DeviceName != conn.DeviceName() {
		return nil, fmt.Errorf("devlog: credentials are for %s/%s but the connection is %s/%s", cfg.ProductID, cfg.DeviceName, conn.ProductID(), conn.DeviceName())
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.now == nil {
		o.now = conn.Now // the platform-corrected clock: the gateway refuses timestamps far off
	}
	var signer *devhttp.Signer
	var err error
	switch {
	case cfg.DeviceSecret != "":
		signer, err = devhttp.NewSecretSigner(cfg.DeviceSecret)
	case cfg.Certificate != nil:
		signer, err = devhttp.NewKeySigner(cfg.Certificate.PrivateKey)
	default:
		err = devhttp.ErrNoCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("devlog: %w", err)
	}
	base, err := devhttp.CheckEndpoint(o.endpoint, o.insecure)
	if err != nil {
		return nil, fmt.Errorf("devlog: %v", err)
	}
	u := &Uploader{
		conn: conn, pid: conn.ProductID(), dn: conn.DeviceName(), o: o, signer: signer,
		url: base + Path, client: o.client, log: conn.Logger(),
		notify: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		waiters: map[string]chan Level{},
	}
	if u.client == nil {
		roots := o.roots
		if roots == nil {
			roots = explorer.TencentRootCAs()
		}
		u.client = devhttp.NewHTTPClient(roots, 30*time.Second)
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	u.level.Store(int32(o.initial))
	if err := explorer.OwnedSubscribe(conn)(ctx, downTopic(u.pid, u.dn), 0, u.handleLevel); err != nil {
		return nil, fmt.Errorf("devlog: %w", err)
	}
	u.unhook = conn.OnConnect(func(ctx context.Context) { _ = u.askLevel(ctx) })
	// Ask now unless the connection says it is down (OnConnect asks once it is up).
	if c, ok := conn.(interface{ IsConnected() bool }); !ok || c.IsConnected() {
		_ = u.askLevel(ctx)
	}
	go u.run()
	return u, nil
}

// Level is the level in force (the cloud's once it answered).
func (u *Uploader) Level() Level { return Level(u.level.Load()) }

func (u *Uploader) askLevel(ctx context.Context) error {
	tok := u.pid + "-log-" + strconv.FormatUint(u.token.Add(1), 10)
	b, _ := json.Marshal(levelRequest{Type: "get_log_level", ClientToken: tok})
	return u.conn.Publish(ctx, upTopic(u.pid, u.dn), 0, b)
}

// RequestLevel asks the cloud for the log level and waits for its answer (bounded by ctx).
func (u *Uploader) RequestLevel(ctx context.Context) (Level, error) {
	tok := u.pid + "-log-" + strconv.FormatUint(u.token.Add(1), 10)
	ch := make(chan Level, 1)
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return 0, ErrClosed
	}
	u.waiters[tok] = ch
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(u.waiters, tok)
		u.mu.Unlock()
	}()
	b, _ := json.Marshal(levelRequest{Type: "get_log_level", ClientToken: tok})
	if err := u.conn.Publish(ctx, upTopic(u.pid, u.dn), 0, b); err != nil {
		return 0, fmt.Errorf("devlog: asking for the log level: %w", err)
	}
	select {
	case l := <-ch:
		return l, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("devlog: no log level answer: %w", ctx.Err())
	}
}

func (u *Uploader) handleLevel(_ context.Context, m explorer.Message) {
	msg, err := ParseLevelMessage(m.Topic, m.Payload)
	if err != nil {
		u.log.Warn("devlog: log level message ignored", "topic", m.Topic, "err", err)
		return
	}
	if msg.Result != 0 {
		u.log.Warn("devlog: the platform refused the log level request", "result", msg.Result)
		return
	}
	if old := Level(u.level.Swap(int32(msg.Level))); old != msg.Level {
		u.log.Info("devlog: cloud log level", "level", msg.Level.String())
	}
	u.mu.Lock()
	if ch := u.waiters[msg.ClientToken]; ch != nil {
		delete(u.waiters, msg.ClientToken)
		ch <- msg.Level
	}
	u.mu.Unlock()
}

// add appends one formatted line, dropping the oldest when a bound is reached.
func (u *Uploader) add(line string) {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.lines = append(u.lines, line)
	u.bytes += len(line)
	for len(u.lines) > u.o.maxRecords || u.bytes > u.o.maxBytes {
		u.bytes -= len(u.lines[0])
		u.lines[0] = ""
		u.lines = u.lines[1:]
		u.headSeq++
		u.dropped++
		u.unreported++
	}
	full := len(u.lines) >= u.o.batchRecords || u.bytes >= u.o.batchBytes
	u.mu.Unlock()
	if full {
		select {
		case u.notify <- struct{}{}:
		default:
		}
	}
}

// Stats returns the counters.
func (u *Uploader) Stats() Stats {
	u.mu.Lock()
	defer u.mu.Unlock()
	return Stats{Level: u.Level(), Buffered: len(u.lines), Uploaded: u.uploaded, Batches: u.batches, Dropped: u.dropped, Failures: u.failures, LastError: u.lastErr}
}

func (u *Uploader) run() {
	defer close(u.done)
	tick := time.NewTicker(u.o.flushInterval)
	defer tick.Stop()
	failures := 0
	for {
		select {
		case <-u.stop:
			return
		case <-tick.C:
		case <-u.notify:
		}
		for {
			err, more := u.uploadOne(context.Background())
			if err != nil {
				failures++
				wait := u.o.backoffMin << min(failures-1, 16)
				if wait > u.o.backoffMax || wait <= 0 {
					wait = u.o.backoffMax
				}
				select {
				case <-u.stop:
					return
				case <-time.After(wait):
				}
				continue
			}
			failures = 0
			if !more {
				break
			}
		}
	}
}

// batch takes the next batch (without removing it), the sequence number of its first line and
// the drop notice to put first.
func (u *Uploader) batch() (lines []string, start, notice uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	start = u.headSeq
	size := 0
	notice = u.unreported
	if notice > 0 {
		size += 80
	}
	n := 0
	for n < len(u.lines) && n < u.o.batchRecords && (n == 0 || size+len(u.lines[n]) <= u.o.batchBytes) {
		size += len(u.lines[n])
		n++
	}
	return append([]string(nil), u.lines[:n]...), start, notice
}

// commit removes the lines of an upload that are still buffered (the buffer may have dropped
// some of them meanwhile) and accounts for the reported drops.
func (u *Uploader) commit(sent []string, start, notice uint64, ok bool, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	k := 0
	if end := start + uint64(len(sent)); end > u.headSeq {
		k = int(min(end-u.headSeq, uint64(len(u.lines))))
	}
	if ok || err != nil && !retryable(err) {
		for i := 0; i < k; i++ {
			u.bytes -= len(u.lines[i])
			u.lines[i] = ""
		}
		u.lines = u.lines[k:]
		u.headSeq += uint64(k)
		if len(u.lines) == 0 {
			u.lines = nil
		}
	}
	switch {
	case ok:
		u.uploaded += uint64(len(sent))
		u.batches++
		u.unreported -= min(notice, u.unreported)
		u.lastErr = ""
	default:
		u.failures++
		u.lastErr = err.Error()
		if !retryable(err) {
			u.dropped += uint64(k)
			u.unreported += uint64(k)
		}
	}
}

// retryable reports whether an upload error may succeed later (network, 5xx, timestamp).
func retryable(err error) bool {
	var ae *devhttp.APIError
	if !errors.As(err, &ae) {
		return true
	}
	return ae.Status >= 500 || ae.Code == "AuthFailure.SignatureExpire" || ae.Code == "RequestLimitExceeded"
}

// uploadOne uploads the next batch; more reports whether lines remain.
func (u *Uploader) uploadOne(ctx context.Context) (err error, more bool) {
	u.upMu.Lock()
	defer u.upMu.Unlock()
	lines, start, notice := u.batch()
	if len(lines) == 0 && notice == 0 {
		return nil, false
	}
	msg := lines
	if notice > 0 {
		msg = append([]string{u.format(slog.LevelWarn, u.o.now(), fmt.Sprintf("devlog: %d records dropped (buffer full or refused by the platform)", notice), nil)}, lines...)
	}
	body, err := json.Marshal(reportBody{ProductID: u.pid, DeviceName: u.dn, Message: msg})
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = devhttp.Post(ctx, u.client, u.url, body, u.signer, u.o.now())
		cancel()
	}
	u.commit(lines, start, notice, err == nil, err)
	if err != nil && !retryable(err) {
		u.log.Error("devlog: the platform refused a log batch; dropped", "lines", len(lines), "err", err)
		err = nil // dropped for good: go on with the next batch
	} else if err != nil {
		u.log.Warn("devlog: log upload failed; will retry", "lines", len(lines), "err", err)
	}
	u.mu.Lock()
	more = len(u.lines) > 0
	u.mu.Unlock()
	return err, more
}

// Flush uploads everything buffered now, returning the first error (bounded by ctx).
func (u *Uploader) Flush(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("devlog: flush: %w", err)
		}
		err, more := u.uploadOne(ctx)
		if err != nil {
			return fmt.Errorf("devlog: flush: %w", err)
		}
		if !more {
			return nil
		}
	}
}

// Close stops accepting records, uploads what is buffered (bounded by ctx), unsubscribes and
// stops the background goroutine. Lines still buffered when ctx ends are counted as dropped.
func (u *Uploader) Close(ctx context.Context) error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	u.mu.Unlock()
	close(u.stop)
	<-u.done
	u.unhook()
	err := u.Flush(ctx)
	u.mu.Lock()
	if n := len(u.lines); n > 0 {
		u.dropped += uint64(n)
		u.headSeq += uint64(n)
		u.lines, u.bytes = nil, 0
	}
	u.mu.Unlock()
	uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = u.conn.Unsubscribe(uctx, downTopic(u.pid, u.dn))
	return err
}
