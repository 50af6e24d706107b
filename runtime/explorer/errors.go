package explorer

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these (use errors.Is); the
// wrapping error's text names what failed (topic, field, broker address) and what to check.
var (
	// ErrBadCredentials: the broker answered CONNACK 4 (bad username or password).
	ErrBadCredentials = errors.New("explorer: bad credentials")
	// ErrNotAuthorized: the broker refused the device (CONNACK 5 or 2) or a subscription
	// (SUBACK failure).
	ErrNotAuthorized = errors.New("explorer: not authorized")
	// ErrTLS: the TLS handshake or the broker certificate verification failed.
	ErrTLS = errors.New("explorer: TLS handshake failed")
	// ErrConnectionRefused: the broker could not be reached (refused, unreachable, DNS).
	ErrConnectionRefused = errors.New("explorer: broker unreachable")
	// ErrNotConnected: the operation needs a live connection (Subscribe while offline, ...).
	ErrNotConnected = errors.New("explorer: not connected")
	// ErrClosed: the Conn was closed with Close.
	ErrClosed = errors.New("explorer: connection closed")
	// ErrTimeout: no answer (PUBACK, SUBACK, CONNACK, reply) within the configured timeout.
	ErrTimeout = errors.New("explorer: timed out")
	// ErrNotSent: the message never left the device (withdrawn from the offline queue when the
	// caller's ctx ended, queue disabled, Conn closed first). Retrying cannot make a duplicate.
	ErrNotSent = errors.New("explorer: not sent")
	// ErrQueueFull: the offline publish queue is full; the message was not accepted.
	ErrQueueFull = errors.New("explorer: offline publish queue full")
	// ErrPayloadTooLarge: the payload exceeds the platform limit of MaxPayloadSize bytes.
	ErrPayloadTooLarge = errors.New("explorer: payload too large")
	// ErrInvalidTopic: the topic breaks a platform or MQTT rule (length, levels, wildcards).
	ErrInvalidTopic = errors.New("explorer: invalid topic")
	// ErrInvalidQoS: the QoS is not 0 or 1 (the platform has no QoS 2).
	ErrInvalidQoS = errors.New("explorer: invalid QoS")
	// ErrInvalidConfig: the Config or an Option is invalid.
	ErrInvalidConfig = errors.New("explorer: invalid configuration")
	// ErrFilterOwned: Subscribe to a filter a layer on the connection holds (SubscribeOwned).
	ErrFilterOwned = errors.New("explorer: filter owned by another subscriber")
)
