package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/tplgen/tplgen/generator"
	"github.com/tplgen/tplgen/runtime/template"
)

// validateCommand checks templates without writing anything: a template is valid when it
// parses and code can be generated from it.
func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check data templates; print every problem as FILE:LINE:COL: message",
		ArgsUsage: "TEMPLATE.json...",
		Description: "Exits 0 when every template is valid and 1 otherwise. Problems go to stderr, " +
			"one per line, located as FILE:LINE:COL; warnings are printed as FILE:LINE:COL: warning: ...",
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("validate: no template given (usage: tplgen validate TEMPLATE.json...)")
			}
			failed := 0
			for _, path := range c.Args().Slice() {
				if !checkTemplate(path, c.App.ErrWriter) {
					failed++
				}
			}
			if failed > 0 {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

// checkTemplate parses and test-generates path, printing problems and warnings to w.
func checkTemplate(path string, w io.Writer) bool {
	tpl, err := template.ParseFile(path)
	if err == nil {
		printWarnings(w, tpl.Warnings)
		_, err = generator.Generate(tpl, generator.Options{
			Package:   "validate",
			OnWarning: func(d template.Diagnostic) { printWarnings(w, []template.Diagnostic{d}) },
		})
	}
	if err != nil {
		printErrors(w, path, err)
		return false
	}
	return true
}

// printErrors prints each located error on its own line; other errors get the file name.
func printErrors(w io.Writer, path string, err error) {
	var list template.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(w, e.Error())
		}
		return
	}
	fmt.Fprintf(w, "%s: %v\n", path, err)
}

func printWarnings(w io.Writer, ds []template.Diagnostic) {
	for _, d := range ds {
		fmt.Fprintf(w, "%s:%d:%d: warning: %s\n", d.File, d.Pos.Line, d.Pos.Col, d.Msg)
	}
}
