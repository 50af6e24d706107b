package tpldiff

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tplgen/tplgen/runtime/template"
)

// base is a template with one element per rule, one feature per line so that each case can
// name where its change must be located.
const base = `{"version": "1.0", "profile": {"ProductId": "P1", "CategoryId": "1"},
"properties": [
{"id": "sw", "name": "Switch", "desc": "on/off", "mode": "rw", "define": {"type": "bool", "mapping": {"0": "off", "1": "on"}}},
{"id": "level", "name": "Level", "mode": "rw", "required": false, "define": {"type": "int", "min": "0", "max": "100", "start": "1", "step": "1", "unit": "%"}},
{"id": "temp", "name": "Temp", "mode": "r", "define": {"type": "float", "min": "-10", "max": "40", "unit": "C"}},
{"id": "label", "name": "Label", "mode": "rw", "define": {"type": "string", "min": "1", "max": "64"}},
{"id": "color", "name": "Color", "mode": "rw", "define": {"type": "enum", "mapping": {"0": "red", "1": "green", "2": "blue"}}},
{"id": "power", "name": "Power", "mode": "rw", "define": {"type": "stringenum", "mapping": {"low": "Low", "high": "High"}}},
{"id": "at", "name": "At", "mode": "r", "define": {"type": "timestamp"}},
{"id": "pos", "name": "Pos", "mode": "rw", "define": {"type": "struct", "specs": [{"id": "x", "name": "X", "dataType": {"type": "int", "min": "0", "max": "10"}}, {"id": "y", "name": "Y", "dataType": {"type": "int", "min": "0", "max": "10"}}]}},
{"id": "list", "name": "List", "mode": "rw", "define": {"type": "array", "arrayInfo": {"type": "int", "min": "0", "max": "9"}}},
{"id": "pts", "name": "Points", "mode": "r", "define": {"type": "array", "arrayInfo": {"type": "struct", "specs": [{"id": "px", "name": "PX", "dataType": {"type": "float"}}, {"id": "py", "name": "PY", "dataType": {"type": "float"}}]}}}
],
"events": [
{"id": "alarm", "name": "Alarm", "desc": "too hot", "type": "alert", "params": [{"id": "temp", "name": "T", "define": {"type": "float", "min": "0", "max": "100"}}, {"id": "msg", "name": "M", "define": {"type": "string", "min": "0", "max": "32"}}]},
{"id": "boot", "name": "Boot", "type": "info", "params": []}
],
"actions": [
{"id": "blink", "name": "Blink", "input": [{"id": "times", "name": "Times", "define": {"type": "int", "min": "1", "max": "5"}}], "output": [{"id": "ok", "name": "OK", "define": {"type": "bool", "mapping": {"0": "no", "1": "yes"}}}]},
{"id": "reset", "name": "Reset", "input": [], "output": []}
]
}`

// feat is a feature line's start; def the start of the define object after it.
func feat(id string) string { return `{"id": "` + id + `"` }

func TestRules(t *testing.T) {
	const arr = `], "output": [{"id": "ok"`
	for _, tc := range []struct {
		name     string
		from, to string // replaced once in base to make the new template
		kind     Kind
		breaking bool
		path     string
		inOld    bool   // located in the old file
		anchor   string // the location is the first target after the first anchor
		target   string
	}{
		{"property removed", `{"id": "at", "name": "At", "mode": "r", "define": {"type": "timestamp"}},` + "\n", "",
			Removed, true, "properties.at", true, "", feat("at")},
		{"event removed", `,
{"id": "boot", "name": "Boot", "type": "info", "params": []}`, "",
			Removed, true, "events.boot", true, "", feat("boot")},
		{"action removed", `,
{"id": "reset", "name": "Reset", "input": [], "output": []}`, "",
			Removed, true, "actions.reset", true, "", feat("reset")},
		{"event param removed", `, {"id": "msg", "name": "M", "define": {"type": "string", "min": "0", "max": "32"}}]}`, `]}`,
			Removed, true, "events.alarm.params.msg", true, feat("alarm"), feat("msg")},
		{"action input removed", `"input": [{"id": "times", "name": "Times", "define": {"type": "int", "min": "1", "max": "5"}}]`, `"input": []`,
			Removed, true, "actions.blink.input.times", true, feat("blink"), feat("times")},
		{"action output removed", `"output": [{"id": "ok", "name": "OK", "define": {"type": "bool", "mapping": {"0": "no", "1": "yes"}}}]`, `"output": []`,
			Removed, true, "actions.blink.output.ok", true, feat("blink"), feat("ok")},
		{"struct member removed", `, {"id": "y", "name": "Y", "dataType": {"type": "int", "min": "0", "max": "10"}}]`, `]`,
			Removed, true, "properties.pos.define.specs.y", true, feat("pos"), feat("y")},
		{"array struct member removed", `, {"id": "py", "name": "PY", "dataType": {"type": "float"}}]`, `]`,
			Removed, true, "properties.pts.define.arrayInfo.specs.py", true, feat("pts"), feat("py")},

		{"property added", `"properties": [` + "\n", `"properties": [` + "\n" + `{"id": "new", "mode": "r", "define": {"type": "int"}},` + "\n",
			Added, false, "properties.new", false, "", feat("new")},
		{"event added", `"events": [` + "\n", `"events": [` + "\n" + `{"id": "new", "type": "info", "params": []},` + "\n",
			Added, false, "events.new", false, "", feat("new")},
		{"action added", `"actions": [` + "\n", `"actions": [` + "\n" + `{"id": "new", "input": [], "output": []},` + "\n",
			Added, false, "actions.new", false, "", feat("new")},
		{"event param added", `{"id": "boot", "name": "Boot", "type": "info", "params": []}`, `{"id": "boot", "name": "Boot", "type": "info", "params": [{"id": "why", "define": {"type": "string"}}]}`,
			Added, false, "events.boot.params.why", false, feat("boot"), feat("why")},
		{"action input added", `{"id": "reset", "name": "Reset", "input": []`, `{"id": "reset", "name": "Reset", "input": [{"id": "hard", "define": {"type": "bool", "mapping": {"0": "n", "1": "y"}}}]`,
			Added, true, "actions.reset.input.hard", false, feat("reset"), feat("hard")},
		{"action output added", `"input": [], "output": []}`, `"input": [], "output": [{"id": "took", "define": {"type": "int"}}]}`,
			Added, true, "actions.reset.output.took", false, feat("reset"), feat("took")},
		{"struct member added", `"max": "10"}}]}},`, `"max": "10"}}, {"id": "z", "dataType": {"type": "int"}}]}},`,
			Added, false, "properties.pos.define.specs.z", false, feat("pos"), feat("z")},

		{"property type changed", `"define": {"type": "int", "min": "0", "max": "100"`, `"define": {"type": "float", "min": "0", "max": "100"`,
			TypeChanged, true, "properties.level.define", false, feat("level"), `{"type"`},
		{"struct member retyped", `{"id": "x", "name": "X", "dataType": {"type": "int", "min": "0", "max": "10"}}`, `{"id": "x", "name": "X", "dataType": {"type": "string"}}`,
			TypeChanged, true, "properties.pos.define.specs.x.dataType", false, feat("x"), `{"type"`},
		{"array element retyped", `"arrayInfo": {"type": "int", "min": "0", "max": "9"}`, `"arrayInfo": {"type": "string"}`,
			TypeChanged, true, "properties.list.define.arrayInfo", false, `"arrayInfo": `, `{"type"`},
		{"event param retyped", `{"id": "temp", "name": "T", "define": {"type": "float"`, `{"id": "temp", "name": "T", "define": {"type": "int"`,
			TypeChanged, true, "events.alarm.params.temp.define", false, feat("alarm"), `{"type"`},
		{"action output retyped", `{"id": "ok", "name": "OK", "define": {"type": "bool", "mapping": {"0": "no", "1": "yes"}}}`, `{"id": "ok", "name": "OK", "define": {"type": "int"}}`,
			TypeChanged, true, "actions.blink.output.ok.define", false, arr, `{"type"`},

		{"rw to r", `{"id": "label", "name": "Label", "mode": "rw"`, `{"id": "label", "name": "Label", "mode": "r"`,
			ModeNarrowed, true, "properties.label", false, "", feat("label")},
		{"r to rw", `{"id": "temp", "name": "Temp", "mode": "r"`, `{"id": "temp", "name": "Temp", "mode": "rw"`,
			ModeWidened, false, "properties.temp", false, "", feat("temp")},

		{"min raised", `"type": "int", "min": "0", "max": "100"`, `"type": "int", "min": "5", "max": "100"`,
			RangeNarrowed, true, "properties.level.define", false, feat("level"), `{"type"`},
		{"max lowered", `"type": "int", "min": "0", "max": "100"`, `"type": "int", "min": "0", "max": "99"`,
			RangeNarrowed, true, "properties.level.define", false, feat("level"), `{"type"`},
		{"min added", `{"type": "float"}}, {"id": "py"`, `{"type": "float", "min": "0"}}, {"id": "py"`,
			RangeNarrowed, true, "properties.pts.define.arrayInfo.specs.px.dataType", false, feat("px"), `{"type"`},
		{"max added on array element", `"arrayInfo": {"type": "struct", "specs": [{"id": "px", "name": "PX", "dataType": {"type": "float"}}`, `"arrayInfo": {"type": "struct", "specs": [{"id": "px", "name": "PX", "dataType": {"type": "float", "max": "1e3"}}`,
			RangeNarrowed, true, "properties.pts.define.arrayInfo.specs.px.dataType", false, feat("px"), `{"type"`},
		{"min lowered", `{"type": "float", "min": "-10"`, `{"type": "float", "min": "-40"`,
			RangeWidened, false, "properties.temp.define", false, feat("temp"), `{"type"`},
		{"max raised", `"max": "40"`, `"max": "85.5"`,
			RangeWidened, false, "properties.temp.define", false, feat("temp"), `{"type"`},
		{"bound removed", `"arrayInfo": {"type": "int", "min": "0", "max": "9"}`, `"arrayInfo": {"type": "int", "min": "0"}`,
			RangeWidened, false, "properties.list.define.arrayInfo", false, `"arrayInfo": `, `{"type"`},

		{"length narrowed", `{"type": "string", "min": "1", "max": "64"}`, `{"type": "string", "min": "1", "max": "32"}`,
			LengthNarrowed, true, "properties.label.define", false, feat("label"), `{"type"`},
		{"length min raised", `{"type": "string", "min": "0", "max": "32"}`, `{"type": "string", "min": "2", "max": "32"}`,
			LengthNarrowed, true, "events.alarm.params.msg.define", false, feat("msg"), `{"type"`},
		{"length widened", `{"type": "string", "min": "1", "max": "64"}`, `{"type": "string", "min": "0", "max": "64"}`,
			LengthWidened, false, "properties.label.define", false, feat("label"), `{"type"`},

		{"enum value removed", `{"0": "red", "1": "green", "2": "blue"}`, `{"0": "red", "1": "green"}`,
			ValueRemoved, true, "properties.color.define", false, feat("color"), `{"type"`},
		{"stringenum value removed", `{"low": "Low", "high": "High"}`, `{"high": "High"}`,
			ValueRemoved, true, "properties.power.define", false, feat("power"), `{"type"`},
		{"bool value removed", `{"0": "no", "1": "yes"}`, `{"1": "yes"}`,
			ValueRemoved, true, "actions.blink.output.ok.define", false, arr, `{"type"`},
		{"enum value added", `{"0": "red", "1": "green", "2": "blue"}`, `{"0": "red", "1": "green", "2": "blue", "7": "white"}`,
			ValueAdded, false, "properties.color.define", false, feat("color"), `{"type"`},
		{"stringenum value added", `{"low": "Low", "high": "High"}`, `{"low": "Low", "mid": "Mid", "high": "High"}`,
			ValueAdded, false, "properties.power.define", false, feat("power"), `{"type"`},

		{"event type changed", `"type": "alert"`, `"type": "fault"`,
			EventTypeChanged, true, "events.alarm", false, "", feat("alarm")},

		{"property renamed (label)", `"name": "Switch"`, `"name": "Main switch"`,
			LabelChanged, false, "properties.sw", false, "", feat("sw")},
		{"member label", `"name": "X"`, `"name": "Longitude"`,
			LabelChanged, false, "properties.pos.define.specs.x", false, feat("pos"), feat("x")},
		{"enum label", `"1": "green"`, `"1": "lime"`,
			LabelChanged, false, "properties.color.define", false, feat("color"), `{"type"`},
		{"bool label", `{"0": "off", "1": "on"}`, `{"0": "off", "1": "ON"}`,
			LabelChanged, false, "properties.sw.define", false, feat("sw"), `{"type"`},
		{"description", `"desc": "too hot"`, `"desc": "overheated"`,
			DescChanged, false, "events.alarm", false, "", feat("alarm")},
		{"description added", `{"id": "reset", "name": "Reset"`, `{"id": "reset", "name": "Reset", "desc": "factory reset"`,
			DescChanged, false, "actions.reset", false, "", feat("reset")},
		{"unit", `"unit": "C"`, `"unit": "K"`,
			UnitChanged, false, "properties.temp.define", false, feat("temp"), `{"type"`},
		{"start", `"start": "1"`, `"start": "50"`,
			StartChanged, false, "properties.level.define", false, feat("level"), `{"type"`},
		{"step", `"step": "1"`, `"step": "5"`,
			StepChanged, false, "properties.level.define", false, feat("level"), `{"type"`},
		{"required", `"required": false`, `"required": true`,
			RequiredChanged, false, "properties.level", false, "", feat("level")},
		{"product id", `"ProductId": "P1"`, `"ProductId": "P2"`,
			ProductChanged, false, "profile.ProductId", false, "", `{"version"`},
		{"format version", `"version": "1.0"`, `"version": "2.0"`,
			VersionChanged, false, "version", false, "", `{"version"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Count(base, tc.from) == 0 {
				t.Fatalf("%q not in base", tc.from)
			}
			newText := strings.Replace(base, tc.from, tc.to, 1)
			oldT := mustParse(t, "old.json", base)
			newT := mustParse(t, "new.json", newText)
			changes := Diff(oldT, newT)
			if len(changes) != 1 {
				t.Fatalf("want exactly one change, got %d:\n%s", len(changes), list(changes))
			}
			c := changes[0]
			if c.Kind != tc.kind || c.Breaking != tc.breaking || c.Path != tc.path {
				t.Errorf("got %s breaking=%t path %s, want %s breaking=%t path %s\n%s",
					c.Kind, c.Breaking, c.Path, tc.kind, tc.breaking, tc.path, c)
			}
			file, text := "new.json", newText
			if tc.inOld {
				file, text = "old.json", base
			}
			want := locate(t, text, tc.anchor, tc.target)
			if c.File != file || c.Pos.Line != want.Line || c.Pos.Col != want.Col {
				t.Errorf("located at %s:%d:%d, want %s:%d:%d\n%s", c.File, c.Pos.Line, c.Pos.Col, file, want.Line, want.Col, c)
			}
			if !strings.HasPrefix(c.String(), file+":") || !strings.Contains(c.Message, ": ") {
				t.Errorf("unhelpful text: %s", c)
			}
			// The reverse diff of a breaking removal or narrowing is an addition or widening,
			// and a change never compares unequal to itself.
			if back := Diff(newT, oldT); len(back) != 1 {
				t.Errorf("reverse diff: want one change, got:\n%s", list(back))
			}
			if same := Diff(newT, newT); len(same) != 0 {
				t.Errorf("a template differs from itself:\n%s", list(same))
			}
		})
	}
}

func TestBreakingAndCompatibleTogether(t *testing.T) {
	// min lowered and max lowered in one edit: one widening, one narrowing.
	newText := strings.Replace(base, `"type": "int", "min": "0", "max": "100"`, `"type": "int", "min": "-5", "max": "50"`, 1)
	changes := Diff(mustParse(t, "old.json", base), mustParse(t, "new.json", newText))
	if len(changes) != 2 || changes[0].Kind != RangeWidened || changes[1].Kind != RangeNarrowed || !HasBreaking(changes) {
		t.Fatalf("got:\n%s", list(changes))
	}
	if got := changes[1].Message; got != `property "level": max lowered from 100 to 50` {
		t.Errorf("message %q", got)
	}
}

func mustParse(t *testing.T, name, text string) *template.Template {
	t.Helper()
	tpl, err := template.Parse(name, []byte(text))
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, text)
	}
	return tpl
}

// locate returns the line and column (in runes) of the first target after the first anchor.
func locate(t *testing.T, text, anchor, target string) template.Pos {
	t.Helper()
	from := strings.Index(text, anchor)
	if from < 0 {
		t.Fatalf("anchor %q not found", anchor)
	}
	i := strings.Index(text[from:], target)
	if i < 0 {
		t.Fatalf("target %q not found after %q", target, anchor)
	}
	off := from + i
	line := strings.Count(text[:off], "\n") + 1
	col := utf8.RuneCountInString(text[strings.LastIndex(text[:off], "\n")+1:off]) + 1
	return template.Pos{Line: line, Col: col}
}

func list(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.String() + "\n")
	}
	return b.String()
}
