package console

import (
	"io/fs"
	"regexp"
	"slices"
	"testing"
)

// Every element the script looks up by id ($("#id…")) exists in the page, once: a renamed or
// removed element fails here, without a browser.
func TestScriptIDsExistInPage(t *testing.T) {
	page, err := fs.ReadFile(assets, "assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	script, err := fs.ReadFile(assets, "assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, m := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllSubmatch(page, -1) {
		count[string(m[1])]++
	}
	var used []string
	for _, m := range regexp.MustCompile(`\$\("#([A-Za-z0-9_-]+)`).FindAllSubmatch(script, -1) {
		if id := string(m[1]); !slices.Contains(used, id) {
			used = append(used, id)
		}
	}
	if len(used) < 40 {
		t.Fatalf("found only %d ids used by app.js: the pattern no longer matches the script", len(used))
	}
	for _, id := range used {
		switch count[id] {
		case 1:
		case 0:
			t.Errorf("app.js uses #%s, which index.html does not have", id)
		default:
			t.Errorf("index.html has %d elements with id %q", count[id], id)
		}
	}
}
