package generator

import (
	"go/token"
	"testing"
)

func TestGoName(t *testing.T) {
	for in, want := range map[string]string{
		"power_switch":   "PowerSwitch",
		"powerSwitch":    "PowerSwitch",
		"PowerSwitch":    "PowerSwitch",
		"power-switch":   "PowerSwitch",
		"power switch":   "PowerSwitch",
		"POWER_SWITCH":   "PowerSwitch",
		"GPS_Info":       "GPSInfo",
		"GPSInfo":        "GPSInfo",
		"SdkAppId":       "SDKAppID",
		"device_id":      "DeviceID",
		"mac":            "MAC",
		"wifi_ssid":      "WifiSSID",
		"pm25":           "PM25",
		"pm25_value":     "PM25Value",
		"co2":            "CO2",
		"url":            "URL",
		"call_picurl":    "CallPicurl",
		"arrStruct":      "ArrStruct",
		"arr2Struct":     "Arr2Struct",
		"switch_1_name":  "Switch1Name",
		"3d_mode":        "X3dMode",
		"_private":       "Private",
		"type":           "Type",
		"func":           "Func",
		"nil":            "Nil",
		"温度":             "X6E295EA6",
		"温度temp":         "Temp",
		"":               "X",
		"___":            "X005F005F005F",
		"a":              "A",
		"HTTPServer":     "HTTPServer",
		"led_brightness": "LEDBrightness",
	} {
		if got := GoName(in); got != want {
			t.Errorf("GoName(%q) = %q, want %q", in, got, want)
		}
	}
}

// GoName must always return an exported identifier.
func FuzzGoName(f *testing.F) {
	for _, s := range []string{"power_switch", "温度", "", "1", "a\u2028b", "*/", "`x`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := GoName(s)
		if !token.IsIdentifier(n) || !token.IsExported(n) {
			t.Fatalf("GoName(%q) = %q is not an exported identifier", s, n)
		}
		if GoName(s) != n {
			t.Fatal("not deterministic")
		}
	})
}

func TestScopeClaim(t *testing.T) {
	s := newScope("Device")
	for _, c := range []struct{ base, want string }{
		{"PowerSwitch", "PowerSwitch"},
		{"PowerSwitch", "PowerSwitch2"},
		{"PowerSwitch2", "PowerSwitch22"}, // a natural "PowerSwitch2" came after the renamed one
		{"Device", "Device2"},
		{"PowerSwitch", "PowerSwitch3"},
	} {
		if got := s.claim(c.base); got != c.want {
			t.Errorf("claim(%q) = %q, want %q", c.base, got, c.want)
		}
	}
	pkg, handler := newScope("FooInput"), newScope("Control")
	if got := claimGroup("Foo", affix{scope: pkg, suffix: "Input"}, affix{scope: handler}); got != "Foo2" {
		t.Errorf("claimGroup = %q, want Foo2", got)
	}
	if got := claimGroup("Control", affix{scope: pkg, suffix: "Input"}, affix{scope: handler}); got != "Control2" {
		t.Errorf("claimGroup = %q, want Control2", got)
	}
}

func TestPackageName(t *testing.T) {
	for in, want := range map[string]string{
		"light": "light", "control_four-v3": "controlfourv3", "Light": "light",
		"3d": "p3d", "type": "typepkg", "温度": "main", "": "main",
	} {
		if got := PackageName(in); got != want {
			t.Errorf("PackageName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCommentText(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb":                  "a b",
		"line\u2028sep\u2029p":  "line sep p",
		"*/ end":                "*/ end",
		"  lots   of\t\tspace ": "lots of space",
		"rtl\u202Eevil\u202C":   "rtl evil",
		"bell\a":                "bell",
	} {
		if got := commentText(in); got != want {
			t.Errorf("commentText(%q) = %q, want %q", in, got, want)
		}
	}
}
