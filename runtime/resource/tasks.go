package resource

import (
	"context"
	"fmt"
	"os"
	"sync"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/internal/nilconn"
)

// Task is a transfer announced by the platform on $resource/down/service.
type Task struct {
	Name string
	URL  string
	MD5  string
	Size int64
}

// TaskMessage is a decoded $resource/down/service message.
type TaskMessage struct {
	Type       string
	Task       Task // create_upload_task_rsp, get_download_task_rsp, download
	ResultCode int
	ResultMsg  string
}

// ParseTask decodes a message received on topic ($resource/down/service/...); the error names
// the topic and the field.
func ParseTask(topic string, payload []byte) (TaskMessage, error) {
	var raw struct {
		Type       string          `json:"type"`
		Name       string          `json:"name"`
		URL        string          `json:"url"`
		MD5        string          `json:"md5sum"`
		Size       json.RawMessage `json:"size"`
		ResultCode json.RawMessage `json:"result_code"`
		ResultMsg  string          `json:"result_msg"`
	}
	if err := jsonguard.Unmarshal(payload, &raw); err != nil {
		return TaskMessage{}, fmt.Errorf("%w on %s: %v", ErrMessage, topic, err)
	}
	bad := func(field, why string) (TaskMessage, error) {
		return TaskMessage{}, fmt.Errorf("%w on %s: %s %s: %s", ErrMessage, topic, raw.Type, field, why)
	}
	m := TaskMessage{Type: raw.Type, Task: Task{Name: raw.Name, URL: raw.URL, MD5: raw.MD5}, ResultMsg: raw.ResultMsg}
	if rc, ok := num(raw.ResultCode); ok {
		m.ResultCode = int(rc)
	} else if len(raw.ResultCode) > 0 && string(raw.ResultCode) != "null" {
		return bad("result_code", "not an integer")
	}
	if n, ok := num(raw.Size); ok {
		m.Task.Size = n
	} else if len(raw.Size) > 0 && string(raw.Size) != "null" {
		return bad("size", "not an integer")
	}
	switch raw.Type {
	case "":
		return bad("type", "missing")
	case "download", "get_download_task_rsp":
		if raw.URL == "" { // "no task"
			return m, nil
		}
		if err := CheckName(raw.Name); err != nil {
			return bad("name", err.Error())
		}
		if m.Task.Size <= 0 {
			return bad("size", "missing or not positive")
		}
		if len(raw.MD5) != 32 {
			return bad("md5sum", "not 32 hex characters")
		}
	}
	return m, nil
}

// Tasks is the device side of resource management ($resource topics). Create it with NewTasks.
type Tasks struct {
	conn Conn
	dir  string
	o    options
	up   string
	down string
	// ctx bounds automatic downloads; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	waits  map[string]chan TaskMessage // rsp type (+ "\x00" + name) -> waiter
	onTask func(context.Context, Task)

	auto autoDownloads // automatic downloads, waited for by Close
}

// NewTasks subscribes $resource/down/service for the device of conn and keeps downloads in dir.
func NewTasks(ctx context.Context, conn Conn, dir string, opts ...Option) (*Tasks, error) {
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
	t := &Tasks{conn: conn, dir: dir, o: o, waits: map[string]chan TaskMessage{},
		up: "$resource/up/service/" + o.pid + "/" + o.dn, down: "$resource/down/service/" + o.pid + "/" + o.dn}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	if err := explorer.OwnedSubscribe(conn)(ctx, t.down, 1, t.handle); err != nil {
		t.cancel()
		return nil, fmt.Errorf("resource: %w", err)
	}
	return t, nil
}

// Close cancels automatic downloads, waits for them to end and unsubscribes. Calling it again does nothing; Upload,
// RequestDownload and Download fail with ErrClosed after it.
func (t *Tasks) Close() error {
	t.cancel()
	if t.auto.close() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.o.timeout)
	defer cancel()
	return t.conn.Unsubscribe(ctx, t.down)
}

// OnDownloadTask sets the handler of download tasks the platform pushes; it typically calls
// Download. Without one they are downloaded and reported automatically.
func (t *Tasks) OnDownloadTask(fn func(ctx context.Context, task Task)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onTask = fn
}

func (t *Tasks) handle(ctx context.Context, msg explorer.Message) {
	m, err := ParseTask(msg.Topic, msg.Payload)
	if err != nil {
		t.o.log.Warn("resource: message ignored", "err", err)
		return
	}
	key := m.Type
	switch m.Type {
	case "create_upload_task_rsp", "upload_result":
		key += "\x00" + m.Task.Name
	case "download":
		if m.Task.URL == "" {
			return
		}
		t.mu.Lock()
		fn := t.onTask
		t.mu.Unlock()
		if fn != nil {
			fn(ctx, m.Task)
			return
		}
		t.auto.start(func() {
			if _, err := t.Download(t.ctx, m.Task); err != nil && t.ctx.Err() == nil {
				t.o.log.Warn("resource: download task failed", "resource", m.Task.Name, "err", err)
			}
		})
		return
	}
	t.mu.Lock()
	ch := t.waits[key]
	delete(t.waits, key)
	t.mu.Unlock()
	if ch != nil {
		ch <- m
	}
}

// call publishes v and waits for the message keyed key.
func (t *Tasks) call(ctx context.Context, key string, v any) (TaskMessage, error) {
	ch := make(chan TaskMessage, 1)
	t.mu.Lock()
	if _, busy := t.waits[key]; busy {
		t.mu.Unlock()
		return TaskMessage{}, fmt.Errorf("%w: a request waiting for %q is already running", ErrInvalid, key)
	}
	t.waits[key] = ch
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.waits[key] == ch {
			delete(t.waits, key)
		}
		t.mu.Unlock()
	}()
	if err := t.publish(ctx, v); err != nil {
		return TaskMessage{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.o.timeout)
		defer cancel()
	}
	select {
	case m := <-ch:
		return m, nil
	case <-ctx.Done():
		return TaskMessage{}, fmt.Errorf("%w (%w)", errNoAnswer, ctx.Err())
	}
}

func (t *Tasks) publish(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.conn.Publish(ctx, t.up, 1, b)
}

type taskProgress struct {
	State      string `json:"state"`
	Percent    int    `json:"percent"`
	ResultCode int    `json:"result_code"`
	ResultMsg  string `json:"result_msg"`
}

func (t *Tasks) progress(ctx context.Context, typ, name string, p taskProgress) {
	if err := t.publish(ctx, map[string]any{"type": typ, "name": name, "progress": p}); err != nil {
		t.o.log.Debug("resource: progress not sent", "type", typ, "err", err)
	}
}

// Upload sends the file at path to the platform as resource name: create_upload_task, HTTP
// PUT with Content-MD5 to the returned URL with report_upload_progress while it runs, then a
// final "done" progress (result_code 0, or FailUpload with the error).
func (t *Tasks) Upload(ctx context.Context, name, path string) error {
	if t.auto.isClosed() {
		return fmt.Errorf("%w: upload %s", ErrClosed, name)
	}
	if err := CheckName(name); err != nil {
		return err
	}
	sum, size, err := fileMD5(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if size == 0 {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, path)
	}
	m, err := t.call(ctx, "create_upload_task_rsp\x00"+name, map[string]any{"type": "create_upload_task", "size": size, "name": name, "md5sum": sum})
	if err != nil {
		return fmt.Errorf("resource: create_upload_task %s: %w", name, err)
	}
	if m.ResultCode != 0 || m.Task.URL == "" {
		return fmt.Errorf("%w: create_upload_task_rsp for %s: result_code %d: %s", ErrRefused, name, m.ResultCode, m.ResultMsg)
	}
	last := -1
	err = put(ctx, t.o.client, m.Task.URL, path, size, sum, func(done, total int64) {
		pct := int(done * 100 / max(total, 1))
		if t.o.progress != nil {
			t.o.progress(Progress{Name: name, Upload: true, Done: done, Total: total, Percent: pct})
		}
		if pct/t.o.reportStep != last/t.o.reportStep && pct < 100 {
			last = pct
			t.progress(ctx, "report_upload_progress", name, taskProgress{State: "uploading", Percent: pct})
		}
	})
	final := taskProgress{State: "done", Percent: 100}
	if err != nil {
		final = taskProgress{State: "done", Percent: max(last, 0), ResultCode: int(FailUpload), ResultMsg: err.Error()}
	}
	t.progress(ctx, "report_upload_progress", name, final)
	return err
}

// RequestDownload asks the platform for a download task (get_download_task). It returns
// ErrNoTask when there is none.
func (t *Tasks) RequestDownload(ctx context.Context) (Task, error) {
	if t.auto.isClosed() {
		return Task{}, fmt.Errorf("%w: get_download_task", ErrClosed)
	}
	m, err := t.call(ctx, "get_download_task_rsp", map[string]any{"type": "get_download_task"})
	if err != nil {
		return Task{}, fmt.Errorf("resource: get_download_task: %w", err)
	}
	if m.ResultCode != 0 || m.Task.URL == "" {
		return Task{}, fmt.Errorf("%w (result_code %d: %s)", ErrNoTask, m.ResultCode, m.ResultMsg)
	}
	return m.Task, nil
}

// Download fetches a task's file into the directory (resumable, MD5-checked) with
// report_download_progress "downloading" while it runs and "done" at the end (result_code 0 or
// the failure code). It returns the file's path.
func (t *Tasks) Download(ctx context.Context, task Task) (string, error) {
	if t.auto.isClosed() {
		return "", fmt.Errorf("%w: download %s", ErrClosed, task.Name)
	}
	path, err := download(ctx, t.o, t.dir, task.Name, "", task.URL, task.MD5, task.Size, func(pct int) {
		if pct < 100 {
			t.progress(ctx, "report_download_progress", task.Name, taskProgress{State: "downloading", Percent: pct})
		}
	})
	if err != nil {
		t.progress(ctx, "report_download_progress", task.Name, taskProgress{State: "done", ResultCode: int(Code(err)), ResultMsg: err.Error()})
		return "", fmt.Errorf("resource: download %s: %w", task.Name, err)
	}
	t.progress(ctx, "report_download_progress", task.Name, taskProgress{State: "done", Percent: 100})
	return path, nil
}
