package resource_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/resource"
)

// A device receives a file pushed by the cloud and uploads one of its own.
func ExampleFiles() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	platform, _ := explorertest.NewServer()
	defer platform.Close()
	platform.AddDevice("EXAMPLEPID", "speaker1")
	conn, err := explorer.Dial(ctx, platform.DeviceConfig("EXAMPLEPID", "speaker1"), platform.DialOptions()...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	dir, _ := os.MkdirTemp("", "resource-example-")
	defer os.RemoveAll(dir)
	files, err := resource.NewFiles(ctx, conn, dir,
		// The emulator's test CA; real object storage URLs use the system trust store.
		resource.WithRootCAs(platform.RootCAs()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer files.Close()
	got := make(chan string, 1)
	files.OnUpdate(func(ctx context.Context, u resource.Update) {
		path, err := files.Download(ctx, u) // reports progress and the result
		if err == nil {
			b, _ := os.ReadFile(path)
			got <- string(b)
		}
	})

	// The cloud side: POST /api/resources and POST /api/devices/{pid}/{dn}/resources.
	platform.UploadResource("EXAMPLEPID", "greeting.txt", "1.0", "FILE", strings.NewReader("hello from the cloud"))
	platform.PushResource("EXAMPLEPID", "speaker1", "greeting.txt", "")
	fmt.Println("received:", <-got)

	log := filepath.Join(dir, "speaker.log")
	os.WriteFile(log, []byte("boot ok\n"), 0o644)
	_, err = files.Upload(ctx, resource.Resource{Name: "speaker.log", Version: "1", Type: "FILE"}, log)
	fmt.Println("uploaded:", err == nil)
	// Output:
	// received: hello from the cloud
	// uploaded: true
}
