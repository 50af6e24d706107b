package ota

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// File describes any file Fetch can download: a firmware image (Download builds one from a
// Firmware) or another artifact such as a resource pushed by the platform (docs/PROTOCOL.md §7.5).
type File struct {
	// ID identifies the content across attempts and processes: a resume continues only a
	// checkpoint with the same ID, Size and MD5 (a firmware version; for a resource, its name
	// and version). 1–256 bytes.
	ID   string
	URL  string // http or https URL, usually pre-signed (its query is never logged)
	MD5  string // 32 hex characters (either case)
	Size int64  // bytes, positive
}

// MaxFileIDLen bounds File.ID (it is stored in the checkpoint).
const MaxFileIDLen = 256

// Validate checks the description; the error wraps ErrInvalidFirmware and names the field.
func (f File) Validate() error {
	if len(f.ID) == 0 || len(f.ID) > MaxFileIDLen {
		return fmt.Errorf("%w: id: %d bytes, want 1–%d", ErrInvalidFirmware, len(f.ID), MaxFileIDLen)
	}
	if err := checkURL(f.URL); err != nil {
		return fmt.Errorf("%w: url: %v", ErrInvalidFirmware, err)
	}
	if !isMD5Hex(f.MD5) {
		return fmt.Errorf("%w: md5sum: %q is not 32 hex characters", ErrInvalidFirmware, f.MD5)
	}
	if f.Size <= 0 {
		return fmt.Errorf("%w: file_size: %d is not a positive byte count", ErrInvalidFirmware, f.Size)
	}
	return nil
}

// String describes f with its URL's query (the signature) removed.
func (f File) String() string {
	return fmt.Sprintf("ota.File{ID:%q URL:%q MD5:%s Size:%d}", f.ID, redactURL(f.URL), f.MD5, f.Size)
}

// GoString is String, so %#v does not print the URL's signature either.
func (f File) GoString() string { return f.String() }

// LogValue keeps the URL's signature out of structured logs.
func (f File) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", f.ID), slog.String("url", redactURL(f.URL)),
		slog.String("md5", f.MD5), slog.Int64("size", f.Size))
}

// Download fetches fw to dest with constant memory, whatever the image size: Fetch of
// File{ID: fw.Version, URL: fw.URL, MD5: fw.MD5, Size: fw.Size} after fw.Validate.
func Download(ctx context.Context, fw Firmware, dest string, opts ...DownloadOption) error {
	if err := fw.Validate(); err != nil {
		return err
	}
	return Fetch(ctx, fw.File(), dest, opts...)
}

// Fetch downloads f to dest with constant memory, whatever the file size. It is the
// downloader behind Download, usable for any verified, resumable download (resources of
// docs/PROTOCOL.md §7.5 use it too).
//
// Bytes go to dest+".part"; dest+".ota.json" records ID, URL (without query), size, MD5
// and the byte count already fsync'd. A later call (even from a new process) with the same
// ID, size and MD5 resumes with "Range: bytes=N-" after re-hashing the part file; the URL
// may differ (a re-signed URL). Any other checkpoint is discarded and the download restarts.
// A server that ignores Range (200 instead of 206) restarts the hash from zero.
//
// Network failures are retried with backoff (WithRetries, WithBackoff, WithIdleTimeout); 404
// (ErrNotFound), 401/403 (ErrSignatureExpired) and TLS failures (ErrTLS: untrusted or invalid
// certificate, not a TLS server) are final but keep the resume state, so a fresh URL or a
// fixed trust store can continue. dest is replaced (renamed into place) only after the MD5
// matches; on a mismatch the part file and checkpoint are deleted and ErrMD5Mismatch is
// returned. If dest already holds the file (checked by size and MD5) Fetch returns at once.
//
// ctx bounds everything, including the waits between retries: Fetch returns soon after ctx
// ends whatever the network does (the connection is closed under a blocked read).
// Only one Fetch per dest may run at a time in a process (a second one waits).
// Use Code to turn the error into a report_progress failure code.
func Fetch(ctx context.Context, f File, dest string, opts ...DownloadOption) error {
	if err := f.Validate(); err != nil {
		return err
	}
	f.MD5 = toLowerHex(f.MD5)
	o := newDownloadOptions(opts)
	if strings.HasPrefix(f.URL, "http:") && !o.insecureHTTP {
		return fmt.Errorf("%w: %s", ErrInsecureURL, redactURL(f.URL))
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return fmt.Errorf("ota: destination %q: %w", dest, err)
	}
	unlock, err := lockDest(ctx, abs)
	if err != nil {
		return err
	}
	defer unlock()
	d := &downloader{fw: f, dest: abs, o: o, shown: -1}
	return d.run(ctx)
}

var destLocks sync.Map // abs path -> chan struct{} (1-slot semaphore)

func lockDest(ctx context.Context, abs string) (func(), error) {
	v, _ := destLocks.LoadOrStore(abs, make(chan struct{}, 1))
	sem := v.(chan struct{})
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("ota: waiting for another download to %s: %w", abs, ctx.Err())
	}
}

type downloader struct {
	fw     File
	dest   string
	o      *downloadOptions
	part   *os.File
	hash   hash.Hash
	done   int64
	cp     checkpoint
	cpAt   time.Time
	cpDone int64         // bytes covered by the last (possibly still running) checkpoint
	cpBusy chan struct{} // closed when the background checkpoint finishes; nil if none
	cpErr  error         // error of the last background checkpoint (read after cpBusy closes)
	shown  int           // last percent given to the progress callback
	buf    []byte        // re-hash buffer
	free   chan []byte   // body buffers recycled between the reader and the sink
}

func (d *downloader) run(ctx context.Context) (err error) {
	if d.alreadyInstalled() {
		d.report()
		return nil
	}
	if err := d.open(); err != nil {
		return err
	}
	defer func() {
		if d.part == nil {
			return
		}
		if err != nil && d.done == 0 {
			// Nothing worth resuming: leave no debris behind.
			d.discard()
			return
		}
		if err != nil {
			d.checkpoint(true)
		}
		d.part.Close()
	}()
	d.report()
	failures := 0
	for d.done < d.fw.Size {
		before := d.done
		err := d.fetch(ctx)
		if err == nil {
			continue
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			if errors.Is(fatal.err, ErrMD5Mismatch) {
				d.discard()
			}
			return fatal.err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("ota: download %s interrupted at %d/%d bytes: %w", d.fw.ID, d.done, d.fw.Size, ctx.Err())
		}
		d.checkpoint(true)
		if d.done > before {
			failures = 0
		} else {
			failures++
		}
		if failures > d.o.retries {
			return fmt.Errorf("%w: %s after %d attempts without progress (%d/%d bytes): %v",
				ErrTimeout, redactURL(d.fw.URL), failures, d.done, d.fw.Size, err)
		}
		wait := d.backoff(failures)
		d.o.log.Info("ota: download attempt failed, retrying", "version", d.fw.ID,
			"url", redactURL(d.fw.URL), "done", d.done, "size", d.fw.Size, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("ota: download %s interrupted at %d/%d bytes: %w", d.fw.ID, d.done, d.fw.Size, ctx.Err())
		}
	}
	return d.finish()
}

// fatalError ends the download without retry.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

func (d *downloader) backoff(failures int) time.Duration {
	w := d.o.backoffMin
	for i := 1; i < failures && w < d.o.backoffMax; i++ {
		w *= 2
	}
	w = min(w, d.o.backoffMax)
	return w/2 + rand.N(w/2+1) // jitter in [w/2, w]
}

// alreadyInstalled reports whether dest already is the wanted image (a restart after the
// rename but before the caller recorded success).
func (d *downloader) alreadyInstalled() bool {
	if _, err := os.Stat(checkpointPath(d.dest)); err == nil {
		return false
	}
	st, err := os.Stat(d.dest)
	if err != nil || !st.Mode().IsRegular() || st.Size() != d.fw.Size {
		return false
	}
	f, err := os.Open(d.dest)
	if err != nil {
		return false
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 64<<10)); err != nil {
		return false
	}
	if hex.EncodeToString(h.Sum(nil)) != d.fw.MD5 {
		return false
	}
	d.done = d.fw.Size
	return true
}

// open decides the resume offset and re-hashes the bytes already on disk.
func (d *downloader) open() error {
	d.hash = md5.New()
	d.buf = make([]byte, d.o.bufSize)
	cp, err := loadCheckpoint(d.dest)
	if err != nil {
		d.o.log.Warn("ota: ignoring unreadable checkpoint", "err", err)
	}
	var resume int64
	switch {
	case cp == nil:
	case cp.Version != d.fw.ID || cp.Size != d.fw.Size || cp.MD5 != d.fw.MD5:
		d.o.log.Info("ota: checkpoint is for another image; restarting", "have", cp.Version, "want", d.fw.ID)
	default:
		resume = cp.Done
		if st, err := os.Stat(partPath(d.dest)); err != nil || st.Size() < resume {
			d.o.log.Warn("ota: part file shorter than checkpoint; restarting", "version", d.fw.ID)
			resume = 0
		}
	}
	f, err := os.OpenFile(partPath(d.dest), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("ota: open %s: %w", partPath(d.dest), err)
	}
	d.part = f
	// Bytes past the checkpoint were never fsync'd; drop them rather than trust them.
	if err := f.Truncate(resume); err != nil {
		return fmt.Errorf("ota: truncate %s: %w", partPath(d.dest), err)
	}
	if resume > 0 {
		if _, err := io.CopyBuffer(d.hash, io.NewSectionReader(f, 0, resume), d.buf); err != nil {
			d.o.log.Warn("ota: cannot re-hash part file; restarting", "err", err)
			d.hash.Reset()
			resume = 0
			if err := f.Truncate(0); err != nil {
				return fmt.Errorf("ota: truncate %s: %w", partPath(d.dest), err)
			}
		} else {
			d.o.log.Info("ota: resuming download", "version", d.fw.ID, "offset", resume, "size", d.fw.Size)
		}
	}
	if _, err := f.Seek(resume, io.SeekStart); err != nil {
		return fmt.Errorf("ota: seek %s: %w", partPath(d.dest), err)
	}
	d.done = resume
	d.cp = checkpoint{Version: d.fw.ID, URL: redactURL(d.fw.URL), Size: d.fw.Size, MD5: d.fw.MD5}
	d.cpDone = -1
	return d.checkpoint(true)
}

// restart throws away everything downloaded so far (server ignored or mis-answered Range).
func (d *downloader) restart() error {
	d.waitCheckpoint()
	d.o.log.Info("ota: server did not honour Range; restarting from zero", "version", d.fw.ID, "had", d.done)
	if err := d.part.Truncate(0); err != nil {
		return &fatalError{fmt.Errorf("ota: truncate %s: %w", partPath(d.dest), err)}
	}
	if _, err := d.part.Seek(0, io.SeekStart); err != nil {
		return &fatalError{fmt.Errorf("ota: seek %s: %w", partPath(d.dest), err)}
	}
	d.hash.Reset()
	d.done = 0
	d.checkpoint(true)
	return nil
}

// checkpoint records d.done as resumable once those bytes are durable. Forced checkpoints run
// synchronously; periodic ones fsync and write the record on a background goroutine so the
// disk flush overlaps with the download (only one is in flight; a failure surfaces on the
// next call).
func (d *downloader) checkpoint(force bool) error {
	if d.cpBusy != nil {
		if !force {
			select {
			case <-d.cpBusy:
			default:
				return nil // still flushing: try again on a later write
			}
		}
		if err := d.waitCheckpoint(); err != nil {
			return err
		}
	}
	if d.done == d.cpDone {
		return nil
	}
	cp := d.cp
	cp.Done = d.done
	if force {
		if err := d.persist(&cp); err != nil {
			return err
		}
		d.cpDone, d.cpAt = d.done, time.Now()
		return nil
	}
	if d.done-d.cpDone < d.o.cpBytes && time.Since(d.cpAt) < d.o.cpEvery {
		return nil
	}
	busy := make(chan struct{})
	d.cpBusy = busy
	d.cpDone, d.cpAt = d.done, time.Now()
	go func() {
		defer close(busy)
		d.cpErr = d.persist(&cp)
	}()
	return nil
}

// persist fsyncs the part file (all bytes written so far, at least cp.Done) and then saves cp.
func (d *downloader) persist(cp *checkpoint) error {
	if err := d.part.Sync(); err != nil {
		return fmt.Errorf("ota: fsync %s: %w", partPath(d.dest), err)
	}
	if err := cp.save(d.dest); err != nil {
		return fmt.Errorf("ota: write checkpoint: %w", err)
	}
	return nil
}

// waitCheckpoint waits for the background checkpoint, if any, and returns its error.
func (d *downloader) waitCheckpoint() error {
	if d.cpBusy == nil {
		return nil
	}
	<-d.cpBusy
	d.cpBusy = nil
	err := d.cpErr
	d.cpErr = nil
	return err
}

func (d *downloader) report() {
	if d.o.progress == nil {
		return
	}
	pct := int(d.done * 100 / d.fw.Size)
	if pct == d.shown {
		return
	}
	d.shown = pct
	d.o.progress(Progress{Version: d.fw.ID, Done: d.done, Total: d.fw.Size, Percent: pct})
}

func (d *downloader) discard() {
	d.waitCheckpoint()
	if d.part != nil {
		d.part.Close()
		d.part = nil
	}
	removeState(d.dest)
}

// fetch performs one GET from d.done. nil means the body ended cleanly (the loop checks
// whether all bytes arrived); a *fatalError ends the download; anything else is retried.
func (d *downloader) fetch(ctx context.Context) error {
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var idle atomic.Bool
	watchdog := time.AfterFunc(d.o.idleTimeout, func() { idle.Store(true); cancel() })
	defer watchdog.Stop()

	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, d.fw.URL, nil)
	if err != nil {
		return &fatalError{fmt.Errorf("%w: url: %v", ErrInvalidFirmware, stripURL(err))}
	}
	req.Header.Set("Accept-Encoding", "identity")
	if d.done > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(d.done, 10)+"-")
	}
	resp, err := d.o.client.Do(req)
	if err != nil {
		if idle.Load() {
			return fmt.Errorf("no response within %v", d.o.idleTimeout)
		}
		if terr := tlsFailure(d.fw.URL, err); terr != nil {
			return &fatalError{terr} // retrying cannot fix a trust or protocol problem
		}
		return stripURL(err)
	}
	defer resp.Body.Close()
	where := redactURL(d.fw.URL)
	switch code := resp.StatusCode; {
	case code == http.StatusPartialContent:
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return fmt.Errorf("%s: bad Content-Range: %v", where, err)
		}
		if total >= 0 && total != d.fw.Size {
			return &fatalError{fmt.Errorf("%w: %s: server has %d bytes, file_size is %d", ErrMD5Mismatch, where, total, d.fw.Size)}
		}
		if start != d.done {
			if err := d.restart(); err != nil {
				return err
			}
			return fmt.Errorf("%s: asked for offset %d, got %d", where, d.done, start)
		}
	case code == http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != d.fw.Size {
			return &fatalError{fmt.Errorf("%w: %s: server has %d bytes, file_size is %d", ErrMD5Mismatch, where, resp.ContentLength, d.fw.Size)}
		}
		if d.done > 0 {
			if err := d.restart(); err != nil {
				return err
			}
		}
	case code == http.StatusRequestedRangeNotSatisfiable:
		// Our offset is past what the server has: the file changed under us.
		if err := d.restart(); err != nil {
			return err
		}
		return fmt.Errorf("%s: HTTP 416 at offset %d", where, d.done)
	case code == http.StatusNotFound || code == http.StatusGone:
		return &fatalError{fmt.Errorf("%w: %s: HTTP %d", ErrNotFound, where, code)}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return &fatalError{fmt.Errorf("%w: %s: HTTP %d", ErrSignatureExpired, where, code)}
	case code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		return fmt.Errorf("%s: HTTP %d", where, code)
	default:
		return &fatalError{fmt.Errorf("ota: download %s: HTTP %d", where, code)}
	}
	return d.copyBody(resp.Body, watchdog, &idle, where)
}

// pipelineDepth buffers let the next network read overlap the disk write and MD5 of the
// previous one; memory stays pipelineDepth*bufSize whatever the image size.
const pipelineDepth = 4

// copyBody reads the body on this goroutine and hands the chunks to a sink goroutine that
// writes, hashes, checkpoints and reports them in order.
func (d *downloader) copyBody(body io.Reader, watchdog *time.Timer, idle *atomic.Bool, where string) error {
	if d.free == nil {
		d.free = make(chan []byte, pipelineDepth)
		for range pipelineDepth {
			d.free <- make([]byte, d.o.bufSize)
		}
	}
	work := make(chan []byte, pipelineDepth)
	sinkDone := make(chan error, 1)
	var failed atomic.Bool
	go func() { sinkDone <- d.sink(work, &failed) }()

	received := d.done
	var rerr error
	for received < d.fw.Size && !failed.Load() {
		buf := <-d.free
		want := int64(len(buf))
		if rest := d.fw.Size - received; rest < want {
			want = rest
		}
		var n int
		n, rerr = body.Read(buf[:want])
		if n > 0 {
			watchdog.Reset(d.o.idleTimeout)
			received += int64(n)
			work <- buf[:n]
		} else {
			d.free <- buf
		}
		if rerr != nil {
			break
		}
	}
	close(work)
	if err := <-sinkDone; err != nil {
		return &fatalError{err}
	}
	switch {
	case rerr == io.EOF && d.done < d.fw.Size:
		return fmt.Errorf("%s: body ended at %d of %d bytes: %w", where, d.done, d.fw.Size, io.ErrUnexpectedEOF)
	case rerr != nil && rerr != io.EOF:
		if idle.Load() {
			return fmt.Errorf("%s: no data for %v at %d bytes", where, d.o.idleTimeout, d.done)
		}
		return stripURL(rerr)
	case d.done < d.fw.Size:
		return fmt.Errorf("%s: body stopped at %d of %d bytes", where, d.done, d.fw.Size) // defensive: retried
	}
	// All announced bytes arrived; a longer body means file_size is wrong.
	var one [1]byte
	if n, _ := io.ReadFull(body, one[:]); n > 0 {
		return &fatalError{fmt.Errorf("%w: %s: server sent more than file_size %d bytes", ErrMD5Mismatch, where, d.fw.Size)}
	}
	return nil
}

// sink consumes chunks in order; after the first error it only recycles buffers.
func (d *downloader) sink(work <-chan []byte, failed *atomic.Bool) error {
	var err error
	for b := range work {
		if err == nil {
			if err = d.consume(b); err != nil {
				failed.Store(true)
			}
		}
		d.free <- b[:cap(b)]
	}
	return err
}

func (d *downloader) consume(b []byte) error {
	if _, err := d.part.Write(b); err != nil {
		return fmt.Errorf("ota: write %s: %w", partPath(d.dest), err)
	}
	d.hash.Write(b)
	d.done += int64(len(b))
	if err := d.checkpoint(false); err != nil {
		return err
	}
	d.report()
	return nil
}

// finish verifies the MD5 and renames the part file into place.
func (d *downloader) finish() error {
	if err := d.waitCheckpoint(); err != nil {
		return err
	}
	sum := hex.EncodeToString(d.hash.Sum(nil))
	if sum != d.fw.MD5 {
		d.discard()
		return fmt.Errorf("%w: version %s: got %s, want %s", ErrMD5Mismatch, d.fw.ID, sum, d.fw.MD5)
	}
	if err := d.part.Sync(); err != nil {
		return fmt.Errorf("ota: fsync %s: %w", partPath(d.dest), err)
	}
	if err := d.part.Close(); err != nil {
		d.part = nil
		return fmt.Errorf("ota: close %s: %w", partPath(d.dest), err)
	}
	d.part = nil
	if err := os.Rename(partPath(d.dest), d.dest); err != nil {
		return fmt.Errorf("ota: install %s: %w", d.dest, err)
	}
	syncDir(d.dest)
	os.Remove(checkpointPath(d.dest))
	return nil
}

// parseContentRange parses "bytes start-end/total"; total is -1 for "*".
func parseContentRange(v string) (start, total int64, err error) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("%q", v)
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("%q", v)
	}
	s, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q", v)
	}
	if start, err = strconv.ParseInt(s, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("%q", v)
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("%q", v)
		}
	}
	return start, total, nil
}

// stripURL removes the signed URL that net/http puts into *url.Error messages.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redactURL(ue.URL), ue.Err)
	}
	return err
}
