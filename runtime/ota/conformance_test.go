package ota

import (
	"bufio"
	"os"
	"reflect"
	"testing"

	"github.com/goccy/go-json"
)

type transcriptRecord struct {
	Dir     string          `json:"dir"`
	Packet  string          `json:"packet"`
	QoS     int             `json:"qos"`
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
}

func loadTranscript(t *testing.T) []transcriptRecord {
	t.Helper()
	f, err := os.Open("testdata/python-sdk-ota.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []transcriptRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r transcriptRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func sameJSON(t *testing.T, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(g, w)
}

// TestUplinkMatchesOfficialSDK checks our uplink payloads and QoS field for field against what
// the official Python SDK sent (numbers as strings inside progress).
func TestUplinkMatchesOfficialSDK(t *testing.T) {
	recs := loadTranscript(t)
	version := reportVersionMsg{Type: "report_version"}
	version.Report.Version = "1.0.0"
	ours := []struct {
		msg any
		qos int
	}{
		{version, 1},
		{newProgressMsg("1.0.1", progressBody{State: "downloading", Percent: "0", ResultCode: "0"}), 0},
		{newProgressMsg("1.0.1", progressBody{State: "downloading", Percent: "100", ResultCode: "0"}), 0},
		{newProgressMsg("1.0.1", progressBody{State: "done", ResultCode: "0"}), 1},
		{newProgressMsg("1.0.1", progressBody{State: "fail", ResultCode: "-5", ResultMsg: FailTimeout.String()}), 1},
	}
	i := 0
	for _, r := range recs {
		if r.Dir != "device->cloud" || r.Packet != "PUBLISH" {
			continue
		}
		if i >= len(ours) {
			t.Fatalf("transcript has more uplinks than expected: %s", r.Payload)
		}
		got, _ := json.Marshal(ours[i].msg)
		if !sameJSON(t, got, r.Payload) || ours[i].qos != r.QoS {
			t.Errorf("uplink %d:\n got  %s (qos %d)\n want %s (qos %d)", i, got, ours[i].qos, r.Payload, r.QoS)
		}
		i++
	}
	if i != len(ours) {
		t.Errorf("compared %d uplinks, want %d", i, len(ours))
	}
}

// TestDownlinkFromOfficialTranscriptParses feeds the transcript's downlinks to the parsers.
func TestDownlinkFromOfficialTranscriptParses(t *testing.T) {
	for _, r := range loadTranscript(t) {
		if r.Dir != "cloud->device" {
			continue
		}
		var head struct{ Type string }
		json.Unmarshal(r.Payload, &head)
		if head.Type == "update_firmware" {
			fw, err := ParseUpdate(r.Topic, r.Payload)
			if err != nil || fw.Size != 4000 || fw.Version != "1.0.1" {
				t.Errorf("ParseUpdate(%s) = %+v, %v", r.Payload, fw, err)
			}
		}
	}
}
