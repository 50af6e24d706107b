package ota

import (
	"testing"

	"github.com/tplgen/tplgen/internal/secrettest"
)

// The query of a pre-signed COS URL is a credential: whoever holds it can download the image
// until it expires.
func TestFirmwareAndFileNeverPrintTheURLSignature(t *testing.T) {
	const sig = "q-signature=8f1e2d3c4b5a69788796a5b4c3d2e1f0"
	fw := Firmware{Version: "1.2.3", URL: "https://ota.example.test/fw.bin?q-sign-algorithm=sha1&" + sig,
		MD5: "0123456789abcdef0123456789abcdef", Size: 10, UserDefined: "{}"}
	secrettest.Check(t, fw, sig)
	secrettest.Check(t, &fw, sig)
	secrettest.Check(t, fw.File(), sig)
	if got, want := fw.String(), `ota.Firmware{Version:"1.2.3" URL:"https://ota.example.test/fw.bin" MD5:0123456789abcdef0123456789abcdef Size:10 UserDefined:"{}"}`; got != want {
		t.Errorf("String = %s\nwant     %s", got, want)
	}
}
