package generator

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/thing"
)

// deviceDecls generates src for tplJSON and returns the names of its top-level declarations
// and of the methods of Device.
func deviceDecls(t *testing.T, tplJSON string) (src []byte, decls, methods map[string]bool) {
	t.Helper()
	tpl, err := template.Parse("device_test.json", []byte(tplJSON))
	if err != nil {
		t.Fatal(err)
	}
	src, err = Generate(tpl, Options{Package: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "dev_gen.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	decls, methods = map[string]bool{}, map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				decls[d.Name.Name] = true
				continue
			}
			if star, ok := d.Recv.List[0].Type.(*ast.StarExpr); ok && star.X.(*ast.Ident).Name == "Device" {
				methods[d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					decls[s.Name.Name] = true
				case *ast.ValueSpec:
					for _, n := range s.Names {
						decls[n.Name] = true
					}
				}
			}
		}
	}
	return src, decls, methods
}

// vetGenerated writes src as a package inside the module and runs go vet on it.
func vetGenerated(t *testing.T, name string, src []byte) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	dir, err := os.MkdirTemp("testdata", "tmp-device-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pkg := filepath.Join(dir, name)
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, name+"_gen.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "vet", "./"+filepath.ToSlash(pkg))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet: %v\n%s\n%s", err, out, numbered(src))
	}
}

func TestDeviceShape(t *testing.T) {
	src, decls, methods := deviceDecls(t, `{"version":"1.0","profile":{"ProductId":"ABCDEFGHIJ"},
	  "properties":[{"id":"power","name":"p","mode":"rw","define":{"type":"bool"}},
	                {"id":"status","name":"s","mode":"r","define":{"type":"enum","mapping":{"0":"ok","1":"fault"}}},
	                {"id":"uv_index","name":"u","mode":"r","define":{"type":"int","min":"0","max":"15"}}],
	  "events":[{"id":"event","name":"an event","desc":"evil\n//go:generate rm -rf /","type":"info","params":[]},
	            {"id":"events","name":"clash","type":"info","params":[]},
	            {"id":"alarm","name":"a","type":"alert","params":[{"id":"level","name":"l","define":{"type":"int","min":"0","max":"9"}}]}],
	  "actions":[{"id":"blink","name":"b","input":[],"output":[]}]}`)
	for _, want := range []string{"Template", "Device", "New", "Event", "Alarm", "spec",
		"Status", "StatusOk", "Events2"} {
		if !decls[want] {
			t.Errorf("no top-level %s", want)
		}
	}
	for _, absent := range []string{"Status2", "controlHandler", "actionHandler"} {
		if decls[absent] {
			t.Errorf("unexpected top-level %s", absent)
		}
	}
	// Only the template-dependent methods are generated; the rest come from the embedded
	// *thing.Device. An event called "events" must not shadow its PostEvents.
	for _, want := range []string{"PostEvent", "PostAlarm", "PostEvents2"} {
		if !methods[want] {
			t.Errorf("Device has no method %s", want)
		}
	}
	for _, absent := range []string{"Report", "GetStatus", "Close", "PostEvents"} {
		if methods[absent] {
			t.Errorf("Device generates template-independent method %s", absent)
		}
	}
	for _, want := range []string{
		"Status *Status `json:\"status,omitempty\"`", // "status" keeps its natural name
		"UVIndex *int64", // initialisms read as Go does
		"func (x *Properties) GetUVIndex() int64",
		"*thing.Device[Properties, ControlProperties]",
		"thing.ActionOf(\"blink\", Handler.Blink)",
		"// versions:",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("generated code lacks %q", want)
		}
	}
	for _, line := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "//go:generate") {
			t.Errorf("template text became a directive: %q", line)
		}
	}
	vetGenerated(t, "dev", src)
}

func TestDeviceWithoutEventsOrActions(t *testing.T) {
	src, decls, methods := deviceDecls(t, `{"version":"1.0","properties":[
	  {"id":"temp","name":"t","mode":"r","define":{"type":"float","min":"-40","max":"80"}}]}`)
	if len(methods) != 0 {
		t.Errorf("Device methods without events: %v", methods)
	}
	if !decls["New"] || !decls["Device"] {
		t.Error("Device/New missing")
	}
	if strings.Contains(string(src), "Actions:") {
		t.Error("Actions listed without actions")
	}
	vetGenerated(t, "bare", src)
}

// TestReservedDeviceNames: every method of thing.Device (promoted onto the generated Device)
// is reserved, so no Post<Event> method can shadow it.
func TestReservedDeviceNames(t *testing.T) {
	reserved := map[string]bool{}
	for _, n := range reservedDevice {
		reserved[n] = true
	}
	typ := reflect.TypeOf(&thing.Device[params, params]{})
	for i := 0; i < typ.NumMethod(); i++ {
		if name := typ.Method(i).Name; !reserved[name] {
			t.Errorf("thing.Device method %s is not in reservedDevice", name)
		}
	}
}

// params is a minimal thing.Params for instantiating thing.Device in tests.
type params struct{}

func (params) Validate() error            { return nil }
func (params) AppendJSON(b []byte) []byte { return b }
