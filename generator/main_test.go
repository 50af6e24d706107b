package generator

import (
	"fmt"
	"os"
	"testing"
)

// TestMain creates generator/testdata: the compile tests build generated code in temporary
// directories under it, inside the module, so the code can import tplgen's runtime. A fresh
// clone has no such directory (nothing in it is committed).
func TestMain(m *testing.M) {
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
