package explorertest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
