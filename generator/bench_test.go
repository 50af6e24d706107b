package generator

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/tplgen/tplgen/runtime/template"
)

// largestSchema returns the biggest file in schemas/.
func largestSchema(b *testing.B) (string, []byte) {
	b.Helper()
	files, _ := filepath.Glob(filepath.Join(moduleRoot, "schemas", "*.json"))
	var name string
	var data []byte
	for _, f := range files {
		d, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		if len(d) > len(data) {
			name, data = filepath.Base(f), d
		}
	}
	return name, data
}

// synthetic100 is a template with 100 features (the platform's limit): 70 properties of
// every type, 20 events and 10 actions, built from the seeded random generator.
func synthetic100() []byte {
	r := rand.New(rand.NewSource(100))
	g := randGen{r}
	t := &template.Template{Version: "1.0", ProductID: "SYNTH00100"}
	for i := 0; i < 70; i++ {
		t.Properties = append(t.Properties, &template.Property{ID: fmt.Sprintf("prop_%d", i), Name: "属性", Desc: "desc",
			Mode: template.ModeReadWrite, Define: g.define(0)})
	}
	for i := 0; i < 20; i++ {
		t.Events = append(t.Events, &template.Event{ID: fmt.Sprintf("event_%d", i), Name: "事件",
			Type: template.EventInfo, Params: g.params(3)})
	}
	for i := 0; i < 10; i++ {
		t.Actions = append(t.Actions, &template.Action{ID: fmt.Sprintf("action_%d", i), Name: "行为",
			Input: g.params(2), Output: g.params(2)})
	}
	return CanonicalJSON(t)
}

func benchInputs(b *testing.B) map[string][]byte {
	name, data := largestSchema(b)
	return map[string][]byte{"schema=" + name: data, "synthetic=100features": synthetic100()}
}

// BenchmarkParse is the baseline: template.Parse alone.
func BenchmarkParse(b *testing.B) {
	for name, data := range benchInputs(b) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := template.Parse("bench.json", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseGenerate is what `tplgen generate` does per file: parse, plan, emit, gofmt.
func BenchmarkParseGenerate(b *testing.B) {
	for name, data := range benchInputs(b) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var out int
			for b.Loop() {
				tpl, err := template.Parse("bench.json", data)
				if err != nil {
					b.Fatal(err)
				}
				src, err := Generate(tpl, Options{Package: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				out = len(src)
			}
			b.ReportMetric(float64(out), "out-bytes")
		})
	}
}
