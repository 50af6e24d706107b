package generator

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tplgen/tplgen/runtime/template"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/<name>/<name>_gen.go from schemas/<name>.json")

// moduleRoot is the repository root relative to this package's directory.
const moduleRoot = ".."

func schemaNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(moduleRoot, "schemas", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schemas found: %v", err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(filepath.Base(f), ".json")
	}
	return names
}

func goldenPath(name string) string {
	return filepath.Join(moduleRoot, "testdata", "golden", name, name+"_gen.go")
}

// TestGolden regenerates every schema and compares the bytes with its golden file.
func TestGolden(t *testing.T) {
	for _, name := range schemaNames(t) {
		t.Run(name, func(t *testing.T) {
			tpl, err := template.ParseFile(filepath.Join(moduleRoot, "schemas", name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Generate(tpl, Options{Package: PackageName(name), Source: "schemas/" + name + ".json", Version: "devel"})
			if err != nil {
				t.Fatal(err)
			}
			path := goldenPath(name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `go test ./generator -update` to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the generator output (run `go test ./generator -update` and review the diff):\n%s",
					path, firstDiff(want, got))
			}
		})
	}
}

// TestGoldenNoStale makes sure every golden directory still has its schema.
func TestGoldenNoStale(t *testing.T) {
	have := map[string]bool{}
	for _, n := range schemaNames(t) {
		have[n] = true
	}
	dirs, err := os.ReadDir(filepath.Join(moduleRoot, "testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if d.IsDir() && !have[d.Name()] {
			t.Errorf("testdata/golden/%s has no schemas/%s.json", d.Name(), d.Name())
		}
	}
}

// TestGoldenPackagesVet compiles and vets the goldens as real packages. The go tool skips
// testdata directories for ./... patterns, so they are named explicitly.
func TestGoldenPackagesVet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	goTool(t, moduleRoot, "vet", "./testdata/golden/...")
}

// goTool runs the go command in dir and fails the test with its output on error.
func goTool(t *testing.T, dir string, args ...string) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("go tool not found: %v", err)
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// firstDiff shows the first differing line of two texts with a little context.
func firstDiff(want, got []byte) string {
	wl := strings.Split(string(want), "\n")
	gl := strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  golden: " + w + "\n  output: " + g
		}
	}
	return "(only trailing bytes differ)"
}
