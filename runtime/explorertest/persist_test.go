package explorertest

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/template"
)

// openDataServer starts a platform on data directory dir (the real SQLite file).
func openDataServer(t *testing.T, dir string, opts ...Option) *Server {
	t.Helper()
	s, err := NewServer(append([]Option{WithDataDir(dir)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestDataDirBindingAndDeletion: a binding survives a restart; deleting the device removes its
// records, so a device re-created under the same name starts clean.
func TestDataDirBindingAndDeletion(t *testing.T) {
	dir := t.TempDir()
	tpl, err := template.ParseFile("../../schemas/light.json")
	if err != nil {
		t.Fatal(err)
	}
	s := openDataServer(t, dir)
	if err := s.AddProduct(tpl); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddDevice(thLightPID, "lamp"); err != nil {
		t.Fatal(err)
	}
	if err := s.BindDevice(thLightPID, "lamp", "alice"); err != nil {
		t.Fatal(err)
	}
	s.flushChanges()
	s.Close()

	s = openDataServer(t, dir)
	if bd, ok := s.Binding(thLightPID, "lamp"); !ok || bd.User != "alice" || bd.Via != "cloud" {
		t.Fatalf("binding after restart: %+v %v", bd, ok)
	}
	if got := s.Products(); len(got) != 1 || got[0] != thLightPID {
		t.Fatalf("products after restart: %v", got)
	}
	if err := s.RemoveDevice(thLightPID, "lamp"); err != nil {
		t.Fatal(err)
	}
	s.flushChanges()
	s.Close()

	s = openDataServer(t, dir)
	if _, ok := s.Device(thLightPID, "lamp"); ok {
		t.Fatal("deleted device came back")
	}
	if _, err := s.AddDevice(thLightPID, "lamp"); err != nil {
		t.Fatal(err)
	}
	if bd, ok := s.Binding(thLightPID, "lamp"); ok {
		t.Fatalf("re-created device inherited the binding %+v", bd)
	}
}

// TestDataDirRefusesCorruptDatabase: NewServer fails with ErrDataCorrupt naming the file, and
// leaves the file as it was.
func TestDataDirRefusesCorruptDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "platform.db")
	junk := []byte(strings.Repeat("not a database ", 400))
	if err := os.WriteFile(db, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewServer(WithDataDir(dir))
	if !errors.Is(err, ErrDataCorrupt) || !strings.Contains(err.Error(), db) {
		t.Fatalf("NewServer on a corrupt database: %v", err)
	}
	if b, _ := os.ReadFile(db); string(b) != string(junk) {
		t.Fatal("the corrupt file was changed")
	}
}

// TestDataDirFirmwareURLsSurviveRestart: with a fixed firmware address, a download URL handed
// out before a restart (a device resuming its download after the platform came back) is
// still served; the signing key lives in the database.
func TestDataDirFirmwareURLsSurviveRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fwAddr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	const pid = "FWKEYPROD1"
	s := openDataServer(t, dir, WithFirmwareAddr(fwAddr))
	if _, err := s.AddDevice(pid, "dev1"); err != nil {
		t.Fatal(err)
	}
	info, err := s.UploadFirmware(pid, "2.0.0", strings.NewReader("firmware-image"))
	if err != nil {
		t.Fatal(err)
	}
	url := s.ota.store.URL(s.FirmwareURL(), info.VersionID, time.Now().Add(time.Hour))
	get := func() (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || body != "firmware-image" {
		t.Fatalf("before restart: %d %q", code, body)
	}
	s.Close()
	openDataServer(t, dir, WithFirmwareAddr(fwAddr)) // the same data directory and firmware port
	if code, body := get(); code != 200 || body != "firmware-image" {
		t.Fatalf("URL issued before the restart: %d %q", code, body)
	}
}

// A record changed several times in one batch of the change feed is written once; a device
// forgotten (deleted) in the batch and changed again after is written again.
func TestDataDirSavesCoalescedPerBatch(t *testing.T) {
	dir := t.TempDir()
	s := openDataServer(t, dir)
	if _, err := s.AddDevice(rpPID, "dev1"); err != nil {
		t.Fatal(err)
	}
	s.flushChanges() // the feed is idle from here: nothing below reports a change
	id := DeviceID{rpPID, "dev1"}
	p := s.data
	writes := func() uint64 { return p.stats()["writes"].(uint64) }
	setLevel := func(level int) {
		s.dlog.mu.Lock()
		s.dlog.get(id).level = level
		s.dlog.mu.Unlock()
	}
	c := change{kind: changeDevLog, dev: id, key: id.String()}

	before := writes()
	p.startBatch()
	for level := 1; level <= 3; level++ {
		setLevel(level)
		p.apply(c)
	}
	if n := writes() - before; n != 1 {
		t.Fatalf("three changes of one record in a batch: %d writes, want 1", n)
	}
	if err := p.forgetDevice(id.String()); err != nil {
		t.Fatal(err)
	}
	setLevel(4)
	p.apply(c)
	if n := writes() - before; n != 2 {
		t.Fatalf("a change after the device's records were deleted in the batch: %d writes in all, want 2", n)
	}
	p.startBatch()
	p.apply(c)
	if n := writes() - before; n != 3 {
		t.Fatalf("the next batch: %d writes in all, want 3", n)
	}
	b, ok, err := p.db.Get(changeDevLog, id.String())
	var saved DeviceLogs
	if err == nil && ok {
		err = json.Unmarshal(b, &saved)
	}
	if !ok || err != nil || saved.Level != 4 {
		t.Fatalf("the stored record: %s (%v, %v), want level 4", b, ok, err)
	}
}
