package generator

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// initialisms are words rendered all upper-case in Go names, as Go's own style has them
// (ID, URL, HTTP, JSON, ...), plus the ones data templates of devices use: UV, RGB, PM25,
// CO2, IMEI, ... ("uv_index" -> "UVIndex", "pm25" -> "PM25").
var initialisms = map[string]bool{
	"ACL": true, "API": true, "ASCII": true, "CO2": true, "CPU": true, "CSS": true, "DNS": true,
	"EOF": true, "GPS": true, "GUID": true, "HCHO": true, "HTML": true, "HTTP": true,
	"HTTPS": true, "ICCID": true, "ID": true, "IMEI": true, "IMSI": true, "IP": true,
	"JSON": true, "LED": true, "MAC": true, "NFC": true, "OTA": true, "PM10": true,
	"PM25": true, "QPS": true, "RAM": true, "RGB": true, "RPC": true, "RSSI": true, "SDK": true,
	"SMTP": true, "SN": true, "SQL": true, "SSH": true, "SSID": true, "TCP": true, "TDS": true,
	"TLS": true, "TTL": true, "TVOC": true, "UDP": true, "UI": true, "UID": true, "URI": true,
	"URL": true, "USB": true, "UTC": true, "UTF8": true, "UUID": true, "UV": true, "VM": true,
	"XML": true, "XMPP": true, "XSRF": true, "XSS": true,
}

// GoName turns a template identifier (or label) into an exported Go identifier. It is total
// and deterministic:
//
//   - words are split at every character that is not an ASCII letter or digit (so "_", "-",
//     spaces and all non-ASCII text are separators and dropped) and at case changes
//     ("powerSwitch" -> power|Switch, "GPSInfo" -> GPS|Info); digits stay with their word;
//   - each word is capitalised ("switch" -> "Switch", "SWITCH" -> "Switch") unless it is a
//     known initialism, which is upper-cased ("id" -> "ID", "pm25" -> "PM25");
//   - a result starting with a digit gets an "X" prefix ("3d_mode" -> "X3dMode");
//   - when nothing ASCII is left ("温度"), the name is "X" followed by the upper-case hex code
//     points ("X6E295EA6"), so distinct non-ASCII ids still get distinct names.
//
// Exported names cannot clash with Go keywords or predeclared identifiers (those are all
// lower-case), so no further escaping is needed. Collisions between different ids that map
// to the same name are resolved by scope.claim, not here.
func GoName(s string) string {
	name := joinWords(s)
	switch {
	case name == "":
		var h strings.Builder
		h.WriteString("X")
		for _, r := range s {
			fmt.Fprintf(&h, "%04X", r)
		}
		if h.Len() == 1 {
			return "X"
		}
		return h.String()
	case name[0] >= '0' && name[0] <= '9':
		return "X" + name
	}
	return name
}

// joinWords is GoName without the leading-digit and empty-result fallbacks; it is used for
// suffixes appended to an existing name (enum constants).
func joinWords(s string) string {
	var b strings.Builder
	for _, w := range splitWords(s) {
		up := strings.ToUpper(w)
		if initialisms[up] {
			b.WriteString(up)
			continue
		}
		b.WriteString(up[:1])
		b.WriteString(strings.ToLower(w[1:]))
	}
	return b.String()
}

// splitWords splits s into ASCII alphanumeric words at separators and case changes.
func splitWords(s string) []string {
	var words []string
	var cur []byte
	flush := func() {
		if len(cur) > 0 {
			words = append(words, string(cur))
			cur = nil
		}
	}
	isUpper := func(c byte) bool { return c >= 'A' && c <= 'Z' }
	isLower := func(c byte) bool { return c >= 'a' && c <= 'z' }
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isUpper(c) && !isLower(c) && !isDigit(c) {
			flush()
			continue
		}
		if isUpper(c) && len(cur) > 0 {
			prev := cur[len(cur)-1]
			nextLower := i+1 < len(s) && isLower(s[i+1])
			// "powerSwitch": lower/digit -> upper starts a word; "GPSInfo": the last upper of a
			// run starts a word when a lower-case letter follows it.
			if isLower(prev) || isDigit(prev) || (isUpper(prev) && nextLower) {
				flush()
			}
		}
		cur = append(cur, c)
	}
	flush()
	return words
}

// scope hands out unique identifiers within one Go namespace (package level, the fields of
// one struct, the methods of one type). Names are claimed in template order, so the result
// is stable: the first claimant keeps the plain name, later ones get 2, 3, ...
type scope struct {
	used map[string]bool
}

func newScope(reserved ...string) *scope {
	s := &scope{used: map[string]bool{}}
	for _, r := range reserved {
		s.used[r] = true
	}
	return s
}

// free reports whether name is unclaimed.
func (s *scope) free(name string) bool { return !s.used[name] }

// claim returns base, or base followed by the smallest number >= 2 that is free, and marks
// it used.
func (s *scope) claim(base string) string {
	name := base
	for n := 2; s.used[name]; n++ {
		name = base + strconv.Itoa(n)
	}
	s.used[name] = true
	return name
}

// claimGroup finds the first base (base, base2, base3, ...) for which every
// prefix+base+suffix is free in its scope, claims them all and returns that base. Used where
// one template element yields several related names (an action's XxxInput/XxxOutput types
// and its Xxx handler method; an event's type and its PostXxx device method) that must share
// one base.
func claimGroup(base string, parts ...affix) string {
	cand := base
	for n := 2; ; n++ {
		ok := true
		for _, p := range parts {
			if !p.scope.free(p.prefix + cand + p.suffix) {
				ok = false
				break
			}
		}
		if ok {
			for _, p := range parts {
				p.scope.used[p.prefix+cand+p.suffix] = true
			}
			return cand
		}
		cand = base + strconv.Itoa(n)
	}
}

// affix is one scope a claimGroup name must be free in, with what is added around it there.
type affix struct {
	scope          *scope
	prefix, suffix string
}

// cleanLabel reports whether an enum label is plain ASCII text that names the value well
// ("Red", "low_speed", "Auto Mode"): letters, digits, '_', '-' and spaces, starting with a
// letter.
func cleanLabel(label string) bool {
	if label == "" {
		return false
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_' || c == '-' || c == ' '):
		default:
			return false
		}
	}
	return unicode.IsLetter(rune(label[0]))
}
