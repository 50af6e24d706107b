package generator

import (
	"go/token"
	"strings"
)

// PackageName derives a Go package name from a directory or file base name, the way the CLI
// picks a default: lower-case ASCII letters and digits only ("control_four-v3" ->
// "controlfourv3"); a leading digit gets a "p" prefix, a Go keyword a "pkg" suffix, and an
// empty result becomes "main".
func PackageName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	name := b.String()
	switch {
	case name == "":
		return "main"
	case name[0] >= '0' && name[0] <= '9':
		name = "p" + name
	case token.IsKeyword(name):
		name += "pkg"
	}
	return name
}
