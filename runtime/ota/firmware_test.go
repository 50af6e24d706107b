package ota

import (
	"errors"
	"strings"
	"testing"
)

const updTopic = "$ota/update/ABCDEFGHIJ/dev1"

func TestParseUpdate(t *testing.T) {
	// The update_firmware of the official-SDK transcript (line 46), plus user_defined.
	fw, err := ParseUpdate(updTopic, []byte(`{"file_size": 4000, "md5sum": "DF3BF300E60CE82E624B9D045E63FE50", "type": "update_firmware", "url": "http://127.0.0.1:45129/fw-1.0.1.bin", "version": "1.0.1", "user_defined":"{\"info\":\"ota test\"}"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Firmware{Version: "1.0.1", URL: "http://127.0.0.1:45129/fw-1.0.1.bin", MD5: "df3bf300e60ce82e624b9d045e63fe50", Size: 4000, UserDefined: `{"info":"ota test"}`}
	if fw != want {
		t.Errorf("got %+v\nwant %+v", fw, want)
	}
	fw, err = ParseUpdate(updTopic, []byte(`{"type":"update_firmware","version":"v2","url":"https://cos.example/x?sign=1","md5sum":"a15d5deaf37bf6698cf9a21ec672166d","file_size":"1501696"}`))
	if err != nil || fw.Size != 1501696 {
		t.Errorf("string file_size: %+v, %v", fw, err)
	}
}

func TestParseUpdateErrorsNameTopicAndField(t *testing.T) {
	base := `"type":"update_firmware","version":"1","url":"https://h/x","md5sum":"a15d5deaf37bf6698cf9a21ec672166d"`
	for _, tc := range []struct{ payload, field string }{
		{`{` + base + `}`, "file_size"},
		{`{` + base + `,"file_size":"12a"}`, "file_size"},
		{`{` + base + `,"file_size":-5}`, "file_size"},
		{`{` + base + `,"file_size":1.5}`, "file_size"},
		{`{` + base + `,"file_size":10,"user_defined":7}`, "user_defined"},
		{`{"type":"update_firmware","version":"","url":"https://h/x","md5sum":"a15d5deaf37bf6698cf9a21ec672166d","file_size":1}`, "version"},
		{`{"type":"update_firmware","version":"` + strings.Repeat("v", 33) + `","url":"https://h/x","md5sum":"a15d5deaf37bf6698cf9a21ec672166d","file_size":1}`, "version"},
		{`{"type":"update_firmware","version":"1","url":"/relative","md5sum":"a15d5deaf37bf6698cf9a21ec672166d","file_size":1}`, "url"},
		{`{"type":"update_firmware","version":"1","url":"https://h/x","md5sum":"zz5d5deaf37bf6698cf9a21ec672166d","file_size":1}`, "md5sum"},
		{`{"type":"report_version_rsp"}`, "type"},
		{`{"type":`, "malformed JSON"},
		{`[]`, "malformed JSON"},
	} {
		_, err := ParseUpdate(updTopic, []byte(tc.payload))
		if !errors.Is(err, ErrInvalidFirmware) || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), updTopic) {
			t.Errorf("%s: err = %v, want ErrInvalidFirmware naming %q and the topic", tc.payload, err, tc.field)
		}
	}
}

func FuzzParseUpdate(f *testing.F) {
	f.Add([]byte(`{"file_size": 4000, "md5sum": "df3bf300e60ce82e624b9d045e63fe50", "type": "update_firmware", "url": "http://127.0.0.1:45129/fw-1.0.1.bin", "version": "1.0.1"}`))
	f.Add([]byte(`{"type":"update_firmware","file_size":"1","user_defined":{"a":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fw, err := ParseUpdate(updTopic, b)
		if err == nil {
			if verr := fw.Validate(); verr != nil {
				t.Fatalf("accepted invalid firmware %+v: %v", fw, verr)
			}
		}
	})
}
