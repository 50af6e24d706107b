package explorertest

import (
	"fmt"
	"strings"
	"testing"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorertest/internal/store"
)

// A device's uploaded log lines, counters and cloud log level survive a restart; deleting the
// device deletes its record.
func TestDataDirDeviceLogsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := openDataServer(t, dir)
	if _, err := s.AddDevice(rpPID, "dev1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetLogLevel(rpPID, "dev1", 3); err != nil {
		t.Fatal(err)
	}
	id := DeviceID{rpPID, "dev1"}
	if e := s.storeLog(id, []string{"INF booted", "WRN battery low", "plain line"}); e != nil {
		t.Fatal(e.message)
	}
	before, _ := s.DeviceLogs(rpPID, "dev1")
	s.Close()

	s = openDataServer(t, dir)
	after, ok := s.DeviceLogs(rpPID, "dev1")
	if !ok {
		t.Fatal("device logs gone after the restart")
	}
	b1, _ := json.Marshal(before)
	b2, _ := json.Marshal(after)
	if string(b1) != string(b2) {
		t.Fatalf("after the restart:\n%s\nbefore:\n%s", b2, b1)
	}
	// Numbering goes on where it stopped.
	if e := s.storeLog(id, []string{"ERR after restart"}); e != nil {
		t.Fatal(e.message)
	}
	if l, _ := s.DeviceLogs(rpPID, "dev1"); l.Total != 4 || l.Lines[3].Seq != 4 || l.Lines[3].Level != "ERR" {
		t.Fatalf("line after the restart: %+v", l)
	}
	if err := s.RemoveDevice(rpPID, "dev1"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := store.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, ok, err := db.Get(changeDevLog, id.String()); ok || err != nil {
		t.Fatalf("the deleted device's log record is still there (%v)", err)
	}
}

// A saved log beyond the bounds (written by another build, or edited) is brought back within
// them, the excess counted as dropped.
func TestDataDirDeviceLogsRestoredWithinBounds(t *testing.T) {
	dir := t.TempDir()
	s := openDataServer(t, dir)
	if _, err := s.AddDevice(rpPID, "dev1"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	n := logMaxLines + 10
	saved := DeviceLogs{Level: 2, Total: uint64(n), Dropped: 5}
	for i := 1; i <= n; i++ {
		saved.Lines = append(saved.Lines, LogLine{Seq: uint64(i), Text: fmt.Sprint("line ", i)})
	}
	saved.Lines[n-1].Text = strings.Repeat("x", logMaxLine+100)
	b, _ := json.Marshal(saved)
	db, err := store.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Put(changeDevLog, rpPID+"/dev1", b); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = openDataServer(t, dir)
	l, _ := s.DeviceLogs(rpPID, "dev1")
	if len(l.Lines) != logMaxLines || l.Dropped != 15 || l.Lines[0].Seq != 11 || l.Total != uint64(n) || l.Level != 2 {
		t.Fatalf("restored: %d lines from seq %d, dropped %d, total %d, level %d; want %d from 11, 15, %d, 2",
			len(l.Lines), l.Lines[0].Seq, l.Dropped, l.Total, l.Level, logMaxLines, n)
	}
	if last := l.Lines[len(l.Lines)-1].Text; len(last) != logMaxLine {
		t.Fatalf("an overlong line came back with %d bytes", len(last))
	}
}
