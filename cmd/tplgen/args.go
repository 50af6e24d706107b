package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// completionFlag is the hidden flag urfave appends to ask for completions; it must stay last.
const completionFlag = "--generate-bash-completion"

// intersperse moves flags written after positional arguments in front of them, level by level
// (app, command, subcommand), so that `generate t.json --out x.go` parses like
// `generate --out x.go t.json`: urfave/cli v2 uses the standard flag package, which stops at
// the first positional argument. A flag's value is taken from the next argument when the flag
// takes one and is not written as --flag=value. "--" ends the flags: what follows it stays
// positional (a "--" is kept in front of the positionals when one of them starts with "-").
func intersperse(app *cli.App, args []string) []string {
	if len(args) < 2 || args[len(args)-1] == completionFlag {
		return args
	}
	out := []string{args[0]}
	return append(out, reorder(app.Flags, app.Commands, args[1:])...)
}

func reorder(flags []cli.Flag, cmds []*cli.Command, args []string) []string {
	var fl, pos []string
	dashed := false // a positional starts with "-": it must follow "--"
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			for _, p := range args[i+1:] {
				dashed = dashed || strings.HasPrefix(p, "-")
			}
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			fl = append(fl, a)
			name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if f := findFlag(flags, name); !hasValue && f != nil && takesValue(f) && i+1 < len(args) {
				fl = append(fl, args[i+1])
				i++
			}
			continue
		}
		if len(pos) == 0 {
			if sub := findCommand(cmds, a); sub != nil {
				// Flags seen so far belong to this level; the rest is the command's.
				rest := reorder(sub.Flags, sub.Subcommands, args[i+1:])
				return append(append(fl, a), rest...)
			}
		}
		pos = append(pos, a)
	}
	if dashed {
		fl = append(fl, "--")
	}
	return append(fl, pos...)
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	d, ok := f.(cli.DocGenerationFlag)
	return ok && d.TakesValue()
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
