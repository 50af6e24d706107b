package tpldiff

import (
	"os"
	"strings"
	"testing"

	"github.com/tplgen/tplgen/runtime/template"
)

// alwaysBreaking and neverBreaking are the kinds with a fixed classification; Added depends
// on where the element was added.
var (
	alwaysBreaking = map[Kind]bool{Removed: true, TypeChanged: true, ModeNarrowed: true, RangeNarrowed: true,
		LengthNarrowed: true, ValueRemoved: true, EventTypeChanged: true}
	neverBreaking = map[Kind]bool{ModeWidened: true, RangeWidened: true, LengthWidened: true, ValueAdded: true,
		LabelChanged: true, DescChanged: true, UnitChanged: true, StartChanged: true, StepChanged: true,
		RequiredChanged: true, ProductChanged: true, VersionChanged: true}
)

// FuzzDiff diffs any two templates the parser accepts: no panic, every change located in one
// of the two files and classified by its rule, and no template differs from itself.
func FuzzDiff(f *testing.F) {
	f.Add([]byte(base), []byte(strings.Replace(base, `"max": "100"`, `"max": "10"`, 1)))
	f.Add([]byte(base), []byte(strings.Replace(base, `"type": "alert"`, `"type": "info"`, 1)))
	for _, p := range []string{"../../schemas/light.json", "../../schemas/c_sdk_example.json", "../../schemas/struct_torture.json"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add([]byte(base), data)
		}
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		oldT, err := template.Parse("old.json", a)
		if err != nil {
			return
		}
		newT, err := template.Parse("new.json", b)
		if err != nil {
			return
		}
		for _, c := range Diff(oldT, newT) {
			if c.Pos.Line < 1 || c.Pos.Col < 1 || (c.File != "old.json" && c.File != "new.json") {
				t.Fatalf("badly located: %s", c)
			}
			if (c.File == "old.json") != (c.Kind == Removed) {
				t.Fatalf("a removal is located in the old file, everything else in the new: %s", c)
			}
			if alwaysBreaking[c.Kind] && !c.Breaking || neverBreaking[c.Kind] && c.Breaking {
				t.Fatalf("%s classified breaking=%t: %s", c.Kind, c.Breaking, c)
			}
			if c.Path == "" || c.Message == "" {
				t.Fatalf("change without path or message: %+v", c)
			}
		}
		if same := Diff(newT, newT); len(same) != 0 {
			t.Fatalf("a template differs from itself:\n%s", list(same))
		}
	})
}
