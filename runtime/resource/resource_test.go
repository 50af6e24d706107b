package resource_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/ota"
	"github.com/tplgen/tplgen/runtime/resource"
)

const pid = "RESPROD001"

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func platform(t *testing.T) (*explorertest.Server, *explorer.Conn) {
	t.Helper()
	srv, err := explorertest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if _, err := srv.AddDevice(pid, "dev1"); err != nil {
		t.Fatal(err)
	}
	return srv, dial(t, srv)
}

func dial(t *testing.T, srv *explorertest.Server) *explorer.Conn {
	t.Helper()
	conn, err := explorer.Dial(testCtx(t), srv.DeviceConfig(pid, "dev1"), srv.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// trust makes downloads and uploads trust the platform's test CA.
func trust(srv *explorertest.Server) []resource.Option {
	return []resource.Option{
		resource.WithRootCAs(srv.RootCAs()),
		resource.WithDownloadOptions(ota.WithBackoff(10*time.Millisecond, 50*time.Millisecond)),
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func jobOf(st explorertest.DeviceResources, name string) (explorertest.ResourceJob, bool) {
	for _, j := range st.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return explorertest.ResourceJob{}, false
}

func waitJob(t *testing.T, srv *explorertest.Server, name string, cond func(explorertest.ResourceJob) bool) explorertest.ResourceJob {
	t.Helper()
	st, err := srv.WaitDeviceResources(testCtx(t), pid, "dev1", func(st explorertest.DeviceResources) bool {
		j, ok := jobOf(st, name)
		return ok && cond(j)
	})
	if err != nil {
		j, _ := jobOf(st, name)
		t.Fatalf("%v (job %+v)", err, j)
	}
	j, _ := jobOf(st, name)
	return j
}

func TestFilesPushDownloadReportDelete(t *testing.T) {
	srv, conn := platform(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	files, err := resource.NewFiles(ctx, conn, dir, trust(srv)...)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	data := randomBytes(t, 300_000)
	if _, err := srv.UploadResource(pid, "welcome.mp3", "1.0", "AUDIO", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PushResource(pid, "dev1", "welcome.mp3", ""); err != nil {
		t.Fatal(err)
	}
	j := waitJob(t, srv, "welcome.mp3", func(j explorertest.ResourceJob) bool { return j.State == "done" || j.State == "fail" })
	if j.State != "done" || j.Percent != 100 {
		t.Fatalf("job %+v", j)
	}
	got, err := os.ReadFile(filepath.Join(dir, "welcome.mp3"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes, %v", len(got), err)
	}
	var sawDownloading bool
	for _, h := range j.History {
		sawDownloading = sawDownloading || h.State == "downloading"
	}
	if !sawDownloading {
		t.Errorf("no downloading progress in %+v", j.History)
	}

	list, err := files.ReportVersion(ctx, []resource.Resource{{Name: "welcome.mp3", Version: "1.0", Type: "AUDIO"}})
	if err != nil || len(list) != 1 || list[0].Version != "1.0" {
		t.Fatalf("ReportVersion: %+v %v", list, err)
	}
	if err := srv.DeleteDeviceResource(pid, "dev1", "welcome.mp3"); err != nil {
		t.Fatal(err)
	}
	waitJob(t, srv, "welcome.mp3", func(j explorertest.ResourceJob) bool { return j.State == "deleted" })
	if _, err := os.Stat(filepath.Join(dir, "welcome.mp3")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file still there: %v", err)
	}
	st, _ := srv.DeviceResources(pid, "dev1")
	if len(st.Reported) != 0 {
		t.Fatalf("reported after delete: %+v", st.Reported)
	}
	if err := srv.DeleteDeviceResource(pid, "dev1", "never.bin"); !errors.Is(err, explorertest.ErrUnknownResource) {
		t.Fatalf("delete unknown: %v", err)
	}
	if _, err := srv.PushResource(pid, "dev1", "nosuch.bin", ""); !errors.Is(err, explorertest.ErrUnknownResource) {
		t.Fatalf("push unknown: %v", err)
	}
}

func TestFilesExpiredURLIsReported(t *testing.T) {
	srv, conn := platform(t)
	ctx := testCtx(t)
	files, err := resource.NewFiles(ctx, conn, t.TempDir(), trust(srv)...)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	srv.UploadResource(pid, "cfg.json", "2", "FILE", strings.NewReader(`{"a":1}`))
	srv.PushResource(pid, "dev1", "cfg.json", "2", explorertest.WithResourceURLTTL(-time.Minute))
	j := waitJob(t, srv, "cfg.json", func(j explorertest.ResourceJob) bool { return j.State == "fail" })
	if j.ResultCode != int(resource.FailAuth) || !strings.Contains(j.ResultMsg, "expired") {
		t.Fatalf("job %+v", j)
	}
}

func TestFilesUpload(t *testing.T) {
	srv, conn := platform(t)
	ctx := testCtx(t)
	files, err := resource.NewFiles(ctx, conn, t.TempDir(), trust(srv)...)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	data := randomBytes(t, 200_000)
	path := filepath.Join(t.TempDir(), "photo.jpg")
	os.WriteFile(path, data, 0o644)
	token, err := files.Upload(ctx, resource.Resource{Name: "photo.jpg", Version: "1", Type: "FILE"}, path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := srv.WaitDeviceResources(ctx, pid, "dev1", func(st explorertest.DeviceResources) bool {
		return len(st.Uploads) == 1 && st.Uploads[0].State == "done"
	})
	if err != nil {
		t.Fatalf("%v: %+v", err, st.Uploads)
	}
	if st.Uploads[0].Token != token || st.Uploads[0].MD5 != md5hex(data) {
		t.Fatalf("upload %+v", st.Uploads[0])
	}
	r, err := srv.OpenUpload(token)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("uploaded content differs")
	}
	if _, err := files.Upload(ctx, resource.Resource{Name: "../etc/passwd"}, path); !errors.Is(err, resource.ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
}

func TestTasksUploadAndDownload(t *testing.T) {
	srv, conn := platform(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	tasks, err := resource.NewTasks(ctx, conn, dir, trust(srv)...)
	if err != nil {
		t.Fatal(err)
	}
	defer tasks.Close()
	if _, err := tasks.RequestDownload(ctx); !errors.Is(err, resource.ErrNoTask) {
		t.Fatalf("no task: %v", err)
	}
	data := randomBytes(t, 150_000)
	path := filepath.Join(t.TempDir(), "dump.bin")
	os.WriteFile(path, data, 0o644)
	if err := tasks.Upload(ctx, "dump.bin", path); err != nil {
		t.Fatal(err)
	}
	st, err := srv.WaitDeviceResources(ctx, pid, "dev1", func(st explorertest.DeviceResources) bool {
		return len(st.Uploads) == 1 && st.Uploads[0].State == "done"
	})
	if err != nil || st.Uploads[0].MD5 != md5hex(data) || st.Uploads[0].API != "tasks" {
		t.Fatalf("%v %+v", err, st.Uploads)
	}

	// A task the device asks for, then one the platform pushes.
	model := randomBytes(t, 100_000)
	srv.UploadResource(pid, "model.bin", "3", "FILE", bytes.NewReader(model))
	tasks.OnDownloadTask(func(context.Context, resource.Task) {}) // pushed tasks: ignored here
	srv.PushResource(pid, "dev1", "model.bin", "", explorertest.WithTaskAPI())
	task, err := tasks.RequestDownload(ctx)
	if err != nil || task.Name != "model.bin" || task.Size != int64(len(model)) {
		t.Fatalf("task %+v %v", task, err)
	}
	p, err := tasks.Download(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, model) {
		t.Fatal("downloaded content differs")
	}
	waitJob(t, srv, "model.bin", func(j explorertest.ResourceJob) bool { return j.State == "done" })

	tasks.OnDownloadTask(nil) // automatic download of pushed tasks
	srv.UploadResource(pid, "voice.pcm", "1", "AUDIO", bytes.NewReader(data))
	srv.PushResource(pid, "dev1", "voice.pcm", "", explorertest.WithTaskAPI())
	waitJob(t, srv, "voice.pcm", func(j explorertest.ResourceJob) bool { return j.State == "done" })
	if got, _ := os.ReadFile(filepath.Join(dir, "voice.pcm")); !bytes.Equal(got, data) {
		t.Fatal("pushed task content differs")
	}
}

func TestTasksRefusedUpload(t *testing.T) {
	srv, conn := platform(t)
	ctx := testCtx(t)
	tasks, err := resource.NewTasks(ctx, conn, t.TempDir(), trust(srv)...)
	if err != nil {
		t.Fatal(err)
	}
	defer tasks.Close()
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o644)
	if err := tasks.Upload(ctx, "empty", empty); !errors.Is(err, resource.ErrInvalid) {
		t.Fatalf("empty file: %v", err)
	}
	if err := tasks.Upload(ctx, "a/b", empty); !errors.Is(err, resource.ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
}

func TestParseMessages(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{`{"method":"update_resource","resource_name":"a","version":"1","url":"https://h/k","md5sum":"0123456789abcdef0123456789abcdef","file_size":"10"}`, ""},
		{`{"method":"update_resource","resource_name":"../x","version":"1","url":"u","md5sum":"0123456789abcdef0123456789abcdef","file_size":1}`, "resource_name"},
		{`{"method":"update_resource","resource_name":"a","version":"1","url":"u","md5sum":"x","file_size":1}`, "md5sum"},
		{`{"method":"update_resource","resource_name":"a","version":"1","url":"u","md5sum":"0123456789abcdef0123456789abcdef","file_size":-1}`, "file_size"},
		{`{"method":"request_url_resp","request_id":"x"}`, "request_id"},
		{`{"method":"report_version_rsp","result_code":"zz"}`, "result_code"},
		{`{}`, "method"},
		{`{"method":`, "resource: malformed"},
	} {
		_, err := resource.ParseService("$thing/down/service/P/d", []byte(c.in))
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %v, want %q", c.in, err, c.err)
		}
	}
	for _, c := range []struct{ in, err string }{
		{`{"type":"download","name":"a","size":5,"md5sum":"0123456789abcdef0123456789abcdef","url":"https://h/k"}`, ""},
		{`{"type":"get_download_task_rsp","result_code":1}`, ""},
		{`{"type":"download","name":"a","size":"big","url":"u"}`, "size"},
		{`{"type":"download","name":"","size":5,"md5sum":"0123456789abcdef0123456789abcdef","url":"u"}`, "name"},
		{`{"size":1}`, "type"},
	} {
		_, err := resource.ParseTask("$resource/down/service/P/d", []byte(c.in))
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %v, want %q", c.in, err, c.err)
		}
	}
}

func FuzzParseService(f *testing.F) {
	f.Add([]byte(`{"method":"update_resource","resource_name":"a","version":"1","url":"u","md5sum":"0123456789abcdef0123456789abcdef","file_size":"10"}`))
	f.Add([]byte(`{"method":"request_url_resp","request_id":3,"resource_url":"u","resource_token":"t","result_code":0}`))
	f.Add([]byte(`{"method":"report_version_rsp","resource_list":[{"resource_name":"a"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := resource.ParseService("t", b)
		if err == nil && m.Method == "update_resource" && (resource.CheckName(m.Resource.Name) != nil || m.Size <= 0) {
			t.Fatalf("accepted %+v", m)
		}
	})
}

func FuzzParseTask(f *testing.F) {
	f.Add([]byte(`{"type":"download","name":"a","size":5,"md5sum":"0123456789abcdef0123456789abcdef","url":"https://h/k"}`))
	f.Add([]byte(`{"type":"create_upload_task_rsp","name":"a","url":"u","result_code":"0"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := resource.ParseTask("t", b)
		if err == nil && m.Type == "download" && m.Task.URL != "" && (resource.CheckName(m.Task.Name) != nil || m.Task.Size <= 0) {
			t.Fatalf("accepted %+v", m)
		}
	})
}

// WithRootCAs without a pool is refused before anything starts.
func TestWithRootCAsNil(t *testing.T) {
	_, conn := platform(t)
	if _, err := resource.NewFiles(testCtx(t), conn, t.TempDir(), resource.WithRootCAs(nil)); !errors.Is(err, resource.ErrInvalid) || !strings.Contains(err.Error(), "root CA") {
		t.Fatalf("NewFiles with WithRootCAs(nil): %v, want ErrInvalid naming the root CA pool", err)
	}
}
