package gateway

import (
	"os"
	"testing"

	"github.com/goccy/go-json"
)

func TestSignBindVectors(t *testing.T) {
	data, err := os.ReadFile("../../testdata/conformance/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Bind []struct {
			PID          string `json:"sub_product_id"`
			DeviceName   string `json:"sub_device_name"`
			Random       int64  `json:"random"`
			Timestamp    int64  `json:"timestamp"`
			SignMethod   string `json:"signmethod"`
			Signature    string `json:"signature"`
			Secret       string `json:"sub_device_secret"`
			StringToSign string `json:"string_to_sign"`
		} `json:"gateway_bind_signature"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Bind) == 0 {
		t.Fatal("no gateway_bind_signature vectors")
	}
	for _, c := range v.Bind {
		if got := BindStringToSign(c.PID, c.DeviceName, c.Random, c.Timestamp); got != c.StringToSign {
			t.Errorf("string to sign = %q, want %q", got, c.StringToSign)
		}
		got, err := SignBind(c.Secret, c.PID, c.DeviceName, c.Random, c.Timestamp, SignMethod(c.SignMethod))
		if err != nil {
			t.Fatal(err)
		}
		if got != c.Signature {
			t.Errorf("signature = %q, want %q", got, c.Signature)
		}
	}
}

func TestSignBindRejectsUnknownMethod(t *testing.T) {
	if _, err := SignBind("k", "P", "d", 1, 2, "md5"); err == nil {
		t.Fatal("want error for unsupported method")
	}
}
