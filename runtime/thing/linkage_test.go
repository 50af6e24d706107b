package thing_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A device program that never starts a feature beside the data template must not carry the
// features' code: Close and the downlink router reach it only through closures (features.go).
// Linking it anyway cost every device binary ~1 MB (the HTTP client of log upload and
// downloads). The typed report client of the benchmarks is such a program.
func TestUnusedFeaturesAreNotLinked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program (-short)")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "typedclient")
	build := exec.Command(goTool, "build", "-o", bin, "github.com/tplgen/tplgen/internal/bench/reportrt/typedclient")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(goTool, "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	syms := string(out)
	if !strings.Contains(syms, "runtime/thing.(*Thing).Close") {
		t.Fatal("the program has no Thing.Close: not the program this test means")
	}
	for _, sym := range []string{
		"runtime/internal/devhttp.Post",
		"runtime/devlog.(*Uploader).Close",
		"runtime/resource.(*Files).HandleService",
		"runtime/resource.(*Tasks).Close",
		"runtime/ota.Fetch",
	} {
		if strings.Contains(syms, sym) {
			t.Errorf("%s is linked into a program that never starts the feature", sym)
		}
	}
}
