package template

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// Real exported templates, one copy each: schemas/ (the ones examples and goldens use) and
// testdata/templates/ (the rest; provenance in each directory's README).
const (
	schemaDir = "../../schemas"
	realDir   = "../../testdata/templates"
)

// realTemplates lists every real template file of both directories.
func realTemplates(t testing.TB) []string {
	var files []string
	for _, dir := range []string{schemaDir, realDir} {
		f, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil || len(f) == 0 {
			t.Fatalf("no templates in %s: %v", dir, err)
		}
		files = append(files, f...)
	}
	return files
}

// TestParseRealTemplates parses every real template: each either parses (with exactly the
// listed warnings) or is rejected with exactly the listed located errors.
func TestParseRealTemplates(t *testing.T) {
	type want struct {
		props, events, actions int
		productID              string
		warnings               []string // "LINE:COL: message substring"
		errors                 []string // same, for rejected files
	}
	cases := map[string]want{
		// Hand-written (schemas/README.md): the location service's properties.
		"location.json":                    {props: 2, productID: "LOCATION01"},
		"at-based-sdk__tools__config.json": {props: 5, events: 3, productID: "22F9Y6II7O"},
		"c_sdk_example.json":               {props: 6, events: 3, actions: 1, productID: "0BCDALFUO8"},
		"control_four_v3.json":             {props: 11, actions: 1, productID: "M43NHRD75E"},
		"air_cleaner.json":                 {props: 15, productID: "P9FCB4V9V1"},
		"aromatherapy_machine.json": {props: 11, productID: "P9FCB4V9V1",
			warnings: []string{`141:18: properties[9] "bright_value": define.start 0 is outside [10,1000]`}},
		"audible_visual_alarm.json": {props: 10, productID: "P9FCB4V9V1",
			warnings: []string{`120:18: properties[7] "alarm_time": define.start 0 is outside [1,60]`}},
		"body_scales.json":                             {props: 6, productID: "P9FCB4V9V1"},
		"dimmer_switch.json":                           {props: 5, productID: "P9FCB4V9V1"},
		"h5-freepanels__docs_model__electric-car.json": {props: 4, productID: "P9FCB4V9V1"},
		"electric_oven.json":                           {props: 13, productID: "P9FCB4V9V1"},
		"h5-freepanels__docs_model__electricity-stats-receptacle.json": {props: 5, productID: "P9FCB4V9V1"},
		"fan.json":               {props: 5, productID: "P9FCB4V9V1"},
		"five_streetlights.json": {props: 7, productID: "P9FCB4V9V1"},
		"gas_alarm.json": {props: 15, events: 1, productID: "P9FCB4V9V1",
			warnings: []string{`223:18: properties[14] "alarm_time": define.start 0 is outside [1,60]`}},
		// Not strict JSON upstream: a trailing comma closes the properties array.
		"h5-freepanels__docs_model__heater.json": {errors: []string{`195:6: trailing comma before ]`}},
		"humidifier.json": {props: 26, productID: "P9FCB4V9V1",
			warnings: []string{
				`152:18: properties[10] "eco2": define.start 1 is outside [350,2000]`,
				`224:18: properties[15] "current_fahrenheit": define.start 1 is outside [32,104]`,
				`254:18: properties[17] "set_fahrenheit": define.start 1 is outside [32,104]`,
			}},
		"laundry_rack.json": {props: 14, productID: "P9FCB4V9V1"},
		// A bool whose mapping has named keys: the platform only produces 0/1 bool keys.
		// A bool whose mapping keys are labels: generated with a warning.
		"h5-freepanels__docs_model__multifunction-alarm-host.json": {props: 28, productID: "P9FCB4V9V1",
			warnings: []string{
				`26:11: properties[1] "woke_mode": define.mapping key "disarmed": bool mapping keys should be 0 or 1; the mapping is ignored and the value is still sent as 0/1 (named values need type stringenum)`,
				`129:18: properties[7] "alarm_time": define.start 0 is outside [1,60]`,
			}},
		"pet_feeder.json": {props: 11, productID: "P9FCB4V9V1",
			warnings: []string{`142:18: properties[9] "manual_feed": define.start 0 is outside [1,12]`}},
		"h5-freepanels__docs_model__router.json": {props: 8, productID: "P9FCB4V9V1"},
		"smoke_alarm.json": {props: 11, productID: "P9FCB4V9V1",
			warnings: []string{`164:18: properties[10] "alarm_time": define.start 0 is outside [1,60]`}},
		"thermostat.json": {props: 18, productID: "P9FCB4V9V1",
			warnings: []string{
				`223:18: properties[14] "current_fahrenheit": define.start 1 is outside [32,104]`,
				`253:18: properties[16] "set_fahrenheit": define.start 1 is outside [32,104]`,
			}},
		"h5-freepanels__docs_model__three-switch.json": {props: 7, productID: "P9FCB4V9V1"},
		// The copy collected here is strict JSON (see testdata/templates/README.txt).
		"water_heater.json": {props: 29, productID: "P9FCB4V9V1",
			warnings: []string{`335:18: properties[22] "water_set": define.start 0 is outside [20,100]`}},
		"white_lamp.json":                         {props: 5, productID: "P9FCB4V9V1"},
		"iothub_c_example.json":                   {props: 6, events: 3, productID: "C0NEMO9UO0"},
		"trtc_watch.json":                         {props: 11, actions: 2, productID: "7I7PNT6O2G"},
		"java__android-demo-assets__facekit.json": {productID: "79LKM47JZ1"},
		"gateway.json":                            {props: 4, events: 3, productID: "DJGGX7W37T"},
		"struct_torture.json":                     {props: 10, events: 3, productID: "4ALW3EHQW3"},
		"subdev1.json":                            {props: 4, events: 3, productID: "XP0E0OAIGZ"},
		"subdev2.json":                            {props: 4, productID: "AI81EB84AY"},
		"python__explorer_sample_gateway__prdouct1_config.json": {props: 4, events: 3, productID: "SHP7NE6RXE"},
		"python__explorer_sample_gateway__prdouct2_config.json": {props: 4, events: 3, productID: "HAVOCMDHTL"},
		"light.json": {props: 4, events: 3, actions: 1, productID: "ZPHBLEB4J5"},
	}
	for _, path := range realTemplates(t) {
		name := filepath.Base(path)
		w, ok := cases[name]
		if !ok {
			t.Errorf("%s: no expectation in the table; add one", name)
			continue
		}
		delete(cases, name)
		t.Run(name, func(t *testing.T) {
			tpl, err := ParseFile(path)
			if len(w.errors) > 0 {
				var list ErrorList
				if !errors.As(err, &list) {
					t.Fatalf("want ErrorList, got %v", err)
				}
				if len(list) != len(w.errors) {
					t.Fatalf("got %d errors, want %d:\n%v", len(list), len(w.errors), err)
				}
				for i, e := range list {
					if e.File != path {
						t.Errorf("error %d file = %q, want %q", i, e.File, path)
					}
					loc, msg, _ := strings.Cut(w.errors[i], ": ")
					if got := e.Error(); e.Pos.String() != loc || !strings.HasPrefix(got, path+":"+loc+": ") || !strings.Contains(got, msg) {
						t.Errorf("error %d = %q, want %s:%s", i, got, path, w.errors[i])
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tpl.Properties) != w.props || len(tpl.Events) != w.events || len(tpl.Actions) != w.actions {
				t.Errorf("P/E/A = %d/%d/%d, want %d/%d/%d", len(tpl.Properties), len(tpl.Events), len(tpl.Actions), w.props, w.events, w.actions)
			}
			if tpl.ProductID != w.productID {
				t.Errorf("ProductID = %q, want %q", tpl.ProductID, w.productID)
			}
			if len(tpl.Warnings) != len(w.warnings) {
				t.Fatalf("got %d warnings %v, want %d", len(tpl.Warnings), tpl.Warnings, len(w.warnings))
			}
			for i, d := range tpl.Warnings {
				if got, want := d.String(), path+":"+w.warnings[i]; got != want {
					t.Errorf("warning %d = %q, want %q", i, got, want)
				}
			}
		})
	}
	for name := range cases {
		t.Errorf("%s: listed in the table but missing from %s and %s", name, schemaDir, realDir)
	}
}
