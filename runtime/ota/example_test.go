package ota_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
	"github.com/tplgen/tplgen/runtime/ota"
)

// Download on its own: resumable, verified, with a progress callback.
func ExampleDownload() {
	image := bytes.Repeat([]byte("firmware"), 4096)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "fw.bin", time.Time{}, bytes.NewReader(image))
	}))
	defer srv.Close()
	sum := md5.Sum(image)
	fw := ota.Firmware{Version: "1.0.1", URL: srv.URL + "/fw.bin", MD5: hex.EncodeToString(sum[:]), Size: int64(len(image))}

	dir, _ := os.MkdirTemp("", "ota-example-")
	defer os.RemoveAll(dir)
	err := ota.Download(context.Background(), fw, filepath.Join(dir, "fw.bin"),
		ota.WithInsecureHTTP(), // test server; real COS URLs are https
		ota.WithProgress(func(p ota.Progress) {
			if p.Percent == 100 {
				fmt.Printf("downloaded %d of %d bytes\n", p.Done, p.Total)
			}
		}))
	fmt.Printf("err=%v report code=%d (%v)\n", err, ota.Code(err), ota.Code(err))
	// Output:
	// downloaded 32768 of 32768 bytes
	// err=<nil> report code=0 (ok)
}

// Fetch downloads any file with the same guarantees (resume, MD5, progress): here a
// resource pushed by the platform, identified by its name and version.
func ExampleFetch() {
	audio := bytes.Repeat([]byte("chime"), 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "chime.wav", time.Time{}, bytes.NewReader(audio))
	}))
	defer srv.Close()
	sum := md5.Sum(audio)
	f := ota.File{ID: "chime.wav@3", URL: srv.URL + "/chime.wav?sign=s3cr3t", MD5: hex.EncodeToString(sum[:]), Size: int64(len(audio))}

	dir, _ := os.MkdirTemp("", "fetch-example-")
	defer os.RemoveAll(dir)
	err := ota.Fetch(context.Background(), f, filepath.Join(dir, "chime.wav"), ota.WithInsecureHTTP())
	got, _ := os.ReadFile(filepath.Join(dir, "chime.wav"))
	fmt.Println(len(got), err, strings.Contains(fmt.Sprint(f), "s3cr3t"))
	// Output:
	// 5000 <nil> false
}

// A device's whole update cycle against the in-process platform.
func ExampleClient() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	platform, _ := explorertest.NewServer()
	defer platform.Close()
	platform.AddDevice("EXAMPLEPID", "dev1")
	platform.UploadFirmware("EXAMPLEPID", "1.0.1", bytes.NewReader(bytes.Repeat([]byte{0xAA}, 100_000)))

	conn, err := explorer.Dial(ctx, platform.DeviceConfig("EXAMPLEPID", "dev1"), platform.DialOptions()...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	client, _ := ota.New(conn, ota.WithDownloadOptions(ota.WithRootCAs(platform.RootCAs())))
	defer client.Close()

	dir, _ := os.MkdirTemp("", "ota-example-")
	defer os.RemoveAll(dir)
	installed := make(chan string, 1)
	client.OnUpdate(func(ctx context.Context, fw ota.Firmware) {
		dest := filepath.Join(dir, "fw-"+fw.Version+".bin")
		if err := client.Download(ctx, fw, dest); err != nil { // fail report sent automatically
			return
		}
		err := client.Install(ctx, fw.Version, func(ctx context.Context) error {
			return os.Rename(dest, filepath.Join(dir, "active.bin")) // "burn"
		})
		if err == nil {
			installed <- fw.Version
		}
	})
	client.ReportVersion(ctx, "1.0.0")
	platform.PushUpdate("EXAMPLEPID", "dev1", "1.0.1")

	v := <-installed
	client.ReportVersion(ctx, v) // after the restart into the new image
	job, _ := platform.WaitOTAJob(ctx, "EXAMPLEPID", "dev1", func(j explorertest.OTAJobState) bool {
		return j.ReportedVersion == v
	})
	fmt.Println("installed", v, "- platform job:", job.State)
	// Output: installed 1.0.1 - platform job: done
}
