package explorer

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these (use errors.Is) and add
// the detail that names what is wrong (topic, field, broker address).
var (
	// ErrBadCredentials: the broker answered CONNACK 4 (bad username or password). Check the
	// DeviceSecret, the device clock and the signature expiry.
	ErrBadCredentials = errors.New("explorer: bad credentials (CONNACK 4): check DeviceSecret, device clock and signature expiry")
	// ErrNotAuthorized: the broker refused the device (CONNACK 5 or 2: check that the device
	// exists, is enabled and that ProductID/DeviceName are right) or a subscription (SUBACK
	// failure: check that the topic belongs to this device).
	ErrNotAuthorized = errors.New("explorer: not authorized")
	// ErrTLS: the TLS handshake or the broker certificate verification failed. Check the
	// root CAs (WithRootCAs), the broker host name and the device certificate.
	ErrTLS = errors.New("explorer: TLS handshake failed: check root CAs, broker host name and device certificate")
	// ErrConnectionRefused: the broker could not be reached (refused, unreachable, DNS).
	ErrConnectionRefused = errors.New("explorer: broker unreachable: check broker address, region and network")
	// ErrNotConnected: the operation needs a live connection (Subscribe while offline, ...).
	ErrNotConnected = errors.New("explorer: not connected")
	// ErrClosed: the Conn was closed with Close.
	ErrClosed = errors.New("explorer: connection closed")
	// ErrTimeout: no answer (PUBACK, SUBACK, CONNACK, reply) within the configured timeout.
	ErrTimeout = errors.New("explorer: timed out")
	// ErrQueueFull: the offline publish queue is full; the message was not accepted.
	ErrQueueFull = errors.New("explorer: offline publish queue full")
	// ErrPayloadTooLarge: the payload exceeds the platform limit of MaxPayloadSize bytes.
	ErrPayloadTooLarge = errors.New("explorer: payload too large")
	// ErrInvalidTopic: the topic breaks a platform or MQTT rule (length, levels, wildcards).
	ErrInvalidTopic = errors.New("explorer: invalid topic")
	// ErrInvalidQoS: the QoS is not 0 or 1 (the platform has no QoS 2).
	ErrInvalidQoS = errors.New("explorer: invalid QoS (the platform supports 0 and 1)")
	// ErrInvalidConfig: the Config or an Option is invalid.
	ErrInvalidConfig = errors.New("explorer: invalid configuration")
)
