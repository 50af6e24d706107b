package ota

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var fastRetry = WithBackoff(time.Millisecond, 10*time.Millisecond)

func assertInstalled(t *testing.T, dest string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatalf("read installed image: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("installed image differs: %d bytes, want %d", len(got), len(want))
	}
	assertNoState(t, dest)
}

func assertNoState(t *testing.T, dest string) {
	t.Helper()
	for _, p := range []string{partPath(dest), checkpointPath(dest), checkpointPath(dest) + ".tmp"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", filepath.Base(p))
		}
	}
}

func TestDownloadFresh(t *testing.T) {
	data := randomBytes(300_001, 1)
	srv := newFWServer(t, data, false)
	dest := filepath.Join(t.TempDir(), "fw.bin")
	var last Progress
	calls := 0
	err := Download(testCtx(t), srv.firmware("1.0.1"), dest, WithInsecureHTTP(), WithProgress(func(p Progress) {
		if p.Percent < last.Percent {
			t.Errorf("progress went backwards: %d after %d", p.Percent, last.Percent)
		}
		last = p
		calls++
	}))
	if err != nil {
		t.Fatal(err)
	}
	assertInstalled(t, dest, data)
	if last.Percent != 100 || last.Done != int64(len(data)) || last.Version != "1.0.1" {
		t.Errorf("last progress = %+v", last)
	}
	if calls > 102 {
		t.Errorf("%d progress calls, want at most 102", calls)
	}
	if r := srv.rangesSeen(); len(r) != 1 || r[0] != "" {
		t.Errorf("requests' Range headers = %q, want one plain GET", r)
	}
}

func TestDownloadResumesAfterCutsAtSeveralOffsets(t *testing.T) {
	data := randomBytes(1<<20+17, 2)
	cuts := []int64{0, 1, 4095, 65536, 500_000, 1<<20 + 16}
	srv := newFWServer(t, data, false)
	srv.setCuts(cuts...)
	dest := filepath.Join(t.TempDir(), "fw.bin")
	if err := Download(testCtx(t), srv.firmware("2.0.0"), dest, WithInsecureHTTP(), fastRetry); err != nil {
		t.Fatal(err)
	}
	assertInstalled(t, dest, data)
	want := []string{""}
	for _, c := range cuts[1:] {
		want = append(want, "bytes="+itoa(c)+"-")
	}
	want = append([]string{""}, want...) // the cut at 0 delivers nothing, so it is retried from 0
	if got := srv.rangesSeen(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Range headers = %q, want %q", got, want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestDownloadServerIgnoresRangeRestartsHash(t *testing.T) {
	data := randomBytes(200_000, 3)
	srv := newFWServer(t, data, false)
	srv.setCuts(70_000)
	srv.ignoreRange = true
	dest := filepath.Join(t.TempDir(), "fw.bin")
	if err := Download(testCtx(t), srv.firmware("3"), dest, WithInsecureHTTP(), fastRetry); err != nil {
		t.Fatal(err)
	}
	assertInstalled(t, dest, data)
	if got := srv.rangesSeen(); len(got) != 2 || got[1] != "bytes=70000-" {
		t.Errorf("Range headers = %q", got)
	}
}

func TestDownloadMD5MismatchLeavesNothing(t *testing.T) {
	data := randomBytes(100_000, 4)
	srv := newFWServer(t, data, false)
	fw := srv.firmware("1.0.1")
	fw.MD5 = strings.Repeat("ab", 16)
	dir := t.TempDir()
	dest := filepath.Join(dir, "fw.bin")
	err := Download(testCtx(t), fw, dest, WithInsecureHTTP())
	if !errors.Is(err, ErrMD5Mismatch) || Code(err) != FailMD5Mismatch {
		t.Fatalf("err = %v (code %d), want md5 mismatch -4", err, Code(err))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("files left after md5 mismatch: %v", entries)
	}
}

func TestDownloadSizeMismatchIsIntegrityError(t *testing.T) {
	data := randomBytes(10_000, 5)
	srv := newFWServer(t, data, false)
	fw := srv.firmware("1")
	fw.Size = 9_000
	dest := filepath.Join(t.TempDir(), "fw.bin")
	err := Download(testCtx(t), fw, dest, WithInsecureHTTP())
	if Code(err) != FailMD5Mismatch || !strings.Contains(err.Error(), "10000") {
		t.Fatalf("err = %v", err)
	}
	assertNoState(t, dest)
}

func TestDownloadHTTPStatusCodes(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   error
		code   FailCode
	}{
		{http.StatusNotFound, ErrNotFound, FailNotFound},
		{http.StatusForbidden, ErrSignatureExpired, FailSignatureExpired},
		{http.StatusInternalServerError, ErrTimeout, FailTimeout},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := newFWServer(t, randomBytes(1000, 6), false)
			srv.setStatus(tc.status)
			dest := filepath.Join(t.TempDir(), "fw.bin")
			err := Download(testCtx(t), srv.firmware("1"), dest, WithInsecureHTTP(), fastRetry, WithRetries(2))
			if !errors.Is(err, tc.want) || Code(err) != tc.code {
				t.Fatalf("err = %v (code %d), want %v (%d)", err, Code(err), tc.want, tc.code)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the URL signature: %v", err)
			}
			assertNoState(t, dest)
		})
	}
}

func TestDownloadResumesWithReSignedURLAcrossCalls(t *testing.T) {
	data := randomBytes(400_000, 7)
	srv := newFWServer(t, data, false)
	srv.setCuts(150_000)
	srv.cutStatus = http.StatusServiceUnavailable
	dest := filepath.Join(t.TempDir(), "fw.bin")
	// First call: the cut is followed by 503s and no retries are allowed without progress, so
	// it ends with resume state on disk.
	err := Download(testCtx(t), srv.firmware("4.0"), dest, WithInsecureHTTP(), WithRetries(0), fastRetry)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("first call err = %v, want timeout", err)
	}
	cp, err := loadCheckpoint(dest)
	if err != nil || cp == nil || cp.Done != 150_000 || cp.Version != "4.0" {
		t.Fatalf("checkpoint = %+v, %v", cp, err)
	}
	srv.setStatus(0)
	fw := srv.firmware("4.0")
	fw.URL = srv.URL + "/fw.bin?sign=resigned"
	if err := Download(testCtx(t), fw, dest, WithInsecureHTTP()); err != nil {
		t.Fatal(err)
	}
	assertInstalled(t, dest, data)
	if got := srv.rangesSeen(); len(got) != 3 || got[2] != "bytes=150000-" {
		t.Errorf("Range headers = %q", got)
	}
}

func TestDownloadOtherVersionCheckpointRestarts(t *testing.T) {
	data := randomBytes(50_000, 8)
	srv := newFWServer(t, data, false)
	dest := filepath.Join(t.TempDir(), "fw.bin")
	if err := os.WriteFile(partPath(dest), data[:20_000], 0o644); err != nil {
		t.Fatal(err)
	}
	old := checkpoint{Version: "0.9", URL: "x", Size: int64(len(data)), MD5: md5Hex(data), Done: 20_000}
	if err := old.save(dest); err != nil {
		t.Fatal(err)
	}
	if err := Download(testCtx(t), srv.firmware("1.0"), dest, WithInsecureHTTP()); err != nil {
		t.Fatal(err)
	}
	assertInstalled(t, dest, data)
	if got := srv.rangesSeen(); len(got) != 1 || got[0] != "" {
		t.Errorf("Range headers = %q, want a fresh GET", got)
	}
}

func TestDownloadCorruptPartIsCaughtByMD5(t *testing.T) {
	data := randomBytes(50_000, 9)
	srv := newFWServer(t, data, false)
	dest := filepath.Join(t.TempDir(), "fw.bin")
	bad := append([]byte(nil), data[:20_000]...)
	bad[100] ^= 0xff // resumed bytes are part of the hash, so this must fail
	os.WriteFile(partPath(dest), bad, 0o644)
	cp := checkpoint{Version: "1.0", Size: int64(len(data)), MD5: md5Hex(data), Done: 20_000}
	cp.save(dest)
	err := Download(testCtx(t), srv.firmware("1.0"), dest, WithInsecureHTTP())
	if !errors.Is(err, ErrMD5Mismatch) {
		t.Fatalf("err = %v, want md5 mismatch", err)
	}
	assertNoState(t, dest)
	if _, err := os.Stat(dest); err == nil {
		t.Error("corrupt image installed")
	}
}

func TestDownloadAlreadyInstalled(t *testing.T) {
	data := randomBytes(10_000, 10)
	srv := newFWServer(t, data, false)
	dest := filepath.Join(t.TempDir(), "fw.bin")
	os.WriteFile(dest, data, 0o644)
	if err := Download(testCtx(t), srv.firmware("1"), dest, WithInsecureHTTP()); err != nil {
		t.Fatal(err)
	}
	if got := srv.rangesSeen(); len(got) != 0 {
		t.Errorf("downloaded again: %q", got)
	}
}

func TestDownloadHTTPSOnlyByDefault(t *testing.T) {
	data := randomBytes(10_000, 11)
	plain := newFWServer(t, data, false)
	dest := filepath.Join(t.TempDir(), "fw.bin")
	if err := Download(testCtx(t), plain.firmware("1"), dest); !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("plain http err = %v, want ErrInsecureURL", err)
	}
	secure := newFWServer(t, data, true)
	// Without the test CA the system trust store rejects the server.
	if err := Download(testCtx(t), secure.firmware("1"), dest, WithRetries(0)); err == nil {
		t.Fatal("untrusted https server accepted")
	}
	if err := Download(testCtx(t), secure.firmware("1"), dest, WithHTTPClient(secure.Client())); err != nil {
		t.Fatal(err)
	}
	assertInstalled(t, dest, data)
}

func TestDownloadRejectsInvalidFirmware(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "fw.bin")
	good := Firmware{Version: "1", URL: "https://h/x", MD5: strings.Repeat("a", 32), Size: 1}
	for name, mut := range map[string]func(*Firmware){
		"version": func(f *Firmware) { f.Version = "" },
		"url":     func(f *Firmware) { f.URL = "ftp://h/x" },
		"md5sum":  func(f *Firmware) { f.MD5 = "xyz" },
		"size":    func(f *Firmware) { f.Size = 0 },
	} {
		fw := good
		mut(&fw)
		err := Download(testCtx(t), fw, dest)
		if !errors.Is(err, ErrInvalidFirmware) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestDownloadContextCancelKeepsResumeState(t *testing.T) {
	data := randomBytes(200_000, 12)
	srv := newFWServer(t, data, false)
	srv.setRate(100_000)
	dest := filepath.Join(t.TempDir(), "fw.bin")
	ctx, cancel := context.WithCancel(testCtx(t))
	err := Download(ctx, srv.firmware("5"), dest, WithInsecureHTTP(), WithProgress(func(p Progress) {
		if p.Percent >= 10 {
			cancel()
		}
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	cp, err := loadCheckpoint(dest)
	if err != nil || cp == nil || cp.Done < 20_000 {
		t.Fatalf("checkpoint after cancel = %+v, %v", cp, err)
	}
	srv.setRate(0)
	if err := Download(testCtx(t), srv.firmware("5"), dest, WithInsecureHTTP()); err != nil {
		t.Fatal(err)
	}
	assertInstalled(t, dest, data)
}
