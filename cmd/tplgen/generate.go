package main

import (
	"bytes"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/tplgen/tplgen/generator"
	"github.com/tplgen/tplgen/runtime/template"
)

// generateCommand writes the typed Go code for one template.
func generateCommand() *cli.Command {
	return &cli.Command{
		Name:      "generate",
		Usage:     "generate typed Go code from a data template",
		ArgsUsage: "TEMPLATE.json",
		Description: "Writes one gofmt'ed Go file to --out, or to stdout without it. The package name is " +
			"--package, else $GOPACKAGE when run by go generate for the output directory, else the package " +
			"of the Go files already in the output directory, else the directory's name (lower-case letters " +
			"and digits). Template problems are printed as FILE:LINE:COL: message and exit with status 1; " +
			"warnings go to stderr as FILE:LINE:COL: warning: message.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "package", Aliases: []string{"p"}, Usage: "package `NAME` of the generated file"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "write to `FILE` instead of stdout"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("generate: expected exactly one TEMPLATE.json argument, got %d", c.NArg())
			}
			path, out := c.Args().First(), c.String("out")
			pkg := c.String("package")
			if pkg == "" {
				var err error
				if pkg, err = defaultPackage(out); err != nil {
					return err
				}
			}
			tpl, err := template.ParseFile(path)
			if err != nil {
				printErrors(c.App.ErrWriter, path, err)
				return cli.Exit("", 1)
			}
			printWarnings(c.App.ErrWriter, tpl.Warnings)
			src, err := generator.Generate(tpl, generator.Options{
				Package:   pkg,
				Source:    sourceName(path),
				Version:   buildVersion(),
				OnWarning: func(d template.Diagnostic) { printWarnings(c.App.ErrWriter, []template.Diagnostic{d}) },
			})
			if err != nil {
				printErrors(c.App.ErrWriter, path, err)
				return cli.Exit("", 1)
			}
			if out == "" {
				_, err = c.App.Writer.Write(src)
				return err
			}
			return writeIfChanged(out, src)
		},
	}
}

// defaultPackage picks the package for a file written to out ("" = stdout, i.e. the current
// directory).
func defaultPackage(out string) (string, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	dir := cwd
	if out != "" {
		if dir, err = filepath.Abs(filepath.Dir(out)); err != nil {
			return "", err
		}
	}
	// go generate runs in the directory of the file holding the directive and names its package.
	if gp := os.Getenv("GOPACKAGE"); gp != "" && dir == cwd && token.IsIdentifier(gp) {
		return gp, nil
	}
	if pkg := existingPackage(dir, filepath.Base(out)); pkg != "" {
		return pkg, nil
	}
	return generator.PackageName(filepath.Base(dir)), nil
}

// existingPackage returns the package clause shared by the non-test Go files in dir (other
// than skip, the file being regenerated), or "" if there are none.
func existingPackage(dir, skip string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == skip || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.PackageClauseOnly)
		if err == nil && f.Name.Name != "" {
			return f.Name.Name
		}
	}
	return ""
}

// writeIfChanged writes src to path via a temporary file and rename, so a reader never sees
// half a file; an identical file is left untouched (its mtime too, sparing rebuilds).
func writeIfChanged(path string, src []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, src) {
		return nil
	}
	// go:generate lines name files in package directories that may not exist yet.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(src); err != nil {
		tmp.Close()
		return fmt.Errorf("generate: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("generate: write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	return nil
}

// sourceName is the template path written into the generated header: as given when relative
// (the usual go:generate form), else relative to the working directory, else the base name
// (the header never carries an absolute path of the machine it was generated on).
func sourceName(path string) string {
	if !filepath.IsAbs(path) {
		return filepath.ToSlash(path)
	}
	if cwd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(cwd, path); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.ToSlash(rel)
		}
	}
	return filepath.Base(path)
}
