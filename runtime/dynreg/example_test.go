package dynreg_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/tplgen/tplgen/runtime/dynreg"
	"github.com/tplgen/tplgen/runtime/explorer"
	"github.com/tplgen/tplgen/runtime/explorertest"
)

// Register against the in-process platform, then connect with the issued credentials. Against
// IoT Explorer, leave Endpoint empty (Region selects the gateway) and drop WithRootCAs.
func ExampleRegister() {
	platform, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer platform.Close()
	productSecret, err := platform.EnableDynamicRegistration("ABCDEFGHIJ", explorertest.DynregConfig{AutoCreate: true})
	if err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	creds, err := dynreg.Register(ctx, dynreg.Request{
		ProductID:     "ABCDEFGHIJ",
		ProductSecret: productSecret,
		DeviceName:    "sensor-42",
		Endpoint:      platform.HTTPSURL(),
	}, dynreg.WithRootCAs(platform.RootCAs()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(creds) // secrets are redacted

	cfg, err := creds.Config("", platform.TLSBrokerURL())
	if err != nil {
		log.Fatal(err)
	}
	conn, err := explorer.Dial(ctx, cfg, platform.DialOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Println("connected:", conn.IsConnected())
	// Output:
	// dynreg.Credentials{ProductID:"ABCDEFGHIJ" DeviceName:"sensor-42" Kind:psk <secrets redacted>}
	// connected: true
}

// The legacy API (POST /register/dev, used by the C and Java SDKs) and a certificate product.
func ExampleRegister_legacyCertificate() {
	platform, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer platform.Close()
	productSecret, err := platform.EnableDynamicRegistration("CERTPROD01", explorertest.DynregConfig{AutoCreate: true, Certificate: true})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	creds, err := dynreg.Register(ctx, dynreg.Request{
		ProductID: "CERTPROD01", ProductSecret: productSecret, DeviceName: "meter-1",
		Endpoint: platform.HTTPSURL(), API: dynreg.Legacy,
	}, dynreg.WithRootCAs(platform.RootCAs()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("kind:", creds.Kind())
	// Output:
	// kind: cert
}

// Platform rejections are *dynreg.Error values carrying the platform's code and message.
func ExampleError() {
	platform, err := explorertest.NewServer()
	if err != nil {
		log.Fatal(err)
	}
	defer platform.Close()
	if _, err := platform.EnableDynamicRegistration("ABCDEFGHIJ", explorertest.DynregConfig{}); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = dynreg.Register(ctx, dynreg.Request{
		ProductID: "ABCDEFGHIJ", ProductSecret: "not-the-product-secret", DeviceName: "d1",
		Endpoint: platform.HTTPSURL(),
	}, dynreg.WithRootCAs(platform.RootCAs()))
	var pe *dynreg.Error
	if errors.As(err, &pe) {
		fmt.Println(pe.Code)
	}
	// Output:
	// AuthFailure.SignatureFailure
}

// Decrypt the payload of the platform documentation's worked example.
func ExampleDecrypt() {
	plain, err := dynreg.Decrypt("hzvf5LF9S0isvBhDSauWMaIk",
		"s6FB3a1BA/YYbcmSE12XpeDVmQNDcf1QgVD141RRbmmAnFwQfp1ECAu5O016mCOvYlJJ6V59yM4OqQSiWphfTg==", 53)
	if err != nil {
		log.Fatal(err)
	}
	p, err := dynreg.ParsePayload(plain)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(plain))
	fmt.Println(p.EncryptionType == dynreg.EncryptionPSK, p.PSK)
	// Output:
	// {"encryptionType":2,"psk":"lDZ6Uqt+I9E0wW7rvDUs7Q=="}
	// true lDZ6Uqt+I9E0wW7rvDUs7Q==
}

// The V2 signature of a registration request.
func ExampleSignV2() {
	body := []byte(`{"ProductId":"Q51820J3QD","DeviceName":"light_001"}`)
	sts := dynreg.StringToSign("ap-guangzhou.gateway.tencentdevices.com", dynreg.PathV2, dynreg.AlgorithmHMACSHA256, 1700000000, 1234567, body)
	fmt.Println(dynreg.SignV2("hzvf5LF9S0isvBhDSauWMaIk", sts))
	// Output:
	// upaBDaz+5FVIYi45Z1B0aR1+gVpV1mYz+Os+1y1Fr6I=
}

// The legacy signature: base64 of the hex HMAC-SHA1.
func ExampleSignLegacy() {
	sts := dynreg.LegacyStringToSign("Q51820J3QD", "light_001", 1234567, 1700000000)
	fmt.Println(sts)
	fmt.Println(dynreg.SignLegacy("hzvf5LF9S0isvBhDSauWMaIk", sts))
	// Output:
	// deviceName=light_001&nonce=1234567&productId=Q51820J3QD&timestamp=1700000000
	// NmE0ODRmNTYwZTc3YzZjYTZiN2UyMjY3NjRjOTdkNTBlNjkyMjRmYw==
}
