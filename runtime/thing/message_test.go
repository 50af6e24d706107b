package thing

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/template"
)

func TestParseDown(t *testing.T) {
	m, err := parseDown([]byte(`{"method":"get_status_reply","clientToken":"P-1","code":0,"status":"success","type":"control","data":{"control":{"power_switch":1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Method != "get_status_reply" || m.ClientToken != "P-1" || !m.HasCode || m.Code != 0 ||
		m.Status != "success" || m.Type != "control" || string(m.Data) != `{"control":{"power_switch":1}}` {
		t.Fatalf("parsed %+v", m)
	}

	m, err = parseDown([]byte(`{"method":"action","clientToken":"c","actionId":"light_on","timestamp":1795634903,"params":{"is_on":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.ActionID != "light_on" || string(m.Params) != `{"is_on":1}` || m.HasCode {
		t.Fatalf("parsed %+v", m)
	}
}

func TestParseDownErrors(t *testing.T) {
	tests := []struct {
		in, wantErr   string
		wantMsg       bool // a partial message comes back
		token, method string
	}{
		{`not json`, "payload: want a JSON object, got invalid JSON", false, "", ""},
		{``, "payload: want a JSON object, got nothing", false, "", ""},
		{`[1]`, "want a JSON object, got array", false, "", ""},
		{`{"method":`, "payload: invalid JSON", false, "", ""},
		{`{}`, "field method: missing", true, "", ""},
		{`{"method":""}`, "field method: empty", true, "", ""},
		{`{"method":7}`, "field method: want a string, got number", true, "", ""},
		{`{"method":"control","clientToken":5}`, "field clientToken: want a string, got number", true, "", ""},
		{`{"method":"control","clientToken":"t","params":[1]}`, "field params: want an object, got array", true, "t", "control"},
		{`{"method":"report_reply","clientToken":"t","code":"0"}`, "field code: want an integer, got string", true, "t", "report_reply"},
		{`{"method":"report_reply","clientToken":"t","code":1.5}`, "field code: want a 32-bit integer, got 1.5", true, "t", "report_reply"},
		{`{"method":"report_reply","clientToken":"t","code":99999999999}`, "field code: want a 32-bit integer", true, "t", "report_reply"},
		{`{"method":"get_status_reply","clientToken":"t","code":0,"data":"x"}`, "field data: want an object, got string", true, "t", "get_status_reply"},
		{`{"method":"action","clientToken":"t","actionId":{}}`, "field actionId: want a string, got object", true, "t", "action"},
	}
	for _, tt := range tests {
		m, err := parseDown([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("parseDown(%s) error = %v, want %q", tt.in, err, tt.wantErr)
			continue
		}
		if (m != nil) != tt.wantMsg {
			t.Errorf("parseDown(%s) message = %v, want one: %v", tt.in, m, tt.wantMsg)
			continue
		}
		if m != nil && (m.ClientToken != tt.token || m.Method != tt.method) {
			t.Errorf("parseDown(%s) = token %q method %q, want %q %q", tt.in, m.ClientToken, m.Method, tt.token, tt.method)
		}
	}
}

func TestMarshalObject(t *testing.T) {
	type p struct {
		A int `json:"a"`
	}
	for _, tt := range []struct {
		in   any
		want string
		err  string
	}{
		{p{1}, `{"a":1}`, ""},
		{map[string]int{"b": 2}, `{"b":2}`, ""},
		{[]byte(` {"c":3} `), `{"c":3}`, ""},
		{json.RawMessage(`{"d":4}`), `{"d":4}`, ""},
		{nil, "", "nil, want a JSON object"},
		{`{"a":1}`, "", "a Go string"},
		{[]int{1}, "", "want a JSON object, got array"},
		{[]byte(`{"a":`), "", "invalid JSON"},
		{make(chan int), "", "unsupported type"},
	} {
		got, err := marshalObject("params", tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "params: ") {
				t.Errorf("marshalObject(%#v) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("marshalObject(%#v) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestTruncateStatus(t *testing.T) {
	s := strings.Repeat("é", 40) // 80 bytes
	got := truncateStatus(s)
	// 30 two-byte runes (60 bytes) and the 3-byte ellipsis: cut at a rune boundary.
	if want := strings.Repeat("é", 30) + "…"; got != want || len(got) > maxReplyStatusBytes || !utf8.ValidString(got) {
		t.Fatalf("truncateStatus = %q (%d bytes), want %q", got, len(got), want)
	}
	if got := truncateStatus(strings.Repeat("a", 70)); got != strings.Repeat("a", 61)+"…" {
		t.Errorf("truncateStatus(ASCII) = %q", got)
	}
	if got := truncateStatus(strings.Repeat("a", 64)); len(got) != 64 || strings.Contains(got, "…") {
		t.Errorf("a status of exactly the limit was cut: %q", got)
	}
	if truncateStatus("ok") != "ok" {
		t.Fatal("short status changed")
	}
}

func TestSplitDownTopic(t *testing.T) {
	for topic, want := range map[string]string{
		"$thing/down/property/P/d": "property",
		"$thing/down/action/P/d":   "action",
		"$thing/up/property/P/d":   "",
		"$thing/down":              "",
	} {
		got, ok := splitDownTopic(topic)
		if got != want || ok != (want != "") {
			t.Errorf("splitDownTopic(%q) = %q, %v", topic, got, ok)
		}
	}
}

func TestReplyError(t *testing.T) {
	e := &ReplyError{Code: 406, Status: "bad", Method: "report_reply", ClientToken: "P-3"}
	if got := e.Error(); got != `thing: report_reply code 406 ("bad") for clientToken P-3` {
		t.Fatalf("Error() = %s", got)
	}
	wrapped := errors.Join(errors.New("x"), e)
	if !IsInvalidValue(wrapped) || IsUnknownID(wrapped) || !IsRejected(wrapped) {
		t.Fatal("406 should be an invalid value")
	}
	if !IsUnknownID(&ReplyError{Code: 403}) || !errors.Is(&ReplyError{Code: 403}, template.ErrUnknownID) {
		t.Fatal("403 should be an unknown id")
	}
	if ReplyCode(nil) != 0 || ReplyCode(errors.New("x")) != CodeFailed || ReplyCode(Errorf(501, "no")) != 501 {
		t.Fatal("ReplyCode")
	}
	if failureCode(Errorf(0, "claims success")) != CodeFailed {
		t.Fatal("a failure must never be answered with code 0")
	}
}
