package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/tplgen/tplgen/runtime/tplwire"
)

// versionCommand prints the module version tplgen was built from (tplgen --version does the
// same).
func versionCommand() *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print the tplgen version",
		ArgsUsage: " ",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("version takes no arguments")
			}
			return printVersion(c.App.Writer)
		},
	}
}

func printVersion(w io.Writer) error {
	_, err := fmt.Fprintf(w, "tplgen %s (generated code v%d, %s)\n",
		buildVersion(), tplwire.GeneratedVersion, runtime.Version())
	return err
}

// buildVersion is the main module's version from the build info ("v1.2.3" when installed
// with go install module@version), or "devel" for a build from a checkout.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok || info.Main.Version == "" || info.Main.Version == "(devel)" {
		return "devel"
	}
	return info.Main.Version
}
