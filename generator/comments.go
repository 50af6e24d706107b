package generator

import (
	"strings"
	"unicode"
)

// maxCommentRunes caps how much of a template's free text lands in one comment line.
const maxCommentRunes = 240

// commentText makes template text (names, descriptions, labels) safe and tidy for a single
// // comment line: control characters, line and paragraph separators (U+2028/U+2029, which
// some tools treat as newlines) and bidirectional-override characters (which can make code
// read differently from how it compiles) become spaces; runs of spaces collapse; very long
// text is cut with an ellipsis. Generated comments always start with a Go name, so a
// description can never turn into a //go: directive, and "*/" is harmless in a // comment.
func commentText(s string) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) || unicode.IsSpace(r) || isBidiOrInvisible(r) {
			space = b.Len() > 0
			continue
		}
		if n >= maxCommentRunes {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

func isBidiOrInvisible(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, // zero-width space/joiners, LRM, RLM
		r >= 0x2028 && r <= 0x202E, // line/paragraph separators, embeddings, overrides
		r >= 0x2060 && r <= 0x206F, // word joiner, isolates, deprecated format chars
		r == 0xFEFF:
		return true
	}
	return unicode.Is(unicode.Cf, r)
}

// describe joins a display name and description as `"name": desc` for doc comments,
// leaving out empty or repeated parts.
func describe(name, desc string) string {
	name, desc = commentText(name), commentText(desc)
	switch {
	case name == "" && desc == "":
		return ""
	case desc == "" || desc == name:
		return " (" + name + ")"
	case name == "":
		return ": " + desc
	}
	return " (" + name + "): " + desc
}
