// Command tplgen generates typed Go code from Tencent Cloud IoT Explorer data templates and
// hosts the project's developer tools.
//
//	tplgen generate [--package NAME] [--out FILE] TEMPLATE.json
//	tplgen validate TEMPLATE.json...
//	tplgen version
//	tplgen emulate --mqtt ADDR --http ADDR --template [PID=]FILE... --device PID/DN[=SECRET]... [--dynreg PID[=SECRET]]
//	tplgen register --product ID --product-secret S --device NAME [--region R | --endpoint URL] --out FILE
//
// Typical use is a go:generate line next to the device code:
//
//	//go:generate go run github.com/tplgen/tplgen/cmd/tplgen generate -out light_gen.go ../../schemas/light.json
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// newApp assembles the CLI. Each command lives in its own file as a constructor; adding a
// command is one line here.
func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "tplgen",
		Usage:     "typed Go code and tools for Tencent Cloud IoT Explorer data templates",
		Writer:    stdout,
		ErrWriter: stderr,
		// run maps errors to exit codes; urfave's default handler would call os.Exit itself.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			generateCommand(),
			validateCommand(),
			versionCommand(),
			emulateCommand(),
			registerCommand(),
		},
	}
}

// run executes the CLI with args (args[0] is the program name) and returns the exit code:
// 0 on success, 1 on any failure (invalid template, bad usage, I/O error).
func run(args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).Run(args)
	if err == nil {
		return 0
	}
	var exit cli.ExitCoder
	if errors.As(err, &exit) {
		// Commands report their own diagnostics and return a bare exit code.
		if msg := exit.Error(); msg != "" {
			fmt.Fprintln(stderr, "tplgen:", msg)
		}
		return exit.ExitCode()
	}
	fmt.Fprintln(stderr, "tplgen:", err)
	return 1
}
