package explorertest

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"
)

// The official Python SDK's credentials in the transcript: shared/conformance/vectors.json
// mqtt_password[0] (source: official-python-sdk-capture).
const (
	pyPID    = "ABCDEFGHIJ"
	pyDN     = "dev1"
	pySecret = "ZmFrZS1wc2stMDEyMzQ1Ng=="
	// pyExpiryMS is the username's expiry field: the SDK's own clock in milliseconds at CONNECT.
	pyExpiryMS = 1795634902497
)

type transcriptRecord struct {
	Dir          string          `json:"dir"`
	Packet       string          `json:"packet"`
	Topic        string          `json:"topic"`
	QoS          byte            `json:"qos"`
	Payload      json.RawMessage `json:"payload"`
	ClientID     string          `json:"client_id"`
	Username     string          `json:"username"`
	Password     string          `json:"password"`
	Protocol     string          `json:"protocol"`
	KeepAlive    int             `json:"keepalive"`
	CleanSession bool            `json:"clean_session"`
}

func loadTranscript(t *testing.T) []transcriptRecord {
	t.Helper()
	f, err := os.Open("testdata/official-python-sdk-transcript.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []transcriptRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var r transcriptRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("transcript line %d: %v", line, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// transcriptPart says which platform feature a topic belongs to; this test replays the
// data-template ($thing) and time-service ($sys) parts. Gateway and OTA records are replayed by
// their features' own tests; custom topics are plain broker traffic.
func transcriptPart(topic string) string {
	switch {
	case strings.HasPrefix(topic, "$gateway/"), strings.Contains(topic, "/SUBPROD001/"):
		return "gateway" // includes the sub-device's $thing topics proxied by the gateway
	case strings.HasPrefix(topic, "$thing/"):
		return "thing"
	case strings.HasPrefix(topic, "$sys/"):
		return "sys"
	case strings.HasPrefix(topic, "$ota/"):
		return "ota"
	default:
		return "custom"
	}
}

func isDeviceReply(payload []byte) bool {
	var m struct {
		Method *string         `json:"method"`
		Code   json.RawMessage `json:"code"`
	}
	_ = json.Unmarshal(payload, &m)
	return (m.Method == nil && len(m.Code) > 0) || (m.Method != nil && strings.HasSuffix(*m.Method, "_reply"))
}

// knownDeviations lists where the platform deliberately answers differently from the
// transcript's imitated cloud→device records (those were written from the docs, not captured).
var knownDeviations = map[string]string{
	// docs/PROTOCOL.md §2.4.6: the real platform answers the Python SDK's event_post-with-events-array
	// with events_reply.
	"ABCDEFGHIJ-3": "events_reply",
}

// TestTranscriptReplayPythonSDK replays what the official Python SDK sent (CONNECT with its exact
// MQTT 3.1 credentials, then every $thing and $sys message) and checks that the platform's answers
// match the transcript's cloud→device records: method, code, clientToken and data shapes.
// Cloud-initiated records (control, action) are produced with SendControl/InvokeAction and the
// SDK's recorded answers are sent back with the platform's clientToken substituted.
func TestTranscriptReplayPythonSDK(t *testing.T) {
	recs := loadTranscript(t)
	// The username carries the SDK's millisecond clock as expiry; run the platform clock from a
	// little before that moment so the recorded signature is valid whatever today's date.
	base := time.UnixMilli(pyExpiryMS).Add(-10 * time.Minute)
	start := time.Now()
	s := newThingServer(t, WithClock(func() time.Time { return base.Add(time.Since(start)) }))
	if err := s.AddProductAs(pyPID, thLoadTemplate(t, "light.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDevice(pyPID, pyDN, WithSecret(pySecret)); err != nil {
		t.Fatal(err)
	}
	// The transcript's platform already knew this state (see its get_status_reply).
	if err := s.SetReported(pyPID, pyDN, `{"power_switch":0,"color":0,"brightness":10,"name":"livingroom"}`); err != nil {
		t.Fatal(err)
	}

	conn := recs[0]
	if conn.Packet != "CONNECT" || !strings.Contains(conn.Protocol, "3.1 ") {
		t.Fatalf("first record is not the MQTT 3.1 CONNECT: %+v", conn)
	}
	if conn.ClientID != pyPID+pyDN {
		t.Fatalf("client id %q", conn.ClientID)
	}
	d := thConnectAs(t, s, pyPID, pyDN, conn.Username, conn.Password, 3, nil)

	tokens := map[string]string{} // transcript clientToken -> platform's
	var pending chan func()       // result check of the cloud call in flight
	expect := 0                   // index of the next cloud→device record to match
	replayed := map[string]int{}
	for i := 1; i < len(recs); i++ {
		r := recs[i]
		part := transcriptPart(r.Topic)
		if part != "thing" && part != "sys" {
			replayed["skipped "+part]++
			continue
		}
		replayed[part]++
		switch {
		case r.Dir == "device->cloud" && r.Packet == "SUBSCRIBE":
			d.subscribe(r.Topic)
		case r.Dir == "device->cloud" && r.Packet == "UNSUBSCRIBE":
			if tok := d.c.Unsubscribe(r.Topic); !tok.WaitTimeout(thWait) || tok.Error() != nil {
				t.Fatalf("record %d: unsubscribe: %v", i+1, tok.Error())
			}
		case r.Dir == "device->cloud" && r.Packet == "PUBLISH":
			payload := []byte(r.Payload)
			for from, to := range tokens {
				payload = bytes.ReplaceAll(payload, []byte(`"`+from+`"`), []byte(`"`+to+`"`))
			}
			if tok := d.c.Publish(r.Topic, r.QoS, false, payload); !tok.WaitTimeout(thWait) || tok.Error() != nil {
				t.Fatalf("record %d: publish: %v", i+1, tok.Error())
			}
			if isDeviceReply(r.Payload) {
				if pending == nil {
					t.Fatalf("record %d: a device reply with no cloud request in flight", i+1)
				}
				check := <-pending
				check()
				pending = nil
			}
		case r.Dir == "cloud->device" && r.Packet == "PUBLISH":
			expect = i
			var want map[string]any
			if err := json.Unmarshal(r.Payload, &want); err != nil {
				t.Fatal(err)
			}
			if m := want["method"]; m == "control" || m == "action" {
				pending = startCloudCall(t, s, i+1, want)
			}
			got := d.next()
			compareRecord(t, i+1, r, want, got, tokens)
		}
	}
	if pending != nil {
		t.Fatal("a cloud request got no device reply by the end of the transcript")
	}
	if expect == 0 {
		t.Fatal("no cloud→device record replayed")
	}
	t.Logf("replayed records: %v", replayed)
}

// startCloudCall issues the cloud request a control/action record shows and returns a channel
// delivering the check of its outcome once the device answered.
func startCloudCall(t *testing.T, s *Server, line int, want map[string]any) chan func() {
	done := make(chan func(), 1)
	params, _ := json.Marshal(want["params"])
	ctx := thCtx(t)
	go func() {
		if want["method"] == "control" {
			rep, err := s.SendControl(ctx, pyPID, pyDN, params)
			done <- func() {
				if err != nil || rep.Code != 0 || rep.Status != "success" || rep.HasMethod {
					t.Errorf("record %d: SendControl = %+v, %v; want code 0 from a reply without method", line, rep, err)
				}
			}
			return
		}
		rep, err := s.InvokeAction(ctx, pyPID, pyDN, want["actionId"].(string), params)
		done <- func() {
			if err != nil || rep.Code != 0 || string(rep.Response) != `{"err_code":0}` {
				t.Errorf("record %d: InvokeAction = %+v, %v", line, rep, err)
			}
		}
	}()
	return done
}

// compareRecord checks a cloud→device message against the transcript record.
func compareRecord(t *testing.T, line int, r transcriptRecord, want map[string]any, got thMsg, tokens map[string]string) {
	t.Helper()
	if got.Topic != r.Topic {
		t.Fatalf("record %d: message on %s, want %s: %s", line, got.Topic, r.Topic, got.Raw)
	}
	gotKeys := got.keys()
	wantMsg := thMsg{Body: want}
	if gotKeys != wantMsg.keys() {
		t.Fatalf("record %d: keys %s, want %s\n got %s\nwant %s", line, gotKeys, wantMsg.keys(), got.Raw, r.Payload)
	}
	token, _ := want["clientToken"].(string)
	switch method, _ := want["method"].(string); method {
	case "control", "action":
		// The platform makes its own UUID-like token; the device's answer must carry it.
		tokens[token] = got.str("clientToken")
		if method == "action" && got.str("actionId") != want["actionId"] {
			t.Fatalf("record %d: actionId %q, want %q", line, got.str("actionId"), want["actionId"])
		}
		if !jsonEqual(t, mustJSON(got.Body["params"]), mustJSON(want["params"])) {
			t.Fatalf("record %d: params %s, want %s", line, mustJSON(got.Body["params"]), mustJSON(want["params"]))
		}
		// The record's action timestamp is in seconds (imitated); the platform sends ms.
		return
	case "":
		// $sys/operation/result: type get + times (values differ run to run).
		if got.str("type") != want["type"] {
			t.Fatalf("record %d: type %q, want %q", line, got.str("type"), want["type"])
		}
		return
	default:
		if mapped, ok := tokens[token]; ok {
			token = mapped
		}
		wantMethod := method
		if dev, ok := knownDeviations[token]; ok {
			wantMethod = dev
		}
		if got.str("method") != wantMethod || got.str("clientToken") != token {
			t.Fatalf("record %d: method/clientToken %q/%q, want %q/%q: %s", line, got.str("method"), got.str("clientToken"), wantMethod, token, got.Raw)
		}
		if got.code(t) != 0 || got.str("status") != want["status"] {
			t.Fatalf("record %d: code/status %d/%q, want 0/%q", line, got.code(t), got.str("status"), want["status"])
		}
		for _, k := range []string{"type", "version", "data"} {
			if w, ok := want[k]; ok && !jsonEqual(t, mustJSON(got.Body[k]), mustJSON(w)) {
				t.Fatalf("record %d: %s = %s, want %s", line, k, mustJSON(got.Body[k]), mustJSON(w))
			}
		}
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
