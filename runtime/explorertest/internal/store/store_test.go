package store

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func open(t *testing.T, dir string) *DB {
	t.Helper()
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRecordsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir)
	must(t, d.Put("devices", "P/b", []byte(`{"n":2}`)))
	must(t, d.Put("devices", "P/a", []byte(`{"n":1}`)))
	must(t, d.Put("devices", "P/a", []byte(`{"n":3}`))) // replaces
	must(t, d.Put("devices", "P/c", nil))
	must(t, d.Delete("devices", "P/c"))
	must(t, d.Delete("devices", "missing"))
	must(t, d.Put("other", "P/a", []byte("x")))
	// No Close: a killed process never closes; the WAL must carry the writes.
	d2 := open(t, dir)
	defer d2.Close()
	var got []string
	must(t, d2.Load("devices", func(k string, v []byte) error {
		got = append(got, k+"="+string(v))
		return nil
	}))
	if want := []string{`P/a={"n":3}`, `P/b={"n":2}`}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Load = %v, want %v", got, want)
	}
	v, ok, err := d2.Get("other", "P/a")
	if err != nil || !ok || string(v) != "x" {
		t.Fatalf("Get = %q %v %v", v, ok, err)
	}
	if _, ok, _ := d2.Get("other", "nope"); ok {
		t.Fatal("Get of a missing key reported it present")
	}
	_ = d.Close()
}

func TestLoadErrorNamesRecord(t *testing.T) {
	d := open(t, t.TempDir())
	defer d.Close()
	must(t, d.Put("s", "k1", []byte("v")))
	err := d.Load("s", func(string, []byte) error { return errors.New("bad json") })
	if err == nil || !strings.Contains(err.Error(), "s/k1: bad json") {
		t.Fatalf("err = %v", err)
	}
}

func TestAppendKeepsNewest(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir)
	total := 0
	for i := range 10 {
		n, err := d.Append("events", "P/a", []byte(fmt.Sprint(i)), 4)
		must(t, err)
		total += n
	}
	_, err := d.Append("events", "P/b", []byte("b"), 4)
	must(t, err)
	if total != 6 {
		t.Fatalf("dropped %d, want 6", total)
	}
	must(t, d.Close())
	d = open(t, dir)
	defer d.Close()
	vals, err := d.Log("events", "P/a")
	must(t, err)
	if got := string(bytes.Join(vals, []byte(","))); got != "6,7,8,9" {
		t.Fatalf("log = %s", got)
	}
	keys, err := d.LogKeys("events")
	must(t, err)
	if fmt.Sprint(keys) != "[P/a P/b]" {
		t.Fatalf("keys = %v", keys)
	}
	must(t, d.ClearLog("events", "P/a"))
	if vals, _ := d.Log("events", "P/a"); len(vals) != 0 {
		t.Fatalf("after ClearLog: %q", vals)
	}
}

func TestCorruptFileRefused(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, FileName)
	must(t, os.WriteFile(p, bytes.Repeat([]byte("not a database "), 400), 0o600))
	_, err := Open(p)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "move the file away") {
		t.Fatalf("err = %v", err)
	}
	// The file is left as it was: no silent loss.
	b, _ := os.ReadFile(p)
	if !bytes.HasPrefix(b, []byte("not a database")) {
		t.Fatal("corrupt file was modified")
	}
}

func TestForeignDatabaseRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.db")
	db, err := sql.Open("sqlite", "file:"+p)
	must(t, err)
	_, err = db.Exec(`CREATE TABLE unrelated (a INTEGER)`)
	must(t, err)
	must(t, db.Close())
	_, err = Open(p)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "schema_version") {
		t.Fatalf("err = %v", err)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	d := open(t, dir)
	must(t, d.Put("s", "k", []byte("v")))
	_, err := d.exec(`UPDATE schema_version SET version = ?`, SchemaVersion+1)
	must(t, err)
	must(t, d.Close())
	_, err = OpenDir(dir)
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), fmt.Sprintf("schema %d, this build knows %d", SchemaVersion+1, SchemaVersion)) {
		t.Fatalf("err = %v", err)
	}
}

func TestEmptyFileIsCreated(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	must(t, os.WriteFile(p, nil, 0o600))
	d, err := Open(p)
	must(t, err)
	defer d.Close()
	must(t, d.Put("s", "k", []byte("v")))
}

func TestClosed(t *testing.T) {
	d := open(t, t.TempDir())
	must(t, d.Close())
	must(t, d.Close())
	if err := d.Put("s", "k", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if _, err := d.Append("s", "k", nil, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := d.Load("s", func(string, []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Load after Close: %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A directory whose name has characters of SQLite URIs ("#", "?", "%") holds its own database:
// the file is created inside it, and two such directories do not share one.
func TestDirectoryNameWithURICharacters(t *testing.T) {
	base := t.TempDir()
	for _, name := range []string{"a#1", "a#2", "b?x=1", "c%23"} {
		dir := filepath.Join(base, name)
		d := open(t, dir)
		must(t, d.Put("s", "k", []byte(name)))
		must(t, d.Close())
		if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
			t.Fatalf("%s: database not inside the directory: %v", name, err)
		}
	}
	for _, name := range []string{"a#1", "a#2", "b?x=1", "c%23"} {
		d := open(t, filepath.Join(base, name))
		v, ok, err := d.Get("s", "k")
		d.Close()
		if err != nil || !ok || string(v) != name {
			t.Fatalf("%s: Get = %q %v %v", name, v, ok, err)
		}
	}
	if entries, _ := os.ReadDir(base); len(entries) != 4 {
		t.Fatalf("%d entries in %s, want the 4 directories", len(entries), base)
	}
}
