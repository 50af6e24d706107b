package resource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/internal/nilconn"
)

// Resource names one resource on the device.
type Resource struct {
	Name    string `json:"resource_name"`
	Version string `json:"version"`
	Type    string `json:"resource_type"` // FILE, AUDIO, ...
}

// Update is an update_resource offer.
type Update struct {
	Resource
	URL  string
	MD5  string
	Size int64
}

// ServiceMessage is a decoded $thing/down/service message of file management.
type ServiceMessage struct {
	Method     string
	Resource   Resource // update_resource, del_resource
	URL        string   // update_resource
	MD5        string   // update_resource
	Size       int64    // update_resource
	ResultCode int      // *_rsp
	ResultMsg  string
	List       []Resource // report_version_rsp
	RequestID  string     // request_url_resp
	UploadURL  string     // request_url_resp resource_url
	Token      string     // request_url_resp resource_token
}

// file management methods handled by Files.
var filesMethods = map[string]bool{"report_version_rsp": true, "update_resource": true, "del_resource": true, "request_url_resp": true}

// IsFilesMethod reports whether a $thing/down/service method belongs to file management.
func IsFilesMethod(method string) bool { return filesMethods[method] }

// ParseService decodes a file management message received on topic; the error names the
// topic and the field.
func ParseService(topic string, payload []byte) (ServiceMessage, error) {
	var raw struct {
		Method       string          `json:"method"`
		ResourceName string          `json:"resource_name"`
		ResourceType string          `json:"resource_type"`
		Version      string          `json:"version"`
		URL          string          `json:"url"`
		MD5          string          `json:"md5sum"`
		FileSize     json.RawMessage `json:"file_size"`
		ResultCode   json.RawMessage `json:"result_code"`
		ResultMsg    string          `json:"result_msg"`
		List         []Resource      `json:"resource_list"`
		RequestID    json.RawMessage `json:"request_id"`
		ResourceURL  string          `json:"resource_url"`
		Token        string          `json:"resource_token"`
	}
	if err := jsonguard.Unmarshal(payload, &raw); err != nil {
		return ServiceMessage{}, fmt.Errorf("%w on %s: %v", ErrMessage, topic, err)
	}
	m := ServiceMessage{Method: raw.Method, Resource: Resource{raw.ResourceName, raw.Version, raw.ResourceType},
		URL: raw.URL, MD5: raw.MD5, ResultMsg: raw.ResultMsg, List: raw.List, UploadURL: raw.ResourceURL, Token: raw.Token}
	bad := func(field, why string) (ServiceMessage, error) {
		return ServiceMessage{}, fmt.Errorf("%w on %s: %s %s: %s", ErrMessage, topic, raw.Method, field, why)
	}
	if rc, ok := num(raw.ResultCode); ok {
		m.ResultCode = int(rc)
	} else if len(raw.ResultCode) > 0 && string(raw.ResultCode) != "null" {
		return bad("result_code", "not an integer")
	}
	switch raw.Method {
	case "update_resource":
		if err := CheckName(raw.ResourceName); err != nil {
			return bad("resource_name", err.Error())
		}
		if raw.URL == "" || raw.Version == "" {
			return bad("url/version", "missing")
		}
		n, ok := num(raw.FileSize)
		if !ok || n <= 0 {
			return bad("file_size", "missing or not a positive integer")
		}
		if len(raw.MD5) != 32 {
			return bad("md5sum", "not 32 hex characters")
		}
		m.Size = n
	case "del_resource":
		if err := CheckName(raw.ResourceName); err != nil {
			return bad("resource_name", err.Error())
		}
	case "request_url_resp":
		id, ok := num(raw.RequestID)
		if !ok {
			return bad("request_id", "missing or not an integer")
		}
		m.RequestID = strconv.FormatInt(id, 10)
	case "report_version_rsp":
	case "":
		return bad("method", "missing")
	}
	return m, nil
}

// Files is the device side of file management. Create it with NewFiles.
type Files struct {
	conn Conn
	dir  string
	o    options
	up   string
	down string
	// ctx bounds automatic downloads; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	seq    atomic.Uint64

	verMu    sync.Mutex // one report_version at a time (its answer carries no token)
	mu       sync.Mutex
	verWait  chan ServiceMessage
	urlWait  map[string]chan ServiceMessage
	onUpdate func(context.Context, Update)
	onDelete func(context.Context, Resource) error

	auto autoDownloads // automatic downloads, waited for by Close
}

// NewFiles starts file management for the device of conn, keeping resources in dir (created
// if missing).
func NewFiles(ctx context.Context, conn Conn, dir string, opts ...Option) (*Files, error) {
	if nilconn.Is(conn) {
		return nil, fmt.Errorf("%w: nil connection", ErrInvalid)
	}
	o, err := newOptions(conn, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("resource: directory: %w", err)
	}
	f := &Files{conn: conn, dir: dir, o: o, urlWait: map[string]chan ServiceMessage{},
		up: "$thing/up/service/" + o.pid + "/" + o.dn, down: "$thing/down/service/" + o.pid + "/" + o.dn}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if !o.shared {
		if err := explorer.OwnedSubscribe(conn)(ctx, f.down, 1, func(ctx context.Context, m explorer.Message) {
			var head struct {
				Method string `json:"method"`
			}
			_ = jsonguard.Unmarshal(m.Payload, &head)
			f.HandleService(ctx, head.Method, m.Payload)
		}); err != nil {
			f.cancel()
			return nil, fmt.Errorf("resource: %w", err)
		}
	}
	return f, nil
}

// Close stops handling messages, cancels automatic downloads and waits for them to end (they
// resume from their checkpoint when offered again), and unsubscribes unless the topic is
// shared. Calling it again does nothing.
func (f *Files) Close() error {
	f.cancel()
	if was := f.auto.close(); was || f.o.shared {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.o.timeout)
	defer cancel()
	return f.conn.Unsubscribe(ctx, f.down)
}

// OnUpdate sets the handler of update_resource offers; it typically calls Download. Without
// one, offers are downloaded into the directory and reported automatically.
func (f *Files) OnUpdate(fn func(ctx context.Context, u Update)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onUpdate = fn
}

// OnDelete sets the handler of del_resource; without one the file is removed from the
// directory. Its error is reported as FailDelete.
func (f *Files) OnDelete(fn func(ctx context.Context, r Resource) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onDelete = fn
}

// HandleService handles one $thing/down/service message; methods of other features are
// ignored. Use it with WithSharedServiceTopic.
func (f *Files) HandleService(ctx context.Context, method string, msg []byte) {
	if !IsFilesMethod(method) {
		return
	}
	m, err := ParseService(f.down, msg)
	if err != nil {
		f.o.log.Warn("resource: message ignored", "err", err)
		if method == "update_resource" {
			var r Resource
			_ = jsonguard.Unmarshal(msg, &r) // names what failed, if it can be read at all
			f.result(ctx, "report_result", r, FailNotFound, err.Error())
		}
		return
	}
	if f.auto.isClosed() {
		return
	}
	switch m.Method {
	case "report_version_rsp":
		f.mu.Lock()
		if f.verWait != nil {
			f.verWait <- m
			f.verWait = nil
		}
		f.mu.Unlock()
	case "request_url_resp":
		f.mu.Lock()
		ch := f.urlWait[m.RequestID]
		delete(f.urlWait, m.RequestID)
		f.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	case "update_resource":
		u := Update{Resource: m.Resource, URL: m.URL, MD5: m.MD5, Size: m.Size}
		f.mu.Lock()
		fn := f.onUpdate
		f.mu.Unlock()
		if fn != nil {
			fn(ctx, u)
			return
		}
		// The download outlives the handler's deadline, not Close (which waits for it).
		f.auto.start(func() {
			if _, err := f.Download(f.ctx, u); err != nil && f.ctx.Err() == nil {
				f.o.log.Warn("resource: download failed", "resource", u.Name, "err", err)
			}
		})
	case "del_resource":
		f.mu.Lock()
		fn := f.onDelete
		f.mu.Unlock()
		var err error
		if fn != nil {
			err = fn(ctx, m.Resource)
		} else if err = os.Remove(filepath.Join(f.dir, m.Resource.Name)); errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		if err != nil {
			f.result(ctx, "del_result", m.Resource, FailDelete, "file del fail: "+err.Error())
			return
		}
		f.result(ctx, "del_result", m.Resource, 0, resultMsgSuccess)
	}
}

type progressReport struct {
	Method string `json:"method"`
	Report struct {
		Progress map[string]string `json:"progress"`
		Version  string            `json:"version,omitempty"`
	} `json:"report"`
}

func (f *Files) publish(ctx context.Context, qos byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return f.conn.Publish(ctx, f.up, qos, b)
}

// result sends report_result or del_result.
func (f *Files) result(ctx context.Context, method string, r Resource, code FailCode, msg string) {
	var m progressReport
	m.Method = method
	m.Report.Progress = map[string]string{"resource_name": r.Name, "state": "done", "result_code": strconv.Itoa(int(code)), "result_msg": msg}
	m.Report.Version = r.Version
	if err := f.publish(ctx, 1, m); err != nil {
		f.o.log.Warn("resource: report not sent", "method", method, "resource", r.Name, "err", err)
	}
}

// ReportVersion reports the device's resources and returns the platform's list from
// report_version_rsp (a refusal wraps ErrRefused). After Close, ReportVersion, Download and
// Upload fail with ErrClosed.
func (f *Files) ReportVersion(ctx context.Context, list []Resource) ([]Resource, error) {
	if f.auto.isClosed() {
		return nil, fmt.Errorf("%w: report_version", ErrClosed)
	}
	if list == nil {
		list = []Resource{}
	}
	f.verMu.Lock()
	defer f.verMu.Unlock()
	ch := make(chan ServiceMessage, 1)
	f.mu.Lock()
	f.verWait = ch
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		if f.verWait == ch {
			f.verWait = nil
		}
		f.mu.Unlock()
	}()
	msg := map[string]any{"method": "report_version", "report": map[string]any{"resource_list": list}}
	if err := f.publish(ctx, 1, msg); err != nil {
		return nil, fmt.Errorf("resource: report_version: %w", err)
	}
	ctx, cancel := f.bound(ctx)
	defer cancel()
	select {
	case m := <-ch:
		if m.ResultCode != 0 {
			return nil, fmt.Errorf("%w: report_version_rsp result_code %d: %s", ErrRefused, m.ResultCode, m.ResultMsg)
		}
		return m.List, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("resource: report_version: %w (%w)", errNoAnswer, ctx.Err())
	}
}

func (f *Files) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, f.o.timeout)
}

// Download fetches an offered resource into the directory (resumable, MD5-checked), sending
// report_progress while it runs and report_result at the end (done or the failure code).
// It returns the file's path.
func (f *Files) Download(ctx context.Context, u Update) (string, error) {
	if f.auto.isClosed() {
		return "", fmt.Errorf("%w: download %s", ErrClosed, u.Name)
	}
	report := func(pct int) {
		var m progressReport
		m.Method = "report_progress"
		m.Report.Progress = map[string]string{"resource_name": u.Name, "state": "downloading", "percent": strconv.Itoa(pct), "result_code": "0", "result_msg": ""}
		m.Report.Version = u.Version
		if err := f.publish(ctx, 0, m); err != nil {
			f.o.log.Debug("resource: progress not sent", "err", err)
		}
	}
	path, err := download(ctx, f.o, f.dir, u.Name, u.Version, u.URL, u.MD5, u.Size, report)
	if err != nil {
		f.result(ctx, "report_result", u.Resource, Code(err), err.Error())
		return "", fmt.Errorf("resource: download %s %s: %w", u.Name, u.Version, err)
	}
	f.result(ctx, "report_result", u.Resource, 0, resultMsgSuccess)
	return path, nil
}

// Upload sends the file at path to the platform as resource r: request_url, HTTP PUT to the
// presigned URL, report_post_result. It returns the resource_token the platform gave.
func (f *Files) Upload(ctx context.Context, r Resource, path string) (string, error) {
	if f.auto.isClosed() {
		return "", fmt.Errorf("%w: upload %s", ErrClosed, r.Name)
	}
	if err := CheckName(r.Name); err != nil {
		return "", err
	}
	sum, size, err := fileMD5(path)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	id := strconv.FormatUint(f.seq.Add(1), 10)
	ch := make(chan ServiceMessage, 1)
	f.mu.Lock()
	f.urlWait[id] = ch
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.urlWait, id)
		f.mu.Unlock()
	}()
	msg := map[string]any{"method": "request_url", "request_id": id, "report": r}
	if err := f.publish(ctx, 1, msg); err != nil {
		return "", fmt.Errorf("resource: request_url: %w", err)
	}
	bctx, cancel := f.bound(ctx)
	var m ServiceMessage
	select {
	case m = <-ch:
	case <-bctx.Done():
		cancel()
		return "", fmt.Errorf("resource: request_url %s: %w (%w)", r.Name, errNoAnswer, bctx.Err())
	}
	cancel()
	if m.ResultCode != 0 || m.UploadURL == "" {
		return "", fmt.Errorf("%w: request_url_resp for %s: result_code %d: %s", ErrRefused, r.Name, m.ResultCode, m.ResultMsg)
	}
	err = put(ctx, f.o.client, m.UploadURL, path, size, sum, func(done, total int64) {
		if f.o.progress != nil {
			f.o.progress(Progress{Name: r.Name, Upload: true, Done: done, Total: total, Percent: int(done * 100 / max(total, 1))})
		}
	})
	var post progressReport
	post.Method = "report_post_result"
	post.Report.Progress = map[string]string{"resource_token": m.Token, "state": "done", "result_code": "0", "result_msg": resultMsgSuccess}
	if err != nil {
		post.Report.Progress["result_code"], post.Report.Progress["result_msg"] = strconv.Itoa(int(FailUpload)), "post_fail"
	}
	if perr := f.publish(ctx, 1, post); perr != nil && err == nil {
		err = fmt.Errorf("resource: report_post_result: %w", perr)
	}
	return m.Token, err
}
