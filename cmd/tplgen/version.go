package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/tplgen/tplgen/runtime/tplwire"
)

// versionCommand prints the module version tplgen was built from.
func versionCommand() *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print the tplgen version",
		ArgsUsage: " ",
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("version takes no arguments")
			}
			_, err := fmt.Fprintf(c.App.Writer, "tplgen %s (generated code v%d, %s)\n",
				buildVersion(), tplwire.GeneratedVersion, runtime.Version())
			return err
		},
	}
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
