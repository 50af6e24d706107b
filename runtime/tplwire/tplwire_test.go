package tplwire_test

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/tplwire"
)

func TestBoolJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want tplwire.Bool
	}{{"0", false}, {"1", true}, {"true", true}, {"false", false}, {" 1 ", true}} {
		var b tplwire.Bool
		if err := json.Unmarshal([]byte(tc.in), &b); err != nil {
			t.Fatalf("Unmarshal(%q): %v", tc.in, err)
		}
		if b != tc.want {
			t.Errorf("Unmarshal(%q) = %v, want %v", tc.in, b, tc.want)
		}
	}
	for _, bad := range []string{"2", `"1"`, "-1", "1.0", "{}", "[]"} {
		var b tplwire.Bool
		if err := json.Unmarshal([]byte(bad), &b); err == nil {
			t.Errorf("Unmarshal(%q) = %v, want error", bad, b)
		}
	}
	out, err := json.Marshal(struct {
		A tplwire.Bool  `json:"a"`
		B *tplwire.Bool `json:"b,omitempty"`
		C *tplwire.Bool `json:"c,omitempty"`
	}{A: true, B: tplwire.Ptr(tplwire.Bool(false))})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"a":1,"b":0}` {
		t.Errorf("Marshal = %s", out)
	}
	// null keeps the previous value, like encoding/json does for other types.
	b := tplwire.Bool(true)
	if err := json.Unmarshal([]byte("null"), &b); err != nil || !b {
		t.Errorf("null: %v %v", b, err)
	}
}

func TestTimestampJSON(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want tplwire.Timestamp
	}{
		{"1577871650", 1577871650},
		{"1577871650123", 1577871650}, // milliseconds
		{`"1577871650"`, 1577871650},
		{`"1577871650999"`, 1577871650},
		{"1.57787165e9", 1577871650},
		{"0", 0},
		{"-5", -5},
		{"100000000000", 100000000000}, // exactly the threshold: still seconds
	} {
		var ts tplwire.Timestamp
		if err := json.Unmarshal([]byte(tc.in), &ts); err != nil {
			t.Fatalf("Unmarshal(%s): %v", tc.in, err)
		}
		if ts != tc.want {
			t.Errorf("Unmarshal(%s) = %d, want %d", tc.in, ts, tc.want)
		}
	}
	for _, bad := range []string{`"abc"`, "1.5", "true", "{}", `""`, "1e400"} {
		var ts tplwire.Timestamp
		err := json.Unmarshal([]byte(bad), &ts)
		if err == nil {
			t.Errorf("Unmarshal(%s) = %d, want error", bad, ts)
		} else if !strings.Contains(err.Error(), "timestamp") {
			t.Errorf("Unmarshal(%s) error %q does not name the type", bad, err)
		}
	}
	out, err := json.Marshal(tplwire.Timestamp(1577871650))
	if err != nil || string(out) != "1577871650" {
		t.Errorf("Marshal = %s, %v", out, err)
	}
	now := time.Date(2024, 5, 16, 1, 2, 3, 999, time.UTC)
	if got := tplwire.TimestampOf(now).Time(); !got.Equal(now.Truncate(time.Second)) {
		t.Errorf("round trip through time.Time: %v", got)
	}
}

func TestChecks(t *testing.T) {
	var e tplwire.Errors
	if e.Err() != nil {
		t.Fatal("empty Errors must be nil")
	}
	e.Add(nil)
	e.Add(tplwire.CheckInt("brightness", 101, 0, 100))
	e.Add(tplwire.CheckInt("ok", 5, math.MinInt64, math.MaxInt64))
	e.Add(tplwire.CheckFloat(tplwire.Join("struct", "f"), math.NaN(), 0, 1))
	e.Add(tplwire.CheckFloat("v", -0.5, 0, math.MaxFloat64))
	e.Add(tplwire.CheckString(tplwire.Index("names", 2), "héllo", 0, 4))
	e.Add(tplwire.CheckString("bad", "\xff", 0, 4))
	e.Add(tplwire.NotOneOf("color", "7", "0,1,2"))
	e.Add(tplwire.Missing("arr"))
	err := e.Err()
	want := []string{
		"brightness: 101 out of range [0,100]",
		"struct.f: NaN is not a finite number",
		"v: -0.5 is below the minimum 0",
		"names[2]: length 5 out of range [0,4]",
		"bad: string is not valid UTF-8",
		"color: 7 is not one of 0,1,2",
		"arr: missing",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	if strings.Contains(err.Error(), "ok:") {
		t.Errorf("unbounded int reported: %v", err)
	}
	if !errors.Is(err, tplwire.ErrInvalidValue) {
		t.Error("errors.Is(err, ErrInvalidValue) = false")
	}
	var ve *tplwire.ValueError
	if !errors.As(err, &ve) || ve.Path != "brightness" {
		t.Errorf("errors.As: %#v", ve)
	}
}

// The version guard works through constant arithmetic; this just pins the current values.
func TestVersionConstants(t *testing.T) {
	const _ = tplwire.EnforceVersion(tplwire.GeneratedVersion - tplwire.MinVersion)
	const _ = tplwire.EnforceVersion(tplwire.MaxVersion - tplwire.GeneratedVersion)
}

// TestAppendMatchesEncodingJSON: the generated code's encoders write what encoding/json would
// for the same value (strings: it without HTML escaping, which the platform does not need).
func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "hall", "客厅", "a\"b\\c", "tab\there\nnew\r", "\x00\x1f", "\xff\xfe", "\u2028\u2029", "<&>", "emoji 🌡️"} {
		var want bytes.Buffer
		enc := stdjson.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := string(tplwire.AppendString(nil, s)); got != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("AppendString(%q) = %s, encoding/json %s", s, got, want.String())
		}
	}
	for _, f := range []float64{0, 1, -1, 0.1, 1.5e-7, 123456789, 1e21, 1e20, -2.5e-9, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		want, err := stdjson.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(tplwire.AppendFloat(nil, f)); got != string(want) {
			t.Errorf("AppendFloat(%v) = %s, encoding/json %s", f, got, want)
		}
	}
	if got := string(tplwire.AppendFloat(nil, math.NaN())); got != "null" {
		t.Errorf("AppendFloat(NaN) = %s", got)
	}
	if got := string(tplwire.Bool(true).AppendJSON(tplwire.Timestamp(5).AppendJSON(nil))); got != "51" {
		t.Errorf("Bool/Timestamp AppendJSON = %s", got)
	}
}
