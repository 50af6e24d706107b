package generator

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tplgen/tplgen/runtime/template"
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
	  "properties":[{"id":"power","name":"p","mode":"rw","define":{"type":"bool"}}],
	  "events":[{"id":"event","name":"an event","desc":"evil\n//go:generate rm -rf /","type":"info","params":[]},
	            {"id":"alarm","name":"a","type":"alert","params":[{"id":"level","name":"l","define":{"type":"int","min":"0","max":"9"}}]}],
	  "actions":[{"id":"blink","name":"b","input":[],"output":[]}]}`)
	for _, want := range []string{"Template", "Device", "New", "Status", "Event", "Event2", "Alarm", "controlHandler", "actionHandler"} {
		if !decls[want] {
			t.Errorf("no top-level %s", want)
		}
	}
	for _, want := range []string{"Report", "GetStatus", "GetPendingControl", "ClearControl", "ReportInfo",
		"PostEvent", "PostAlarm", "PostEvents", "Thing", "Close"} {
		if !methods[want] {
			t.Errorf("Device has no method %s", want)
		}
	}
	// The event called "event" keeps type Event; the interface steps aside.
	if !strings.Contains(string(src), "func (d *Device) PostEvents(ctx context.Context, events ...Event2) error") {
		t.Error("PostEvents does not take the renamed Event2 interface")
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
	for _, absent := range []string{"Event", "actionHandler"} {
		if decls[absent] {
			t.Errorf("unexpected %s without events/actions", absent)
		}
	}
	if methods["PostEvents"] {
		t.Error("PostEvents without events")
	}
	if !methods["Report"] || !decls["New"] {
		t.Error("Report/New missing")
	}
	vetGenerated(t, "bare", src)
}
