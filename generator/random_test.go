package generator

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand"
	"strconv"
	"testing"

	"github.com/tplgen/tplgen/runtime/template"
)

var (
	randomSeed  = flag.Int64("seed", 1, "first seed of TestRandomTemplates")
	randomCount = flag.Int("random", 25, "number of random templates in TestRandomTemplates")
)

// TestRandomTemplates is a property test: random valid templates (every type, ids chosen to
// collide with each other and with generated API names, hostile names and descriptions) must
// survive CanonicalJSON -> template.Parse unchanged, generate identical code from the model
// and from the parsed copy, and that code must compile and pass vet.
func TestRandomTemplates(t *testing.T) {
	files := map[string][]byte{}
	for i := 0; i < *randomCount; i++ {
		seed := *randomSeed + int64(i)
		r := rand.New(rand.NewSource(seed))
		model := randomTemplate(r)
		js := CanonicalJSON(model)
		parsed, err := template.Parse("random.json", js)
		if err != nil {
			t.Fatalf("seed %d: canonical JSON does not parse: %v\n%s", seed, err, js)
		}
		if again := CanonicalJSON(parsed); !bytes.Equal(again, js) {
			t.Fatalf("seed %d: CanonicalJSON(Parse(CanonicalJSON(m))) differs:\n%s\n%s", seed, js, again)
		}
		pkg := "rnd" + strconv.FormatInt(seed, 10)
		src, err := Generate(model, Options{Package: pkg})
		if err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, js)
		}
		src2, err := Generate(parsed, Options{Package: pkg})
		if err != nil || !bytes.Equal(src, src2) {
			t.Fatalf("seed %d: generating from the parsed template differs (err %v)", seed, err)
		}
		files[pkg] = src
	}
	vetPackages(t, files)
}

// Ids that collide after GoName, with each other and with generated names.
var nastyIDs = []string{
	"power_switch", "powerSwitch", "PowerSwitch", "POWER_SWITCH", "power__switch", "Device", "device",
	"New", "ProductID", "product_id", "Handler", "handler", "Properties", "properties",
	"ControlProperties", "Validate", "validate", "String", "Valid", "EventID", "EventType",
	"ActionID", "Control", "control", "type", "func", "map", "range", "nil", "true", "iota",
	"x", "e", "i", "el", "v", "c", "p", "in", "ctx", "err", "path", "templateJSON", "tplwire",
	"context", "math", "strconv", "errors", "fmt", "json", "thing", "explorer", "template",
	"Input", "Output", "Item", "foo_input", "FooInput", "foo", "foo_item", "Status", "status",
	"_", "__", "_x", "A1", "a_1", "a1", "id", "ID", "Event", "Events", "post_events", "Thing",
	"Report", "GetStatus", "Close", "Option", "Template", "sync", "parsedTemplate",
}

var nastyTexts = []string{
	"", "plain", "温度", "*/ evil /*", "`backtick`", "line1\nline2", "a\u2028b\u2029c",
	"\"quoted\"", "back\\slash", "//go:generate rm -rf /", "tab\there", "\u202Ertl", "emoji 🌡️",
	"%s %d %v", "<script>&amp;", "\x00nul", "\r\n", "   ", "中文 desc with ASCII", "end */",
}

type randGen struct {
	r *rand.Rand
}

func (g randGen) pick(list []string) string { return list[g.r.Intn(len(list))] }

func (g randGen) id(used map[string]bool) string {
	for {
		var id string
		if g.r.Intn(4) > 0 {
			id = g.pick(nastyIDs)
		} else {
			const first = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
			const rest = first + "0123456789"
			b := []byte{first[g.r.Intn(len(first))]}
			for n := g.r.Intn(12); n > 0; n-- {
				b = append(b, rest[g.r.Intn(len(rest))])
			}
			id = string(b)
		}
		if !used[id] {
			used[id] = true
			return id
		}
	}
}

func (g randGen) text() string {
	if g.r.Intn(3) == 0 {
		return g.pick(nastyTexts) + g.pick(nastyTexts)
	}
	return g.pick(nastyTexts)
}

var scalarTypes = []template.Type{template.TypeBool, template.TypeInt, template.TypeFloat,
	template.TypeString, template.TypeEnum, template.TypeStringEnum, template.TypeTimestamp}

func (g randGen) define(depth int) *template.Define {
	types := scalarTypes
	if depth == 0 {
		types = append(append([]template.Type{}, scalarTypes...), template.TypeStruct, template.TypeArray, template.TypeStruct, template.TypeArray)
	}
	return g.defineOf(types[g.r.Intn(len(types))], depth)
}

func (g randGen) defineOf(t template.Type, depth int) *template.Define {
	r := g.r
	d := &template.Define{Type: t}
	switch t {
	case template.TypeInt:
		lo := r.Int63n(2_000_001) - 1_000_000
		d.Min, d.HasMin = float64(lo), r.Intn(5) > 0
		d.Max, d.HasMax = float64(lo+r.Int63n(1_000_000)), r.Intn(5) > 0
		d.Start, d.HasStart = float64(lo), r.Intn(2) == 0
		d.Step, d.HasStep = 1, r.Intn(2) == 0
		d.Unit = g.pick([]string{"", "%", "°C", "m/s"})
	case template.TypeFloat:
		lo := float64(r.Intn(2001)-1000) / 8
		d.Min, d.HasMin = lo, r.Intn(5) > 0
		d.Max, d.HasMax = lo+float64(r.Intn(10000))/4, r.Intn(5) > 0
		d.Step, d.HasStep = 0.5, r.Intn(2) == 0
		d.Unit = g.pick([]string{"", "V", "kWh"})
		d.UnitDesc = g.pick([]string{"", "伏特"})
	case template.TypeString:
		d.Min, d.HasMin = float64(r.Intn(3)), r.Intn(2) == 0
		d.Max, d.HasMax = float64(3+r.Intn(4096)), r.Intn(5) > 0
	case template.TypeBool:
		if r.Intn(4) > 0 {
			d.Mapping = []template.MappingEntry{{Key: "0", Int: 0, Label: g.text()}, {Key: "1", Int: 1, Label: g.text()}}
		}
	case template.TypeEnum:
		seen := map[int64]bool{}
		for n := 1 + r.Intn(6); n > 0; n-- {
			k := int64(r.Intn(21) - 5)
			if r.Intn(8) == 0 {
				k = r.Int63() - r.Int63()
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			label := g.pick([]string{"Red", "red", "Green", "low speed", "Auto-Mode", "1st", "", "关", "x"})
			d.Mapping = append(d.Mapping, template.MappingEntry{Key: strconv.FormatInt(k, 10), Int: k, Label: label})
		}
	case template.TypeStringEnum:
		seen := map[string]bool{}
		for n := 1 + r.Intn(5); n > 0; n-- {
			k := g.pick([]string{"celsius", "fahrenheit", "auto", "Auto", "0", "1", "a b", "x\"y", "back\\", "温度", "line\nbreak", "`tick`", "*/"})
			if seen[k] {
				continue
			}
			seen[k] = true
			d.Mapping = append(d.Mapping, template.MappingEntry{Key: k, Label: g.text()})
		}
	case template.TypeStruct:
		used := map[string]bool{}
		for n := r.Intn(5); n > 0; n-- {
			d.Specs = append(d.Specs, &template.Param{ID: g.id(used), Name: g.text(), Desc: g.text(), Define: g.define(depth + 1)})
		}
	case template.TypeArray:
		elems := []template.Type{template.TypeInt, template.TypeFloat, template.TypeString, template.TypeStruct}
		d.Elem = g.defineOf(elems[r.Intn(len(elems))], depth+1)
	}
	return d
}

func (g randGen) params(n int) []*template.Param {
	used := map[string]bool{}
	var ps []*template.Param
	for ; n > 0; n-- {
		ps = append(ps, &template.Param{ID: g.id(used), Name: g.text(), Desc: g.text(), Define: g.define(0)})
	}
	return ps
}

func randomTemplate(r *rand.Rand) *template.Template {
	g := randGen{r}
	t := &template.Template{Version: "1.0"}
	if r.Intn(3) > 0 {
		t.ProductID = fmt.Sprintf("P%09d", r.Intn(1e9))
		t.CategoryID = strconv.Itoa(r.Intn(700))
	}
	used := map[string]bool{}
	for n := r.Intn(12); n > 0; n-- {
		mode := template.ModeRead
		if r.Intn(2) == 0 {
			mode = template.ModeReadWrite
		}
		t.Properties = append(t.Properties, &template.Property{ID: g.id(used), Name: g.text(), Desc: g.text(),
			Mode: mode, Required: r.Intn(2) == 0, Define: g.define(0)})
	}
	used = map[string]bool{}
	for n := r.Intn(5); n > 0; n-- {
		types := []template.EventType{template.EventInfo, template.EventAlert, template.EventFault}
		t.Events = append(t.Events, &template.Event{ID: g.id(used), Name: g.text(), Desc: g.text(),
			Type: types[r.Intn(3)], Params: g.params(r.Intn(4))})
	}
	used = map[string]bool{}
	for n := r.Intn(4); n > 0; n-- {
		t.Actions = append(t.Actions, &template.Action{ID: g.id(used), Name: g.text(), Desc: g.text(),
			Input: g.params(r.Intn(3)), Output: g.params(r.Intn(3))})
	}
	return t
}
