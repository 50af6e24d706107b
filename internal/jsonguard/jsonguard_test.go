package jsonguard

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestUnmarshal(t *testing.T) {
	var v struct {
		A int `json:"a"`
	}
	if err := Unmarshal([]byte(`{"a":7}`), &v); err != nil || v.A != 7 {
		t.Fatalf("valid input: %v, %+v", err, v)
	}
	for _, tc := range []struct {
		in   string
		want error
		msg  string
	}{
		{`{"a":`, ErrInvalid, "at byte"},
		{``, ErrInvalid, "empty input"},
		{`{"a\`, ErrInvalid, "at byte"}, // the input that made goccy read out of bounds
		{`{"a":1}x`, ErrInvalid, "at byte 8"},
	} {
		err := Unmarshal([]byte(tc.in), &v)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Unmarshal(%q) = %v; want %v containing %q", tc.in, err, tc.want, tc.msg)
		}
	}
}

func TestLimit(t *testing.T) {
	big := []byte(`"` + strings.Repeat("x", 100) + `"`)
	var s string
	if err := UnmarshalLimit(big, &s, 50); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "102 bytes, limit 50") {
		t.Fatalf("over the cap: %v", err)
	}
	if err := UnmarshalLimit(big, &s, len(big)); err != nil || len(s) != 100 {
		t.Fatalf("at the cap: %v", err)
	}
	if _, err := ReadAll(bytes.NewReader(big), 101); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ReadAll over the cap: %v", err)
	}
	if err := Decode(bytes.NewReader(big), &s, 102); err != nil {
		t.Fatalf("Decode at the cap: %v", err)
	}
}

func TestUnmarshalStrict(t *testing.T) {
	var v struct {
		A struct {
			B int `json:"b"`
		} `json:"a"`
	}
	if err := UnmarshalStrict([]byte(`{"a":{"b":1}}`), &v, 100); err != nil || v.A.B != 1 {
		t.Fatalf("known fields: %v", err)
	}
	if err := UnmarshalStrict([]byte(`{"a":{"b":1,"c":2}}`), &v, 100); err == nil || !strings.Contains(err.Error(), `"c"`) {
		t.Fatalf("unknown nested field: %v", err)
	}
	if err := UnmarshalStrict([]byte(`{"a":`), &v, 100); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid: %v", err)
	}
}

func TestCompact(t *testing.T) {
	var b bytes.Buffer
	if err := Compact(&b, []byte("{ \"a\" : [1, 2] }")); err != nil || b.String() != `{"a":[1,2]}` {
		t.Fatalf("Compact: %v %q", err, b.String())
	}
	if err := Compact(&b, []byte(`{`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Compact invalid: %v", err)
	}
}

func TestClip(t *testing.T) {
	if got := Clip([]byte("a\nb")); got != `"a\nb"` {
		t.Fatalf("Clip quotes control characters: %s", got)
	}
	if got := Clip(bytes.Repeat([]byte("x"), 100)); !strings.HasSuffix(got, "…") || len(got) > 70 {
		t.Fatalf("Clip long: %s", got)
	}
}

// FuzzUnmarshal: any input is either refused with one of the package's errors or decoded to
// what the standard library decodes; it never panics.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a\`, `[1,{"b":"\u00e9"}]`, `"x"`, ``, `{"params":`, `1e400`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got any
		err := Unmarshal(data, &got)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrDecoder) {
				// goccy may still refuse well-formed input it cannot represent (e.g. 1e400).
				if !stdjson.Valid(data) {
					t.Fatalf("invalid input %q got an unclassified error: %v", data, err)
				}
			}
			return
		}
		if !stdjson.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		var b bytes.Buffer
		if err := Compact(&b, data); err != nil {
			t.Fatalf("Compact refused what Unmarshal accepted (%q): %v", data, err)
		}
	})
}

func ExampleUnmarshal() {
	var msg struct {
		Method string `json:"method"`
	}
	err := Unmarshal([]byte(`{"method":"report",`), &msg)
	fmt.Println(errors.Is(err, ErrInvalid))
	err = Unmarshal([]byte(`{"method":"report"}`), &msg)
	fmt.Println(err, msg.Method)
	// Output:
	// true
	// <nil> report
}
