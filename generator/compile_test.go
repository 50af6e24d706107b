package generator

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/tplgen/tplgen/runtime/template"
)

// vetPackages writes each generated file as its own package in a temporary directory inside
// the module (so imports of runtime/tplwire resolve) and runs go vet over all of them.
func vetPackages(t *testing.T, files map[string][]byte) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	dir, err := os.MkdirTemp("testdata", "tmp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for name, src := range files {
		pkgDir := filepath.Join(dir, name)
		if err := os.MkdirAll(pkgDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkgDir, name+"_gen.go"), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goTool(t, moduleRoot, "vet", "./"+filepath.ToSlash(filepath.Join("generator", dir))+"/...")
}

var locatedRE = regexp.MustCompile(`^[^:]+\.json:\d+:\d+: \S`)

// TestRealTemplates: every real template (testdata/templates and schemas, one copy each)
// either generates code that compiles and passes vet, or is rejected with errors located as
// FILE:LINE:COL.
func TestRealTemplates(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join(moduleRoot, "testdata", "templates", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no templates in testdata/templates: %v", err)
	}
	schemas, err := filepath.Glob(filepath.Join(moduleRoot, "schemas", "*.json"))
	if err != nil || len(schemas) == 0 {
		t.Fatalf("no templates in schemas: %v", err)
	}
	paths = append(paths, schemas...)
	generated := map[string][]byte{}
	var rejected []string
	for _, path := range paths {
		base := strings.TrimSuffix(filepath.Base(path), ".json")
		tpl, err := template.ParseFile(path)
		if err == nil {
			var src []byte
			src, err = Generate(tpl, Options{Package: PackageName(base)})
			if err == nil {
				generated[PackageName(base)] = src
				continue
			}
		}
		var list template.ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Errorf("%s: rejected without located errors: %v", base, err)
			continue
		}
		for _, e := range list {
			if e.Pos.Line < 1 || !locatedRE.MatchString(e.Error()) {
				t.Errorf("%s: error not located as FILE:LINE:COL: %q", base, e.Error())
			}
		}
		rejected = append(rejected, base+": "+list[0].Error())
	}
	sort.Strings(rejected)
	t.Logf("%d generated, %d rejected:\n%s", len(generated), len(rejected), strings.Join(rejected, "\n"))
	if len(generated) < len(paths)/2 {
		t.Errorf("only %d of %d templates generated", len(generated), len(paths))
	}
	vetPackages(t, generated)
}

// TestVersionGuard shows the compile-time guard working: a file claiming a generated-code
// version newer than tplwire supports does not build, and the error points at the guard.
func TestVersionGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	tpl, err := template.Parse("guard.json", []byte(`{"properties":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	src, err := Generate(tpl, Options{Package: "guard"})
	if err != nil {
		t.Fatal(err)
	}
	future := strings.Replace(string(src), "tplwire.MaxVersion - 2", "tplwire.MaxVersion - 99", 1)
	if future == string(src) {
		t.Fatal("guard expression not found in generated code")
	}
	dir, err := os.MkdirTemp("testdata", "tmp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "guard_gen.go"), []byte(future), 0o644); err != nil {
		t.Fatal(err)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	cmd := exec.Command(gobin, "build", "./"+filepath.ToSlash(filepath.Join("generator", dir)))
	cmd.Dir = moduleRoot
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("a file generated for a newer runtime compiled")
	}
	if !strings.Contains(string(out), "guard_gen.go") || !strings.Contains(string(out), "overflows") {
		t.Errorf("unexpected compiler output:\n%s", out)
	}
}

func TestNumbered(t *testing.T) {
	if got := numbered([]byte("a\nb")); got != "    1  a\n    2  b\n" {
		t.Errorf("numbered = %q", got)
	}
}
