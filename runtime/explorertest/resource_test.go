package explorertest

import (
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	json "github.com/goccy/go-json"
)

// The $resource API as the official Python SDK speaks it (raw MQTT, names that are paths,
// numbers as JSON numbers), with the refusals a device can meet.
func TestResourceTasksRawClient(t *testing.T) {
	s := fieldServer(t)
	s.AddDevice("RESPROD002", "py1")
	cl, err := wsClient(t, s, s.BrokerURL(), "RESPROD002", "py1", nil)
	if err != nil {
		t.Fatal(err)
	}
	down := make(chan map[string]any, 10)
	cl.Subscribe("$resource/down/service/RESPROD002/py1", 1, func(_ paho.Client, m paho.Message) {
		var v map[string]any
		json.Unmarshal(m.Payload(), &v)
		down <- v
	}).Wait()
	send := func(v any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(v)
		cl.Publish("$resource/up/service/RESPROD002/py1", 1, false, b).Wait()
		select {
		case m := <-down:
			return m
		case <-time.After(10 * time.Second):
			t.Fatalf("no answer to %s", b)
		}
		return nil
	}
	data := []byte("sensor dump from python")
	sum := md5.Sum(data)
	md5hex := hex.EncodeToString(sum[:])
	rsp := send(map[string]any{"type": "create_upload_task", "size": len(data), "name": "/tmp/py dir/dump.bin", "md5sum": md5hex})
	url, _ := rsp["url"].(string)
	if rsp["type"] != "create_upload_task_rsp" || rsp["name"] != "/tmp/py dir/dump.bin" || url == "" || rsp["result_code"] != float64(0) {
		t.Fatalf("create: %v", rsp)
	}
	if !strings.HasPrefix(url, s.HTTPURL()+"/") {
		t.Fatalf("a device on plain MQTT got %s, want a URL on the plain HTTP listener %s", url, s.HTTPURL())
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.RootCAs()}}}
	put := func(body []byte, md5b64 string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
		req.Header.Set("Content-MD5", md5b64)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := put(append(data, data...), base64.StdEncoding.EncodeToString(sum[:])); code != 413 || !strings.Contains(body, "larger") {
		t.Fatalf("oversize PUT: %d %q", code, body)
	}
	if code, body := put(data, base64.StdEncoding.EncodeToString(sum[:])); code != 200 {
		t.Fatalf("PUT: %d %q", code, body)
	}
	if m := <-down; m["type"] != "upload_result" || m["result_code"] != float64(0) {
		t.Fatalf("upload_result: %v", m)
	}
	rsp = send(map[string]any{"type": "report_upload_progress", "name": "/tmp/py dir/dump.bin", "progress": map[string]any{"state": "done", "percent": 100, "result_code": 0, "result_msg": ""}})
	if rsp["type"] != "report_upload_progress_rsp" || rsp["result_code"] != float64(0) {
		t.Fatalf("progress rsp: %v", rsp)
	}
	st, _ := s.DeviceResources("RESPROD002", "py1")
	if len(st.Uploads) != 1 || st.Uploads[0].State != "done" || st.Uploads[0].MD5 != md5hex {
		t.Fatalf("uploads %+v", st.Uploads)
	}
	for _, c := range []struct {
		msg  map[string]any
		want string
	}{
		{map[string]any{"type": "create_upload_task", "size": -1, "name": "x", "md5sum": md5hex}, "size"},
		{map[string]any{"type": "create_upload_task", "size": 10, "name": "x", "md5sum": "nope"}, "md5sum"},
		{map[string]any{"type": "create_upload_task", "size": 1 << 40, "name": "x", "md5sum": md5hex}, "at most"},
		{map[string]any{"type": "create_upload_task", "size": 10, "name": "", "md5sum": md5hex}, "upload name"},
	} {
		rsp := send(c.msg)
		if rsp["result_code"] != float64(-1) || !strings.Contains(rsp["result_msg"].(string), c.want) || rsp["url"] != nil {
			t.Errorf("%v: %v, want a refusal naming %q", c.msg, rsp, c.want)
		}
	}
	rsp = send(map[string]any{"type": "get_download_task"})
	if rsp["type"] != "get_download_task_rsp" || rsp["result_code"] != float64(1) {
		t.Fatalf("no task: %v", rsp)
	}
	// An expired download URL answers 403 naming the expiry.
	info, _ := s.UploadResource("RESPROD002", "fw.cfg", "1", "FILE", strings.NewReader("cfg"))
	s.PushResource("RESPROD002", "py1", "fw.cfg", "", WithTaskAPI(), WithResourceURLTTL(-time.Minute))
	pushed := <-down
	if pushed["type"] != "download" || pushed["md5sum"] != info.MD5 {
		t.Fatalf("pushed %v", pushed)
	}
	resp, err := hc.Get(pushed["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "expired") {
		t.Fatalf("expired URL: %d %q", resp.StatusCode, b)
	}
}

// FuzzResourceUplinks feeds arbitrary payloads to both resource uplink handlers.
func FuzzResourceUplinks(f *testing.F) {
	s, err := NewServer()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	s.AddDevice("FUZZPROD01", "dev1")
	f.Add(true, []byte(`{"method":"report_version","report":{"resource_list":[{"resource_name":"a","version":"1"}]}}`))
	f.Add(true, []byte(`{"method":"request_url","request_id":"7","report":{"resource_name":"a","version":"1","resource_type":"FILE"}}`))
	f.Add(true, []byte(`{"method":"report_progress","report":{"progress":{"resource_name":"a","state":"downloading","percent":"50"},"version":"1"}}`))
	f.Add(false, []byte(`{"type":"create_upload_task","size":5,"name":"a","md5sum":"0123456789abcdef0123456789abcdef"}`))
	f.Add(false, []byte(`{"type":"report_download_progress","name":"a","progress":{"state":"done","percent":100}}`))
	f.Fuzz(func(t *testing.T, files bool, payload []byte) {
		u := uplink{Client: DeviceID{"FUZZPROD01", "dev1"}, Device: DeviceID{"FUZZPROD01", "dev1"}, Payload: payload}
		if files {
			u.Topic = "$thing/up/service/FUZZPROD01/dev1"
			s.res.handleFiles(u)
		} else {
			u.Topic = "$resource/up/service/FUZZPROD01/dev1"
			s.res.handleTasks(u)
		}
		st, _ := s.DeviceResources("FUZZPROD01", "dev1")
		if len(st.Uploads) > resMaxUploads || len(st.Reported) > resMaxReported {
			t.Fatalf("unbounded: %d uploads, %d reported", len(st.Uploads), len(st.Reported))
		}
	})
}

// A removed device's resource state (reported list, jobs, uploads) is released at once, and
// its uploaded files are deleted: API clients may create and delete devices without end.
func TestResourceStateForgottenWithDevice(t *testing.T) {
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddDevice("RESPROD003", "dev1")
	id := DeviceID{"RESPROD003", "dev1"}
	s.res.handleFiles(uplink{Client: id, Device: id, Topic: "$thing/up/service/RESPROD003/dev1",
		Payload: []byte(`{"method":"report_version","report":{"resource_list":[{"resource_name":"a","version":"1"}]}}`)})
	if st, ok := s.DeviceResources("RESPROD003", "dev1"); !ok || len(st.Reported) != 1 {
		t.Fatalf("reported list not kept: %+v %v", st, ok)
	}
	upload, err := s.res.store.Put(id.String(), "log.tgz", "", "FILE", strings.NewReader("uploaded by the device"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UploadResource("RESPROD003", "voice.mp3", "1", "AUDIO", strings.NewReader("library")); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveDevice("RESPROD003", "dev1"); err != nil {
		t.Fatal(err)
	}
	s.res.mu.Lock()
	kept := len(s.res.devs)
	s.res.mu.Unlock()
	if kept != 0 {
		t.Fatalf("resource state of %d removed devices still held", kept)
	}
	if f, err := s.OpenUpload(upload.Key); err == nil {
		f.Close()
		t.Fatal("the removed device's upload can still be opened")
	}
	if lib := s.Resources("RESPROD003"); len(lib) != 1 {
		t.Fatalf("the product's library lost its resource with the device: %+v", lib)
	}
}
