package template

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

	"os"
	"testing"
)

// FuzzParse: Parse never panics, and every error carries a position inside the input.
// The seed corpus is every real template plus testdata/light.json.
func FuzzParse(f *testing.F) {
	files := append(realTemplates(f), "testdata/light.json")
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"properties":[{"id":"a","mode":"r","define":{"type":"array","arrayInfo":{"type":"struct","specs":[]}}}]}`))
	f.Add([]byte("\xEF\xBB\xBF{\"properties\":[{\"id\":\"\\u0061\",\"mode\":\"r\",\"define\":{\"type\":\"int\",\"min\":\"1\",\"max\":\"0\"}}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The scanner agrees with encoding/json on what is JSON (apart from a tolerated
		// byte order mark, invalid UTF-8 and nesting deeper than maxDepth).
		if utf8.Valid(data) && !bytes.HasPrefix(data, []byte("\xEF\xBB\xBF")) {
			_, serr := parseTree(data, nil)
			if valid := stdjson.Valid(data); valid && serr != nil && !strings.Contains(serr.msg, "nesting deeper") {
				t.Fatalf("valid JSON %q rejected: %v", data, serr.msg)
			} else if !valid && serr == nil {
				t.Fatalf("invalid JSON %q accepted", data)
			}
		}
		tpl, err := Parse("f.json", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
			}
			if tpl != nil {
				t.Fatal("template returned with errors")
			}
			for i, e := range list {
				if e.Pos.Line < 1 || e.Pos.Col < 1 || e.Pos.Offset < 0 || e.Pos.Offset > len(data) || e.File != "f.json" || e.Msg == "" {
					t.Fatalf("bad error %d: %+v", i, e)
				}
				if i > 0 && list[i-1].Pos.Offset > e.Pos.Offset {
					t.Fatalf("errors not sorted: %v", err)
				}
			}
			return
		}
		for _, w := range tpl.Warnings {
			if w.Pos.Line < 1 || w.Pos.Col < 1 || w.Pos.Offset > len(data) {
				t.Fatalf("bad warning position: %+v", w)
			}
		}
		// Whatever parsed must be checkable without panics.
		_ = tpl.CheckProperties(data, false)
		for _, e := range tpl.Events {
			_ = tpl.CheckEventParams(e.ID, data)
		}
		for _, a := range tpl.Actions {
			_ = tpl.CheckActionInput(a.ID, data)
		}
	})
}

// FuzzCheckProperties: the raw checker never panics and classifies every failure.
func FuzzCheckProperties(f *testing.F) {
	tpl, err := ParseFile("testdata/light.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"power_switch":1,"brightness":42,"color_mode":3,"switch_names":["Reading","Sleep"],"today_ec":{"date":"202311","ec":1.25}}`,
		`{"points":[{"x":1,"on":1}],"name":"\u5ba2\ud83d\ude00","last_on":"17"}`,
		`{"brightness":1,}`, `null`, `[]`, `{"unit_mode":"celsius","temperature":-2e1}`,
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, writable bool) {
		err := tpl.CheckProperties(data, writable)
		// Differential check of the scanner against encoding/json's validator, the strict
		// reference (goccy/go-json's Valid accepts "00"), skipping what this package treats
		// differently on purpose: empty input, invalid UTF-8, repeated keys, deep nesting.
		if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && utf8.Valid(data) {
			valid := stdjson.Valid(data)
			malformed := errors.Is(err, ErrMalformed)
			if !valid && !malformed {
				t.Fatalf("invalid JSON %q not reported as malformed (err = %v)", data, err)
			}
			if valid && malformed && !strings.Contains(err.Error(), "duplicate key") &&
				!strings.Contains(err.Error(), "nesting deeper") && !strings.Contains(err.Error(), "must be a JSON object") {
				t.Fatalf("valid JSON %q reported as malformed: %v", data, err)
			}
		}
		if err == nil {
			return
		}
		var ve *ValueError
		if !errors.As(err, &ve) {
			t.Fatalf("not a ValueError: %T", err)
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalidValue) && !errors.Is(err, ErrUnknownID) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}
