package template

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mustParseFile(t *testing.T, path string) *Template {
	t.Helper()
	tpl, err := ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestParseModelOldFormat(t *testing.T) {
	// Oldest export shape: profile.productID, no actions key, unitDesc, no start/step.
	tpl := mustParseFile(t, filepath.Join(realDir, "at-based-sdk__tools__config.json"))
	if tpl.Version != "1.0" || tpl.CategoryID != "" || tpl.Actions != nil {
		t.Errorf("Version=%q CategoryID=%q Actions=%v", tpl.Version, tpl.CategoryID, tpl.Actions)
	}
	b := tpl.Property("brightness").Define
	want := &Define{Type: TypeFloat, Min: 0, Max: 100.4, HasMin: true, HasMax: true, Unit: "%",
		UnitDesc: "Percentage of Brightness", Pos: b.Pos}
	if !reflect.DeepEqual(b, want) {
		t.Errorf("brightness define = %+v, want %+v", b, want)
	}
}

func TestParseModelStructAndArrays(t *testing.T) {
	tpl := mustParseFile(t, filepath.Join(schemaDir, "struct_torture.json"))
	if tpl.CategoryID != "141" {
		t.Errorf("CategoryID = %q", tpl.CategoryID)
	}
	// arrayInfo comes before type in the file.
	ai := tpl.Property("arrInt").Define
	if ai.Type != TypeArray || ai.Elem == nil || ai.Elem.Type != TypeInt || ai.Elem.Max != 100 || !ai.Elem.HasStart {
		t.Errorf("arrInt = %+v elem %+v", ai, ai.Elem)
	}
	as := tpl.Property("arrStruct").Define
	if as.Elem == nil || as.Elem.Type != TypeStruct || len(as.Elem.Specs) == 0 || as.Elem.Specs[0].ID != "boolM" {
		t.Fatalf("arrStruct = %+v", as.Elem)
	}
	st := tpl.Property("struct").Define
	if st.Type != TypeStruct || st.Specs[1].ID != "int_param" || st.Specs[1].Define.Type != TypeInt {
		t.Errorf("struct specs = %+v", st.Specs)
	}
	color := tpl.Property("color").Define
	wantMap := []MappingEntry{{Key: "0", Int: 0, Label: "Red"}, {Key: "1", Int: 1, Label: "Green"}, {Key: "2", Int: 2, Label: "Blue"}}
	if !reflect.DeepEqual(color.Mapping, wantMap) {
		t.Errorf("color mapping = %+v", color.Mapping)
	}
	if !tpl.Property("power_switch").Writable() {
		t.Error("power_switch should be writable")
	}
}

func TestParseModelPositionsAndOrder(t *testing.T) {
	tpl := mustParseFile(t, filepath.Join(schemaDir, "c_sdk_example.json"))
	power := tpl.Property("power").Define
	want := []MappingEntry{{Key: "high", Label: "High"}, {Key: "medium", Label: "Medium"}, {Key: "low", Label: "Low"}}
	if !reflect.DeepEqual(power.Mapping, want) {
		t.Errorf("stringenum mapping = %+v (file order expected)", power.Mapping)
	}
	pos := tpl.Property("position").Define
	if pos.Specs[0].Define.Min != -180 || pos.Specs[0].Name != "经度" {
		t.Errorf("position specs = %+v", pos.Specs[0])
	}
	// Positions are 1-based; properties start on their '{'.
	for _, p := range tpl.Properties {
		if p.Pos.Line < 2 || p.Pos.Col < 1 || p.Define.Pos.Line < p.Pos.Line {
			t.Errorf("%s: bad positions %v / %v", p.ID, p.Pos, p.Define.Pos)
		}
	}
	if tpl.Action("light_blink") == nil && len(tpl.Actions) != 1 {
		t.Errorf("actions = %v", tpl.Actions)
	}
	if tpl.Event("nope") != nil || tpl.Property("nope") != nil || tpl.Action("nope") != nil {
		t.Error("lookup of unknown ids must return nil")
	}
}

func TestParseEmpty(t *testing.T) {
	tpl, err := Parse("empty.json", []byte(`{"version":"1.0","profile":{"ProductId":"X"},"properties":[],"events":[],"actions":[]}`))
	if err != nil || len(tpl.Properties)+len(tpl.Events)+len(tpl.Actions) != 0 || len(tpl.Warnings) != 0 {
		t.Fatalf("tpl=%+v err=%v", tpl, err)
	}
	// No profile at all, no sections: still a (useless) template.
	tpl, err = Parse("", []byte(`{}`))
	if err != nil || tpl.ProductID != "" {
		t.Fatalf("tpl=%+v err=%v", tpl, err)
	}
}

func TestParseNumbersAsJSONNumbers(t *testing.T) {
	src := `{"properties":[{"id":"t","name":"温度","mode":"r","define":{"type":"float","min":-10,"max":40.5,"start":0,"step":0.5}}]}`
	tpl, err := Parse("n.json", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	d := tpl.Properties[0].Define
	if d.Min != -10 || d.Max != 40.5 || d.Step != 0.5 || !d.HasStart {
		t.Errorf("define = %+v", d)
	}
}

func TestParseWarnings(t *testing.T) {
	src := "{\"properties\":[\n" +
		"{\"id\":\"a\",\"mode\":\"rw\",\"define\":{\"type\":\"int\",\"min\":\"0\",\"max\":\"10\",\"start\":\"11\",\"step\":\"0\"}}\n" +
		"]}"
	tpl, err := Parse("w.json", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`w.json:2:1: properties[0] "a": name is missing`,
		`w.json:2:75: properties[0] "a": define.start 11 is outside [0,10]`,
		`w.json:2:87: properties[0] "a": define.step 0 is not positive`,
	}
	if len(tpl.Warnings) != len(want) {
		t.Fatalf("warnings = %v", tpl.Warnings)
	}
	for i, w := range tpl.Warnings {
		if w.String() != want[i] {
			t.Errorf("warning %d = %q, want %q", i, w.String(), want[i])
		}
	}
}

// TestParseLenientUIFields: start, step and unit only drive the console's UI, so values the
// platform stores but that make no sense (templates in the wild have step "undefined", the
// unit in step, a fractional start) are located warnings and the member is ignored; a bool
// whose mapping keys are labels keeps its type and loses the mapping. None stops parsing.
func TestParseLenientUIFields(t *testing.T) {
	src := "{\"properties\":[\n" +
		"{\"id\":\"a\",\"name\":\"A\",\"mode\":\"rw\",\"define\":{\"type\":\"int\",\"min\":\"0\",\"max\":\"10\",\"step\":\"undefined\"}},\n" +
		"{\"id\":\"b\",\"name\":\"B\",\"mode\":\"rw\",\"define\":{\"type\":\"float\",\"min\":\"0\",\"max\":\"10\",\"step\":\"℃\",\"start\":true,\"unit\":[]}},\n" +
		"{\"id\":\"c\",\"name\":\"C\",\"mode\":\"rw\",\"define\":{\"type\":\"int\",\"min\":\"0\",\"max\":\"10\",\"start\":\"0.5\",\"unit\":5}},\n" +
		"{\"id\":\"d\",\"name\":\"D\",\"mode\":\"rw\",\"define\":{\"type\":\"bool\",\"mapping\":{\"off\":\"关\",\"on\":\"开\"}}}\n" +
		"]}"
	tpl, err := Parse("w.json", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`w.json:2:85: properties[0] "a": define.step "undefined" is not a number (ignored: it only drives the console UI)`,
		`w.json:3:87: properties[1] "b": define.step "℃" is not a number (ignored: it only drives the console UI)`,
		`w.json:3:99: properties[1] "b": define.start must be a number or numeric string, got a boolean (ignored: it only drives the console UI)`,
		`w.json:3:111: properties[1] "b": define.unit must be a string, got an array (ignored: it only drives the console UI)`,
		`w.json:4:86: properties[2] "c": define.start 0.5 is not an integer (ignored: it only drives the console UI)`,
		`w.json:5:69: properties[3] "d": define.mapping key "off": bool mapping keys should be 0 or 1; the mapping is ignored and the value is still sent as 0/1 (named values need type stringenum)`,
	}
	var got []string
	for _, w := range tpl.Warnings {
		got = append(got, w.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	a, b, c, d := tpl.Properties[0].Define, tpl.Properties[1].Define, tpl.Properties[2].Define, tpl.Properties[3].Define
	if a.HasStep || b.HasStep || b.HasStart || b.Unit != "" || c.HasStart || c.Unit != "5" || d.Mapping != nil {
		t.Errorf("ignored members kept: a=%+v b=%+v c=%+v d=%+v", a, b, c, d)
	}
	if err := tpl.CheckProperties([]byte(`{"a":3,"b":2.5,"c":1,"d":1}`), false); err != nil {
		t.Errorf("values of the lenient template: %v", err)
	}
}
