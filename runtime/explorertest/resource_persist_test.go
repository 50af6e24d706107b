package explorertest

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tplgen/tplgen/runtime/dynreg"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest/internal/store"
	"github.com/tplgen/tplgen/runtime/ota"
	"github.com/tplgen/tplgen/runtime/resource"
)

const rpPID = "RESPROD001"

// rpDevice connects pid/dn to s over real TCP (TLS) with the runtime/explorer client.
func rpDevice(t *testing.T, s *Server, dn string) *explorer.Conn {
	t.Helper()
	conn, err := explorer.Dial(thCtx(t), s.DeviceConfig(rpPID, dn), s.DialOptions()...)
	if err != nil {
		t.Fatalf("device %s connects: %v", dn, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rpTrust makes the device's downloads and uploads trust s's test CA.
func rpTrust(s *Server) []resource.Option {
	return []resource.Option{
		resource.WithRootCAs(s.RootCAs()),
		resource.WithDownloadOptions(ota.WithBackoff(10*time.Millisecond, 50*time.Millisecond)),
	}
}

func rpBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func rpMD5(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// rpRebase points a URL issued by one Server at another's listener (same path and signature).
func rpRebase(t *testing.T, raw, base string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := url.Parse(base)
	u.Scheme, u.Host = b.Scheme, b.Host
	return u.String()
}

func rpHTTP(t *testing.T, method, u string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(thCtx(t), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func rpJob(st DeviceResources, name string) (ResourceJob, bool) {
	for _, j := range st.Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return ResourceJob{}, false
}

// A resource pushed to an offline device survives a restart of the platform (real SQLite file,
// NewServer on the same directory): the device connects over TCP afterwards, receives the push,
// downloads the bytes and reports success; the library lists the resource again.
func TestDataDirResourcePushReachesDeviceAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := openDataServer(t, dir)
	if _, err := s.AddDevice(rpPID, "dev1"); err != nil {
		t.Fatal(err)
	}
	data := rpBytes(t, 300_000)
	info, err := s.UploadResource(rpPID, "welcome.mp3", "1.0", "AUDIO", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PushResource(rpPID, "dev1", "welcome.mp3", ""); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.DeviceResources(rpPID, "dev1"); len(st.Jobs) != 1 || st.Jobs[0].State != "pending" {
		t.Fatalf("before restart: %+v", st.Jobs)
	}
	s.Close()

	s = openDataServer(t, dir)
	lib := s.Resources(rpPID)
	if len(lib) == 1 && lib[0].Created.Equal(info.Created) {
		lib[0].Created = info.Created // same instant; the location pointer differs
	}
	if len(lib) != 1 || lib[0] != info {
		t.Fatalf("library after restart: %+v, want [%+v]", lib, info)
	}
	st, _ := s.DeviceResources(rpPID, "dev1")
	if j, ok := rpJob(st, "welcome.mp3"); !ok || j.State != "pending" || j.MD5 != rpMD5(data) || j.ResourceID != info.ResourceID {
		t.Fatalf("job after restart: %+v", st.Jobs)
	}

	conn := rpDevice(t, s, "dev1")
	devDir := t.TempDir()
	files, err := resource.NewFiles(thCtx(t), conn, devDir, rpTrust(s)...)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	// The device reports what it has (as the C SDK does at start): the platform pushes the job.
	if _, err := files.ReportVersion(thCtx(t), nil); err != nil {
		t.Fatal(err)
	}
	st, err = s.WaitDeviceResources(thCtx(t), rpPID, "dev1", func(st DeviceResources) bool {
		j, _ := rpJob(st, "welcome.mp3")
		return j.State == "done" || j.State == "fail"
	})
	if j, _ := rpJob(st, "welcome.mp3"); err != nil || j.State != "done" || j.Percent != 100 {
		t.Fatalf("job: %+v %v", j, err)
	}
	got, err := os.ReadFile(filepath.Join(devDir, "welcome.mp3"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("device downloaded %d bytes (%v), want the %d uploaded before the restart", len(got), err, len(data))
	}
	if _, err := files.ReportVersion(thCtx(t), []resource.Resource{{Name: "welcome.mp3", Version: "1.0", Type: "AUDIO"}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// The finished job and the device's reported list are kept too.
	s = openDataServer(t, dir)
	st, _ = s.DeviceResources(rpPID, "dev1")
	j, _ := rpJob(st, "welcome.mp3")
	if j.State != "done" || len(j.History) == 0 || len(st.Reported) != 1 || st.Reported[0].Version != "1.0" {
		t.Fatalf("after the second restart: %+v", st)
	}
}

// Device uploads (both APIs) survive a restart and are served by GET /api/uploads/{key}; an
// upload slot reserved before the restart still takes its PUT afterwards with the URL issued
// before, which is signed by the stored key; an expired URL stays expired.
func TestDataDirDeviceUploadsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := openDataServer(t, dir)
	if _, err := s.AddDevice(rpPID, "dev1"); err != nil {
		t.Fatal(err)
	}
	conn := rpDevice(t, s, "dev1")
	ctx := thCtx(t)
	files, err := resource.NewFiles(ctx, conn, t.TempDir(), rpTrust(s)...)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := resource.NewTasks(ctx, conn, t.TempDir(), rpTrust(s)...)
	if err != nil {
		t.Fatal(err)
	}
	photo, dump := rpBytes(t, 200_000), rpBytes(t, 70_000)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "photo.jpg"), photo, 0o644)
	os.WriteFile(filepath.Join(src, "dump.bin"), dump, 0o644)
	token, err := files.Upload(ctx, resource.Resource{Name: "photo.jpg", Version: "1", Type: "FILE"}, filepath.Join(src, "photo.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tasks.Upload(ctx, "dump.bin", filepath.Join(src, "dump.bin")); err != nil {
		t.Fatal(err)
	}
	st, err := s.WaitDeviceResources(ctx, rpPID, "dev1", func(st DeviceResources) bool {
		return len(st.Uploads) == 2 && st.Uploads[0].State == "done" && st.Uploads[1].State == "done"
	})
	if err != nil {
		t.Fatalf("%v: %+v", err, st.Uploads)
	}
	// Compared without Updated: the device may still send a last progress report for an upload
	// already done (a later Updated, the same record otherwise).
	before := withoutUpdated(st.Uploads)
	// A slot reserved (as request_url does) but not filled yet, its PUT URL, and an expired one.
	late := rpBytes(t, 5000)
	lateKey, err := s.res.reserve(DeviceID{rpPID, "dev1"}, "files", "late.log", "1", "FILE", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	putURL := s.res.store.URL(s.HTTPURL(), lateKey, http.MethodPut, time.Now().Add(time.Hour))
	expiredGet := s.res.store.URL(s.HTTPURL(), token, http.MethodGet, time.Now().Add(-time.Second))
	validGet := s.res.store.URL(s.HTTPURL(), token, http.MethodGet, time.Now().Add(time.Hour))
	files.Close()
	tasks.Close()
	conn.Close()
	s.Close()

	s = openDataServer(t, dir)
	st, _ = s.DeviceResources(rpPID, "dev1")
	if len(st.Uploads) != 3 || fmt.Sprint(withoutUpdated(st.Uploads[:2])) != fmt.Sprint(before) || st.Uploads[2].State != "requested" {
		t.Fatalf("uploads after restart:\n%+v\nwant\n%+v and late.log requested", st.Uploads, before)
	}
	for _, up := range before {
		want := photo
		if up.Name == "dump.bin" {
			want = dump
		}
		if code, got := rpHTTP(t, "GET", s.HTTPURL()+"/api/uploads/"+up.Token, nil); code != 200 || !bytes.Equal(got, want) {
			t.Fatalf("GET /api/uploads/%s (%s) after restart: %d, %d bytes, want %d", up.Token, up.Name, code, len(got), len(want))
		}
	}
	// URLs issued before the restart: the signature still holds, the expiry too.
	if code, got := rpHTTP(t, "GET", rpRebase(t, validGet, s.HTTPURL()), nil); code != 200 || !bytes.Equal(got, photo) {
		t.Fatalf("GET with a URL issued before the restart: %d %.80q", code, got)
	}
	if code, got := rpHTTP(t, "GET", rpRebase(t, expiredGet, s.HTTPURL()), nil); code != 403 || !strings.Contains(string(got), "expired") {
		t.Fatalf("expired URL after restart: %d %q", code, got)
	}
	if code, got := rpHTTP(t, "PUT", rpRebase(t, putURL, s.HTTPURL()), late); code != 200 {
		t.Fatalf("PUT to the slot reserved before the restart: %d %q", code, got)
	}
	st, _ = s.DeviceResources(rpPID, "dev1")
	if up := st.Uploads[2]; up.State != "uploaded" || up.MD5 != rpMD5(late) || up.Size != int64(len(late)) {
		t.Fatalf("late upload: %+v", up)
	}
	s.Close()

	s = openDataServer(t, dir)
	if code, got := rpHTTP(t, "GET", s.HTTPURL()+"/api/uploads/"+lateKey, nil); code != 200 || !bytes.Equal(got, late) {
		t.Fatalf("late upload after a second restart: %d, %d bytes", code, len(got))
	}
}

// Files a crash leaves in the resources directory: a PUT completed whose object record was not
// written yet is recovered from its slot record; a cut-off .part and a file nobody has a record
// of are removed. A record whose file is missing stops NewServer with an error naming the
// section, the key and the file.
func TestDataDirResourceFilesAfterCrash(t *testing.T) {
	dir := t.TempDir()
	s := openDataServer(t, dir)
	if _, err := s.AddDevice(rpPID, "dev1"); err != nil {
		t.Fatal(err)
	}
	id := DeviceID{rpPID, "dev1"}
	body := rpBytes(t, 4096)
	key, err := s.res.reserve(id, "tasks", "crash.bin", "", "", int64(len(body)), rpMD5(body))
	if err != nil {
		t.Fatal(err)
	}
	lib, err := s.UploadResource(rpPID, "lib.bin", "1", "", strings.NewReader("library object"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	resDir := filepath.Join(dir, "resources")
	// What a kill right after the PUT's rename leaves: the file, the slot record, no object record.
	os.WriteFile(filepath.Join(resDir, key), body, 0o644)
	stray := []string{"0123456789abcdef01234567", "0123456789abcdef01234568.part"}
	for _, name := range stray {
		os.WriteFile(filepath.Join(resDir, name), []byte("junk"), 0o644)
	}

	s = openDataServer(t, dir)
	for _, name := range stray {
		if _, err := os.Stat(filepath.Join(resDir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stray file %s kept: %v", name, err)
		}
	}
	st, _ := s.DeviceResources(rpPID, "dev1")
	if len(st.Uploads) != 1 || st.Uploads[0].State != "done" || st.Uploads[0].MD5 != rpMD5(body) {
		t.Fatalf("recovered upload: %+v", st.Uploads)
	}
	if code, got := rpHTTP(t, "GET", s.HTTPURL()+"/api/uploads/"+key, nil); code != 200 || !bytes.Equal(got, body) {
		t.Fatalf("recovered upload served: %d", code)
	}
	s.Close()

	os.Remove(filepath.Join(resDir, lib.ResourceID))
	_, err = NewServer(WithDataDir(dir))
	want := []string{"resource_objects/" + lib.ResourceID, filepath.Join(resDir, lib.ResourceID), "missing"}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("NewServer with a record whose file is gone: %v; want it to name %q", err, w)
		}
	}
}

// A corrupt record of each new section stops NewServer with an error naming section and key;
// nothing is dropped or rewritten.
func TestDataDirCorruptResourceRecords(t *testing.T) {
	for _, c := range []struct{ section, key, value, want string }{
		{changeResources, rpPID + "/dev1", `{"jobs":[{"name":"x","api":"ftp"}]}`, `api "ftp"`},
		{changeResources, rpPID + "/dev1", `{"jobs":`, ""},
		{changeResObject, "0123456789abcdef01234567", `[1,2]`, ""},
		{changeAppTokens, rpPID + "/dev1", `[{"token":"t","product_id":"OTHER00001","device_name":"dev1","user":"u","expires_at":"2030-01-01T00:00:00Z"}]`, "record of"},
		{changeDynreg, rpPID, `{"product_secret":"0123456789abcdef0123","enabled":true,"credential":"magic"}`, `credential "magic"`},
		{resKeySection, "hmac", `short`, "5 bytes"},
		{changeDevLog, rpPID + "/dev1", `{"level":9}`, "level 9"},
		{changeDevLog, rpPID + "/dev1", `{"level":1,"total":2,"lines":[{"seq":2,"text":"b"},{"seq":1,"text":"a"}]}`, "lines[1]: seq 1 out of order"},
	} {
		t.Run(c.section, func(t *testing.T) {
			dir := t.TempDir()
			s := openDataServer(t, dir)
			if _, err := s.AddDevice(rpPID, "dev1"); err != nil {
				t.Fatal(err)
			}
			s.Close()
			db, err := store.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Put(c.section, c.key, []byte(c.value)); err != nil {
				t.Fatal(err)
			}
			db.Close()
			_, err = NewServer(WithDataDir(dir))
			if err == nil || !strings.Contains(err.Error(), c.section+"/"+c.key) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewServer: %v; want an error naming %s/%s and %q", err, c.section, c.key, c.want)
			}
			db, err = store.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if v, ok, _ := db.Get(c.section, c.key); !ok || string(v) != c.value {
				t.Fatalf("the record was changed: %q %v", v, ok)
			}
		})
	}
}

// An app token issued before a restart binds the device after it (the device connects over TCP
// and sends app_bind_token); a used token stays used and an expired one stays expired.
func TestDataDirAppTokenSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := openDataServer(t, dir)
	if err := s.AddProduct(thLoadTemplate(t, "light.json")); err != nil {
		t.Fatal(err)
	}
	secret := addLight(t, s, "lamp")
	code, doc, raw := apiCall(t, "POST", s.HTTPURL()+"/api/devices/"+thLightPID+"/lamp/app-token", `{"user":"alice","ttl":"1h"}`)
	tok, _ := doc["token"].(string)
	if code != 201 || tok == "" {
		t.Fatalf("POST app-token = %d %s", code, raw)
	}
	used, err := s.IssueAppToken(thLightPID, "lamp", "bob", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := s.IssueAppToken(thLightPID, "lamp", "carol", time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	bindMsg := func(token string) string {
		return fmt.Sprintf(`{"method":"app_bind_token","clientToken":"c-%d","params":{"token":%q}}`, time.Now().UnixNano(), token)
	}
	d := bindDevice(t, s, "lamp", secret)
	if m := d.call("service", bindMsg(used.Token)); m.code(t) != BindCodeSuccess {
		t.Fatalf("bind: %s", m.Raw)
	}
	d.close()
	s.Close()

	s = openDataServer(t, dir)
	if kept, _ := s.AppTokenStats(); kept != 3 {
		t.Fatalf("%d tokens after restart, want 3", kept)
	}
	d = bindDevice(t, s, "lamp", secret)
	for _, c := range []struct {
		token string
		code  int
	}{{used.Token, BindCodeTokenUsed}, {expired.Token, BindCodeTokenExpired}, {tok, BindCodeSuccess}} {
		if m := d.call("service", bindMsg(c.token)); m.str("method") != "app_bind_token_reply" || m.code(t) != c.code {
			t.Errorf("token after restart: %s, want code %d", m.Raw, c.code)
		}
	}
	if bd, ok := s.Binding(thLightPID, "lamp"); !ok || bd.User != "alice" || bd.Via != "app_bind_token" {
		t.Fatalf("binding: %+v %v", bd, ok)
	}
	d.close()
	s.Close()

	// Deleting the device deletes its tokens' record.
	s = openDataServer(t, dir)
	if err := s.RemoveDevice(thLightPID, "lamp"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openDataServer(t, dir)
	if kept, _ := s.AppTokenStats(); kept != 0 {
		t.Fatalf("%d tokens of a deleted device came back", kept)
	}
}

// Restored app tokens keep the bounds: tokens more than an hour past their expiry are not
// brought back (and their record is rewritten without them).
func TestDataDirAppTokensPrunedAtRestore(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	clock := func() time.Time { return now }
	s := openDataServer(t, dir, WithClock(clock))
	if _, err := s.AddDevice(rpPID, "dev1"); err != nil {
		t.Fatal(err)
	}
	old, _ := s.IssueAppToken(rpPID, "dev1", "", time.Minute)
	fresh, _ := s.IssueAppToken(rpPID, "dev1", "", 3*time.Hour)
	s.Close()
	now = now.Add(2 * time.Hour)
	s = openDataServer(t, dir, WithClock(clock))
	s.bind.mu.Lock()
	_, oldKept := s.bind.tokens[old.Token]
	_, freshKept := s.bind.tokens[fresh.Token]
	s.bind.mu.Unlock()
	if oldKept || !freshKept {
		t.Fatalf("after restore: old kept %v, fresh kept %v", oldKept, freshKept)
	}
	v, _, _ := s.data.db.Get(changeAppTokens, rpPID+"/dev1")
	if strings.Contains(string(v), old.Token) || !strings.Contains(string(v), fresh.Token) {
		t.Fatalf("record after restore: %s", v)
	}
}

// Dynamic-registration settings survive a restart: the product secret (random, from the first
// run) is kept, so a device registers after the restart with it; enabling again without a
// secret keeps it; a disabled product stays disabled.
func TestDataDirDynregSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := openDataServer(t, dir)
	secret, err := s.EnableDynamicRegistration("PROD000001", DynregConfig{AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnableDynamicRegistration("PROD000002", DynregConfig{ProductSecret: "ThisIsTheProductSecret42", Certificate: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.DisableDynamicRegistration("PROD000002"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openDataServer(t, dir)
	if p, ok := s.dynreg.Product("PROD000002"); !ok || p.Enabled || p.Secret != "ThisIsTheProductSecret42" || p.Credential != "cert" {
		t.Fatalf("PROD000002 after restart: %+v %v", p, ok)
	}
	creds, err := dynreg.Register(thCtx(t), dynreg.Request{ProductID: "PROD000001", ProductSecret: secret, DeviceName: "newdev", Endpoint: s.HTTPSURL()},
		dynreg.WithRootCAs(s.RootCAs()))
	if err != nil || creds.DeviceSecret == "" {
		t.Fatalf("registration after restart: %+v %v", creds, err)
	}
	_, err = dynreg.Register(thCtx(t), dynreg.Request{ProductID: "PROD000002", ProductSecret: "ThisIsTheProductSecret42", DeviceName: "x", Endpoint: s.HTTPSURL()},
		dynreg.WithRootCAs(s.RootCAs()))
	if err == nil {
		t.Fatal("a product disabled before the restart registered a device")
	}
	if again, err := s.EnableDynamicRegistration("PROD000001", DynregConfig{AutoCreate: true}); err != nil || again != secret {
		t.Fatalf("enabling again without a secret: %q %v, want the stored %q", again, err, secret)
	}
	s.Close()
	s = openDataServer(t, dir)
	if _, ok := s.Device("PROD000001", "newdev"); !ok {
		t.Fatal("the device created by registration is gone")
	}
}

// Close writes the changes still queued: state changed just before Close is all there after a
// restart, without waiting for the change feed.
func TestDataDirCloseWritesQueuedChanges(t *testing.T) {
	dir := t.TempDir()
	s := openDataServer(t, dir)
	for i := range 200 {
		if _, err := s.AddDevice(rpPID, fmt.Sprintf("d%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if st := s.data.stats(); st["failures"] != uint64(0) || st["writes"].(uint64) < 200 {
		t.Fatalf("persist stats after Close: %v", st)
	}
	s = openDataServer(t, dir)
	if n := len(s.Devices()); n != 200 {
		t.Fatalf("%d devices after restart, want 200", n)
	}
}

// withoutUpdated copies uploads with their Updated times cleared.
func withoutUpdated(ups []DeviceUpload) []DeviceUpload {
	out := append([]DeviceUpload(nil), ups...)
	for i := range out {
		out[i].Updated = time.Time{}
	}
	return out
}
