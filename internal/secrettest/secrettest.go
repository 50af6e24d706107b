// Package secrettest checks that a value holding secrets never prints them: through fmt's
// %v, %+v, %#v and %s, and through log/slog's text and JSON handlers (as an attribute and
// inside a group). Every runtime type that holds a credential is tested with it.
package secrettest

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
)

// TB is the part of testing.TB that Check uses.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
}

// Renderings returns every way v is printed that Check inspects, keyed by a name such as
// "fmt %#v" or "slog json".
func Renderings(v any) map[string]string {
	out := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out["fmt "+verb] = fmt.Sprintf(verb, v)
	}
	out["fmt Sprint"] = fmt.Sprint(v)
	out["fmt Sprintln"] = fmt.Sprintln(v)
	var text, js bytes.Buffer
	for _, h := range []struct {
		name string
		buf  *bytes.Buffer
		h    slog.Handler
	}{
		{"slog text", &text, slog.NewTextHandler(&text, &slog.HandlerOptions{Level: slog.LevelDebug})},
		{"slog json", &js, slog.NewJSONHandler(&js, &slog.HandlerOptions{Level: slog.LevelDebug})},
	} {
		l := slog.New(h.h)
		l.Info("value", "v", v)
		l.Info("any", slog.Any("v", v))
		l.With("w", v).Info("with")
		l.WithGroup("g").Info("grouped", "v", v)
		l.Info("in group", slog.Group("g", slog.Any("v", v)))
		out[h.name] = h.buf.String()
	}
	return out
}

// Check fails t for every rendering of v (pass a value and, separately, a pointer when
// both are used) that contains one of secrets (empty secrets are
// ignored), naming the rendering. It also fails when a rendering is empty, so a type that
// hides everything by printing nothing does not pass.
func Check(t TB, v any, secrets ...string) {
	t.Helper()
	for name, s := range Renderings(v) {
		if strings.TrimSpace(s) == "" {
			t.Errorf("%T: %s renders nothing", v, name)
		}
		for _, secret := range secrets {
			if secret != "" && strings.Contains(s, secret) {
				t.Errorf("%T: %s shows the secret %q:\n%s", v, name, abbreviate(secret), s)
			}
		}
	}
}

// abbreviate shows enough of a secret to recognise it in a failure message.
func abbreviate(s string) string {
	if len(s) <= 8 {
		return s
	}
	return s[:8] + "…"
}
