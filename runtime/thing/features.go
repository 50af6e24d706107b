package thing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tplgen/tplgen/runtime/devlog"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/resource"
	"github.com/tplgen/tplgen/runtime/rrpc"
)

// The device features beside the data template — server time, RRPC, broadcast, device logs,
// files and resources (docs/PROTOCOL.md §7) — live in their own packages (runtime/rrpc,
// runtime/devlog, runtime/resource), which work on any connection. The methods below start
// them for the Thing's device on the Thing's connection, so that a generated Device offers
// them where its other calls are. Close stops every feature started this way.

// features holds what the Thing started beside the data template; Close stops it.
//
// The Thing keeps closures, not the features' types: Close and the downlink router are
// linked into every device program, and through a closure they reach a feature's code (its
// HTTP client above all) only in programs that start the feature. A device that never calls
// NewLogUploader, NewFiles or NewResourceTasks stays as small as before they existed.
type features struct {
	mu      sync.Mutex
	filters map[string]bool // RRPC and broadcast subscriptions
	files   *filesRoute
	tasks   func() error
	logs    *logsCloser
}

// filesRoute is how the downlink router reaches the Files started with NewFiles.
type filesRoute struct {
	handle func(ctx context.Context, method string, payload []byte)
	close  func() error
}

// logsCloser closes the Uploader started with NewLogUploader.
type logsCloser struct {
	close func(ctx context.Context) error
}

// Now returns the time the Thing stamps its messages with: the connection's clock corrected
// to the platform's (explorer.Conn.Now learns the offset from $sys/operation after every
// connect, docs/PROTOCOL.md §7.1, so it is right even on a board that booted in 1970), or the
// clock given with WithClock. The official Python SDK's getNtpAccurateTime.
func (t *Thing) Now() time.Time { return t.opts.now() }

// OnRRPC answers the cloud's synchronous calls to the device (RRPC, docs/PROTOCOL.md §7.3):
// it subscribes $rrpc/rxd/{pid}/{dn}/+ and publishes h's result on the request's processId.
// An error from h sends nothing (the caller in the cloud sees its timeout); see runtime/rrpc.
// Calling it again replaces h; Close unsubscribes. The official Python SDK's rrpcInit and
// rrpcReply.
func (t *Thing) OnRRPC(ctx context.Context, h rrpc.Handler) error {
	if h == nil {
		return errors.New("thing: OnRRPC: nil handler")
	}
	return t.subscribeFeature(ctx, rrpc.RequestFilter(t.pid, t.dn), func() error {
		return rrpc.OnRRPC(ctx, t.conn, h, rrpc.WithDevice(t.pid, t.dn), rrpc.WithLogger(t.log))
	})
}

// OnBroadcast hands h every broadcast the cloud sends to the device's product
// ($broadcast/rxd/{pid}/{dn}, docs/PROTOCOL.md §7.4; at most rrpc.MaxBroadcast bytes).
// Calling it again replaces h; Close unsubscribes. The official Python SDK's broadcastInit.
func (t *Thing) OnBroadcast(ctx context.Context, h rrpc.BroadcastHandler) error {
	if h == nil {
		return errors.New("thing: OnBroadcast: nil handler")
	}
	return t.subscribeFeature(ctx, rrpc.BroadcastTopic(t.pid, t.dn), func() error {
		return rrpc.OnBroadcast(ctx, t.conn, h, rrpc.WithDevice(t.pid, t.dn), rrpc.WithLogger(t.log))
	})
}

// subscribeFeature runs subscribe and records filter for Close; after Close it refuses.
func (t *Thing) subscribeFeature(ctx context.Context, filter string, subscribe func() error) error {
	if t.isClosed() {
		return ErrClosed
	}
	if err := subscribe(); err != nil {
		return fmt.Errorf("thing: %w", err)
	}
	t.feat.mu.Lock()
	defer t.feat.mu.Unlock()
	if t.isClosed() { // Close ran meanwhile and did not see this subscription
		_ = t.conn.Unsubscribe(ctx, filter)
		return ErrClosed
	}
	if t.feat.filters == nil {
		t.feat.filters = map[string]bool{}
	}
	t.feat.filters[filter] = true
	return nil
}

// NewLogUploader starts uploading the device's logs to the platform (docs/PROTOCOL.md §7.2;
// see runtime/devlog): the cloud sets the level on $log/operation, and the Uploader's
// Handler() is an slog.Handler that keeps records at or above it in a bounded buffer and
// uploads them in batches over signed HTTPS. It never blocks the caller. cfg gives the
// credentials that sign the uploads: the explorer.Config the connection was dialled with
// (the connection does not hand out its secret). Line times come from Now unless
// devlog.WithClock is given.
//
// Only the connection's own device uploads logs (not a gateway's sub-device). One Uploader
// per Thing: calling it again closes the previous one first. Close closes it, uploading what
// is buffered within Close's ctx.
func (t *Thing) NewLogUploader(ctx context.Context, cfg explorer.Config, opts ...devlog.Option) (*devlog.Uploader, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	if t.pid != t.conn.ProductID() || t.dn != t.conn.DeviceName() {
		return nil, fmt.Errorf("thing: NewLogUploader: %s/%s is not the connection's own device (%s/%s); only that one uploads logs",
			t.pid, t.dn, t.conn.ProductID(), t.conn.DeviceName())
	}
	if cfg.ProductID != t.pid || cfg.DeviceName != t.dn {
		return nil, fmt.Errorf("thing: NewLogUploader: credentials are for %s/%s, the device is %s/%s", cfg.ProductID, cfg.DeviceName, t.pid, t.dn)
	}
	t.feat.mu.Lock()
	prev := t.feat.logs
	t.feat.logs = nil
	t.feat.mu.Unlock()
	if prev != nil {
		if err := prev.close(ctx); err != nil {
			t.log.Warn("previous log uploader closed with an error", "error", err)
		}
	}
	up, err := devlog.New(ctx, t.conn, cfg, append([]devlog.Option{devlog.WithClock(t.opts.now)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("thing: NewLogUploader: %w", err)
	}
	t.feat.mu.Lock()
	defer t.feat.mu.Unlock()
	if t.isClosed() {
		up.Close(ctx)
		return nil, ErrClosed
	}
	if other := t.feat.logs; other != nil { // a concurrent call won: keep the newest
		defer other.close(ctx)
	}
	t.feat.logs = &logsCloser{close: up.Close}
	return up, nil
}

// NewFiles starts file management for the device (docs/PROTOCOL.md §7.5, 文件管理; see
// runtime/resource): resources the cloud pushes with update_resource are downloaded into dir
// (created if missing; resumable, MD5-checked, progress reported) unless Files.OnUpdate says
// otherwise, del_resource removes them, Files.ReportVersion reports the device's list and
// Files.Upload sends a file to the cloud. These messages share $thing/down/service with the
// Thing: the Thing passes the file-management methods to the Files (each on its own goroutine
// with a handler deadline, so a download never holds up control) and keeps the rest. The
// device is the Thing's (a gateway's sub-device too).
//
// One Files per Thing: calling it again closes the previous one first. Close closes it.
func (t *Thing) NewFiles(ctx context.Context, dir string, opts ...resource.Option) (*resource.Files, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	// The Thing's device and the shared topic come last: they are what the routing relies on.
	all := append([]resource.Option{resource.WithLogger(t.log)}, opts...)
	all = append(all, resource.WithDevice(t.pid, t.dn), resource.WithSharedServiceTopic())
	f, err := resource.NewFiles(ctx, t.conn, dir, all...)
	if err != nil {
		return nil, fmt.Errorf("thing: NewFiles: %w", err)
	}
	t.feat.mu.Lock()
	defer t.feat.mu.Unlock()
	if t.isClosed() {
		f.Close()
		return nil, ErrClosed
	}
	if prev := t.feat.files; prev != nil {
		_ = prev.close()
	}
	route := &filesRoute{handle: f.HandleService, close: f.Close}
	t.feat.files = route
	t.files.Store(route)
	return f, nil
}

// NewResourceTasks starts resource management for the device (docs/PROTOCOL.md §7.5, 资源管理,
// the $resource topics; see runtime/resource): Tasks.Upload creates an upload task and sends
// a file, Tasks.RequestDownload asks for a download task, and tasks the cloud pushes are
// downloaded into dir unless Tasks.OnDownloadTask says otherwise. The official Python SDK's
// resourceInit, resourceCreateUploadTask, resourceReportUploadProgress and
// resourceUploadfile.
//
// One Tasks per Thing: calling it again closes the previous one first. Close closes it.
func (t *Thing) NewResourceTasks(ctx context.Context, dir string, opts ...resource.Option) (*resource.Tasks, error) {
	if t.isClosed() {
		return nil, ErrClosed
	}
	t.feat.mu.Lock()
	prev := t.feat.tasks
	t.feat.tasks = nil
	t.feat.mu.Unlock()
	if prev != nil {
		prev() // frees the $resource subscription for the new one
	}
	all := append([]resource.Option{resource.WithLogger(t.log)}, opts...)
	all = append(all, resource.WithDevice(t.pid, t.dn))
	tasks, err := resource.NewTasks(ctx, t.conn, dir, all...)
	if err != nil {
		return nil, fmt.Errorf("thing: NewResourceTasks: %w", err)
	}
	t.feat.mu.Lock()
	defer t.feat.mu.Unlock()
	if t.isClosed() {
		tasks.Close()
		return nil, ErrClosed
	}
	if other := t.feat.tasks; other != nil { // a concurrent call won: keep the newest
		other()
	}
	t.feat.tasks = tasks.Close
	return tasks, nil
}

// routeFiles hands a file-management message of the service topic to the Files started with
// NewFiles; it reports false when there is none or the method is not one of its.
func (t *Thing) routeFiles(topic, method string, payload []byte) bool {
	f := t.files.Load()
	if f == nil || !resource.IsFilesMethod(method) {
		return false
	}
	t.goTracked(func() {
		err := t.callHandler(func(ctx context.Context) error {
			f.handle(ctx, method, payload)
			return nil
		})
		if err != nil {
			t.log.Error("file management handler failed", "topic", topic, "method", method, "error", err)
		}
	})
	return true
}

// closeFeatures stops what was started beside the data template (Close calls it after
// marking the Thing closed, so nothing new is started meanwhile).
func (t *Thing) closeFeatures(ctx context.Context) error {
	t.feat.mu.Lock()
	subs, files, tasks, logs := t.feat.filters, t.feat.files, t.feat.tasks, t.feat.logs
	t.feat.filters, t.feat.files, t.feat.tasks, t.feat.logs = nil, nil, nil, nil
	t.feat.mu.Unlock()
	t.files.Store(nil)
	var errs []error
	if len(subs) > 0 {
		filters := make([]string, 0, len(subs))
		for k := range subs {
			filters = append(filters, k)
		}
		if err := t.conn.Unsubscribe(ctx, filters...); err != nil && !errors.Is(err, explorer.ErrClosed) {
			errs = append(errs, fmt.Errorf("unsubscribe RRPC/broadcast: %w", err))
		}
	}
	if files != nil {
		_ = files.close() // shared topic: nothing to unsubscribe
	}
	if tasks != nil {
		if err := tasks(); err != nil && !errors.Is(err, explorer.ErrClosed) {
			errs = append(errs, fmt.Errorf("close resource tasks: %w", err))
		}
	}
	if logs != nil {
		if err := logs.close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close log uploader: %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("thing: close: %w", errors.Join(errs...))
	}
	return nil
}

// Now returns the platform-corrected time the device stamps its messages with; see
// Thing.Now.
func (d *Device[P, C]) Now() time.Time { return d.t.Now() }

// OnRRPC answers the cloud's synchronous calls to the device with h; see Thing.OnRRPC.
func (d *Device[P, C]) OnRRPC(ctx context.Context, h rrpc.Handler) error { return d.t.OnRRPC(ctx, h) }

// OnBroadcast hands h the product's broadcasts; see Thing.OnBroadcast.
func (d *Device[P, C]) OnBroadcast(ctx context.Context, h rrpc.BroadcastHandler) error {
	return d.t.OnBroadcast(ctx, h)
}

// NewLogUploader starts uploading the device's logs at the level the cloud asks for; its
// Handler() is an slog.Handler. See Thing.NewLogUploader.
func (d *Device[P, C]) NewLogUploader(ctx context.Context, cfg explorer.Config, opts ...devlog.Option) (*devlog.Uploader, error) {
	return d.t.NewLogUploader(ctx, cfg, opts...)
}

// NewFiles starts file management (resources the cloud pushes, device uploads) with files
// kept in dir; see Thing.NewFiles.
func (d *Device[P, C]) NewFiles(ctx context.Context, dir string, opts ...resource.Option) (*resource.Files, error) {
	return d.t.NewFiles(ctx, dir, opts...)
}

// NewResourceTasks starts resource management (the $resource upload and download tasks) with
// files kept in dir; see Thing.NewResourceTasks.
func (d *Device[P, C]) NewResourceTasks(ctx context.Context, dir string, opts ...resource.Option) (*resource.Tasks, error) {
	return d.t.NewResourceTasks(ctx, dir, opts...)
}
