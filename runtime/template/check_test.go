package template

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/goccy/go-json"
)

func lightTemplate(t testing.TB) *Template {
	t.Helper()
	tpl, err := ParseFile("testdata/light.json")
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

type checkCase struct {
	params string
	err    error  // nil = valid; else the sentinel
	msg    string // exact error text when err != nil
}

func runChecks(t *testing.T, check func([]byte) error, cases []checkCase) {
	t.Helper()
	for _, c := range cases {
		err := check([]byte(c.params))
		switch {
		case c.err == nil && err != nil:
			t.Errorf("%s: unexpected error %v", c.params, err)
		case c.err != nil && err == nil:
			t.Errorf("%s: accepted, want %v", c.params, c.err)
		case c.err != nil && !errors.Is(err, c.err):
			t.Errorf("%s: error %v does not wrap %v", c.params, err, c.err)
		case c.err != nil && err.Error() != c.msg:
			t.Errorf("%s: error %q, want %q", c.params, err.Error(), c.msg)
		}
		if err != nil {
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Errorf("%s: error %T is not a *ValueError", c.params, err)
			}
		}
	}
}

func TestCheckPropertiesProtocolPayloads(t *testing.T) {
	tpl := lightTemplate(t)
	// docs/PROTOCOL.md §2.4.1 report params, and §2.4.2 control params.
	report := `{"power_switch":1,"brightness":42,"color_mode":3,"switch_names":["Reading","Sleep"],
	           "today_ec":{"date":"202311","ec":1.25}}`
	if err := tpl.CheckProperties([]byte(report), false); err != nil {
		t.Errorf("report: %v", err)
	}
	if err := tpl.CheckProperties([]byte(`{"power_switch":0,"brightness":80}`), true); err != nil {
		t.Errorf("control: %v", err)
	}
	// §2.3: C prints floats with %f.
	if err := tpl.CheckProperties([]byte(`{"temperature":2.800000}`), false); err != nil {
		t.Errorf("C float: %v", err)
	}
}

func TestCheckPropertiesTypes(t *testing.T) {
	tpl := lightTemplate(t)
	runChecks(t, func(b []byte) error { return tpl.CheckProperties(b, false) }, []checkCase{
		// bool
		{params: `{"power_switch":0}`},
		{params: `{"power_switch":1}`},
		{params: `{"power_switch":2}`, err: ErrInvalidValue, msg: `params.power_switch: 2 is not 0 or 1 (bool)`},
		{params: `{"power_switch":1.0}`, err: ErrInvalidValue, msg: `params.power_switch: 1.0 is not 0 or 1 (bool)`},
		{params: `{"power_switch":true}`, err: ErrInvalidValue, msg: `params.power_switch: true: bool values are sent as 0 or 1, not true/false`},
		{params: `{"power_switch":"1"}`, err: ErrInvalidValue, msg: `params.power_switch: expected 0 or 1 (bool), got a string "1"`},
		// int
		{params: `{"brightness":0}`},
		{params: `{"brightness":100}`},
		{params: `{"brightness":101}`, err: ErrInvalidValue, msg: `params.brightness: 101 out of range [0,100]`},
		{params: `{"brightness":-1}`, err: ErrInvalidValue, msg: `params.brightness: -1 out of range [0,100]`},
		{params: `{"brightness":4.5}`, err: ErrInvalidValue, msg: `params.brightness: 4.5 is not an integer`},
		{params: `{"brightness":1e2}`, err: ErrInvalidValue, msg: `params.brightness: 1e2 is not an integer`},
		{params: `{"brightness":"42"}`, err: ErrInvalidValue, msg: `params.brightness: expected an integer, got a string "42"`},
		{params: `{"brightness":99999999999999999999}`, err: ErrInvalidValue, msg: `params.brightness: 99999999999999999999 does not fit in a 64-bit integer`},
		{params: `{"brightness":{}}`, err: ErrInvalidValue, msg: `params.brightness: expected an integer, got an object`},
		// float
		{params: `{"temperature":-20}`},
		{params: `{"temperature":50.5}`},
		{params: `{"temperature":5e1}`},
		{params: `{"temperature":50.6}`, err: ErrInvalidValue, msg: `params.temperature: 50.6 out of range [-20,50.5]`},
		{params: `{"temperature":"1.5"}`, err: ErrInvalidValue, msg: `params.temperature: expected a number, got a string "1.5"`},
		// string: length in runes
		{params: `{"name":""}`},
		{params: `{"name":"客厅的灯客厅的灯"}`},
		{params: `{"name":"\u5ba2\ud83d\ude00"}`},
		{params: `{"name":"客厅的灯客厅的灯灯"}`, err: ErrInvalidValue, msg: `params.name: length 9 out of range [0,8]`},
		{params: `{"name":5}`, err: ErrInvalidValue, msg: `params.name: expected a string, got the number 5`},
		// enum
		{params: `{"color_mode":1}`},
		{params: `{"color_mode":3}`},
		{params: `{"color_mode":0}`, err: ErrInvalidValue, msg: `params.color_mode: 0 is not one of 1,2,3`},
		{params: `{"color_mode":7}`, err: ErrInvalidValue, msg: `params.color_mode: 7 is not one of 1,2,3`},
		{params: `{"color_mode":"1"}`, err: ErrInvalidValue, msg: `params.color_mode: expected an enum value (one of 1,2,3), got a string "1"`},
		// stringenum
		{params: `{"unit_mode":"celsius"}`},
		{params: `{"unit_mode":"\u0063elsius"}`},
		{params: `{"unit_mode":"kelvin"}`, err: ErrInvalidValue, msg: `params.unit_mode: "kelvin" is not one of celsius,fahrenheit`},
		{params: `{"unit_mode":1}`, err: ErrInvalidValue, msg: `params.unit_mode: expected a string enum value (one of celsius,fahrenheit), got the number 1`},
		// timestamp: seconds, milliseconds, numeric strings
		{params: `{"last_on":1577871650}`},
		{params: `{"last_on":1700000000123}`},
		{params: `{"last_on":"1700000000123"}`},
		{params: `{"last_on":-5}`, err: ErrInvalidValue, msg: `params.last_on: expected a timestamp (non-negative integer seconds or milliseconds, or a string of digits), got the number -5`},
		{params: `{"last_on":"2024-01-01"}`, err: ErrInvalidValue, msg: `params.last_on: expected a timestamp (non-negative integer seconds or milliseconds, or a string of digits), got a string "2024-01-01"`},
		{params: `{"last_on":1.5}`, err: ErrInvalidValue, msg: `params.last_on: expected a timestamp (non-negative integer seconds or milliseconds, or a string of digits), got the number 1.5`},
		// array
		{params: `{"switch_names":[]}`},
		{params: `{"switch_names":["a","b"]}`},
		{params: `{"switch_names":["a",3]}`, err: ErrInvalidValue, msg: `params.switch_names[1]: expected a string, got the number 3`},
		{params: `{"switch_names":["a",null]}`, err: ErrInvalidValue, msg: `params.switch_names[1]: null element in array`},
		{params: `{"switch_names":["123456789012345678901"]}`, err: ErrInvalidValue, msg: `params.switch_names[0]: length 21 out of range [0,20]`},
		{params: `{"switch_names":"a"}`, err: ErrInvalidValue, msg: `params.switch_names: expected an array, got a string "a"`},
		// struct: partial allowed, members checked, null member = absent
		{params: `{"today_ec":{}}`},
		{params: `{"today_ec":{"ec":0.5}}`},
		{params: `{"today_ec":{"date":null,"ec":1}}`},
		{params: `{"today_ec":{"ec":1001}}`, err: ErrInvalidValue, msg: `params.today_ec.ec: 1001 out of range [0,1000]`},
		{params: `{"today_ec":{"ecx":1}}`, err: ErrUnknownID, msg: `params.today_ec.ecx: unknown struct member "ecx"`},
		{params: `{"today_ec":{"ec":1,"ec":2}}`, err: ErrMalformed, msg: `params.today_ec.ec: duplicate key`},
		{params: `{"today_ec":[1]}`, err: ErrInvalidValue, msg: `params.today_ec: expected an object (struct), got an array`},
		// array of struct
		{params: `{"points":[{"x":1,"on":1},{"x":-10}]}`},
		{params: `{"points":[{"x":1},{"x":11}]}`, err: ErrInvalidValue, msg: `params.points[1].x: 11 out of range [-10,10]`},
		{params: `{"points":[{"on":true}]}`, err: ErrInvalidValue, msg: `params.points[0].on: true: bool values are sent as 0 or 1, not true/false`},
		{params: `{"points":[{"y":1}]}`, err: ErrUnknownID, msg: `params.points[0].y: unknown struct member "y"`},
	})
}

func TestCheckPropertiesEnvelope(t *testing.T) {
	tpl := lightTemplate(t)
	runChecks(t, func(b []byte) error { return tpl.CheckProperties(b, false) }, []checkCase{
		{params: ``},
		{params: `null`},
		{params: `{}`},
		{params: ` { "brightness" : 1 } `},
		// null means absent
		{params: `{"brightness":null,"name":null}`},
		{params: `{"nope":1}`, err: ErrUnknownID, msg: `params.nope: unknown property "nope"`},
		{params: `{"a b":1}`, err: ErrUnknownID, msg: `params["a b"]: unknown property "a b"`},
		{params: `{"brightness":1,"brightness":2}`, err: ErrMalformed, msg: `params.brightness: duplicate key`},
		{params: `[1]`, err: ErrMalformed, msg: `params: must be a JSON object`},
		{params: `"x"`, err: ErrMalformed, msg: `params: must be a JSON object`},
		{params: `{"brightness":1`, err: ErrMalformed, msg: `params: not valid JSON: unexpected end of input, expected ',' or '}' at byte 15`},
		{params: `{"brightness":1,}`, err: ErrMalformed, msg: `params: not valid JSON: trailing comma before } at byte 15`},
		{params: `{"brightness":1} x`, err: ErrMalformed, msg: `params: not valid JSON: unexpected 'x' after the params object at byte 17`},
		{params: `nul`, err: ErrMalformed, msg: `params: not valid JSON: unexpected 'n' at byte 0`},
		{params: "\x00", err: ErrMalformed, msg: `params: not valid JSON: unexpected '\x00', expected a JSON value at byte 0`},
		{params: "{}\x00", err: ErrMalformed, msg: `params: not valid JSON: unexpected '\x00' after the params object at byte 2`},
		// A syntax error after a value error is still reported as malformed (400 before 406).
		{params: `{"brightness":900,"name":}`, err: ErrMalformed, msg: `params: not valid JSON: unexpected '}', expected a JSON value at byte 25`},
		{params: `{"nope":{"a":[1,2,]}}`, err: ErrMalformed, msg: `params: not valid JSON: trailing comma before ] at byte 17`},
		{params: "{\"name\":\"\xff\"}", err: ErrMalformed, msg: `params: not valid JSON: invalid UTF-8 in string at byte 9`},
		{params: `{"name":"a` + "\n" + `"}`, err: ErrMalformed, msg: `params: not valid JSON: unterminated string (newline inside string) at byte 8`},
		{params: `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, err: ErrMalformed, msg: `params: not valid JSON: nesting deeper than 64 levels at byte 69`},
	})
}

func TestCheckPropertiesWritableOnly(t *testing.T) {
	tpl := lightTemplate(t)
	err := tpl.CheckProperties([]byte(`{"brightness":1,"temperature":20}`), true)
	if !errors.Is(err, ErrReadOnly) || !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("err = %v, want ErrReadOnly and ErrInvalidValue", err)
	}
	if want := `params.temperature: property "temperature" is read-only and cannot be controlled`; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	// A report may carry read-only properties.
	if err := tpl.CheckProperties([]byte(`{"temperature":20}`), false); err != nil {
		t.Error(err)
	}
}

func TestCheckEventParams(t *testing.T) {
	tpl := lightTemplate(t)
	// docs/PROTOCOL.md §2.4.6: the three events of the events_post example.
	for id, params := range map[string]string{
		"status_report":  `{"status":0,"message":""}`,
		"low_voltage":    `{"voltage":1.0}`,
		"hardware_fault": `{"name":"","error_code":1}`,
	} {
		if err := tpl.CheckEventParams(id, []byte(params)); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	runChecks(t, func(b []byte) error { return tpl.CheckEventParams("low_voltage", b) }, []checkCase{
		{params: `{}`}, // parameters may be omitted
		{params: `{"voltage":25}`, err: ErrInvalidValue, msg: `params.voltage: 25 out of range [0,24]`},
		{params: `{"volts":1}`, err: ErrUnknownID, msg: `params.volts: unknown parameter "volts" of event "low_voltage"`},
	})
	err := tpl.CheckEventParams("fire", []byte(`{}`))
	if !errors.Is(err, ErrUnknownID) || err.Error() != `eventId: unknown event "fire"` {
		t.Errorf("unknown event: %v", err)
	}
}

func TestCheckActions(t *testing.T) {
	tpl := lightTemplate(t)
	// docs/PROTOCOL.md §2.4.7.
	in := `{"id":"t2","url":"https://example.invalid/theme.bin","md5":"0cc175b9c0f1b6a831c399e269772661"}`
	if err := tpl.CheckActionInput("update_theme_style", []byte(in)); err != nil {
		t.Error(err)
	}
	if err := tpl.CheckActionOutput("update_theme_style", []byte(`{"result":1}`)); err != nil {
		t.Error(err)
	}
	runChecks(t, func(b []byte) error { return tpl.CheckActionInput("update_theme_style", b) }, []checkCase{
		{params: `{"id":"t2","url":"u"}`, err: ErrInvalidValue, msg: `params.md5: missing (required by input of action "update_theme_style")`},
		{params: `{"id":"t2","url":"u","md5":null}`, err: ErrInvalidValue, msg: `params.md5: missing (required by input of action "update_theme_style")`},
		{params: ``, err: ErrInvalidValue, msg: `params.id: missing (required by input of action "update_theme_style")`},
		{params: `{"id":"t2","url":"u","md5":"short"}`, err: ErrInvalidValue, msg: `params.md5: length 5 out of range [32,32]`},
		{params: `{"id":"t2","extra":1}`, err: ErrUnknownID, msg: `params.extra: unknown parameter "extra" of input of action "update_theme_style"`},
	})
	runChecks(t, func(b []byte) error { return tpl.CheckActionOutput("update_theme_style", b) }, []checkCase{
		{params: `{}`, err: ErrInvalidValue, msg: `params.result: missing (required by output of action "update_theme_style")`},
		{params: `{"result":2}`, err: ErrInvalidValue, msg: `params.result: 2 out of range [0,1]`},
	})
	if err := tpl.CheckActionInput("reboot", nil); !errors.Is(err, ErrUnknownID) {
		t.Errorf("unknown action input: %v", err)
	}
	if err := tpl.CheckActionOutput("reboot", nil); !errors.Is(err, ErrUnknownID) {
		t.Errorf("unknown action output: %v", err)
	}
}

// TestCheckHandBuiltTemplate covers a Template built without Parse (no lookup index).
func TestCheckHandBuiltTemplate(t *testing.T) {
	tpl := &Template{Properties: []*Property{
		{ID: "level", Mode: ModeReadWrite, Define: &Define{Type: TypeInt, Min: 1, Max: 3, HasMin: true, HasMax: true}},
		{ID: "lo", Mode: ModeReadWrite, Define: &Define{Type: TypeFloat, Min: 0, HasMin: true}},
		{ID: "hi", Mode: ModeReadWrite, Define: &Define{Type: TypeFloat, Max: 1, HasMax: true}},
	}}
	runChecks(t, func(b []byte) error { return tpl.CheckProperties(b, true) }, []checkCase{
		{params: `{"level":2}`},
		{params: `{"level":4}`, err: ErrInvalidValue, msg: `params.level: 4 out of range [1,3]`},
		{params: `{"lo":-0.5}`, err: ErrInvalidValue, msg: `params.lo: -0.5 is below the minimum 0`},
		{params: `{"hi":1.5}`, err: ErrInvalidValue, msg: `params.hi: 1.5 is above the maximum 1`},
		{params: `{"x":1}`, err: ErrUnknownID, msg: `params.x: unknown property "x"`},
	})
	if tpl.Property("level") == nil {
		t.Error("Property lookup without index")
	}
}

// TestCheckValueDecoded runs CheckValue on values decoded by goccy/go-json with UseNumber.
func TestCheckValueDecoded(t *testing.T) {
	tpl := lightTemplate(t)
	decode := func(s string) any {
		dec := json.NewDecoder(bytes.NewReader([]byte(s)))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decode %s: %v", s, err)
		}
		return v
	}
	cases := []struct {
		prop, value string
		err         error
		msg         string
	}{
		{prop: "power_switch", value: `1`},
		{prop: "power_switch", value: `true`, err: ErrInvalidValue, msg: `true: bool values are sent as 0 or 1, not true/false`},
		{prop: "brightness", value: `100`},
		{prop: "brightness", value: `101`, err: ErrInvalidValue, msg: `101 out of range [0,100]`},
		{prop: "brightness", value: `1.5`, err: ErrInvalidValue, msg: `1.5 is not an integer`},
		{prop: "temperature", value: `-20.0`},
		{prop: "name", value: `"客厅的灯客厅的灯"`},
		{prop: "name", value: `"客厅的灯客厅的灯灯"`, err: ErrInvalidValue, msg: `length 9 out of range [0,8]`},
		{prop: "color_mode", value: `2`},
		{prop: "color_mode", value: `7`, err: ErrInvalidValue, msg: `7 is not one of 1,2,3`},
		{prop: "unit_mode", value: `"fahrenheit"`},
		{prop: "unit_mode", value: `"x"`, err: ErrInvalidValue, msg: `"x" is not one of celsius,fahrenheit`},
		{prop: "last_on", value: `"1700000000"`},
		{prop: "last_on", value: `null`, err: ErrInvalidValue, msg: `expected a timestamp (non-negative integer seconds or milliseconds, or a string of digits), got null`},
		{prop: "switch_names", value: `["a"]`},
		{prop: "switch_names", value: `["a",null]`, err: ErrInvalidValue, msg: `[1]: null element in array`},
		{prop: "today_ec", value: `{"date":"202311","ec":1.25}`},
		{prop: "today_ec", value: `{"ec":-1}`, err: ErrInvalidValue, msg: `.ec: -1 out of range [0,1000]`},
		{prop: "today_ec", value: `{"zz":1,"aa":2,"ec":1}`, err: ErrUnknownID, msg: `.aa: unknown struct member "aa"`},
		{prop: "today_ec", value: `{"date":null}`},
		{prop: "points", value: `[{"x":1},{"x":"1"}]`, err: ErrInvalidValue, msg: `[1].x: expected an integer, got a string "1"`},
		{prop: "points", value: `{}`, err: ErrInvalidValue, msg: `expected an array, got an object`},
	}
	for _, c := range cases {
		err := tpl.Property(c.prop).Define.CheckValue(decode(c.value))
		switch {
		case c.err == nil && err != nil:
			t.Errorf("%s=%s: %v", c.prop, c.value, err)
		case c.err != nil && (!errors.Is(err, c.err) || err.Error() != c.msg):
			t.Errorf("%s=%s: error %v, want %q wrapping %v", c.prop, c.value, err, c.msg, c.err)
		}
	}
}

func TestCheckValueGoTypes(t *testing.T) {
	d := &Define{Type: TypeInt, Min: 0, Max: 10, HasMin: true, HasMax: true}
	for _, v := range []any{int(3), int8(3), int16(3), int32(3), int64(3), uint(3), uint8(3), uint16(3), uint32(3), uint64(3), float64(3), float32(3)} {
		if err := d.CheckValue(v); err != nil {
			t.Errorf("%T: %v", v, err)
		}
	}
	for _, v := range []any{float64(3.5), json.Number("x"), struct{}{}, int64(11)} {
		if err := d.CheckValue(v); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%T %v: err = %v", v, v, err)
		}
	}
	f := &Define{Type: TypeFloat}
	if err := f.CheckValue(float64(1e300)); err != nil {
		t.Error(err)
	}
}
