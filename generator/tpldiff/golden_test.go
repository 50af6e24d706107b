package tpldiff

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/template"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// Real templates that are versions of one another: Tencent's "light" sample product as it
// evolved across SDK generations (AT-based SDK, IoT Hub C SDK, Python SDK, Explorer C SDK,
// the Python gateway sample's two sub-device products), and the Java demo's two sub-devices.
var goldenPairs = []struct{ name, old, new string }{
	{"at_sdk_to_iothub_c", "../../testdata/templates/at-based-sdk__tools__config.json", "../../schemas/iothub_c_example.json"},
	{"iothub_c_to_light", "../../schemas/iothub_c_example.json", "../../schemas/light.json"},
	{"light_to_c_sdk", "../../schemas/light.json", "../../schemas/c_sdk_example.json"},
	{"c_sdk_to_light", "../../schemas/c_sdk_example.json", "../../schemas/light.json"},
	{"light_to_gateway_product1", "../../schemas/light.json", "../../testdata/templates/python__explorer_sample_gateway__prdouct1_config.json"},
	{"gateway_product1_to_product2", "../../testdata/templates/python__explorer_sample_gateway__prdouct1_config.json", "../../testdata/templates/python__explorer_sample_gateway__prdouct2_config.json"},
	{"subdev1_to_subdev2", "../../schemas/subdev1.json", "../../schemas/subdev2.json"},
}

// TestGolden diffs each pair and compares the text and JSON renderings with
// testdata/NAME.golden (go test ./tpldiff -update rewrites them).
func TestGolden(t *testing.T) {
	for _, p := range goldenPairs {
		t.Run(p.name, func(t *testing.T) {
			oldT, err := template.ParseFile(p.old)
			if err != nil {
				t.Fatal(err)
			}
			newT, err := template.ParseFile(p.new)
			if err != nil {
				t.Fatal(err)
			}
			changes := Diff(oldT, newT)
			var got bytes.Buffer
			for _, c := range changes {
				got.WriteString(c.String() + "\n")
			}
			js, err := json.MarshalIndent(changes, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got.WriteString("----- json\n")
			got.Write(js)
			got.WriteString("\n")
			path := filepath.Join("testdata", p.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./tpldiff -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s differs; got:\n%s", path, got.Bytes())
			}
			for _, c := range changes {
				if c.Pos.Line < 1 || c.Pos.Col < 1 || (c.File != p.old && c.File != p.new) {
					t.Errorf("badly located: %s", c)
				}
			}
		})
	}
}
