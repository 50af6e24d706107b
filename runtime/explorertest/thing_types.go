package explorertest

// Public types, errors and reply codes of the data-template feature (thing*.go).

import (
	"errors"
	"fmt"
	"time"

	json "github.com/goccy/go-json"
)

// Errors returned by the cloud-side data-template API.
var (
	// ErrDeviceOffline: the device is not connected. SendControl stores the control as pending
	// (served through get_status type control) and returns an error wrapping ErrDeviceOffline.
	ErrDeviceOffline = errors.New("device offline")
	// ErrControlPending wraps ErrDeviceOffline: SendControl stored the control as pending.
	ErrControlPending = fmt.Errorf("control stored as pending until the device fetches it with get_status: %w", ErrDeviceOffline)
	// ErrNoReply wraps ErrDeviceOffline: the control or action was sent, but the device went
	// offline before its reply arrived. The outcome is unknown — the device may or may not
	// have applied it — and the platform does NOT store it as pending: the caller must retry
	// (control sets values, so resending it is safe) once the device is back.
	ErrNoReply = fmt.Errorf("sent, but the device went offline before replying: outcome unknown, not stored as pending; retry when it is back online: %w", ErrDeviceOffline)
	// ErrNoTemplate: no data template was added for the product (AddProduct).
	ErrNoTemplate = errors.New("product has no data template")

	// errBadReply: the device's control_reply/action_reply could not be read (e.g. no code).
	errBadReply = errors.New("malformed device reply")
)

// Reply codes of the data-template protocol (docs/PROTOCOL.md §2.6).
const (
	CodeSuccess        = 0
	CodeBadJSON        = 400
	CodeUnknownID      = 403
	CodeBadTimestamp   = 405
	CodeInvalidValue   = 406
	CodeInternalServer = 503
)

const (
	// maxTimestampSkew is how far a message timestamp may be from the platform clock (405 beyond).
	maxTimestampSkew = 24 * time.Hour
	// maxEventsKept and maxEventBytes bound each device's event history (count, and bytes of
	// params and tokens) so a long emulate run stays bounded; the oldest records are dropped
	// first and counted (ThingState.EventsDropped, "events_dropped" in the JSON API).
	maxEventsKept = 10000
	maxEventBytes = 8 << 20
)

// ControlReply is a device's control_reply.
type ControlReply struct {
	ClientToken string
	Code        int
	Status      string
	// HasMethod is false when the device left out "method" (the official Python SDK does).
	HasMethod bool
}

// ActionReply is a device's action_reply.
type ActionReply struct {
	ClientToken string
	Code        int
	Status      string
	// Response is the action's output object as sent (nil when absent).
	Response json.RawMessage
}

// EventRecord is one event the platform accepted from a device.
type EventRecord struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	// Timestamp is the event time in Unix milliseconds: the device's, or the receive time when
	// the device sent none.
	Timestamp   int64           `json:"timestamp"`
	Params      json.RawMessage `json:"params"`
	ClientToken string          `json:"client_token"`
	// Method is the uplink method that carried it (event_post or events_post).
	Method string `json:"method"`
}

// InfoReport is what a device sent with report_info (docs/PROTOCOL.md §2.4.5).
type InfoReport struct {
	Name           string            `json:"name,omitempty"`
	IMEI           string            `json:"imei,omitempty"`
	MAC            string            `json:"mac,omitempty"`
	FirmwareVer    string            `json:"fw_ver,omitempty"`
	ModuleHardInfo string            `json:"module_hardinfo,omitempty"`
	ModuleSoftInfo string            `json:"module_softinfo,omitempty"`
	Lat            string            `json:"lat,omitempty"`
	Lon            string            `json:"lon,omitempty"`
	DeviceLabel    map[string]string `json:"device_label,omitempty"`
	// Raw is the whole params object as sent (keeps keys the fields above do not name).
	Raw json.RawMessage `json:"-"`
}

// ThingState is a read-only view of a device's data-template state, given to WaitThing's
// condition. Do not keep or modify it after the call.
type ThingState struct {
	Reported map[string]json.RawMessage
	Pending  map[string]json.RawMessage
	// Events are the newest events, oldest first (at most 10 000 and 8 MiB per device);
	// EventsDropped counts the older ones dropped to stay within that bound.
	Events        []EventRecord
	EventsDropped int
	Info          *InfoReport
}
