package explorertest

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Tests that read the platform's downlinks the way the official C SDK (v3.2.1) does.
// The C SDK's JSON reader (LITE_json_value_of) returns a value's raw text between the quotes: it
// does not unescape, so "\u0026" stays six bytes. cValue mirrors that.

// cValue returns the raw text of the first "key": value in payload — a string's bytes between its
// quotes without unescaping, or an object/number as written — and whether the key is present.
func cValue(payload []byte, key string) (string, bool) {
	i := bytes.Index(payload, []byte(`"`+key+`":`))
	if i < 0 {
		return "", false
	}
	rest := bytes.TrimLeft(payload[i+len(key)+3:], " ")
	if len(rest) == 0 {
		return "", true
	}
	switch rest[0] {
	case '"':
		for j := 1; j < len(rest); j++ {
			if rest[j] == '"' && rest[j-1] != '\\' {
				return string(rest[1:j]), true
			}
		}
		return "", true
	case '{':
		depth := 0
		for j, c := range rest {
			switch c {
			case '{':
				depth++
			case '}':
				if depth--; depth == 0 {
					return string(rest[:j+1]), true
				}
			}
		}
		return "", true
	default:
		end := bytes.IndexAny(rest, ",}")
		if end < 0 {
			end = len(rest)
		}
		return string(rest[:end]), true
	}
}

// cUpdateFirmware is what ota_lib.c takes from update_firmware: version, url, md5sum and
// file_size are required, and the whole message is refused when user_defined is present but empty.
func cUpdateFirmware(payload []byte) (url, md5sum string, size int64, err error) {
	if typ, _ := cValue(payload, "type"); typ != "update_firmware" {
		return "", "", 0, fmt.Errorf("type %q", typ)
	}
	for _, k := range []string{"version", "url", "md5sum", "file_size"} {
		if v, ok := cValue(payload, k); !ok || v == "" {
			return "", "", 0, fmt.Errorf("%s missing", k)
		}
	}
	if v, ok := cValue(payload, "user_defined"); ok && v == "" {
		return "", "", 0, fmt.Errorf("user_defined present but empty: the C SDK refuses the message")
	}
	url, _ = cValue(payload, "url")
	md5sum, _ = cValue(payload, "md5sum")
	sizeText, _ := cValue(payload, "file_size")
	size, err = strconv.ParseInt(sizeText, 10, 64)
	return url, md5sum, size, err
}

// update_firmware without user_defined is accepted by the C SDK's parser, and the URL it reads
// raw (no unescaping) downloads the image: the signed query's '&' must be a literal '&'.
func TestCSDKUpdateFirmware(t *testing.T) {
	s := newThingServer(t)
	d := thConnect(t, s, thLightPID, "lamp", addLight(t, s, "lamp"))
	d.subscribe("$ota/update/" + thLightPID + "/lamp")
	image := bytes.Repeat([]byte("fw"), 5000)
	sum := md5.Sum(image)
	if _, err := s.UploadFirmware(thLightPID, "2.0.0", bytes.NewReader(image)); err != nil {
		t.Fatal(err)
	}
	d.publish("$ota/report/"+thLightPID+"/lamp", `{"type":"report_version","report":{"version":"1.0.0"}}`)
	if m := d.next(); m.str("type") != "report_version_rsp" {
		t.Fatalf("got %s", m.Raw)
	}
	for _, tc := range []struct {
		name string
		opts []PushOption
		want string // user_defined as the C SDK reads it; "" = absent
	}{
		{"unset", nil, ""},
		{"set", []PushOption{WithUserDefined(`{"note":"R&D <beta>"}`)}, `{\"note\":\"R&D <beta>\"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.PushUpdate(thLightPID, "lamp", "2.0.0", append(tc.opts, WithPlainHTTPURL())...); err != nil {
				t.Fatal(err)
			}
			m := d.next()
			if bytes.Contains(m.Raw, []byte(`\u00`)) {
				t.Errorf("update_firmware is HTML-escaped: %s", m.Raw)
			}
			url, md5sum, size, err := cUpdateFirmware(m.Raw)
			if err != nil {
				t.Fatalf("C SDK parser refuses %s: %v", m.Raw, err)
			}
			if got, ok := cValue(m.Raw, "user_defined"); got != tc.want || ok != (tc.want != "") {
				t.Errorf("user_defined = %q (present %v), want %q", got, ok, tc.want)
			}
			if !strings.Contains(url, "&") {
				t.Fatalf("signed URL has no literal '&' in its query: %s", url)
			}
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := md5.Sum(body)
			if resp.StatusCode != 200 || int64(len(body)) != size || hex.EncodeToString(got[:]) != md5sum || md5sum != hex.EncodeToString(sum[:]) {
				t.Fatalf("download of the raw URL: %d, %d bytes, md5 %x (want %s)", resp.StatusCode, len(body), got, md5sum)
			}
		})
	}
}

// The C SDK's sync after connect: an untyped get_status, data.control of that reply applied, then
// clear_control with the get_status clientToken. Without pending control there is no data.control,
// so the SDK sends no clear_control.
func TestCSDKGetStatusUntyped(t *testing.T) {
	s := newThingServer(t)
	secret := addLight(t, s, "lamp")
	if _, err := s.SendControl(thCtx(t), thLightPID, "lamp", map[string]any{"name": "R&D <lab>", "color": 1}); err == nil {
		t.Fatal("control to an offline device was not stored as pending")
	}
	if err := s.SetReported(thLightPID, "lamp", `{"brightness":12}`); err != nil {
		t.Fatal(err)
	}
	d := thConnect(t, s, thLightPID, "lamp", secret)
	m := d.call("property", `{"method":"get_status","clientToken":"lamp-1"}`)
	reported, okR := cValue(m.Raw, "reported")
	control, okC := cValue(m.Raw, "control")
	if !okR || !okC || reported != `{"brightness":12}` || control != `{"color":1,"name":"R&D <lab>"}` {
		t.Fatalf("untyped get_status_reply as the C SDK reads it: reported %q, control %q (%s)", reported, control, m.Raw)
	}
	if m := d.call("property", `{"method":"clear_control","clientToken":"lamp-1"}`); m.code(t) != 0 {
		t.Fatalf("clear_control: %s", m.Raw)
	}
	if p := s.PendingControl(thLightPID, "lamp"); p != nil {
		t.Fatalf("pending control after clear_control: %s", mustJSON(p))
	}
	m = d.call("property", `{"method":"get_status","clientToken":"lamp-2"}`)
	if _, ok := cValue(m.Raw, "control"); ok {
		t.Fatalf("data.control present with nothing pending: %s", m.Raw)
	}
	// Typed requests keep their one section.
	m = d.call("property", `{"method":"get_status","clientToken":"lamp-3","type":"report"}`)
	if !strings.Contains(string(m.Raw), `"data":{"reported":{"brightness":12}}`) {
		t.Fatalf("typed report: %s", m.Raw)
	}
}
