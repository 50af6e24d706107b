// Command tplgen generates typed Go code from Tencent Cloud IoT Explorer data templates and
// hosts the project's developer tools.
//
//	tplgen generate [--package NAME] [--out FILE] TEMPLATE.json
//	tplgen validate TEMPLATE.json...
//	tplgen diff [--format text|json] OLD.json NEW.json
//	tplgen diff [--format text|json] --against GIT-REV[:PATH] NEW.json
//	tplgen init [--template FILE] [--module PATH] DIR
//	tplgen emulate --mqtt ADDR --http ADDR --template [PID=]FILE... --device PID/DN[=SECRET]... [--dynreg PID[=SECRET]]
//	tplgen ctl [--api URL] devices | get PID/DN | control PID/DN KEY=VALUE... | action PID/DN ID [KEY=VALUE...]
//	tplgen ctl ota push --file F --version V [--watch] PID/DN...
//	tplgen ctl events [--follow] PID/DN
//	tplgen register --product ID --product-secret S --device NAME [--region R | --endpoint URL] --out FILE
//	tplgen completion bash|zsh
//	tplgen version   (or tplgen --version)
//
// Flags may come before or after the positional arguments (generate t.json --out x.go); an
// argument "--" ends the flags.
//
// In a module that added the tool with `go get -tool github.com/tplgen/tplgen/cmd/tplgen`,
// a directive next to the device code runs it with a path relative to that directory:
//
//	//go:generate go tool tplgen generate -out light_gen.go ../templates/light.json
//
// # Exit status
//
//	0  success (diff: no breaking change)
//	1  failure: an invalid template, a breaking change found by diff, an error answered by
//	   the emulator's API or a device's non-zero reply (ctl), an I/O or network error
//	2  usage error: unknown command or flag, missing or extra arguments, a missing required flag
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// Exit codes, documented in the package comment and README.md.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// newApp assembles the CLI. Each command lives in its own file as a constructor; adding a
// command is one line here.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:      "tplgen",
		Usage:     "typed Go code and tools for Tencent Cloud IoT Explorer data templates",
		Writer:    stdout,
		ErrWriter: stderr,
		// The version is a flag of ours rather than urfave's App.Version, whose printer is a
		// package-level variable and whose -v alias would be taken for good.
		HideVersion: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "version", Usage: "print the version and exit"},
		},
		EnableBashCompletion: true,
		// run maps errors to exit codes; urfave's default handler would call os.Exit itself.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		// Without a root action urfave treats an unknown command as a help topic (exit 3).
		Action: func(c *cli.Context) error {
			switch {
			case c.Bool("version"):
				return printVersion(c.App.Writer)
			case c.NArg() > 0:
				return usagef("unknown command %q", c.Args().First())
			}
			_ = cli.ShowAppHelp(c)
			return usagef("no command given")
		},
		Commands: []*cli.Command{
			generateCommand(),
			validateCommand(),
			diffCommand(),
			initCommand(),
			versionCommand(),
			emulateCommand(),
			ctlCommand(),
			registerCommand(),
			completionCommand(),
		},
	}
	setUsageHandlers(app.Commands)
	return app
}

// setUsageHandlers makes every command report flag errors through run, once, as usage errors
// (urfave would otherwise print "Incorrect Usage" and the help before run prints the error).
func setUsageHandlers(cmds []*cli.Command) {
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = onUsageError
		}
		setUsageHandlers(c.Subcommands)
	}
}

func onUsageError(_ *cli.Context, err error, _ bool) error {
	return usageError{err.Error()}
}

// usageError is a command line the tool cannot run: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usagef returns a usage error (exit status 2).
func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// run executes the CLI with args (args[0] is the program name) and returns the exit code
// documented in the package comment.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run with a context that long-running commands (ctl events --follow, ctl ota
// push --watch, emulate) stop on.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, intersperse(app, args))
	if err == nil {
		return exitOK
	}
	var usage usageError
	var exit cli.ExitCoder
	switch {
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "tplgen: %s\nRun 'tplgen help' or 'tplgen COMMAND --help' for usage.\n", usage.msg)
		return exitUsage
	case strings.HasPrefix(err.Error(), "Required flag"):
		// urfave's missing-required-flags error has no exported type; it has printed the
		// command's help already.
		fmt.Fprintln(stderr, "tplgen:", err)
		return exitUsage
	case errors.As(err, &exit):
		msg := exit.Error()
		code := exit.ExitCode()
		if code == 3 {
			// urfave's "No help topic for 'x'" (tplgen help x): an unknown command.
			code = exitUsage
		}
		// Commands report their own diagnostics and return a bare exit code.
		if msg != "" {
			fmt.Fprintln(stderr, "tplgen:", msg)
		}
		return code
	}
	fmt.Fprintln(stderr, "tplgen:", err)
	return exitFail
}
