// Package explorertest is an in-process Tencent Cloud IoT Explorer platform for tests.
//
// NewServer starts a real MQTT broker (mochi-mqtt) on 127.0.0.1 with a plain TCP and a TLS
// listener, plus an HTTP and an HTTPS listener sharing one mux. The TLS listeners present a
// certificate issued by the server's own test CA (RootCAs, CACertPEM), so devices dial it exactly
// like the real platform, only trusting a different root.
//
// The broker behaves like the platform's device gateway (docs: protocol.md §1 and §8):
//
//   - CONNECT is authenticated like the platform: the client id must be {pid}{dn} of a registered
//     device, the username {pid}{dn};{sdkappid};{connid};{expiry} (sdkappid 12010126 or 21010406,
//     expiry in seconds, or in milliseconds as the Python SDK sends it: such a value is accepted
//     up to 24 h after the instant it names), the password {hex};hmacsha256|hmacsha1 over the username
//     keyed with the base64-decoded device secret. Certificate devices authenticate with mutual TLS
//     instead. MQTT 3.1 (MQIsdp, used by the official Python SDK) and 3.1.1 are accepted.
//     Failures are refused with CONNACK 4 (bad username or password); a Will message is refused
//     with CONNACK 5 (not authorized) because the platform does not support wills.
//   - One live connection per device: a second login takes over and disconnects the first.
//   - Topics are restricted to the device's own {pid}/{dn} (see the ACL rules in acl.go);
//     QoS 2, retained publishes and payloads over 16 KB are refused.
//   - $sys/operation answers the NTP time request.
//
// Cloud-side behaviour (data template, gateway, OTA, dynamic registration) lives in feature
// files of this package that register with the server's uplink router, HTTP mux and device-state
// notifications (features.go). Fault injection (DropConnections, Restart, SetLatency) lets tests
// exercise reconnect paths.
package explorertest
