package main

import (
	"bytes"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

const (
	lightPIDPersist = "ZPHBLEB4J5"           // schemas/light.json
	lampSecret      = "bGFtcC1zZWNyZXQtMDE=" // base64("lamp-secret-01")
)

// freeAddrs are listen flags on ephemeral loopback ports.
var freeAddrs = []string{"--mqtt", "127.0.0.1:0", "--tls", "127.0.0.1:0", "--http", "127.0.0.1:0", "--https", "127.0.0.1:0"}

// TestEmulateDataSurvivesSIGKILL creates every kind of state in `tplgen emulate --data DIR`
// through devices and the API, kills the process with SIGKILL, restarts it on the same DIR and
// finds it all again over the API; the pending control reaches the device when it reconnects
// and the firmware downloads byte for byte.
func TestEmulateDataSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "state")
	firmware := bytes.Repeat([]byte("firmware-2.0.0;"), 1000)
	tone := bytes.Repeat([]byte("tone.wav;"), 2000)
	args := append(append([]string(nil), freeAddrs...), "--data", data, "--log-level", "debug", "--dynreg", "DYNPROD001")

	// ---- first run: create state
	p := startEmulator(t, append(args, "--template", "../../schemas/light.json",
		"--device", lightPIDPersist+"/lamp="+lampSecret, "--device", lightPIDPersist+"/gw", "--device", lightPIDPersist+"/sub")...)
	if got := p.field("data"); !strings.HasPrefix(got, data) || !strings.Contains(strings.Join(p.out, "\n"), "(0 devices and 0 products restored)") {
		t.Fatalf("data line: %q", p.out)
	}
	base, broker := p.field("http"), p.field("mqtt")
	productSecret := p.field("product_secret") // --dynreg without a secret: random, kept in DIR
	var created struct {
		DeviceSecret string `json:"device_secret"`
	}
	api(t, "POST", base+"/api/devices", "", `{"product_id":"`+lightPIDPersist+`","device_name":"apidev"}`, 201, &created)

	lamp := connectDevice(t, broker, lightPIDPersist, "lamp", lampSecret)
	if r := lamp.report("r1", `{"brightness":40,"power_switch":1}`); fmt.Sprint(r["code"]) != "0" {
		t.Fatalf("report_reply %v", r)
	}
	lamp.publish("$thing/up/event/", fmt.Sprintf(`{"method":"event_post","clientToken":"e1","version":"1.0","eventId":"status_report","type":"info","timestamp":%d,"params":{"status":1,"message":"hot"}}`, time.Now().UnixMilli()))
	if r := lamp.await(map[string]any{"method": "event_reply", "clientToken": "e1"}); fmt.Sprint(r["code"]) != "0" {
		t.Fatalf("event_reply %v", r)
	}
	lamp.publish("$ota/report/", `{"type":"report_version","report":{"version":"1.0.0"}}`)
	lamp.await(map[string]any{"type": "report_version_rsp"})
	api(t, "POST", base+"/api/firmware?product="+lightPIDPersist+"&version=2.0.0", "", string(firmware), 201, nil)
	api(t, "POST", base+"/api/devices/"+lightPIDPersist+"/lamp/ota", "", `{"version":"2.0.0","plain_http":true}`, 202, nil)
	lamp.await(map[string]any{"type": "update_firmware", "version": "2.0.0"})
	lamp.publish("$ota/report/", `{"type":"report_progress","report":{"progress":{"state":"downloading","percent":"50","result_code":"0","result_msg":""},"version":"2.0.0"}}`)
	// A device's uplinks are handled in order: once this reply is in, so is the progress.
	lamp.report("r2", `{"color":2}`)
	for _, step := range []string{"ota: job pending", "ota: update_firmware sent", "ota: job downloading"} {
		p.logs.wait(t, step, func(l string) bool {
			return strings.Contains(l, step) && strings.Contains(l, "device="+lightPIDPersist+"/lamp") && strings.Contains(l, "version=2.0.0")
		})
	}
	api(t, "POST", base+"/api/devices/"+lightPIDPersist+"/lamp/bind", "", `{"user":"alice"}`, 200, nil)
	api(t, "POST", base+"/api/gateways/"+lightPIDPersist+"/gw/change?timeout=1ms", "",
		`{"status":1,"devices":[{"product_id":"`+lightPIDPersist+`","device_name":"sub"}]}`, 202, nil)

	lamp.c.Disconnect(0)
	deadline := time.Now().Add(emuWait)
	for {
		var dev struct {
			Online bool `json:"online"`
		}
		api(t, "GET", base+"/api/devices/"+lightPIDPersist+"/lamp", "", "", 200, &dev)
		if !dev.Online {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lamp still online after disconnecting")
		}
		time.Sleep(10 * time.Millisecond)
	}
	api(t, "POST", base+"/api/devices/"+lightPIDPersist+"/lamp/control", "", `{"params":{"brightness":77}}`, 202, nil)
	// A resource pushed to the offline lamp, and an app token issued for it.
	api(t, "POST", base+"/api/resources?product="+lightPIDPersist+"&name=tone.wav&version=1&type=AUDIO", "", string(tone), 201, nil)
	api(t, "POST", base+"/api/devices/"+lightPIDPersist+"/lamp/resources", "", `{"name":"tone.wav"}`, 202, nil)
	var appToken struct {
		Token string `json:"token"`
	}
	api(t, "POST", base+"/api/devices/"+lightPIDPersist+"/lamp/app-token", "", `{"user":"bob","ttl":"1h"}`, 201, &appToken)
	waitPersisted(t, base, "")
	p.kill()

	// ---- second run on the same directory, without --template or --device
	p = startEmulator(t, args...)
	if !strings.Contains(strings.Join(p.out, "\n"), "(4 devices and 1 products restored)") {
		t.Fatalf("restart output: %q", p.out)
	}
	base, broker = p.field("http"), p.field("mqtt")
	var devs []struct {
		DeviceName string `json:"device_name"`
	}
	api(t, "GET", base+"/api/devices", "", "", 200, &devs)
	if fmt.Sprint(devs) != "[{apidev} {gw} {lamp} {sub}]" {
		t.Fatalf("devices after restart: %v", devs)
	}
	api(t, "GET", base+"/api/products/"+lightPIDPersist, "", "", 200, nil)
	var lampDoc struct {
		Reported       map[string]any   `json:"reported"`
		PendingControl map[string]any   `json:"pending_control"`
		Events         []map[string]any `json:"events"`
		Binding        map[string]any   `json:"binding"`
		OTA            struct {
			TargetVersion   string `json:"target_version"`
			State           string `json:"state"`
			Percent         int    `json:"percent"`
			ReportedVersion string `json:"reported_version"`
		} `json:"ota"`
	}
	api(t, "GET", base+"/api/devices/"+lightPIDPersist+"/lamp", "", "", 200, &lampDoc)
	if fmt.Sprint(lampDoc.Reported) != "map[brightness:40 color:2 power_switch:1]" {
		t.Errorf("reported after restart: %v", lampDoc.Reported)
	}
	if fmt.Sprint(lampDoc.PendingControl) != "map[brightness:77]" {
		t.Errorf("pending control after restart: %v", lampDoc.PendingControl)
	}
	if len(lampDoc.Events) != 1 || lampDoc.Events[0]["event_id"] != "status_report" || fmt.Sprint(lampDoc.Events[0]["params"]) != "map[message:hot status:1]" {
		t.Errorf("events after restart: %v", lampDoc.Events)
	}
	if lampDoc.Binding["user"] != "alice" || lampDoc.Binding["bound"] != true {
		t.Errorf("binding after restart: %v", lampDoc.Binding)
	}
	if o := lampDoc.OTA; o.TargetVersion != "2.0.0" || o.State != "downloading" || o.Percent != 50 || o.ReportedVersion != "1.0.0" {
		t.Errorf("OTA job after restart: %+v", o)
	}
	var subs []map[string]any
	api(t, "GET", base+"/api/gateways/"+lightPIDPersist+"/gw/subdevices", "", "", 200, &subs)
	if len(subs) != 1 || subs[0]["device_name"] != "sub" {
		t.Errorf("gateway topology after restart: %v", subs)
	}

	// The device reconnects with its stored secret: get_status hands it the pending control.
	lamp = connectDevice(t, broker, lightPIDPersist, "lamp", lampSecret)
	lamp.publish("$thing/up/property/", `{"method":"get_status","clientToken":"s1","type":"control"}`)
	st := lamp.await(map[string]any{"method": "get_status_reply", "clientToken": "s1"})
	if ctl := fmt.Sprint(st["data"]); !strings.Contains(ctl, "control:map[brightness:77]") {
		t.Fatalf("get_status_reply after restart: %v", st)
	}
	// It still runs 1.0.0: the job is pushed again with a new URL, and the image is intact.
	lamp.publish("$ota/report/", `{"type":"report_version","report":{"version":"1.0.0"}}`)
	push := lamp.await(map[string]any{"type": "update_firmware", "version": "2.0.0"})
	resp, err := http.Get(push["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := md5.Sum(firmware)
	if resp.StatusCode != 200 || !bytes.Equal(got, firmware) || push["md5sum"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("firmware after restart: %d, %d bytes (want %d), md5 %v", resp.StatusCode, len(got), len(firmware), push["md5sum"])
	}
	// The resource pushed while it was offline reaches it once it reports its resource list,
	// and downloads byte for byte.
	if p.field("product_secret") != productSecret {
		t.Errorf("--dynreg product secret after restart: %q, want the stored %q", p.field("product_secret"), productSecret)
	}
	var lib []map[string]any
	api(t, "GET", base+"/api/resources?product="+lightPIDPersist, "", "", 200, &lib)
	if len(lib) != 1 || lib[0]["name"] != "tone.wav" {
		t.Errorf("resource library after restart: %v", lib)
	}
	lamp.publish("$thing/up/service/", `{"method":"report_version","report":{"resource_list":[]}}`)
	rp := lamp.await(map[string]any{"method": "update_resource", "resource_name": "tone.wav"})
	resp, err = http.Get(rp["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if sum := md5.Sum(tone); resp.StatusCode != 200 || !bytes.Equal(got, tone) || rp["md5sum"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("resource after restart: %d, %d bytes (want %d), md5 %v", resp.StatusCode, len(got), len(tone), rp["md5sum"])
	}
	// The app token issued before the kill binds the lamp.
	lamp.publish("$thing/up/service/", `{"method":"app_bind_token","clientToken":"b1","params":{"token":"`+appToken.Token+`"}}`)
	if r := lamp.await(map[string]any{"method": "app_bind_token_reply", "clientToken": "b1"}); fmt.Sprint(r["code"]) != "0" {
		t.Fatalf("app_bind_token after restart: %v", r)
	}
	// The device created through the API kept its secret.
	connectDevice(t, broker, lightPIDPersist, "apidev", created.DeviceSecret)

	// A deleted device stays deleted, with its state, across a restart.
	api(t, "DELETE", base+"/api/devices/"+lightPIDPersist+"/lamp", "", "", 200, nil)
	waitPersisted(t, base, "")
	p.stop()
	p = startEmulator(t, append(args, "--device", lightPIDPersist+"/lamp")...)
	base = p.field("http")
	var fresh map[string]any
	api(t, "GET", base+"/api/devices/"+lightPIDPersist+"/lamp", "", "", 200, &fresh)
	if fmt.Sprint(fresh["reported"]) != "map[]" || fresh["pending_control"] != nil || fmt.Sprint(fresh["events"]) != "[]" ||
		fmt.Sprint(fresh["binding"]) != "map[bound:false]" || fresh["ota"] != nil {
		t.Errorf("a re-created device inherited the deleted one's state: %v", fresh)
	}
	if p.field("device_secret") == lampSecret {
		t.Error("a re-created device got the deleted one's secret")
	}
	p.stop()
}

// TestEmulateDataDeviceSecretConflict: --device with a secret other than the stored one is
// refused (the stored device is kept), and --device without a secret reuses the stored one.
func TestEmulateDataDeviceSecretConflict(t *testing.T) {
	data := t.TempDir()
	args := append(append([]string(nil), freeAddrs...), "--data", data, "--template", "../../schemas/light.json")
	p := startEmulator(t, append(args, "--device", lightPIDPersist+"/lamp="+lampSecret)...)
	waitPersisted(t, p.field("http"), "")
	p.stop()

	code, stdout, stderr := runEmulatorToExit(t, append(args, "--device", lightPIDPersist+"/lamp=b3RoZXItc2VjcmV0")...)
	if code != 1 || !strings.Contains(stderr, "--device "+lightPIDPersist+"/lamp=SECRET: the --data directory holds this device with another secret") {
		t.Fatalf("conflicting secret: exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(stdout+stderr, "b3RoZXItc2VjcmV0") {
		t.Error("the refused secret was echoed")
	}
	p = startEmulator(t, append(args, "--device", lightPIDPersist+"/lamp")...)
	if got := p.field("device_secret"); got != lampSecret {
		t.Fatalf("stored secret not reused: %q", got)
	}
	p.stop()
}

// TestEmulateDataRefusesBadDatabase: a damaged database and one written by a newer schema each
// stop the emulator before it listens, with an error naming the file; the file is untouched.
func TestEmulateDataRefusesBadDatabase(t *testing.T) {
	// A real database from a run, to damage and to "upgrade".
	good := t.TempDir()
	p := startEmulator(t, append(append([]string(nil), freeAddrs...), "--data", good, "--template", "../../schemas/light.json", "--device", lightPIDPersist+"/lamp")...)
	waitPersisted(t, p.field("http"), "")
	p.stop()
	dbFile := filepath.Join(good, "platform.db")
	orig, err := os.ReadFile(dbFile)
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name    string
		prepare func(t *testing.T, db string)
		want    string
	}{
		{"not a database", func(t *testing.T, db string) {
			writeDB(t, db, bytes.Repeat([]byte("this is not sqlite "), 300))
		}, "corrupt"},
		{"damaged pages", func(t *testing.T, db string) {
			b := append([]byte(nil), orig...)
			for i := 100; i < len(b); i++ { // keep the header, scramble every page
				b[i] ^= 0x5a
			}
			writeDB(t, db, b)
		}, "corrupt"},
		{"newer schema", func(t *testing.T, db string) {
			writeDB(t, db, orig)
			sqldb, err := sql.Open("sqlite", db)
			if err != nil {
				t.Fatal(err)
			}
			defer sqldb.Close()
			if _, err := sqldb.Exec(`UPDATE schema_version SET version = 99`); err != nil {
				t.Fatal(err)
			}
		}, "newer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "platform.db")
			c.prepare(t, db)
			before, _ := os.ReadFile(db)
			code, stdout, stderr := runEmulatorToExit(t, append(append([]string(nil), freeAddrs...), "--data", dir, "--device", lightPIDPersist+"/lamp")...)
			if code != 1 || !strings.Contains(stderr, "--data "+dir) || !strings.Contains(stderr, db) || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit 1 naming %s and %q", code, stderr, db, c.want)
			}
			if strings.Contains(stdout, "serving") || strings.Contains(stdout, "device_secret") {
				t.Fatalf("the emulator started anyway: %q", stdout)
			}
			after, _ := os.ReadFile(db)
			if !bytes.Equal(before, after) {
				t.Fatal("the refused database file was changed")
			}
		})
	}
}

func writeDB(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
