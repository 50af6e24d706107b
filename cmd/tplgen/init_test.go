package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitProjectBuildsAndPasses runs init in a temporary directory, as a user would with a
// tplgen built from this checkout (hence --replace), then regenerates, vets, builds and tests
// the project with the go tool: once with the sample template, once with a template of
// structs, arrays, stringenums and timestamps.
func TestInitProjectBuildsAndPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests generated projects with the go tool")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not found")
	}
	checkout, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		pkg      string
		methods  []string // Handler stubs main.go must have
		module   string
		template string
	}{
		{"sample", nil, "light", []string{"Control(", "LightOn("}, "example.com/lamp", "templates/light.json"},
		{"struct_torture", []string{"--template", "../../schemas/struct_torture.json", "--module", "github.com/acme/torture"},
			"structtorture", []string{"Control("}, "github.com/acme/torture", "templates/struct_torture.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "lamp")
			args := append([]string{"init", "--replace", checkout}, tc.args...)
			code, out, errOut := tplgen(t, append(args, dir)...)
			if code != 0 {
				t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
			}
			for _, f := range []string{"go.mod", "go.sum", "main.go", "main_test.go", tc.template,
				tc.pkg + "/gen.go", tc.pkg + "/" + tc.pkg + "_gen.go"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("%s not created: %v", f, err)
				}
			}
			gomod := readFile(t, filepath.Join(dir, "go.mod"))
			for _, want := range []string{"module " + tc.module + "\n", "\ntool github.com/tplgen/tplgen/cmd/tplgen\n", "replace github.com/tplgen/tplgen => " + checkout} {
				if !strings.Contains(gomod, want) {
					t.Errorf("go.mod lacks %q:\n%s", want, gomod)
				}
			}
			gen := readFile(t, filepath.Join(dir, tc.pkg, "gen.go"))
			if !strings.Contains(gen, "//go:generate go tool tplgen generate -out "+tc.pkg+"_gen.go ../"+tc.template+"\n") {
				t.Errorf("gen.go:\n%s", gen)
			}
			main := readFile(t, filepath.Join(dir, "main.go"))
			for _, m := range tc.methods {
				if !strings.Contains(main, "func (d *device) "+m) {
					t.Errorf("main.go has no stub %s", m)
				}
			}
			// The project as a user gets it: go generate (through the tool directive)
			// rewrites the package, then it vets, builds and passes its test.
			for _, step := range [][]string{{"generate", "./..."}, {"vet", "./..."}, {"build", "./..."}, {"test", "-count=1", "./..."}} {
				cmd := exec.Command("go", step...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("go %s: %v\n%s", strings.Join(step, " "), err, out)
				}
				if step[0] == "test" && !strings.Contains(string(out), "ok  \t"+tc.module) {
					t.Errorf("go test did not run the project's test:\n%s", out)
				}
			}
		})
	}
}

func TestInitRefuses(t *testing.T) {
	checkout, _ := filepath.Abs("../..")
	full := t.TempDir()
	writeFile(t, filepath.Join(full, "x"), "")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"init"}, exitUsage, "want exactly one DIR"},
		{[]string{"init", "--replace", checkout, full}, exitFail, "is not empty"},
		{[]string{"init", "--replace", checkout, "--module", "Not A Path", filepath.Join(t.TempDir(), "p")}, exitUsage, "is not a module path"},
		{[]string{"init", filepath.Join(t.TempDir(), "p")}, exitUsage, "--tplgen-version"},
		{[]string{"init", "--replace", t.TempDir(), filepath.Join(t.TempDir(), "p")}, exitFail, "not a module checkout"},
		{[]string{"init", "--replace", checkout, "--template", "testdata/bad.json", filepath.Join(t.TempDir(), "p")}, exitFail, "testdata/bad.json:"},
	} {
		code, _, errOut := tplgen(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d (want %d), stderr %q (want %q)", tc.args, code, tc.code, errOut, tc.want)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The sample init embeds is testdata/light.json (go:embed cannot reach outside the package
// directory); it must stay byte-identical to schemas/light.json, the copy the tests read.
func TestInitSampleIsSchemasLight(t *testing.T) {
	want, err := os.ReadFile("../../schemas/light.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sampleTemplate, want) {
		t.Fatal("cmd/tplgen/testdata/light.json (the init sample) differs from schemas/light.json: copy schemas/light.json over it")
	}
}
