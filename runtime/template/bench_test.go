package template

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/goccy/go-json"
)

// report10 is a 10-property report for testdata/light.json (the shape of docs/PROTOCOL.md §2.4.1).
const report10 = `{"power_switch":1,"brightness":42,"color_mode":3,"temperature":23.5,"name":"客厅",` +
	`"unit_mode":"celsius","last_on":1700000000,"switch_names":["Reading","Sleep"],` +
	`"today_ec":{"date":"202311","ec":1.25},"points":[{"x":1,"on":1},{"x":-3,"on":0}]}`

func BenchmarkCheckProperties(b *testing.B) {
	tpl := lightTemplate(b)
	params := []byte(report10)
	b.SetBytes(int64(len(params)))
	b.ReportAllocs()
	for b.Loop() {
		if err := tpl.CheckProperties(params, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckPropertiesDecoded is the baseline: decode with goccy/go-json (UseNumber) into
// a map and check each value with CheckValue, what a caller would do without the raw check.
func BenchmarkCheckPropertiesDecoded(b *testing.B) {
	tpl := lightTemplate(b)
	params := []byte(report10)
	b.SetBytes(int64(len(params)))
	b.ReportAllocs()
	for b.Loop() {
		dec := json.NewDecoder(bytes.NewReader(params))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			b.Fatal(err)
		}
		for k, v := range m {
			if err := tpl.Property(k).Define.CheckValue(v); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkCheckPropertiesInvalid(b *testing.B) {
	tpl := lightTemplate(b)
	params := []byte(`{"power_switch":1,"brightness":420}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := tpl.CheckProperties(params, false); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkParse(b *testing.B) {
	path := filepath.Join(schemaDir, "struct_torture.json")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(path, data); err != nil {
			b.Fatal(err)
		}
	}
}
