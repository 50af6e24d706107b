package explorertest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

func fieldServer(t *testing.T) *Server {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A device cannot grow the platform's memory: lines per device are bounded, oldest dropped
// and counted, long lines cut, oversize batches refused.
func TestDeviceLogStoreIsBounded(t *testing.T) {
	s := fieldServer(t)
	id := DeviceID{"LOGPROD001", "dev1"}
	if _, err := s.AddDevice(id.ProductID, id.DeviceName); err != nil {
		t.Fatal(err)
	}
	batch := make([]string, logMaxBatch)
	for round := range 5 {
		for i := range batch {
			batch[i] = fmt.Sprintf("INF|t|round %d line %d", round, i)
		}
		if e := s.storeLog(id, batch); e != nil {
			t.Fatal(e.message)
		}
	}
	logs, _ := s.DeviceLogs(id.ProductID, id.DeviceName)
	if len(logs.Lines) != logMaxLines || logs.Total != 5*logMaxBatch || logs.Dropped != 5*logMaxBatch-logMaxLines {
		t.Fatalf("kept %d, total %d, dropped %d", len(logs.Lines), logs.Total, logs.Dropped)
	}
	if last := logs.Lines[len(logs.Lines)-1].Text; last != fmt.Sprintf("INF|t|round 4 line %d", logMaxBatch-1) {
		t.Fatalf("newest line %q", last)
	}
	// Byte bound: big lines are cut and the total stays under logMaxBytes.
	big := make([]string, 500)
	for i := range big {
		big[i] = "ERR|" + strings.Repeat("x", 10_000)
	}
	s.storeLog(id, big)
	logs, _ = s.DeviceLogs(id.ProductID, id.DeviceName)
	total := 0
	for _, l := range logs.Lines {
		total += len(l.Text)
		if len(l.Text) > logMaxLine {
			t.Fatalf("line of %d bytes kept", len(l.Text))
		}
	}
	if total > logMaxBytes {
		t.Fatalf("%d bytes kept", total)
	}
	if e := s.storeLog(id, make([]string, logMaxBatch+1)); e == nil || e.code != GWInvalidParameter {
		t.Fatalf("oversize batch: %+v", e)
	}
	if e := s.storeLog(DeviceID{"LOGPROD001", "ghost"}, []string{"x"}); e == nil || e.code != GWDeviceNotExist {
		t.Fatalf("unknown device: %+v", e)
	}
	// A removed device's logs are forgotten.
	s.RemoveDevice(id.ProductID, id.DeviceName)
	if _, ok := s.DeviceLogs(id.ProductID, id.DeviceName); ok {
		t.Fatal("logs of a removed device still served")
	}
	// ... and released at once, not on the next access (devices come and go through the API).
	s.dlog.mu.Lock()
	kept := len(s.dlog.by)
	s.dlog.mu.Unlock()
	if kept != 0 {
		t.Fatalf("log state of %d removed devices still held", kept)
	}
}

func TestDeviceLogJSONAPI(t *testing.T) {
	s := fieldServer(t)
	s.AddDevice("LOGPROD001", "dev1")
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, s.HTTPURL()+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: %q", method, path, raw)
		}
		return resp.StatusCode, m
	}
	code, m := do("PUT", "/api/devices/LOGPROD001/dev1/log-level", `{"level":2}`)
	if code != 200 || m["level"] != float64(2) || m["pushed"] != false {
		t.Fatalf("put: %d %v", code, m)
	}
	s.storeLog(DeviceID{"LOGPROD001", "dev1"}, []string{"WRN|t|a", "ERR|t|b", "no prefix"})
	code, m = do("GET", "/api/devices/LOGPROD001/dev1/logs?limit=2", "")
	lines, _ := m["lines"].([]any)
	if code != 200 || m["level"] != float64(2) || len(lines) != 2 || m["total"] != float64(3) {
		t.Fatalf("get: %d %v", code, m)
	}
	if first := lines[0].(map[string]any); first["level"] != "ERR" || first["text"] != "ERR|t|b" {
		t.Fatalf("first line %v", first)
	}
	for _, c := range []struct{ method, path, body, msg string }{
		{"PUT", "/api/devices/LOGPROD001/dev1/log-level", `{"level":5}`, "want 0 (none)"},
		{"PUT", "/api/devices/LOGPROD001/dev1/log-level", `{}`, `{"level":0..4}`},
		{"PUT", "/api/devices/LOGPROD001/dev1/log-level", `{"level":`, "not valid JSON"},
		{"GET", "/api/devices/LOGPROD001/dev1/logs?limit=-1", "", "limit"},
		{"GET", "/api/devices/LOGPROD001/ghost/logs", "", "not registered"},
	} {
		code, m := do(c.method, c.path, c.body)
		if code/100 != 4 || !strings.Contains(fmt.Sprint(m["error"]), c.msg) {
			t.Errorf("%s %s %s: %d %v", c.method, c.path, c.body, code, m)
		}
	}
}

// FuzzReportLogBody feeds arbitrary /device/reportlog bodies (after the signature check) to
// the decoding and storing of a log upload.
func FuzzReportLogBody(f *testing.F) {
	s, err := NewServer()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	s.AddDevice("FUZZPROD01", "dev1")
	f.Add([]byte(`{"ProductId":"FUZZPROD01","DeviceName":"dev1","Message":["INF|a","ERR|b"]}`))
	f.Add([]byte(`{"Message":"x"}`))
	f.Add([]byte(`{"Message":[1,null]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var m reportLogBody
		if err := unmarshalUntrusted(body, &m); err != nil {
			return
		}
		_ = s.storeLog(DeviceID{"FUZZPROD01", "dev1"}, m.Message)
		logs, _ := s.DeviceLogs("FUZZPROD01", "dev1")
		if len(logs.Lines) > logMaxLines {
			t.Fatalf("%d lines kept", len(logs.Lines))
		}
	})
}
