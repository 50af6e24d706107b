package devlog

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Handler returns an slog.Handler feeding the Uploader. Records below the cloud's level are
// skipped before formatting. Combine it with a local handler to also log on the device.
func (u *Uploader) Handler() slog.Handler { return &handler{u: u} }

type handler struct {
	u      *Uploader
	prefix string // pre-formatted attributes from WithAttrs, with group prefixes
	group  string // current group prefix ("a.b.")
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return h.u.Level().Allows(l) }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	if !h.u.Level().Allows(r.Level) {
		return nil
	}
	t := r.Time
	if t.IsZero() {
		t = h.u.o.now()
	}
	var attrs strings.Builder
	attrs.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&attrs, h.group, a)
		return true
	})
	h.u.add(h.u.format(r.Level, t, r.Message, []byte(attrs.String())))
	return nil
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range as {
		appendAttr(&b, h.group, a)
	}
	return &handler{u: h.u, prefix: b.String(), group: h.group}
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &handler{u: h.u, prefix: h.prefix, group: h.group + name + "."}
}

// appendAttr writes " key=value" (groups flattened with dots).
func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			appendAttr(b, g, ga)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteByte('=')
	s := a.Value.String()
	if strings.ContainsAny(s, " =\"\n") || s == "" {
		s = strconv.Quote(s)
	}
	b.WriteString(s)
}

// format renders one line: LVL|time|message attrs, cut to MaxLineBytes.
func (u *Uploader) format(l slog.Level, t time.Time, msg string, attrs []byte) string {
	var b strings.Builder
	b.Grow(len(msg) + len(attrs) + 32)
	b.WriteString(prefix(l))
	b.WriteByte('|')
	b.WriteString(t.UTC().Format("2006-01-02 15:04:05.000"))
	b.WriteByte('|')
	b.WriteString(strings.ReplaceAll(msg, "\n", " "))
	b.Write(attrs)
	s := b.String()
	if len(s) > MaxLineBytes {
		cut := MaxLineBytes - len("…")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
