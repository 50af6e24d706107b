package firmware_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/tplgen/tplgen/runtime/explorertest/internal/firmware"
)

// A store serving an image under an expiring signed URL, with a fault that cuts the first
// download after 4 bytes.
func ExampleStore() {
	store, _ := firmware.NewStore("") // temp dir, removed by Close
	defer store.Close()
	srv := httptest.NewServer(store.Handler())
	defer srv.Close()

	img, _ := store.Put("PRODUCT001", "1.0.1", strings.NewReader("firmware image"))
	fmt.Println(img.Version, img.Size, img.MD5)
	url := store.URL(srv.URL, img.ID, time.Now().Add(time.Hour))

	store.CutAt(img.ID, 4)
	resp, _ := http.Get(url)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("first GET: %q, error: %v\n", body, err != nil)

	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Range", "bytes=4-")
	resp, _ = http.DefaultClient.Do(req)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("resumed: %s %q\n", resp.Status, body)

	expired := store.URL(srv.URL, img.ID, time.Now().Add(-time.Minute))
	resp, _ = http.Get(expired)
	resp.Body.Close()
	fmt.Println("expired URL:", resp.Status)
	// Output:
	// 1.0.1 14 dc6f9e808a395298c3b395c9b972586f
	// first GET: "firm", error: true
	// resumed: 206 Partial Content "ware image"
	// expired URL: 403 Forbidden
}
