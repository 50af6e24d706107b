package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	json "github.com/goccy/go-json"
	"github.com/urfave/cli/v2"

	"github.com/tplgen/tplgen/generator"
	tpl "github.com/tplgen/tplgen/runtime/template"
)

// sampleTemplate is the light product used when init is given no --template (a copy of
// schemas/light.json kept with the CLI's test inputs).
//
//go:embed testdata/light.json
var sampleTemplate []byte

// zeroPseudoVersion is what a require of a module replaced by a local directory uses.
const zeroPseudoVersion = "v0.0.0-00010101000000-000000000000"

// initCommand creates a device project that builds and passes its test out of the box.
func initCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "create a device project: go.mod with the tplgen tool, generated package, main.go, test",
		ArgsUsage: "DIR",
		Description: `Creates DIR (which must not exist or be empty) with:

   go.mod            module --module, requiring tplgen and declaring it as a tool
   templates/T.json  the data template (--template, or the sample light product)
   PKG/gen.go        //go:generate go tool tplgen generate -out PKG_gen.go ../templates/T.json
   PKG/PKG_gen.go    the generated package
   main.go           a Handler stub with every control and action method, and a Dial that reads
                     the credentials from flags or the environment (DEVICE_SECRET, ...)
   main_test.go      runs the device against the in-process platform (runtime/explorertest)

then runs go mod tidy (skip with --no-tidy). The project requires the tplgen version this
binary was built from, or --tplgen-version; --replace DIR points it at a local checkout.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "template", Aliases: []string{"t"}, Usage: "data template `FILE` (default: the sample light product)"},
			&cli.StringFlag{Name: "module", Aliases: []string{"m"}, Usage: "module `PATH` (default: example.com/ and DIR's name)"},
			&cli.StringFlag{Name: "tplgen-version", Usage: "tplgen `VERSION` to require (default: this binary's)"},
			&cli.StringFlag{Name: "replace", Usage: "use the tplgen checkout in `DIR` (a replace directive)"},
			&cli.BoolFlag{Name: "no-tidy", Usage: "do not run go mod tidy (go.sum is then missing)"},
		},
		Action: runInit,
	}
}

var modulePathRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.\-]*(/[A-Za-z0-9_.\-~]+)*$`)

func runInit(c *cli.Context) error {
	if c.NArg() != 1 {
		return usagef("init: want exactly one DIR argument, got %d", c.NArg())
	}
	dir := c.Args().First()
	if err := checkEmptyDir(dir); err != nil {
		return err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	module := c.String("module")
	if module == "" {
		module = "example.com/" + generator.PackageName(filepath.Base(absDir))
	}
	if !modulePathRE.MatchString(module) || strings.Contains(module, "..") {
		return usagef("init: --module %q is not a module path (e.g. example.com/lamp or github.com/you/lamp)", module)
	}

	// The template: read, parse, and named after its file.
	tplName, data := "light.json", sampleTemplate
	if f := c.String("template"); f != "" {
		if data, err = os.ReadFile(f); err != nil {
			return fmt.Errorf("init: --template: %w", err)
		}
		tplName = filepath.Base(f)
		if !strings.HasSuffix(tplName, ".json") {
			tplName += ".json"
		}
	}
	tplPath := "templates/" + tplName
	model, err := tpl.Parse(c.String("template"), data)
	if err != nil {
		printErrors(c.App.ErrWriter, c.String("template"), err)
		return cli.Exit("", exitFail)
	}
	pkg := generator.PackageName(strings.TrimSuffix(tplName, ".json"))
	if pkg == "" || !token.IsIdentifier(pkg) || token.Lookup(pkg).IsKeyword() || pkg == "main" {
		pkg = "device"
	}
	pid := model.ProductID
	if pid == "" {
		pid = "PRODUCTID"
	}

	version := c.String("tplgen-version")
	replace := c.String("replace")
	switch {
	case replace != "":
		if replace, err = filepath.Abs(replace); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(replace, "go.mod")); err != nil {
			return fmt.Errorf("init: --replace %s: not a module checkout: %w", replace, err)
		}
		if version == "" {
			version = zeroPseudoVersion
		}
	case version == "":
		version = buildVersion()
		if version == "devel" {
			return usagef("init: this tplgen was built from a checkout, so its version is unknown; give --tplgen-version vX.Y.Z or --replace CHECKOUT")
		}
	}

	gen, err := generator.Generate(model, generator.Options{
		Package: pkg,
		Source:  "../" + tplPath,
		Version: version,
	})
	if err != nil {
		printErrors(c.App.ErrWriter, c.String("template"), err)
		return cli.Exit("", exitFail)
	}
	stub, devType, imports, err := handlerStub(gen, pkg)
	if err != nil {
		return fmt.Errorf("init: reading the generated package: %w", err)
	}
	control, hasControl := controlSample(model)
	p := initParams{
		Module: module, Pkg: pkg, PkgPath: module + "/" + pkg, ProductID: pid, TemplatePath: tplPath,
		Version: version, Replace: replace, Stub: stub, DeviceType: devType, Imports: imports, HasControl: hasControl, Control: control,
	}
	files := map[string][]byte{
		tplPath:                     data,
		pkg + "/gen.go":             []byte(fmt.Sprintf("// Package %s is the typed code for the %s data template.\npackage %s\n\n//go:generate go tool tplgen generate -out %s_gen.go ../%s\n", pkg, tplName, pkg, pkg, tplPath)),
		pkg + "/" + pkg + "_gen.go": gen,
	}
	for name, t := range map[string]*template.Template{"go.mod": goModTmpl, "main.go": mainTmpl, "main_test.go": testTmpl} {
		var b bytes.Buffer
		if err := t.Execute(&b, p); err != nil {
			return err
		}
		out := b.Bytes()
		if strings.HasSuffix(name, ".go") {
			if out, err = format.Source(out); err != nil {
				return fmt.Errorf("init: %s does not format (a bug): %w\n%s", name, err, b.Bytes())
			}
		}
		files[name] = out
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		path := filepath.Join(absDir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		if err := os.WriteFile(path, files[n], 0o644); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		fmt.Fprintf(c.App.Writer, "created %s\n", filepath.Join(dir, filepath.FromSlash(n)))
	}
	if !c.Bool("no-tidy") {
		cmd := exec.CommandContext(c.Context, "go", "mod", "tidy")
		cmd.Dir = absDir
		cmd.Stdout, cmd.Stderr = c.App.ErrWriter, c.App.ErrWriter
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("init: go mod tidy in %s: %w (the files are written; fix and rerun go mod tidy)", dir, err)
		}
	}
	fmt.Fprintf(c.App.Writer, "\nnext:\n  cd %s\n  go test ./...\n  go tool tplgen emulate --template %s --device %s/dev1=ZGV2MS1zZWNyZXQ=\n  DEVICE_SECRET=ZGV2MS1zZWNyZXQ= go run . --device dev1 --broker tcp://127.0.0.1:1883\n", dir, tplPath, pid)
	return nil
}

// checkEmptyDir accepts a directory that does not exist or is empty.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("init: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("init: %s is not empty (init creates a new project)", dir)
	}
	return nil
}

type initParams struct {
	Module, Pkg, PkgPath, ProductID, TemplatePath, Version, Replace string
	Stub, DeviceType                                                string
	Imports                                                         []string // needed by Stub beyond main.go's own
	HasControl                                                      bool
	Control                                                         string // JSON params the test sends
}

// handlerStub writes methods of a type device, one per method of the generated Handler
// interface, read from the generated source so that it follows whatever the generator emits.
// Types of the generated package are qualified with its name; the import paths of the other
// packages the signatures use (besides context) come back in imports.
func handlerStub(src []byte, pkg string) (stub, devType string, imports []string, err error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, pkg+"_gen.go", src, parser.ParseComments)
	if err != nil {
		return "", "", nil, err
	}
	importPaths := map[string]string{} // package name as used -> path
	for _, im := range f.Imports {
		path, _ := strconv.Unquote(im.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		importPaths[name] = path
	}
	used := map[string]bool{}
	var iface *ast.InterfaceType
	var newFn *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "New" {
			newFn = fd
		}
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.TYPE {
			for _, s := range gd.Specs {
				if ts := s.(*ast.TypeSpec); ts.Name.Name == "Handler" {
					iface, _ = ts.Type.(*ast.InterfaceType)
				}
			}
		}
	}
	if iface == nil {
		return "", "", nil, errors.New("no Handler interface in the generated code")
	}
	if newFn == nil || newFn.Type.Results == nil || len(newFn.Type.Results.List) != 2 {
		return "", "", nil, errors.New("no func New(...) (device, error) in the generated code")
	}
	qual := func(e ast.Expr) string {
		ast.Inspect(e, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if id, ok := sel.X.(*ast.Ident); ok {
					used[id.Name] = true
				}
			}
			return true
		})
		e = qualify(e, pkg)
		var b bytes.Buffer
		_ = printer.Fprint(&b, token.NewFileSet(), e)
		return b.String()
	}
	var b strings.Builder
	for _, m := range iface.Methods.List {
		ft, ok := m.Type.(*ast.FuncType)
		if !ok || len(m.Names) == 0 {
			return "", "", nil, fmt.Errorf("handler embeds %s; init only stubs plain methods", qual(m.Type))
		}
		name := m.Names[0].Name
		if m.Doc != nil {
			for _, l := range m.Doc.List {
				b.WriteString(l.Text + "\n")
			}
		}
		fmt.Fprintf(&b, "func (d *device) %s(", name)
		var in []string
		for i, p := range ft.Params.List {
			names := []string{}
			for _, n := range p.Names {
				names = append(names, n.Name)
			}
			if len(names) == 0 {
				names = []string{fmt.Sprintf("arg%d", i)}
			}
			in = append(in, strings.Join(names, ", ")+" "+qual(p.Type))
		}
		b.WriteString(strings.Join(in, ", ") + ")")
		var outs []string
		if ft.Results != nil {
			for i, r := range ft.Results.List {
				n := len(r.Names)
				if n == 0 {
					n = 1
				}
				for k := 0; k < n; k++ {
					rn := "err"
					if t := qual(r.Type); t != "error" {
						rn = fmt.Sprintf("out%d", i+k)
						if i+k == 0 {
							rn = "out"
						}
					}
					outs = append(outs, rn+" "+qual(r.Type))
				}
			}
		}
		if len(outs) > 0 {
			b.WriteString(" (" + strings.Join(outs, ", ") + ")")
		}
		b.WriteString(" {\n")
		var args []string
		for _, p := range ft.Params.List {
			for _, n := range p.Names {
				if n.Name != "ctx" && n.Name != "_" {
					args = append(args, n.Name)
				}
			}
		}
		if len(args) > 0 {
			fmt.Fprintf(&b, "\tlog.Printf(%q, %s)\n", name+": "+strings.TrimSpace(strings.Repeat("%+v ", len(args))), strings.Join(args, ", "))
		} else {
			fmt.Fprintf(&b, "\tlog.Print(%q)\n", name)
		}
		b.WriteString("\t// TODO: act on the device.\n")
		if len(outs) > 0 {
			b.WriteString("\treturn\n")
		}
		b.WriteString("}\n\n")
	}
	for name := range used {
		path, ok := importPaths[name]
		if !ok {
			return "", "", nil, fmt.Errorf("handler uses package %s, which the generated file does not import", name)
		}
		if path != "context" {
			imports = append(imports, fmt.Sprintf("%s %q", name, path))
		}
	}
	sort.Strings(imports)
	devType = qual(newFn.Type.Results.List[0].Type)
	return b.String(), devType, imports, nil
}

// qualify prefixes the generated package's own type names with pkg (they are used from main).
func qualify(e ast.Expr, pkg string) ast.Expr {
	switch x := e.(type) {
	case *ast.Ident:
		if ast.IsExported(x.Name) {
			return &ast.SelectorExpr{X: ast.NewIdent(pkg), Sel: x}
		}
		return x
	case *ast.StarExpr:
		return &ast.StarExpr{X: qualify(x.X, pkg)}
	case *ast.ArrayType:
		return &ast.ArrayType{Len: x.Len, Elt: qualify(x.Elt, pkg)}
	case *ast.MapType:
		return &ast.MapType{Key: qualify(x.Key, pkg), Value: qualify(x.Value, pkg)}
	case *ast.Ellipsis:
		return &ast.Ellipsis{Elt: qualify(x.Elt, pkg)}
	}
	return e // selector expressions (context.Context, ...) and the rest as written
}

// controlSample returns a control the test sends: a valid value for the first writable
// property whose value init can build.
func controlSample(t *tpl.Template) (string, bool) {
	for _, p := range t.Properties {
		if !p.Writable() || p.Define == nil {
			continue
		}
		v, ok := sampleValue(p.Define)
		if !ok {
			continue
		}
		b, err := json.Marshal(map[string]any{p.ID: v})
		if err != nil || t.CheckProperties(b, true) != nil {
			continue
		}
		return string(b), true
	}
	return "", false
}

// sampleValue is some value valid for d.
func sampleValue(d *tpl.Define) (any, bool) {
	switch d.Type {
	case tpl.TypeBool:
		return 1, true
	case tpl.TypeInt, tpl.TypeFloat:
		v := 0.0
		if d.HasMin && v < d.Min {
			v = d.Min
		}
		if d.HasMax && v > d.Max {
			v = d.Max
		}
		if d.Type == tpl.TypeInt {
			return int64(v), true
		}
		return json.Number(strconv.FormatFloat(v, 'g', -1, 64)), true
	case tpl.TypeString:
		n := 1
		if d.HasMin {
			n = max(n, int(d.Min))
		}
		if d.HasMax {
			n = min(n, int(d.Max))
		}
		return strings.Repeat("x", n), true
	case tpl.TypeEnum:
		if len(d.Mapping) > 0 {
			return d.Mapping[0].Int, true
		}
	case tpl.TypeStringEnum:
		if len(d.Mapping) > 0 {
			return d.Mapping[0].Key, true
		}
	case tpl.TypeTimestamp:
		return 1700000000, true
	case tpl.TypeStruct:
		m := map[string]any{}
		for _, s := range d.Specs {
			v, ok := sampleValue(s.Define)
			if !ok {
				return nil, false
			}
			m[s.ID] = v
		}
		return m, true
	case tpl.TypeArray:
		if d.Elem == nil {
			return nil, false
		}
		v, ok := sampleValue(d.Elem)
		return []any{v}, ok
	}
	return nil, false
}

var goModTmpl = template.Must(template.New("go.mod").Parse(`module {{.Module}}

go 1.24

require {{printf "%s %s" "github.com/tplgen/tplgen" .Version}}

tool github.com/tplgen/tplgen/cmd/tplgen
{{if .Replace}}
replace github.com/tplgen/tplgen => {{.Replace}}
{{end}}`))

var mainTmpl = template.Must(template.New("main.go").Parse(`// Command {{.Pkg}} is a device of product {{.ProductID}} on Tencent Cloud IoT Explorer.
//
// The code in ./{{.Pkg}} is generated from {{.TemplatePath}}: after editing the template, run
// go generate ./... (and tplgen diff --against HEAD {{.TemplatePath}} to see whether the change
// breaks devices already in the field).
//
// Against the real platform it needs only the device's name and secret; against a local
// tplgen emulate, its broker too:
//
//	DEVICE_SECRET=... go run . --device dev1
//	DEVICE_SECRET=... go run . --device dev1 --broker tcp://127.0.0.1:1883
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tplgen/tplgen/runtime/explorer"
{{- range .Imports}}
	{{.}}
{{- end}}

	"{{.PkgPath}}"
)

// device implements {{.Pkg}}.Handler: the platform's control and action calls arrive here,
// already checked against the template. What a method returns becomes the reply.
type device struct{}

{{.Stub}}
func main() {
	var cfg explorer.Config
	flag.StringVar(&cfg.ProductID, "product", env("PRODUCT_ID", "{{.ProductID}}"), "product ID (env PRODUCT_ID)")
	flag.StringVar(&cfg.DeviceName, "device", os.Getenv("DEVICE_NAME"), "device name (env DEVICE_NAME)")
	flag.StringVar(&cfg.DeviceSecret, "secret", os.Getenv("DEVICE_SECRET"), "device secret, base64 (env DEVICE_SECRET; prefer the environment)")
	flag.StringVar(&cfg.Broker, "broker", os.Getenv("BROKER"), "broker URL: empty for the real platform, tcp://127.0.0.1:1883 or tls://127.0.0.1:8883 for tplgen emulate (env BROKER)")
	caFile := flag.String("ca-file", os.Getenv("CA_FILE"), "trust the CA in this PEM file, e.g. the one tplgen emulate --ca-file writes (env CA_FILE)")
	flag.Parse()

	opts, err := dialOptions(cfg.Broker, *caFile)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	conn, dev, err := start(ctx, cfg, opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	_ = dev // report properties and post events with dev's methods
	log.Printf("%s/%s connected; Ctrl-C to stop", cfg.ProductID, cfg.DeviceName)
	<-ctx.Done()
}

// start connects the device and starts serving the platform's calls.
func start(ctx context.Context, cfg explorer.Config, opts ...explorer.Option) (*explorer.Conn, {{.DeviceType}}, error) {
	if cfg.DeviceName == "" || cfg.DeviceSecret == "" {
		return nil, nil, errors.New("give --device and DEVICE_SECRET (or --secret)")
	}
	conn, err := explorer.Dial(ctx, cfg, opts...)
	if err != nil {
		return nil, nil, err
	}
	dev, err := {{.Pkg}}.New(conn, &device{})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, dev, nil
}

// dialOptions: plain MQTT needs WithPlainTCP; a local emulator's TLS needs its CA.
func dialOptions(broker, caFile string) ([]explorer.Option, error) {
	var opts []explorer.Option
	if strings.HasPrefix(broker, "tcp://") || strings.HasPrefix(broker, "mqtt://") {
		opts = append(opts, explorer.WithPlainTCP())
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", caFile)
		}
		opts = append(opts, explorer.WithRootCAs(pool))
	}
	return opts, nil
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
`))

var testTmpl = template.Must(template.New("main_test.go").Parse(`package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
{{if .HasControl}}
	"encoding/json"
{{end}}
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/template"
)

// TestDevice runs the device against the in-process IoT Explorer platform over real TCP.
func TestDevice(t *testing.T) {
	srv, err := explorertest.NewServer(explorertest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tpl, err := template.ParseFile("{{.TemplatePath}}")
	if err != nil {
		t.Fatal(err)
	}
	const pid, dn = "{{.ProductID}}", "test-device"
	if err := srv.AddProductAs(pid, tpl); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.AddDevice(pid, dn); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, dev, err := start(ctx, srv.DeviceConfig(pid, dn), srv.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if dev == nil || !srv.Online(pid, dn) {
		t.Fatal("device not online")
	}
{{- if .HasControl}}
	// A control from the cloud reaches the Handler, whose nil error is a code 0 reply.
	rep, err := srv.SendControl(ctx, pid, dn, json.RawMessage({{printf "%q" .Control}}))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Code != 0 {
		t.Errorf("control reply %d %s", rep.Code, rep.Status)
	}
{{- end}}
}
`))
