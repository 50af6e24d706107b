// Package dynreg implements Tencent Cloud IoT Explorer dynamic registration (一型一密): a device
// that knows only its product's ProductSecret asks the platform for its own credentials — a PSK
// (DeviceSecret) or an X.509 certificate and private key — and can then connect with
// runtime/explorer.
//
// Both HTTP API generations are supported (docs/PROTOCOL.md §6):
//
//   - V2 (the default): POST /device/register with X-TC-* signature headers (HMAC-SHA256), as the
//     official Python SDK and the IoT Hub documentation do.
//   - Legacy: POST /register/dev with an HMAC-SHA1 signature in the JSON body, as the Explorer C and
//     Java SDKs do.
//
// The platform answers with the credentials AES-128-CBC encrypted under the ProductSecret; Register
// decrypts them, checks them and returns [Credentials]. The pure building blocks (StringToSign,
// SignV2, LegacyStringToSign, SignLegacy, Decrypt, ParsePayload) are exported for tools and for
// platform-side tests.
//
// Secrets (ProductSecret, DeviceSecret, private key) never appear in log records or error strings.
//
// The official Python SDK's dynregDevice is [Register]; saving what it returns is
// [SaveCredentials] / [LoadCredentials], and [Credentials.Config] turns it into an
// explorer.Config.
//
// Every network wait ends with ctx (tested through a fault-injecting TCP proxy). A Register
// that failed after sending may have registered the device: persist credentials as soon as
// they arrive (docs/ARCHITECTURE.md "Delivery contract"). Request, Credentials and Payload
// print and log without their secrets (String, GoString, LogValue).
package dynreg
