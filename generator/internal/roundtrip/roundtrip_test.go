package roundtrip_test

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/tplwire"
	"github.com/tplgen/tplgen/testdata/golden/c_sdk_example"
	"github.com/tplgen/tplgen/testdata/golden/control_four_v3"
	"github.com/tplgen/tplgen/testdata/golden/iothub_c_example"
	"github.com/tplgen/tplgen/testdata/golden/light"
	"github.com/tplgen/tplgen/testdata/golden/location"
	"github.com/tplgen/tplgen/testdata/golden/struct_torture"
	"github.com/tplgen/tplgen/testdata/golden/thermostat"
	"github.com/tplgen/tplgen/testdata/golden/trtc_watch"
)

type validator interface{ Validate() error }

// types maps golden/type names in payloads.json to constructors of the generated types.
var types = map[string]func() validator{
	"light/Properties":                      func() validator { return &light.Properties{} },
	"light/ControlProperties":               func() validator { return &light.ControlProperties{} },
	"light/StatusReport":                    func() validator { return &light.StatusReport{} },
	"light/LowVoltage":                      func() validator { return &light.LowVoltage{} },
	"light/HardwareFault":                   func() validator { return &light.HardwareFault{} },
	"light/LightOnInput":                    func() validator { return &light.LightOnInput{} },
	"light/LightOnOutput":                   func() validator { return &light.LightOnOutput{} },
	"control_four_v3/Properties":            func() validator { return &controlfourv3.Properties{} },
	"control_four_v3/UpdateThemeStyleInput": func() validator { return &controlfourv3.UpdateThemeStyleInput{} },
	"control_four_v3/UpdateThemeStyleOutput": func() validator {
		return &controlfourv3.UpdateThemeStyleOutput{}
	},
	"location/Properties":               func() validator { return &location.Properties{} },
	"struct_torture/Properties":         func() validator { return &structtorture.Properties{} },
	"trtc_watch/Properties":             func() validator { return &trtcwatch.Properties{} },
	"trtc_watch/TrtcJoinBroadcastInput": func() validator { return &trtcwatch.TrtcJoinBroadcastInput{} },
	"iothub_c_example/Properties":       func() validator { return &iothubcexample.Properties{} },
	"c_sdk_example/Properties":          func() validator { return &csdkexample.Properties{} },
	"thermostat/Properties":             func() validator { return &thermostat.Properties{} },
}

type payload struct {
	Golden, Type, Source string
	JSON                 json.RawMessage
}

func loadPayloads(t *testing.T) []payload {
	t.Helper()
	data, err := os.ReadFile("testdata/payloads.json")
	if err != nil {
		t.Fatal(err)
	}
	var ps []payload
	if err := json.Unmarshal(data, &ps); err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestRoundTrip decodes every payload strictly (an unknown key is an error) into its
// generated type, checks it validates, re-encodes it and compares the JSON semantically.
func TestRoundTrip(t *testing.T) {
	covered := map[string]bool{}
	for _, p := range loadPayloads(t) {
		key := p.Golden + "/" + p.Type
		covered[key] = true
		t.Run(key+" "+p.Source, func(t *testing.T) {
			newV, ok := types[key]
			if !ok {
				t.Fatalf("no constructor for %s", key)
			}
			v := newV()
			dec := json.NewDecoder(bytes.NewReader(p.JSON))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if err := v.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			out, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !sameJSON(t, p.JSON, out) {
				t.Errorf("round trip changed the payload:\n in: %s\nout: %s", p.JSON, out)
			}
			// The generated encoder (what the typed Report and events put on the wire) gives
			// the same JSON as the reflection-based one.
			if a, ok := v.(interface{ AppendJSON([]byte) []byte }); ok {
				if app := a.AppendJSON(nil); !sameJSON(t, p.JSON, app) {
					t.Errorf("AppendJSON changed the payload:\n in: %s\nout: %s", p.JSON, app)
				}
			} else {
				t.Errorf("%s has no AppendJSON", key)
			}
		})
	}
	for key := range types {
		if !covered[key] {
			t.Errorf("%s has no payload", key)
		}
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// TestEncodeTyped builds values in Go and checks the exact wire form of docs/PROTOCOL.md §2.3.
func TestEncodeTyped(t *testing.T) {
	p := light.Properties{
		PowerSwitch: tplwire.Ptr(tplwire.Bool(true)),
		Color:       tplwire.Ptr(light.ColorBlue),
		Brightness:  tplwire.Ptr[int64](66),
		Name:        tplwire.Ptr("livingroom"),
	}
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"power_switch":1,"color":2,"brightness":66,"name":"livingroom"}`; string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
	// Partial update: only what is set goes on the wire.
	out, _ = json.Marshal(light.Properties{Brightness: tplwire.Ptr[int64](0)})
	if string(out) != `{"brightness":0}` {
		t.Errorf("partial: %s", out)
	}
	// An empty array is a value, not "absent".
	out, _ = json.Marshal(location.Properties{WifiInfo: &[]location.WifiInfoItem{}})
	if string(out) != `{"Wifi_Info":[]}` {
		t.Errorf("empty array: %s", out)
	}
	ts := structTortureTime()
	out, _ = json.Marshal(ts)
	if string(out) != `{"struct":{"time_param":1577871650}}` {
		t.Errorf("timestamp: %s", out)
	}
}

func structTortureTime() structtorture.Properties {
	return structtorture.Properties{Struct: &structtorture.Struct{TimeParam: tplwire.Ptr(tplwire.Timestamp(1577871650))}}
}

// TestDecodeLenient covers inputs that decode to the canonical form: true/false bools,
// millisecond and string timestamps (docs/PROTOCOL.md §2.3 [DIFF]).
func TestDecodeLenient(t *testing.T) {
	var p structtorture.Properties
	in := `{"power_switch":true,"struct":{"bool_param":false,"time_param":1577871650123},"arrStruct":[{"boolM":true}]}`
	if err := json.Unmarshal([]byte(in), &p); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(p)
	want := `{"power_switch":1,"struct":{"bool_param":0,"time_param":1577871650},"arrStruct":[{"boolM":1}]}`
	if !sameJSON(t, []byte(want), out) {
		t.Errorf("got %s, want %s", out, want)
	}
	var q iothubcexample.Properties
	if err := json.Unmarshal([]byte(`{"time":"1577871650000"}`), &q); err != nil || *q.Time != 1577871650 {
		t.Errorf("string ms timestamp: %v %v", q.Time, err)
	}
}

// TestDecodeErrors: wire values of the wrong type fail to decode, naming the field where the
// JSON library does. (runtime/thing checks params against the template before decoding, so
// these are a second line of defence; goccy reports a float given for an int enum only as a
// syntax error, which is why that case checks just that decoding fails.)
func TestDecodeErrors(t *testing.T) {
	for in, field := range map[string]string{
		`{"power_switch":2}`:                    "bool must be 0 or 1",
		`{"power_switch":"1"}`:                  "bool must be 0 or 1",
		`{"brightness":"high"}`:                 "brightness",
		`{"name":5}`:                            "name",
		`{"brightness":9999999999999999999999}`: "brightness",
		`{"color":1.5}`:                         "",
	} {
		var p light.Properties
		err := json.Unmarshal([]byte(in), &p)
		if err == nil {
			t.Errorf("%s: decoded without error: %+v", in, p)
			continue
		}
		if !strings.Contains(strings.ToLower(err.Error()), field) {
			t.Errorf("%s: error %q does not mention %q", in, err, field)
		}
	}
}

// TestValidateMessages checks Validate finds every problem and names its JSON path.
func TestValidateMessages(t *testing.T) {
	p := structtorture.Properties{
		Brightness: tplwire.Ptr[int64](101),
		Color:      tplwire.Ptr(structtorture.Color(7)),
		Name:       tplwire.Ptr(strings.Repeat("长", 65)),
		ArrInt:     &[]int64{1, -1},
		ArrString:  new([]string), // points at a nil slice: would encode as null
		Struct:     &structtorture.Struct{FloatParam: tplwire.Ptr(100.5), EnumParam: tplwire.Ptr(structtorture.StructEnumParam(9))},
		ArrStruct:  &[]structtorture.ArrStructItem{{}, {IntM: tplwire.Ptr[int64](-3)}},
	}
	err := p.Validate()
	if !errors.Is(err, tplwire.ErrInvalidValue) {
		t.Fatalf("errors.Is(ErrInvalidValue) = false: %v", err)
	}
	for _, want := range []string{
		"params.brightness: 101 out of range [0,100]",
		"params.color: 7 is not one of 0,1,2",
		"params.name: length 65 out of range [0,64]",
		"params.arrInt[1]: -1 out of range [0,100]",
		"params.arrString: missing",
		"params.struct.float_param: 100.5 out of range [0,100]",
		"params.struct.enum_param: 9 is not one of 0,1",
		"params.arrStruct[1].intM: -3 out of range [0,100]",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 8 {
		t.Errorf("want 8 problems, got %d:\n%v", n, err)
	}
	// Control values are validated through the same rules.
	c := light.ControlProperties{Brightness: tplwire.Ptr[int64](-1)}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "brightness") {
		t.Errorf("ControlProperties.Validate: %v", err)
	}
	// Required event arrays must not be nil.
	if err := (light.StatusReport{Message: strings.Repeat("x", 65)}).Validate(); err == nil {
		t.Error("event param length not checked")
	}
}

// TestEnumMethods covers String/Valid of int and string enums.
func TestEnumMethods(t *testing.T) {
	if light.ColorGreen.String() != "Green" || light.Color(9).String() != "Color(9)" {
		t.Errorf("String: %q %q", light.ColorGreen, light.Color(9))
	}
	if !light.ColorRed.Valid() || light.Color(3).Valid() {
		t.Error("Color.Valid")
	}
	if !thermostat.LevelHigh.Valid() || thermostat.Level("turbo").Valid() {
		t.Error("Level.Valid")
	}
	if (light.StatusReport{}).EventID() != "status_report" || (light.LowVoltage{}).EventType() != "alert" {
		t.Error("event metadata")
	}
	if (light.LightOnInput{}).ActionID() != "light_on" {
		t.Error("action metadata")
	}
}

// TestOneVocabulary: a value the generated Validate refuses is refused by the template's raw
// check (what the untyped API and the platform use) with the same error type, sentinel and
// message.
func TestOneVocabulary(t *testing.T) {
	tpl := structtorture.Template()
	for _, p := range []structtorture.Properties{
		{Brightness: tplwire.Ptr[int64](101)},
		{Color: tplwire.Ptr(structtorture.Color(7))},
		{Name: tplwire.Ptr(strings.Repeat("长", 65))},
		{ArrInt: &[]int64{1, -1}},
		{Struct: &structtorture.Struct{FloatParam: tplwire.Ptr(100.5)}},
		{Struct: &structtorture.Struct{EnumParam: tplwire.Ptr(structtorture.StructEnumParam(9))}},
		{ArrStruct: &[]structtorture.ArrStructItem{{}, {IntM: tplwire.Ptr[int64](-3)}}},
	} {
		typed := p.Validate()
		raw := tpl.CheckProperties(p.AppendJSON(nil), false)
		var tv, rv *tplwire.ValueError
		if !errors.As(typed, &tv) || !errors.As(raw, &rv) {
			t.Errorf("%v: typed %T %v, raw %T %v: want *tplwire.ValueError from both", p, typed, typed, raw, raw)
			continue
		}
		if typed.Error() != raw.Error() || !errors.Is(typed, tplwire.ErrInvalidValue) || !errors.Is(raw, tplwire.ErrInvalidValue) {
			t.Errorf("%v:\n typed: %v\n raw:   %v", p, typed, raw)
		}
	}
}
