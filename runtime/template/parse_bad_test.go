package template

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// TestParseRejects covers every rejection rule with a hand-written template; at is the exact
// LINE:COL (columns count runes) the first error must point at, msg a substring of its message.
func TestParseRejects(t *testing.T) {
	cases := []struct {
		name, src, at, msg string
	}{
		{`trailing comma in array`, `{"properties":[` + "\n" + `  {"id":"a","mode":"r","define":{"type":"bool"}},` + "\n" + `]}`, "2:49", `trailing comma before ]`},
		{`trailing comma in object`, `{"properties":[` + "\n" + `  {"id":"a","mode":"r",}` + "\n" + `]}`, "2:23", `trailing comma before }`},
		{`missing comma`, `{"version":"1.0"` + "\n" + ` "properties":[]}`, "2:2", `expected ',' or '}'`},
		{`unterminated string`, `{"version":"1.0}`, "1:12", `unterminated string`},
		{`bad number`, `{"properties":[{"id":"a","mode":"r","define":{"type":"int","min":01}}]}`, "1:66", `invalid number: leading zeros are not allowed`},
		{`bad literal`, `{"profile":nul}`, "1:12", `expected a JSON value`},
		{`bad escape`, `{"version":"1\x"}`, "1:14", `invalid escape`},
		{`empty input`, `  ` + "\n" + "", "2:1", `empty input`},
		{`trailing garbage`, `{}` + "\n" + `x`, "2:1", `after the end of the JSON value`},
		{`top level array`, `[]`, "1:1", `template must be a JSON object, got an array`},
		{`duplicate JSON key`, `{"properties":[{"id":"a","mode":"r","mode":"rw","define":{"type":"bool"}}]}`, "1:37", `duplicate key "mode" in object`},
		{`properties not array`, `{"properties":{}}`, "1:15", `properties must be an array, got an object`},
		{`profile not object`, `{"profile":"x"}`, "1:12", `profile must be an object`},
		{`element not object`, `{"properties":["x"]}`, "1:16", `properties[0]: must be an object, got a string`},
		{`unknown type`, `{"properties":[` + "\n" + ` {"id":"brightness","name":"亮度","mode":"rw","define":{"type":"double"}}]}`, "2:62", `properties[0] "brightness": define.type "double" is not one of bool, int, float, string, enum, stringenum, timestamp, struct, array`},
		{`missing type`, `{"properties":[{"id":"a","mode":"rw","define":{"min":"0"}}]}`, "1:47", `properties[0] "a": define.type is missing`},
		{`missing define`, `{"properties":[{"id":"a","mode":"rw"}]}`, "1:16", `properties[0] "a": define is missing`},
		{`int min > max`, `{"properties":[{"id":"p0","mode":"r","define":{"type":"bool"}},{"id":"p1","mode":"r","define":{"type":"bool"}},{"id":"p2","mode":"r","define":{"type":"bool"}},` + "\n" + ` {"id":"brightness","mode":"rw","define":{"type":"int","min":"10","max":"1"}}]}`, "2:62", `properties[3] "brightness": define.min 10 > define.max 1`},
		{`float min > max`, `{"properties":[{"id":"t","mode":"r","define":{"type":"float","max":"-1.5","min":"2.5"}}]}`, "1:81", `properties[0] "t": define.min 2.5 > define.max -1.5`},
		{`string min > max`, `{"properties":[{"id":"s","mode":"r","define":{"type":"string","min":"9","max":"8"}}]}`, "1:69", `properties[0] "s": define.min 9 > define.max 8`},
		{`non-numeric limit`, `{"properties":[{"id":"a","mode":"r","define":{"type":"int","min":"0","max":"ten"}}]}`, "1:76", `properties[0] "a": define.max "ten" is not a number`},
		{`limit of wrong kind`, `{"properties":[{"id":"a","mode":"r","define":{"type":"int","max":true}}]}`, "1:66", `properties[0] "a": define.max must be a number or numeric string, got a boolean`},
		{`hex limit`, `{"properties":[{"id":"a","mode":"r","define":{"type":"int","max":"0x10"}}]}`, "1:66", `define.max "0x10" is not a number`},
		{`NaN limit`, `{"properties":[{"id":"a","mode":"r","define":{"type":"float","max":"NaN"}}]}`, "1:68", `define.max "NaN" is not a number`},
		{`fractional int limit`, `{"properties":[{"id":"a","mode":"r","define":{"type":"int","min":"0.5"}}]}`, "1:66", `define.min 0.5 is not an integer`},
		{`negative string length`, `{"properties":[{"id":"a","mode":"r","define":{"type":"string","min":"-1"}}]}`, "1:69", `a string length cannot be negative`},
		{`duplicate property`, `{"properties":[{"id":"a","mode":"r","define":{"type":"bool"}},` + "\n" + `{"id":"a","mode":"r","define":{"type":"bool"}}],"events":[{"id":"a","type":"info","params":[]}],"actions":[{"id":"a"}]}`, "2:7", `properties[1] "a": duplicate id "a" (already used by properties[0])`},
		{`duplicate event`, `{"events":[{"id":"e","type":"info"},{"id":"e","type":"info"}]}`, "1:43", `events[1] "e": duplicate id "e" (already used by events[0])`},
		{`duplicate action`, `{"actions":[{"id":"x"},{"id":"x"}]}`, "1:30", `actions[1] "x": duplicate id "x"`},
		{`duplicate event param`, `{"events":[{"id":"e","type":"alert","params":[{"id":"v","define":{"type":"bool"}},{"id":"v","define":{"type":"bool"}}]}]}`, "1:89", `events[0] "e": params[1] "v": duplicate id "v" (already used by events[0] "e": params[0])`},
		{`duplicate action input`, `{"actions":[{"id":"x","input":[{"id":"v","define":{"type":"bool"}},{"id":"v","define":{"type":"bool"}}],"output":[{"id":"v","define":{"type":"bool"}}]}]}`, "1:74", `actions[0] "x": input[1] "v": duplicate id "v"`},
		{`duplicate action output`, `{"actions":[{"id":"x","output":[{"id":"r","define":{"type":"bool"}},{"id":"r","define":{"type":"bool"}}]}]}`, "1:75", `actions[0] "x": output[1] "r": duplicate id "r"`},
		{`duplicate struct member`, `{"properties":[{"id":"s","mode":"r","define":{"type":"struct","specs":[{"id":"m","dataType":{"type":"int"}},{"id":"m","dataType":{"type":"int"}}]}}]}`, "1:115", `properties[0] "s": define.specs[1] "m": duplicate id "m"`},
		{`enum key not integer`, `{"properties":[{"id":"c","mode":"rw","define":{"type":"enum","mapping":{"0":"红","blue":"蓝"}}}]}`, "1:81", `properties[0] "c": define.mapping key "blue" is not an integer`},
		{`enum duplicate int key`, `{"properties":[{"id":"c","mode":"rw","define":{"type":"enum","mapping":{"1":"a","01":"b"}}}]}`, "1:81", `define.mapping key "01" duplicates key "1"`},
		{`empty enum mapping`, `{"properties":[{"id":"c","mode":"rw","define":{"type":"enum","mapping":{}}}]}`, "1:72", `properties[0] "c": define.mapping is empty`},
		{`empty stringenum mapping`, `{"properties":[{"id":"c","mode":"rw","define":{"type":"stringenum","mapping":{}}}]}`, "1:78", `properties[0] "c": define.mapping is empty`},
		{`missing enum mapping`, `{"properties":[{"id":"c","mode":"rw","define":{"type":"enum"}}]}`, "1:47", `properties[0] "c": define.mapping is missing`},
		{`mapping label not string`, `{"properties":[{"id":"c","mode":"rw","define":{"type":"enum","mapping":{"0":[]}}}]}`, "1:77", `define.mapping["0"] label must be a string`},
		{`event type fatal`, `{"events":[{"id":"alarm","name":"告警","type":"fatal","params":[]}]}`, "1:45", `events[0] "alarm": type "fatal" is not one of info, alert, fault`},
		{`event type missing`, `{"events":[{"id":"alarm","params":[]}]}`, "1:12", `events[0] "alarm": type is missing`},
		{`mode w`, `{"properties":[{"id":"a","mode":"w","define":{"type":"bool"}}]}`, "1:33", `properties[0] "a": mode "w" is not one of r, rw`},
		{`mode missing`, `{"properties":[{"id":"a","define":{"type":"bool"}}]}`, "1:16", `properties[0] "a": mode is missing`},
		{`array of bool`, `{"properties":[{"id":"a","mode":"r","define":{"type":"array","arrayInfo":{"type":"bool"}}}]}`, "1:82", `properties[0] "a": define.arrayInfo.type "bool" is not supported for array elements (the platform allows int, float, string, struct)`},
		{`array of enum`, `{"properties":[{"id":"a","mode":"r","define":{"type":"array","arrayInfo":{"type":"enum","mapping":{"0":"x"}}}}]}`, "1:82", `define.arrayInfo.type "enum" is not supported for array elements`},
		{`array of timestamp`, `{"properties":[{"id":"a","mode":"r","define":{"type":"array","arrayInfo":{"type":"timestamp"}}}]}`, "1:82", `define.arrayInfo.type "timestamp" is not supported for array elements`},
		{`array of stringenum`, `{"properties":[{"id":"a","mode":"r","define":{"type":"array","arrayInfo":{"type":"stringenum","mapping":{"a":"b"}}}}]}`, "1:82", `define.arrayInfo.type "stringenum" is not supported`},
		{`nested array`, `{"properties":[{"id":"a","mode":"r","define":{"type":"array","arrayInfo":{"type":"array","arrayInfo":{"type":"int"}}}}]}`, "1:82", `properties[0] "a": define.arrayInfo.type: nested arrays are not supported`},
		{`array missing arrayInfo`, `{"properties":[{"id":"a","mode":"r","define":{"type":"array"}}]}`, "1:46", `define.arrayInfo is missing`},
		{`struct in struct`, `{"properties":[{"id":"s","mode":"r","define":{"type":"struct","specs":[{"id":"in","dataType":{"type":"struct","specs":[]}}]}}]}`, "1:102", `properties[0] "s": define.specs[0] "in": dataType.type: struct inside struct is not supported`},
		{`array in struct`, `{"properties":[{"id":"s","mode":"r","define":{"type":"struct","specs":[{"id":"in","dataType":{"type":"array","arrayInfo":{"type":"int"}}}]}}]}`, "1:102", `dataType.type: array inside struct is not supported`},
		{`struct in array-of-struct`, `{"properties":[{"id":"s","mode":"r","define":{"type":"array","arrayInfo":{"type":"struct","specs":[{"id":"in","dataType":{"type":"struct","specs":[]}}]}}}]}`, "1:130", `properties[0] "s": define.arrayInfo.specs[0] "in": dataType.type: struct inside struct`},
		{`struct without specs`, `{"properties":[{"id":"s","mode":"r","define":{"type":"struct"}}]}`, "1:46", `define.specs is missing`},
		{`struct member with define`, `{"properties":[{"id":"s","mode":"r","define":{"type":"struct","specs":[{"id":"m","define":{"type":"int"}}]}}]}`, "1:72", `define.specs[0] "m": dataType is missing (struct members use "dataType", not "define")`},
		{`missing id`, `{"properties":[{"name":"亮度","mode":"r","define":{"type":"bool"}}]}`, "1:16", `properties[0]: id is missing`},
		{`id not string`, `{"properties":[{"id":7,"mode":"r","define":{"type":"bool"}}]}`, "1:22", `properties[0]: id must be a string, got a number`},
		{`bad id`, `{"properties":[{"id":"1st-light","mode":"r","define":{"type":"bool"}}]}`, "1:22", `properties[0] "1st-light": id "1st-light" is not a valid identifier: it must match ^[A-Za-z_][A-Za-z0-9_]*$`},
		{`chinese id`, `{"properties":[{"name":"电灯","id":"电灯","mode":"r","define":{"type":"bool"}}]}`, "1:34", `id "电灯" is not a valid identifier`},
		{`empty id`, `{"events":[{"id":"","type":"info"}]}`, "1:18", `events[0] "": id "" is not a valid identifier`},
		{`bad param id`, `{"actions":[{"id":"x","input":[{"id":"a b","define":{"type":"bool"}}]}]}`, "1:38", `actions[0] "x": input[0] "a b": id "a b" is not a valid identifier`},
		{`required not bool`, `{"properties":[{"id":"a","mode":"r","required":"false","define":{"type":"bool"}}]}`, "1:48", `properties[0] "a": required must be true or false, got a string`},
		{`name not string`, `{"properties":[{"id":"a","name":1,"mode":"r","define":{"type":"bool"}}]}`, "1:33", `properties[0] "a": name must be a string, got a number`},
		{`rune columns after chinese`, `{"properties":[{"id":"a","name":"中文名称","desc":"描述","mode":"x","define":{"type":"bool"}}]}`, "1:59", `mode "x" is not one of r, rw`},
		{`trailing NUL byte`, "{}\x00", "1:3", `unexpected '\x00' after the end of the JSON value`},
		{`deep nesting`, `{"x":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`, "1:70", `nesting deeper than 64 levels`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tpl, err := Parse("bad.json", []byte(c.src))
			if err == nil {
				t.Fatalf("accepted: %+v", tpl)
			}
			if tpl != nil {
				t.Error("a rejected template must come back nil")
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("want a non-empty ErrorList, got %T %v", err, err)
			}
			first := list[0]
			if first.Pos.String() != c.at || first.File != "bad.json" {
				t.Errorf("first error at %s:%s, want bad.json:%s\n%v", first.File, first.Pos, c.at, err)
			}
			if !strings.Contains(first.Msg, c.msg) {
				t.Errorf("message %q does not contain %q", first.Msg, c.msg)
			}
			if want := "bad.json:" + c.at + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
			}
		})
	}
}

// TestParseCollectsErrors checks that independent problems are all reported, sorted by position.
func TestParseCollectsErrors(t *testing.T) {
	src := "{\"events\":[{\"id\":\"e\",\"type\":\"fatal\"}],\n" +
		"\"properties\":[\n" +
		"{\"id\":\"a\",\"mode\":\"x\",\"define\":{\"type\":\"int\",\"min\":\"5\",\"max\":\"1\"}},\n" +
		"{\"id\":\"a\",\"mode\":\"r\",\"define\":{\"type\":\"nope\"}}\n" +
		"]}"
	_, err := Parse("m.json", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v", err)
	}
	want := []string{
		`m.json:1:29: events[0] "e": type "fatal" is not one of info, alert, fault`,
		`m.json:3:18: properties[0] "a": mode "x" is not one of r, rw`,
		`m.json:3:51: properties[0] "a": define.min 5 > define.max 1`,
		`m.json:4:7: properties[1] "a": duplicate id "a" (already used by properties[0])`,
		`m.json:4:39: properties[1] "a": define.type "nope" is not one of`,
	}
	if len(list) != len(want) {
		t.Fatalf("got %d errors:\n%v", len(list), err)
	}
	for i, e := range list {
		if !strings.HasPrefix(e.Error(), want[i]) {
			t.Errorf("error %d = %q, want prefix %q", i, e.Error(), want[i])
		}
	}
	if strings.Count(err.Error(), "\n") != len(want)-1 {
		t.Errorf("Error() should join one error per line:\n%s", err)
	}
}

func TestParseTooManyFeatures(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"properties":[`)
	for i := 0; i < 90; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n{\"id\":\"p" + strconv.Itoa(i) + "\",\"name\":\"n\",\"mode\":\"r\",\"define\":{\"type\":\"bool\"}}")
	}
	b.WriteString("],\"events\":[")
	for i := 0; i < 11; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n{\"id\":\"e" + strconv.Itoa(i) + "\",\"name\":\"n\",\"type\":\"info\"}")
	}
	b.WriteString("]}")
	tpl, err := Parse("big.json", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(tpl.Warnings) != 1 {
		t.Fatalf("warnings = %v", tpl.Warnings)
	}
	// The 101st feature is events[10], on line 102.
	want := "big.json:102:1: template defines 101 features; the platform allows at most 100 per product"
	if got := tpl.Warnings[0].String(); got != want {
		t.Errorf("warning = %q, want %q", got, want)
	}
}

func TestErrorFormatting(t *testing.T) {
	e := &Error{Pos: Pos{Line: 3, Col: 7}, Msg: "boom"}
	if e.Error() != "3:7: boom" {
		t.Errorf("no-file error = %q", e.Error())
	}
	if (ErrorList{}).Err() != nil {
		t.Error("empty list must be a nil error")
	}
	if ErrorList(nil).Error() != "no errors" {
		t.Error("empty list text")
	}
}

func TestParseByteOrderMark(t *testing.T) {
	_, err := Parse("bom.json", []byte("\xEF\xBB\xBF{\"version\":1}"))
	if err == nil || err.Error() != "bom.json:1:12: version must be a string, got a number" {
		t.Fatalf("err = %v", err)
	}
	if _, err := Parse("bom.json", []byte("\xEF\xBB\xBF{}")); err != nil {
		t.Fatal(err)
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile(t.TempDir() + "/nope.json")
	if err == nil || !strings.Contains(err.Error(), "nope.json") {
		t.Fatalf("err = %v", err)
	}
}
