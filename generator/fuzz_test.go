package generator

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"testing"

	"github.com/tplgen/tplgen/runtime/template"
)

// FuzzGenerate: whatever template.Parse accepts, Generate must either reject with located
// errors or return source that parses as Go; it must never panic. (Compiling is left to the
// property and golden tests, which are too slow for a fuzz loop.)
func FuzzGenerate(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(moduleRoot, "schemas", "*.json"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"properties":[{"id":"a","mode":"rw","define":{"type":"enum","mapping":{"1":"x","01":"y"}}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tpl, err := template.Parse("fuzz.json", data)
		if err != nil {
			return
		}
		src, err := Generate(tpl, Options{Package: "fuzz"})
		if err != nil {
			if _, ok := err.(template.ErrorList); !ok {
				t.Fatalf("unlocated error: %v", err)
			}
			return
		}
		if _, err := parser.ParseFile(token.NewFileSet(), "fuzz_gen.go", src, parser.AllErrors); err != nil {
			t.Fatalf("generated source does not parse: %v", err)
		}
	})
}
