package explorertest

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorer"
)

const (
	otaPID = "OTAPLAT001"
	otaDN  = "dev1"
)

func otaCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// otaDevice is a device speaking the OTA topics by hand over runtime/explorer.
type otaDevice struct {
	t    *testing.T
	conn *explorer.Conn
	down chan map[string]any
}

func newOTAPlatform(t *testing.T) (*Server, *otaDevice) {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.AddDevice(otaPID, otaDN); err != nil {
		t.Fatal(err)
	}
	conn, err := explorer.Dial(otaCtx(t), s.DeviceConfig(otaPID, otaDN), s.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	d := &otaDevice{t: t, conn: conn, down: make(chan map[string]any, 100)}
	err = conn.Subscribe(otaCtx(t), "$ota/update/"+otaPID+"/"+otaDN, 1, func(_ context.Context, m explorer.Message) {
		var body map[string]any
		dec := json.NewDecoder(bytes.NewReader(m.Payload))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			t.Errorf("platform sent bad JSON on %s: %s", m.Topic, m.Payload)
			return
		}
		d.down <- body
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

func (d *otaDevice) send(payload string) {
	d.t.Helper()
	if err := d.conn.Publish(otaCtx(d.t), "$ota/report/"+otaPID+"/"+otaDN, 1, []byte(payload)); err != nil {
		d.t.Fatal(err)
	}
}

func (d *otaDevice) recv(wantType string) map[string]any {
	d.t.Helper()
	select {
	case m := <-d.down:
		if m["type"] != wantType {
			d.t.Fatalf("got %v, want type %s", m, wantType)
		}
		return m
	case <-otaCtx(d.t).Done():
		d.t.Fatalf("no %s received", wantType)
	}
	return nil
}

func (d *otaDevice) progress(state, extra string) {
	d.send(`{"type":"report_progress","report":{"progress":{"state":"` + state + `"` + extra + `},"version":"2.0.0"}}`)
}

func waitOTA(t *testing.T, s *Server, cond func(OTAJobState) bool) OTAJobState {
	t.Helper()
	st, err := s.WaitOTAJob(otaCtx(t), otaPID, otaDN, cond)
	if err != nil {
		t.Fatalf("%v (job %+v)", err, st)
	}
	return st
}

func TestOTAJobStateMachine(t *testing.T) {
	s, d := newOTAPlatform(t)
	image := bytes.Repeat([]byte("firmware"), 10_000)
	info, err := s.UploadFirmware(otaPID, "2.0.0", bytes.NewReader(image))
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(image)
	if info.Size != int64(len(image)) || info.MD5 != hex.EncodeToString(sum[:]) {
		t.Fatalf("info = %+v", info)
	}
	// A job for a device that has not reported stays pending: nothing is pushed yet.
	if err := s.PushUpdate(otaPID, otaDN, "2.0.0"); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.OTAJob(otaPID, otaDN); st.State != OTAPending || st.Pushes != 0 {
		t.Fatalf("job before report = %+v", st)
	}
	d.send(`{"type":"report_version","report":{"version":"1.0.0"}}`)
	rsp := d.recv("report_version_rsp")
	if rsp["result_code"] != json.Number("0") || rsp["version"] != "1.0.0" || rsp["result_msg"] != "success" {
		t.Errorf("rsp = %v", rsp)
	}
	up := d.recv("update_firmware")
	if up["version"] != "2.0.0" || up["md5sum"] != info.MD5 || up["file_size"] != json.Number("80000") ||
		!strings.HasPrefix(up["url"].(string), s.FirmwareTLSURL()+"/"+otaPID+"_2.0.0_"+info.VersionID+"?") {
		t.Errorf("update_firmware = %v", up)
	}
	// The pushed URL serves the image over HTTPS with Range.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.RootCAs()}}}
	req, _ := http.NewRequest(http.MethodGet, up["url"].(string), nil)
	req.Header.Set("Range", "bytes=100-")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, image[100:]) {
		t.Errorf("ranged download: %s, %d bytes", resp.Status, len(body))
	}
	if reqs := s.FirmwareRequests(otaPID, "2.0.0"); len(reqs) != 1 || reqs[0].Range != "bytes=100-" || reqs[0].Status != 206 {
		t.Errorf("requests = %+v", reqs)
	}

	d.progress("downloading", `,"percent":"50","result_code":"0","result_msg":""`)
	waitOTA(t, s, func(j OTAJobState) bool { return j.State == OTADownloading && j.Percent == 50 })
	d.progress("downloading", `,"percent":"abc"`)                                                                   // malformed: ignored
	d.progress("exploding", ``)                                                                                     // unknown state: ignored
	d.send(`{"type":"report_progress","report":{"progress":{"state":"downloading","percent":70},"version":"9.9"}}`) // other version
	d.progress("downloading", `,"percent":60`)                                                                      // numbers accepted too
	st := waitOTA(t, s, func(j OTAJobState) bool { return j.Percent == 60 })
	if n := len(st.History); n != 3 { // pending (created), 50, 60: the bad reports left no trace
		t.Errorf("history = %+v", st.History)
	}
	d.progress("burning", `,"result_code":"0","result_msg":""`)
	waitOTA(t, s, func(j OTAJobState) bool { return j.State == OTABurning })
	d.progress("fail", `,"result_code":"-5","result_msg":"time_out"`)
	st = waitOTA(t, s, func(j OTAJobState) bool { return j.State == OTAFail })
	if st.ResultCode != -5 || st.ResultMsg != "time_out" {
		t.Errorf("fail = %+v", st)
	}
	// Rebooted on the old version: the platform re-pushes with a newly signed URL.
	d.send(`{"type":"report_version","report":{"version":"1.0.0"}}`)
	d.recv("report_version_rsp")
	up2 := d.recv("update_firmware")
	if up2["url"] == up["url"] {
		t.Error("re-push reused the old URL")
	}
	st = waitOTA(t, s, func(j OTAJobState) bool { return j.Pushes == 2 })
	if st.State != OTAPending || st.ResultCode != 0 {
		t.Errorf("after re-push = %+v", st)
	}
	d.progress("done", `,"result_code":"0","result_msg":""`)
	waitOTA(t, s, func(j OTAJobState) bool { return j.State == OTADone && j.Percent == 100 })
	d.progress("downloading", `,"percent":"10","result_code":"0","result_msg":""`) // late QoS 0 report
	d.send(`{"type":"report_version","report":{"version":"2.0.0"}}`)
	d.recv("report_version_rsp")
	st = waitOTA(t, s, func(j OTAJobState) bool { return j.ReportedVersion == "2.0.0" })
	if st.State != OTADone || st.Pushes != 2 {
		t.Errorf("final = %+v", st)
	}
	if v, _ := s.FirmwareVersion(otaPID, otaDN); v != "2.0.0" {
		t.Errorf("FirmwareVersion = %q", v)
	}
}

func TestOTAReportVersionRejectsBadVersion(t *testing.T) {
	_, d := newOTAPlatform(t)
	d.send(`{"type":"report_version","report":{"version":"` + strings.Repeat("v", 33) + `"}}`)
	rsp := d.recv("report_version_rsp")
	if rsp["result_code"] == json.Number("0") || !strings.Contains(rsp["result_msg"].(string), "1-32") {
		t.Errorf("rsp = %v", rsp)
	}
}

func TestOTAPushToOnlineDeviceAndAlreadyCurrent(t *testing.T) {
	s, d := newOTAPlatform(t)
	s.UploadFirmware(otaPID, "2.0.0", strings.NewReader("img"))
	s.UploadFirmware(otaPID, "1.0.0", strings.NewReader("old"))
	d.send(`{"type":"report_version","report":{"version":"1.0.0"}}`)
	d.recv("report_version_rsp")
	if err := s.PushUpdate(otaPID, otaDN, "2.0.0", WithPlainHTTPURL(), WithUserDefined(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	up := d.recv("update_firmware") // reported and online: pushed at once
	if !strings.HasPrefix(up["url"].(string), s.FirmwareURL()+"/") || up["user_defined"] != `{"a":1}` {
		t.Errorf("update_firmware = %v", up)
	}
	if err := s.PushUpdate(otaPID, otaDN, "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.OTAJob(otaPID, otaDN); st.State != OTADone {
		t.Errorf("job to the running version = %+v", st)
	}
	if err := s.PushUpdate(otaPID, otaDN, "3.0.0"); err == nil || !strings.Contains(err.Error(), "3.0.0") {
		t.Errorf("push of unknown version: %v", err)
	}
	if err := s.PushUpdate(otaPID, "nobody", "2.0.0"); err == nil {
		t.Error("push to unknown device accepted")
	}
}

func TestOTAJSONAPI(t *testing.T) {
	s, d := newOTAPlatform(t)
	post := func(path, ctype, body string) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(s.HTTPURL()+path, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, out := post("/api/firmware?product="+otaPID+"&version=2.0.0", "application/octet-stream", "firmware-bytes")
	sum := md5.Sum([]byte("firmware-bytes"))
	if code != 201 || out["version_id"] == "" || out["md5"] != hex.EncodeToString(sum[:]) || out["size"] != float64(14) {
		t.Errorf("upload: %d %v", code, out)
	}
	if code, out = post("/api/firmware?product="+otaPID, "application/octet-stream", "x"); code != 400 || !strings.Contains(out["error"].(string), "version") {
		t.Errorf("upload without version: %d %v", code, out)
	}
	if code, _ = post("/api/firmware?product="+otaPID+"&version=1", "multipart/form-data; boundary=x", "x"); code != 415 {
		t.Errorf("multipart upload: %d", code)
	}
	if code, out = post("/api/firmware?product="+otaPID+"&version=1", "application/octet-stream", ""); code != 400 || !strings.Contains(out["error"].(string), "empty") {
		t.Errorf("empty upload: %d %v", code, out)
	}
	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{"/api/devices/" + otaPID + "/" + otaDN + "/ota", `{"version":"2.0.0"}`, 202},
		{"/api/devices/" + otaPID + "/nobody/ota", `{"version":"2.0.0"}`, 404},
		{"/api/devices/" + otaPID + "/" + otaDN + "/ota", `{"version":"7"}`, 404},
		{"/api/devices/" + otaPID + "/" + otaDN + "/ota", `{"version":`, 400},
		{"/api/devices/" + otaPID + "/" + otaDN + "/ota", `{}`, 400},
	} {
		if code, out := post(tc.path, "application/json", tc.body); code != tc.code {
			t.Errorf("POST %s %s: %d %v, want %d", tc.path, tc.body, code, out, tc.code)
		}
	}
	d.send(`{"type":"report_version","report":{"version":"1.0.0"}}`)
	d.recv("report_version_rsp")
	d.recv("update_firmware")
	waitOTA(t, s, func(j OTAJobState) bool { return j.Pushes == 1 })
	for _, path := range []string{"/api/devices/" + otaPID + "/" + otaDN + "/ota", "/api/devices/" + otaPID + "/" + otaDN} {
		resp, err := http.Get(s.HTTPURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		job := doc
		if sec, ok := doc["ota"].(map[string]any); ok {
			job = sec
		}
		if resp.StatusCode != 200 || job["target_version"] != "2.0.0" || job["reported_version"] != "1.0.0" || job["state"] != "pending" {
			t.Errorf("GET %s: %d %v", path, resp.StatusCode, doc)
		}
	}
	if resp, _ := http.Get(s.HTTPURL() + "/api/devices/" + otaPID + "/other/ota"); resp.StatusCode != 404 {
		t.Errorf("job of unknown device: %s", resp.Status)
	}
}

// A device that keeps sending report_progress cannot grow its job: History keeps the
// newest MaxOTAHistory entries, counts the rest, and long result messages are cut.
func TestOTAHistoryBounded(t *testing.T) {
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.AddDevice(otaPID, otaDN); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UploadFirmware(otaPID, "2.0.0", strings.NewReader("img")); err != nil {
		t.Fatal(err)
	}
	if err := s.PushUpdate(otaPID, otaDN, "2.0.0"); err != nil {
		t.Fatal(err)
	}
	id := DeviceID{otaPID, otaDN}
	const n = 20000
	long := strings.Repeat("é", 1000)
	for i := range n {
		payload := fmt.Sprintf(`{"type":"report_progress","report":{"progress":{"state":"downloading","percent":"%d","result_code":"0","result_msg":"%s"},"version":"2.0.0"}}`, i%101, long)
		s.ota.handleReport(uplink{Client: id, Device: id, Topic: "$ota/report/" + id.String(), Payload: []byte(payload)})
	}
	st, ok := s.OTAJob(otaPID, otaDN)
	if !ok {
		t.Fatal("no job")
	}
	total := n + 1 // plus "job created"
	if len(st.History) != MaxOTAHistory || st.HistoryDropped != total-MaxOTAHistory {
		t.Fatalf("history %d entries, %d dropped; want %d and %d", len(st.History), st.HistoryDropped, MaxOTAHistory, total-MaxOTAHistory)
	}
	last := st.History[len(st.History)-1]
	if last.Percent != (n-1)%101 || len(last.ResultMsg) > maxOTAResultMsg+len("…(truncated)") || !utf8.ValidString(last.ResultMsg) {
		t.Fatalf("newest entry = %+v", last)
	}
	if c := cap(s.ota.jobs[id].state.History); c > 2*MaxOTAHistory {
		t.Fatalf("history backing array grew to %d", c)
	}
}
