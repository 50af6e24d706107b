package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"

	json "github.com/goccy/go-json"
	"github.com/urfave/cli/v2"

	"github.com/tplgen/tplgen/generator/tpldiff"
	"github.com/tplgen/tplgen/runtime/template"
)

// maxGitTemplate bounds what `git show` may hand us: a data template is a few tens of KiB
// (the platform allows 100 features).
const maxGitTemplate = 16 << 20

// diffCommand compares two versions of a template and fails on breaking changes.
func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "classify the changes between two versions of a template as breaking or compatible",
		ArgsUsage: "OLD.json NEW.json | --against GIT-REV[:PATH] NEW.json",
		Description: `Lists every change from OLD to NEW, one per line as FILE:LINE:COL: breaking|compatible: message,
located in NEW (in OLD for removals), and exits 1 when any change is breaking for devices in the
field or the apps that talk to them: a removed property, event, action, parameter or struct
member; a changed type or event type; rw narrowed to r; a narrowed range or string length; a
removed enum value; an added action input or output. Additions, widening and label,
description or unit changes are compatible.

--against reads OLD from git: GIT-REV:PATH as git show takes it, or GIT-REV alone for NEW's
own path at that revision (e.g. --against main, --against HEAD~3:schemas/light.json).
--format json prints an array of {kind, breaking, path, message, old, new, file, line, col}.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "against", Usage: "read the old template from `GIT-REV[:PATH]`"},
			&cli.StringFlag{Name: "format", Value: "text", Usage: "output `FORMAT`: text or json"},
		},
		Action: runDiff,
	}
}

func runDiff(c *cli.Context) error {
	format := c.String("format")
	if format != "text" && format != "json" {
		return usagef("diff: --format %q: want text or json", format)
	}
	var oldT, newT *template.Template
	var oldName string
	var err error
	switch against := c.String("against"); {
	case against != "" && c.NArg() != 1:
		return usagef("diff --against: want exactly one NEW.json argument, got %d", c.NArg())
	case against == "" && c.NArg() != 2:
		return usagef("diff: want OLD.json NEW.json (or --against GIT-REV NEW.json), got %d arguments", c.NArg())
	case against != "":
		var data []byte
		if oldName, data, err = gitShow(c.Context, against, c.Args().Get(0)); err != nil {
			return err
		}
		oldT, err = template.Parse(oldName, data)
	default:
		oldName = c.Args().Get(0)
		oldT, err = template.ParseFile(oldName)
	}
	if err != nil {
		printErrors(c.App.ErrWriter, oldName, err)
		return cli.Exit("", exitFail)
	}
	newName := c.Args().Get(c.NArg() - 1)
	if newT, err = template.ParseFile(newName); err != nil {
		printErrors(c.App.ErrWriter, newName, err)
		return cli.Exit("", exitFail)
	}
	changes := tpldiff.Diff(oldT, newT)
	if err := writeChanges(c.App.Writer, format, changes); err != nil {
		return err
	}
	if tpldiff.HasBreaking(changes) {
		return cli.Exit("", exitFail)
	}
	return nil
}

// writeChanges prints the changes and, in text, a summary line.
func writeChanges(w io.Writer, format string, changes []tpldiff.Change) error {
	if format == "json" {
		b, err := json.MarshalIndent(changes, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	var b strings.Builder
	breaking := 0
	for _, ch := range changes {
		b.WriteString(ch.String())
		b.WriteByte('\n')
		if ch.Breaking {
			breaking++
		}
	}
	switch {
	case len(changes) == 0:
		b.WriteString("no changes\n")
	default:
		fmt.Fprintf(&b, "%d breaking, %d compatible\n", breaking, len(changes)-breaking)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// gitShow reads the old template from git. spec is REV:PATH (PATH as git show takes it:
// relative to the repository root, or to the current directory with a ./ prefix) or REV alone,
// meaning newPath at that revision. The returned name is what messages show, REV:PATH.
func gitShow(ctx context.Context, spec, newPath string) (string, []byte, error) {
	if strings.HasPrefix(spec, "-") {
		return "", nil, usagef("diff --against %q: a revision cannot start with '-'", spec)
	}
	dir := "."
	obj := spec
	if !strings.Contains(spec, ":") {
		// newPath relative to its own directory, so that this works from anywhere.
		abs, err := filepath.Abs(newPath)
		if err != nil {
			return "", nil, err
		}
		dir = filepath.Dir(abs)
		obj = spec + ":./" + filepath.Base(abs)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", "-C", dir, "show", obj)
	cmd.Stdout = &limitedWriter{w: &stdout, n: maxGitTemplate}
	cmd.Stderr = &limitedWriter{w: &stderr, n: 64 << 10}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", nil, fmt.Errorf("diff --against %s: git show %s: %s", spec, obj, msg)
	}
	if stdout.Len() >= maxGitTemplate {
		return "", nil, fmt.Errorf("diff --against %s: %s is larger than %d MiB, not a data template", spec, obj, maxGitTemplate>>20)
	}
	name := obj
	if !strings.Contains(spec, ":") {
		name = spec + ":" + newPath
	}
	return name, stdout.Bytes(), nil
}

// limitedWriter keeps the first n bytes and discards the rest (without failing the writer,
// so git is not killed by a broken pipe).
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		if _, err := l.w.Write(p[:k]); err != nil {
			return 0, err
		}
		l.n -= k
	}
	return len(p), nil
}
