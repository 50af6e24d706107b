// Package explorertest is an in-process Tencent Cloud IoT Explorer platform for tests and for
// `tplgen emulate`: a real MQTT broker (mochi-mqtt) with a plain and a TLS listener, and an
// HTTP and an HTTPS listener, all on 127.0.0.1 by default. The TLS listeners present a
// certificate from the server's own test CA (RootCAs, CACertPEM), so devices dial it like the
// real platform, trusting a different root.
//
// The broker behaves like the platform's device gateway (docs/PROTOCOL.md §1, §8): CONNECT is
// authenticated with the platform's username/password signature (sdkappid 12010126 or
// 21010406, expiry in seconds or — as the Python SDK sends it — milliseconds, accepted up to
// 24 h past the instant it names; hmacsha256 or hmacsha1) or by mutual TLS for certificate
// devices; failures get CONNACK 4, a Will CONNACK 5. One live connection per device (a second
// login takes the first over). Topics are limited to the device's own {pid}/{dn} (acl.go);
// QoS 2, retained publishes and payloads over MaxPayload are refused.
//
// # API at a glance
//
// Every method is on *Server; pid/dn name a device.
//
//   - Lifecycle and addresses: NewServer (Options: WithMQTTAddr, WithTLSAddr, WithHTTPAddr,
//     WithHTTPSAddr, WithFirmwareAddr, WithFirmwareTLSAddr, WithWebSocketAddr,
//     WithWebSocketTLSAddr, WithDataDir, WithAPIToken, WithLogger, WithClock), Close,
//     BrokerURL, TLSBrokerURL, HTTPURL, HTTPSURL, FirmwareURL, FirmwareTLSURL, WebSocketURL,
//     WebSocketTLSURL, RootCAs, CACertPEM.
//   - Devices: AddDevice (WithSecret, WithCertificate), RemoveDevice, IssueCertificate,
//     Device, Devices, Online, DeviceConfig and DialOptions (ready-made runtime options).
//   - Data template (docs/PROTOCOL.md §2): AddProduct, AddProductAs, Product, SendControl,
//     InvokeAction, SetReported, Reported, PendingControl, Events, ReportedInfo, and the waits
//     WaitReported, WaitEvents, WaitThing.
//     SendControl's doc states the delivery contract: pending when offline, ErrNoReply (outcome
//     unknown, not stored, retry) when the device drops before replying.
//   - Gateway (§5): SubDevices, BindSubDevices, UnbindSubDevices, UnbindAllSubDevices,
//     SearchSubDevices, DescribeSubDevices, WaitGatewayAck.
//   - OTA (§4): UploadFirmware, DeleteFirmware, PushUpdate (WithPlainHTTPURL, WithURLTTL,
//     WithUserDefined), OTAJob, WaitOTAJob, FirmwareVersion; download faults with
//     CutFirmwareDownload, SetFirmwareRate, FirmwareRequests, FirmwareRequestsDropped.
//   - Dynamic registration (§6): EnableDynamicRegistration, DisableDynamicRegistration.
//   - Binding to an app user (§2.4.8, §7.10): IssueAppToken, Binding, BindDevice, UnbindDevice,
//     AppTokenStats; the reply codes are the BindCode constants.
//   - Device logs (§7.2): SetLogLevel, DeviceLogs.
//   - RRPC and broadcast (§7.3, §7.4): CallRRPC, Broadcast, RRPCDroppedReplies.
//   - Files and resources (§7.5): UploadResource, Resources, PushResource (WithResourceURLTTL,
//     WithTaskAPI), DeviceResources, WaitDeviceResources, DeleteDeviceResource, OpenUpload;
//     download faults with CutResourceDownload, ThrottleResourceDownload, ResourceRanges.
//   - Raw MQTT and faults: Publish (cloud to device), DropConnections, Restart, SetLatency.
//
// The same operations are served as a JSON API under /api/ on the HTTP listeners (api.go,
// ota_http.go, gateway_http.go, ...), which `tplgen emulate` documents in its --help and
// GET /api/openapi.json lists route by route; the web console at / and the live event stream
// GET /api/stream are built on it (console.go).
//
// # Persistence
//
// With WithDataDir all platform state except device logs is written to one SQLite file (pure
// Go; firmware and resource files beside it) as it changes, and restored by NewServer before
// anything listens (persist.go). A damaged or newer database (ErrDataCorrupt,
// ErrDataNewerSchema), or a record that cannot be read back, makes NewServer fail naming the
// file, section and key; nothing is rewritten.
//
// # Logs
//
// WithLogger's logger gets a line for every device coming and going and for every refusal,
// with device, topic, code and reason (CONNECT, PUBLISH and SUBSCRIBE refusals, uplinks the
// data template rejects), every control/action reply code, and every OTA and resource step.
// Debug level adds each MQTT message's body in either direction; secrets are never logged.
//
// Each cloud feature lives in its own files and keeps its state in one field of Server;
// features.go explains how to add one. Untrusted JSON is decoded only through the project's
// guard (internal/jsonguard).
package explorertest
