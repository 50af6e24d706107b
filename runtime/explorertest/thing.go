package explorertest

// The cloud's data-template (物模型) behaviour: it answers the device's $thing/up/* messages the way
// IoT Explorer does (protocol.md §2.4, codes §2.6), keeps each device's reported state, stores
// control sent while a device is offline, and gives tests a cloud-side Go API (SendControl,
// InvokeAction, Reported, Events, WaitReported, ...).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
	"github.com/tplgen/tplgen/runtime/template"
)

// Errors returned by the cloud-side data-template API.
var (
	// ErrDeviceOffline: the device is not connected. SendControl stores the control as pending
	// (served through get_status type control) and returns an error wrapping ErrDeviceOffline.
	ErrDeviceOffline = errors.New("device offline")
	// ErrControlPending wraps ErrDeviceOffline: SendControl stored the control as pending.
	ErrControlPending = fmt.Errorf("control stored as pending until the device fetches it with get_status: %w", ErrDeviceOffline)
	// ErrNoTemplate: no data template was added for the product (AddProduct).
	ErrNoTemplate = errors.New("product has no data template")
	// ErrUnknownThingDevice: the device is not registered (AddDevice).
	ErrUnknownThingDevice = errors.New("device not registered")

	// errBadReply: the device's control_reply/action_reply could not be read (e.g. no code).
	errBadReply = errors.New("malformed device reply")
)

// Reply codes of the data-template protocol (protocol.md §2.6).
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
	// maxEventsKept bounds the per-device event history so a long emulate run stays bounded;
	// the oldest records are dropped first.
	maxEventsKept = 10000
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

// InfoReport is what a device sent with report_info (protocol.md §2.4.5).
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

// thingDevice is the platform's record of one device's data-template state.
type thingDevice struct {
	reported   map[string]json.RawMessage
	reportedAt map[string]int64 // ms of the report that last set each property
	pending    map[string]json.RawMessage
	events     []EventRecord
	info       *InfoReport
}

// result is what a waiting SendControl/InvokeAction receives: the reply, or why the device's
// answer could not be read.
type result[T any] struct {
	rep T
	err error
}

type replyKey struct {
	dev   DeviceID
	token string
}

// thingCloud holds the data-template state of one Server. It depends on the server only
// through the funcs below, which keeps it testable and the coupling visible.
type thingCloud struct {
	publish func(topic string, payload []byte, qos byte) error
	online  func(id DeviceID) bool
	exists  func(id DeviceID) bool
	now     func() time.Time
	log     *slog.Logger

	mu       sync.Mutex
	products map[string]*template.Template
	devices  map[DeviceID]*thingDevice
	controls map[replyKey]chan result[ControlReply]
	actions  map[replyKey]chan result[ActionReply]
	changed  chan struct{} // closed and replaced on every state change (broadcast to waiters)
}

func newThingCloud() *thingCloud {
	return &thingCloud{
		now:      time.Now,
		log:      slog.New(slog.DiscardHandler),
		products: map[string]*template.Template{},
		devices:  map[DeviceID]*thingDevice{},
		controls: map[replyKey]chan result[ControlReply]{},
		actions:  map[replyKey]chan result[ActionReply]{},
		changed:  make(chan struct{}),
	}
}

// notifyLocked wakes everything waiting for a state change. Call with tc.mu held.
func (tc *thingCloud) notifyLocked() {
	close(tc.changed)
	tc.changed = make(chan struct{})
}

// deviceLocked returns (creating) the state of id. Call with tc.mu held.
func (tc *thingCloud) deviceLocked(id DeviceID) *thingDevice {
	d := tc.devices[id]
	if d == nil {
		d = &thingDevice{reported: map[string]json.RawMessage{}, reportedAt: map[string]int64{}}
		tc.devices[id] = d
	}
	return d
}

// emptyDevice stands in for a device with no state yet; read it, never modify it.
var emptyDevice = &thingDevice{}

// peekLocked returns id's state for reading without creating it. Call with tc.mu held.
func (tc *thingCloud) peekLocked(id DeviceID) *thingDevice {
	if d := tc.devices[id]; d != nil {
		return d
	}
	return emptyDevice
}

func (tc *thingCloud) template(pid string) *template.Template {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.products[pid]
}

// ---------------------------------------------------------------------------------------------
// Uplink handling

// upMsg is any $thing/up/* message. Fields stay raw so that a wrong type is reported precisely.
type upMsg struct {
	Method      json.RawMessage `json:"method"`
	ClientToken json.RawMessage `json:"clientToken"`
	Timestamp   json.RawMessage `json:"timestamp"`
	Params      json.RawMessage `json:"params"`
	Type        json.RawMessage `json:"type"`
	ShowMeta    json.RawMessage `json:"showmeta"`
	Code        json.RawMessage `json:"code"`
	Status      json.RawMessage `json:"status"`
	EventID     json.RawMessage `json:"eventId"`
	Events      json.RawMessage `json:"events"`
	Response    json.RawMessage `json:"response"`
}

// reply is a cloud→device *_reply. Data is raw so that an empty object can be sent as {}.
type reply struct {
	Method      string          `json:"method,omitempty"` // empty only when the request had none
	ClientToken string          `json:"clientToken"`
	Version     string          `json:"version,omitempty"`
	Code        int             `json:"code"`
	Status      string          `json:"status"`
	Type        string          `json:"type,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// codeError is a rejection with the platform's reply code.
type codeError struct {
	code int
	msg  string
}

func (e *codeError) Error() string { return e.msg }

func rejectf(code int, format string, args ...any) *codeError {
	return &codeError{code: code, msg: fmt.Sprintf(format, args...)}
}

// templateCode maps a template check error to the platform's reply code.
func templateCode(err error) int {
	switch {
	case errors.Is(err, template.ErrUnknownID):
		return CodeUnknownID
	case errors.Is(err, template.ErrInvalidValue):
		return CodeInvalidValue
	default: // template.ErrMalformed and anything unexpected about the JSON shape
		return CodeBadJSON
	}
}

// unmarshalUntrusted and compactUntrusted apply the project's untrusted-JSON policy
// (internal/jsonguard: size cap, validation, recover) to device- and client-supplied JSON.
func unmarshalUntrusted(data []byte, v any) error { return jsonguard.Unmarshal(data, v) }

func compactUntrusted(dst *bytes.Buffer, src []byte) error { return jsonguard.Compact(dst, src) }

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func rawString(raw json.RawMessage, field string) (string, *codeError) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := unmarshalUntrusted(raw, &s); err != nil {
		return "", rejectf(CodeBadJSON, "%s: must be a string, got %s", field, clip(raw))
	}
	return s, nil
}

// clip shortens raw JSON for an error message.
func clip(raw []byte) string {
	const max = 64
	if len(raw) > max {
		return string(raw[:max]) + "…"
	}
	return string(raw)
}

// parseObject checks that raw is a JSON object.
func parseObject(raw json.RawMessage, field string) *codeError {
	if isNull(raw) {
		return rejectf(CodeBadJSON, "%s: missing", field)
	}
	if raw[0] != '{' {
		return rejectf(CodeBadJSON, "%s: must be a JSON object, got %s", field, clip(raw))
	}
	return nil
}

// checkTimestamp validates an optional ms timestamp and returns it (now when absent).
func (tc *thingCloud) checkTimestamp(raw json.RawMessage, field string) (int64, *codeError) {
	now := tc.now()
	if isNull(raw) {
		return now.UnixMilli(), nil
	}
	ts, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, rejectf(CodeBadJSON, "%s: must be an integer (Unix ms), got %s", field, clip(raw))
	}
	skew := time.Duration(ts-now.UnixMilli()) * time.Millisecond
	if skew > maxTimestampSkew || skew < -maxTimestampSkew {
		return 0, rejectf(CodeBadTimestamp, "%s: %d ms is more than 24h from server time %d ms", field, ts, now.UnixMilli())
	}
	return ts, nil
}

func downTopic(kind string, id DeviceID) string {
	return "$thing/down/" + kind + "/" + id.ProductID + "/" + id.DeviceName
}

func (tc *thingCloud) send(kind string, id DeviceID, r reply) {
	payload, err := json.Marshal(r)
	if err != nil { // cannot happen: all fields are plain values or validated raw JSON
		tc.log.Error("thing: encode reply", "device", id.String(), "method", r.Method, "err", err)
		return
	}
	if err := tc.publish(downTopic(kind, id), payload, 0); err != nil {
		tc.log.Warn("thing: publish reply", "device", id.String(), "method", r.Method, "err", err)
	}
}

// decodeUp parses an uplink; a nil msg comes with the 400 to answer.
func decodeUp(payload []byte) (*upMsg, string, string, *codeError) {
	var m upMsg
	if trimmed := bytes.TrimLeft(payload, " \t\r\n"); len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, "", "", rejectf(CodeBadJSON, "payload is not a JSON object: %q", clip(trimmed))
	}
	if err := unmarshalUntrusted(payload, &m); err != nil {
		return nil, "", "", rejectf(CodeBadJSON, "payload: %v", err)
	}
	method, cerr := rawString(m.Method, "method")
	if cerr != nil {
		return nil, "", "", cerr
	}
	token, cerr := rawString(m.ClientToken, "clientToken")
	if cerr != nil {
		return nil, method, "", cerr
	}
	return &m, method, token, nil
}

// handleProperty serves $thing/up/property/{pid}/{dn}.
func (tc *thingCloud) handleProperty(u Uplink) {
	id := u.Device
	m, method, token, cerr := decodeUp(u.Payload)
	if cerr != nil {
		tc.rejectUp("property", id, u.Topic, method, token, cerr)
		return
	}
	switch method {
	case "report":
		tc.send("property", id, tc.report(id, m, token))
	case "get_status":
		tc.send("property", id, tc.getStatus(id, m, token))
	case "clear_control":
		tc.send("property", id, tc.clearControl(id, token))
	case "report_info":
		tc.send("property", id, tc.reportInfo(id, m, token))
	case "control_reply", "":
		if method == "" && isNull(m.Code) {
			tc.rejectUp("property", id, u.Topic, method, token, rejectf(CodeUnknownID, "method: missing"))
			return
		}
		// The official Python SDK sends control_reply without "method": correlate by token.
		tc.controlReply(id, m, token, method != "", u.Topic)
	default:
		tc.rejectUp("property", id, u.Topic, method, token, rejectf(CodeUnknownID, "method: unknown method %q", method))
	}
}

// handleEvent serves $thing/up/event/{pid}/{dn}.
func (tc *thingCloud) handleEvent(u Uplink) {
	id := u.Device
	m, method, token, cerr := decodeUp(u.Payload)
	if cerr != nil {
		tc.rejectUp("event", id, u.Topic, method, token, cerr)
		return
	}
	switch method {
	case "event_post", "events_post":
		tc.send("event", id, tc.postEvents(id, m, method, token))
	default:
		if method == "" {
			cerr = rejectf(CodeUnknownID, "method: missing")
		} else {
			cerr = rejectf(CodeUnknownID, "method: unknown method %q", method)
		}
		tc.rejectUp("event", id, u.Topic, method, token, cerr)
	}
}

// handleAction serves $thing/up/action/{pid}/{dn}.
func (tc *thingCloud) handleAction(u Uplink) {
	id := u.Device
	m, method, token, cerr := decodeUp(u.Payload)
	if cerr != nil {
		tc.rejectUp("action", id, u.Topic, method, token, cerr)
		return
	}
	if method != "action_reply" && method != "" {
		tc.rejectUp("action", id, u.Topic, method, token, rejectf(CodeUnknownID, "method: unknown method %q", method))
		return
	}
	var res result[ActionReply]
	code, status, cerr := replyCodeStatus(m)
	if cerr != nil {
		tc.log.Warn("thing: bad action_reply", "topic", u.Topic, "clientToken", token, "err", cerr.msg)
		res.err = fmt.Errorf("%w on %s: %s", errBadReply, u.Topic, cerr.msg)
	}
	res.rep = ActionReply{ClientToken: token, Code: code, Status: status}
	if !isNull(m.Response) {
		var b bytes.Buffer
		_ = compactUntrusted(&b, m.Response) // valid: it was parsed out of a valid payload
		res.rep.Response = b.Bytes()
	}
	tc.mu.Lock()
	ch := tc.actions[replyKey{id, token}]
	delete(tc.actions, replyKey{id, token})
	tc.mu.Unlock()
	if ch == nil {
		tc.log.Warn("thing: action_reply matches no pending action", "topic", u.Topic, "clientToken", token)
		return
	}
	ch <- res
}

// rejectUp answers a message the platform refuses and logs it with topic and reason. A broken
// *_reply is only logged: the platform never answers a reply.
func (tc *thingCloud) rejectUp(kind string, id DeviceID, topic, method, token string, cerr *codeError) {
	tc.log.Info("thing: rejected uplink", "topic", topic, "method", method, "code", cerr.code, "reason", cerr.msg)
	if strings.HasSuffix(method, "_reply") {
		return
	}
	r := reply{ClientToken: token, Code: cerr.code, Status: cerr.msg}
	if method != "" {
		r.Method = replyMethod(method)
	}
	if kind == "event" {
		r.Version, r.Data = "1.0", json.RawMessage(`{}`)
	}
	tc.send(kind, id, r)
}

func replyMethod(method string) string {
	if strings.HasSuffix(method, "_reply") {
		return method
	}
	return method + "_reply"
}

func replyCodeStatus(m *upMsg) (int, string, *codeError) {
	if isNull(m.Code) {
		return 0, "", rejectf(CodeBadJSON, "code: missing")
	}
	code, err := strconv.Atoi(string(m.Code))
	if err != nil {
		return 0, "", rejectf(CodeBadJSON, "code: must be an integer, got %s", clip(m.Code))
	}
	status, cerr := rawString(m.Status, "status")
	if cerr != nil {
		return 0, "", cerr
	}
	return code, status, nil
}

func success(method, token string) reply {
	return reply{Method: method, ClientToken: token, Code: CodeSuccess, Status: "success"}
}

func failure(method, token string, cerr *codeError) reply {
	return reply{Method: method, ClientToken: token, Code: cerr.code, Status: cerr.msg}
}

func (tc *thingCloud) report(id DeviceID, m *upMsg, token string) reply {
	const method = "report_reply"
	ts, cerr := tc.checkTimestamp(m.Timestamp, "timestamp")
	if cerr == nil {
		cerr = parseObject(m.Params, "params")
	}
	if cerr != nil {
		return failure(method, token, cerr)
	}
	tpl := tc.template(id.ProductID)
	if tpl == nil {
		return failure(method, token, rejectf(CodeUnknownID, "params: product %s has no data template", id.ProductID))
	}
	if err := tpl.CheckProperties(m.Params, false); err != nil {
		return failure(method, token, rejectf(templateCode(err), "%v", err))
	}
	values, err := splitObject(m.Params)
	if err != nil {
		return failure(method, token, rejectf(CodeBadJSON, "params: %v", err))
	}
	tc.mu.Lock()
	d := tc.deviceLocked(id)
	for k, v := range values {
		d.reported[k] = v
		d.reportedAt[k] = ts
	}
	tc.notifyLocked()
	tc.mu.Unlock()
	if tc.log.Enabled(context.Background(), slog.LevelInfo) { // keep the hot path free of log allocations
		tc.log.Info("thing: report", "device", id.String(), "params", string(m.Params))
	}
	return success(method, token)
}

// splitObject returns the members of a JSON object, each compacted.
func splitObject(raw json.RawMessage) (map[string]json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := unmarshalUntrusted(raw, &obj); err != nil {
		return nil, err
	}
	for k, v := range obj {
		if !bytes.ContainsAny(v, " \t\r\n") {
			obj[k] = append(json.RawMessage(nil), v...) // already compact; own the bytes
			continue
		}
		var b bytes.Buffer
		if err := compactUntrusted(&b, v); err != nil {
			return nil, fmt.Errorf("%s: %v", k, err)
		}
		obj[k] = b.Bytes()
	}
	return obj, nil
}

func (tc *thingCloud) getStatus(id DeviceID, m *upMsg, token string) reply {
	const method = "get_status_reply"
	typ, cerr := rawString(m.Type, "type")
	if cerr != nil {
		return failure(method, token, cerr)
	}
	if typ == "" {
		typ = "report"
	}
	if typ != "report" && typ != "control" {
		return failure(method, token, rejectf(CodeInvalidValue, "type: %q is not report or control", typ))
	}
	showMeta := false
	switch string(m.ShowMeta) {
	case "", "null", "0", "false":
	case "1", "true":
		showMeta = true
	default:
		return failure(method, token, rejectf(CodeInvalidValue, "showmeta: must be 0 or 1, got %s", clip(m.ShowMeta)))
	}
	tpl := tc.template(id.ProductID)
	tc.mu.Lock()
	d := tc.peekLocked(id)
	var data []byte
	if typ == "report" {
		data = statusData("reported", tpl, d.reported, d.reportedAt, showMeta)
	} else if len(d.pending) > 0 {
		data = statusData("control", tpl, d.pending, nil, false)
	} else {
		data = []byte(`{}`)
	}
	tc.mu.Unlock()
	r := success(method, token)
	r.Type, r.Data = typ, data
	return r
}

// statusData renders {"<key>":{...}} in template order, plus with showmeta
// {"metadata":{"<key>":{"<id>":{"timestamp":ms}}}} — the reported values keep their plain shape so
// a device that ignores metadata parses both variants alike.
func statusData(key string, tpl *template.Template, values map[string]json.RawMessage, at map[string]int64, showMeta bool) []byte {
	keys := orderedKeys(tpl, values)
	var b bytes.Buffer
	b.WriteString(`{"` + key + `":{`)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeKey(&b, k)
		b.Write(values[k])
	}
	b.WriteByte('}')
	if showMeta {
		b.WriteString(`,"metadata":{"` + key + `":{`)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeKey(&b, k)
			b.WriteString(`{"timestamp":` + strconv.FormatInt(at[k], 10) + `}`)
		}
		b.WriteString(`}}`)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func writeKey(b *bytes.Buffer, k string) {
	q, _ := json.Marshal(k) // a string always marshals
	b.Write(q)
	b.WriteByte(':')
}

// orderedKeys lists the keys of values in template property order, then any others sorted.
func orderedKeys(tpl *template.Template, values map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(values))
	seen := map[string]bool{}
	if tpl != nil {
		for _, p := range tpl.Properties {
			if _, ok := values[p.ID]; ok {
				keys = append(keys, p.ID)
				seen[p.ID] = true
			}
		}
	}
	var rest []string
	for k := range values {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(keys, rest...)
}

func (tc *thingCloud) clearControl(id DeviceID, token string) reply {
	tc.mu.Lock()
	d := tc.peekLocked(id) // only written when it has pending control
	if len(d.pending) > 0 {
		d.pending = nil
		tc.notifyLocked()
	}
	tc.mu.Unlock()
	return success("clear_control_reply", token)
}

// infoStringKeys are the report_info keys whose values the platform expects as strings.
var infoStringKeys = []string{"name", "imei", "mac", "fw_ver", "module_hardinfo", "module_softinfo", "lat", "lon"}

func (tc *thingCloud) reportInfo(id DeviceID, m *upMsg, token string) reply {
	const method = "report_info_reply"
	if cerr := parseObject(m.Params, "params"); cerr != nil {
		return failure(method, token, cerr)
	}
	var fields map[string]json.RawMessage
	if err := unmarshalUntrusted(m.Params, &fields); err != nil {
		return failure(method, token, rejectf(CodeBadJSON, "params: %v", err))
	}
	for _, k := range infoStringKeys {
		if v, ok := fields[k]; ok && !isNull(v) && v[0] != '"' {
			return failure(method, token, rejectf(CodeInvalidValue, "params.%s: must be a string, got %s", k, clip(v)))
		}
	}
	var info InfoReport
	if v, ok := fields["device_label"]; ok && !isNull(v) {
		if err := unmarshalUntrusted(v, &info.DeviceLabel); err != nil {
			return failure(method, token, rejectf(CodeInvalidValue, "params.device_label: must be an object of strings, got %s", clip(v)))
		}
	}
	// The string-typed keys were checked above, so this only fills the fields.
	if err := unmarshalUntrusted(m.Params, &info); err != nil {
		return failure(method, token, rejectf(CodeBadJSON, "params: %v", err))
	}
	info.Raw = append(json.RawMessage(nil), m.Params...)
	tc.mu.Lock()
	tc.deviceLocked(id).info = &info
	tc.notifyLocked()
	tc.mu.Unlock()
	tc.log.Info("thing: report_info", "device", id.String(), "params", string(info.Raw))
	return success(method, token)
}

// eventIn is one event of event_post (single form) or of an events array.
type eventIn struct {
	EventID   json.RawMessage `json:"eventId"`
	Type      json.RawMessage `json:"type"`
	Timestamp json.RawMessage `json:"timestamp"`
	Params    json.RawMessage `json:"params"`
}

// postEvents serves event_post and events_post. Like the real platform, an event_post carrying
// an "events" array (the official Python SDK's form) is answered with events_reply.
func (tc *thingCloud) postEvents(id DeviceID, m *upMsg, method, token string) reply {
	replyTo := "event_reply"
	var list []eventIn
	var prefix func(i int) string
	if method == "events_post" || !isNull(m.Events) {
		replyTo = "events_reply"
		if isNull(m.Events) || m.Events[0] != '[' {
			return eventFailure(replyTo, token, rejectf(CodeBadJSON, "events: must be a JSON array, got %s", clip(m.Events)))
		}
		if err := unmarshalUntrusted(m.Events, &list); err != nil {
			return eventFailure(replyTo, token, rejectf(CodeBadJSON, "events: %v", err))
		}
		if len(list) == 0 {
			return eventFailure(replyTo, token, rejectf(CodeBadJSON, "events: empty"))
		}
		prefix = func(i int) string { return fmt.Sprintf("events[%d].", i) }
	} else {
		list = []eventIn{{EventID: m.EventID, Type: m.Type, Timestamp: m.Timestamp, Params: m.Params}}
		prefix = func(int) string { return "" }
	}
	tpl := tc.template(id.ProductID)
	recs := make([]EventRecord, 0, len(list))
	for i, e := range list {
		rec, cerr := tc.checkEvent(tpl, id, e, prefix(i))
		if cerr != nil {
			return eventFailure(replyTo, token, cerr)
		}
		rec.ClientToken, rec.Method = token, method
		recs = append(recs, rec)
	}
	tc.mu.Lock()
	d := tc.deviceLocked(id)
	d.events = append(d.events, recs...)
	if over := len(d.events) - maxEventsKept; over > 0 {
		d.events = append([]EventRecord(nil), d.events[over:]...)
	}
	tc.notifyLocked()
	tc.mu.Unlock()
	for _, r := range recs {
		if !tc.log.Enabled(context.Background(), slog.LevelInfo) {
			break
		}
		tc.log.Info("thing: event", "device", id.String(), "eventId", r.EventID, "type", r.Type, "params", string(r.Params))
	}
	return reply{Method: replyTo, ClientToken: token, Version: "1.0", Code: CodeSuccess, Status: "", Data: json.RawMessage(`{}`)}
}

func eventFailure(method, token string, cerr *codeError) reply {
	r := failure(method, token, cerr)
	r.Version, r.Data = "1.0", json.RawMessage(`{}`)
	return r
}

func (tc *thingCloud) checkEvent(tpl *template.Template, id DeviceID, e eventIn, at string) (EventRecord, *codeError) {
	eventID, cerr := rawString(e.EventID, at+"eventId")
	if cerr != nil {
		return EventRecord{}, cerr
	}
	if eventID == "" {
		return EventRecord{}, rejectf(CodeBadJSON, "%seventId: missing", at)
	}
	if tpl == nil {
		return EventRecord{}, rejectf(CodeUnknownID, "%seventId: product %s has no data template", at, id.ProductID)
	}
	def := tpl.Event(eventID)
	if def == nil {
		return EventRecord{}, rejectf(CodeUnknownID, "%seventId: %q is not an event of product %s", at, eventID, id.ProductID)
	}
	typ, cerr := rawString(e.Type, at+"type")
	if cerr != nil {
		return EventRecord{}, cerr
	}
	if typ != "" && typ != string(def.Type) {
		return EventRecord{}, rejectf(CodeInvalidValue, "%stype: %q does not match event %s's type %q", at, typ, eventID, def.Type)
	}
	ts, cerr := tc.checkTimestamp(e.Timestamp, at+"timestamp")
	if cerr != nil {
		return EventRecord{}, cerr
	}
	params := e.Params
	if isNull(params) {
		params = json.RawMessage(`{}`)
	}
	if cerr := parseObject(params, at+"params"); cerr != nil {
		return EventRecord{}, cerr
	}
	if err := tpl.CheckEventParams(eventID, params); err != nil {
		return EventRecord{}, rejectf(templateCode(err), "%s%v", at, err)
	}
	var b bytes.Buffer
	if err := compactUntrusted(&b, params); err != nil {
		return EventRecord{}, rejectf(CodeBadJSON, "%sparams: %v", at, err)
	}
	return EventRecord{EventID: eventID, Type: string(def.Type), Timestamp: ts, Params: b.Bytes()}, nil
}

func (tc *thingCloud) controlReply(id DeviceID, m *upMsg, token string, hasMethod bool, topic string) {
	var res result[ControlReply]
	code, status, cerr := replyCodeStatus(m)
	if cerr != nil {
		tc.log.Warn("thing: bad control_reply", "topic", topic, "clientToken", token, "err", cerr.msg)
		res.err = fmt.Errorf("%w on %s: %s", errBadReply, topic, cerr.msg)
	}
	res.rep = ControlReply{ClientToken: token, Code: code, Status: status, HasMethod: hasMethod}
	tc.mu.Lock()
	ch := tc.controls[replyKey{id, token}]
	delete(tc.controls, replyKey{id, token})
	tc.mu.Unlock()
	if ch == nil {
		tc.log.Info("thing: control_reply matches no pending control", "topic", topic, "clientToken", token)
		return
	}
	ch <- res
}

// deviceOffline fails the requests waiting on a device that went away: its reply cannot come.
func (tc *thingCloud) deviceOffline(id DeviceID) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for k, ch := range tc.controls {
		if k.dev == id {
			delete(tc.controls, k)
			close(ch)
		}
	}
	for k, ch := range tc.actions {
		if k.dev == id {
			delete(tc.actions, k)
			close(ch)
		}
	}
	tc.notifyLocked()
}

// ---------------------------------------------------------------------------------------------
// Cloud-side API

// newToken returns a UUID-like (version 4 layout) clientToken, like the platform's.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// toObject turns params (JSON text as []byte, json.RawMessage or string; or any value that
// marshals to a JSON object) into compact raw JSON.
func toObject(params any) (json.RawMessage, error) {
	var raw []byte
	switch p := params.(type) {
	case nil:
		return nil, errors.New("params: missing")
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	case string:
		raw = []byte(p)
	default:
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("params: %w", err)
		}
		raw = b
	}
	var b bytes.Buffer
	if err := compactUntrusted(&b, raw); err != nil {
		return nil, fmt.Errorf("params: not valid JSON: %w", err)
	}
	if b.Len() == 0 || b.Bytes()[0] != '{' {
		return nil, fmt.Errorf("params: must be a JSON object, got %s", clip(b.Bytes()))
	}
	return b.Bytes(), nil
}

// lookup returns the template for a device the cloud API addresses.
func (tc *thingCloud) lookup(id DeviceID) (*template.Template, error) {
	if tc.exists != nil && !tc.exists(id) {
		return nil, fmt.Errorf("explorertest: %s: %w", id, ErrUnknownThingDevice)
	}
	tpl := tc.template(id.ProductID)
	if tpl == nil {
		return nil, fmt.Errorf("explorertest: %s: %w (call AddProduct)", id, ErrNoTemplate)
	}
	return tpl, nil
}

func (tc *thingCloud) sendControl(ctx context.Context, id DeviceID, params any) (*ControlReply, error) {
	tpl, err := tc.lookup(id)
	if err != nil {
		return nil, err
	}
	raw, err := toObject(params)
	if err != nil {
		return nil, fmt.Errorf("explorertest: control %s: %w", id, err)
	}
	if err := tpl.CheckProperties(raw, true); err != nil {
		return nil, fmt.Errorf("explorertest: control %s: %w", id, err)
	}
	token := newToken()
	key := replyKey{id, token}
	ch := make(chan result[ControlReply], 1)
	// Register before the online check so that a disconnect racing with us closes ch.
	tc.mu.Lock()
	tc.controls[key] = ch
	tc.mu.Unlock()
	if !tc.online(id) {
		values, err := splitObject(raw)
		if err != nil {
			return nil, fmt.Errorf("explorertest: control %s: params: %w", id, err)
		}
		tc.mu.Lock()
		delete(tc.controls, key)
		d := tc.deviceLocked(id)
		if d.pending == nil {
			d.pending = map[string]json.RawMessage{}
		}
		for k, v := range values {
			d.pending[k] = v
		}
		tc.notifyLocked()
		tc.mu.Unlock()
		tc.log.Info("thing: control stored as pending (device offline)", "device", id.String(), "params", string(raw))
		return nil, fmt.Errorf("explorertest: control %s: %w", id, ErrControlPending)
	}
	msg, _ := json.Marshal(struct {
		Method      string          `json:"method"`
		ClientToken string          `json:"clientToken"`
		Params      json.RawMessage `json:"params"`
	}{"control", token, raw})
	if err := tc.publish(downTopic("property", id), msg, 0); err != nil {
		forgetKey(tc, tc.controls, key)
		return nil, fmt.Errorf("explorertest: control %s: publish: %w", id, err)
	}
	tc.log.Info("thing: control sent", "device", id.String(), "clientToken", token, "params", string(raw))
	select {
	case res, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("explorertest: control %s (clientToken %s): device went offline before replying: %w", id, token, ErrDeviceOffline)
		}
		if res.err != nil {
			return nil, fmt.Errorf("explorertest: control %s (clientToken %s): %w", id, token, res.err)
		}
		return &res.rep, nil
	case <-ctx.Done():
		forgetKey(tc, tc.controls, key)
		return nil, fmt.Errorf("explorertest: control %s (clientToken %s): no control_reply: %w", id, token, ctx.Err())
	}
}

func forgetKey[T any](tc *thingCloud, m map[replyKey]chan T, key replyKey) {
	tc.mu.Lock()
	delete(m, key)
	tc.mu.Unlock()
}

func (tc *thingCloud) invokeAction(ctx context.Context, id DeviceID, actionID string, params any) (*ActionReply, error) {
	tpl, err := tc.lookup(id)
	if err != nil {
		return nil, err
	}
	if params == nil {
		params = json.RawMessage(`{}`)
	}
	raw, err := toObject(params)
	if err != nil {
		return nil, fmt.Errorf("explorertest: action %s on %s: %w", actionID, id, err)
	}
	if err := tpl.CheckActionInput(actionID, raw); err != nil {
		return nil, fmt.Errorf("explorertest: action %s on %s: %w", actionID, id, err)
	}
	token := newToken()
	key := replyKey{id, token}
	ch := make(chan result[ActionReply], 1)
	tc.mu.Lock()
	tc.actions[key] = ch
	tc.mu.Unlock()
	if !tc.online(id) {
		forgetKey(tc, tc.actions, key)
		return nil, fmt.Errorf("explorertest: action %s on %s: %w", actionID, id, ErrDeviceOffline)
	}
	msg, _ := json.Marshal(struct {
		Method      string          `json:"method"`
		ClientToken string          `json:"clientToken"`
		ActionID    string          `json:"actionId"`
		Timestamp   int64           `json:"timestamp"`
		Params      json.RawMessage `json:"params"`
	}{"action", token, actionID, tc.now().UnixMilli(), raw})
	if err := tc.publish(downTopic("action", id), msg, 0); err != nil {
		forgetKey(tc, tc.actions, key)
		return nil, fmt.Errorf("explorertest: action %s on %s: publish: %w", actionID, id, err)
	}
	tc.log.Info("thing: action sent", "device", id.String(), "actionId", actionID, "clientToken", token, "params", string(raw))
	select {
	case res, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("explorertest: action %s on %s (clientToken %s): device went offline before replying: %w", actionID, id, token, ErrDeviceOffline)
		}
		if res.err != nil {
			return nil, fmt.Errorf("explorertest: action %s on %s (clientToken %s): %w", actionID, id, token, res.err)
		}
		r := res.rep
		if r.Code == CodeSuccess {
			out := r.Response
			if isNull(out) {
				out = json.RawMessage(`{}`)
			}
			if err := tpl.CheckActionOutput(actionID, out); err != nil {
				return &r, fmt.Errorf("explorertest: action_reply %s from %s: response: %w", actionID, id, err)
			}
		}
		return &r, nil
	case <-ctx.Done():
		forgetKey(tc, tc.actions, key)
		return nil, fmt.Errorf("explorertest: action %s on %s (clientToken %s): no action_reply: %w", actionID, id, token, ctx.Err())
	}
}

// waitFor blocks until cond (called with tc.mu held) is true or ctx ends.
func (tc *thingCloud) waitFor(ctx context.Context, cond func() bool) error {
	for {
		tc.mu.Lock()
		ok := cond()
		ch := tc.changed
		tc.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func copyValues(m map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = append(json.RawMessage(nil), v...)
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// Server glue: the exported cloud-side API.

// thingClouds maps each Server to its data-template state. The Server struct belongs to the
// platform core, so the feature keeps its state here and drops it when the server closes.
var thingClouds sync.Map // *Server -> *thingCloud

// things returns the server's data-template state (set up by initThing in NewServer).
func (s *Server) things() *thingCloud {
	tc, _ := thingClouds.Load(s)
	return tc.(*thingCloud)
}

// initThing wires the data-template behaviour into the server (called from initFeatures).
func (s *Server) initThing() error {
	tc := newThingCloud()
	tc.publish = s.Publish
	tc.online = func(id DeviceID) bool { return s.Online(id.ProductID, id.DeviceName) }
	tc.exists = func(id DeviceID) bool { _, ok := s.Device(id.ProductID, id.DeviceName); return ok }
	tc.now = s.clock
	tc.log = s.log
	thingClouds.Store(s, tc)
	s.addCloser(func() { thingClouds.Delete(s) })
	s.handleUplink("$thing/up/property/", tc.handleProperty)
	s.handleUplink("$thing/up/event/", tc.handleEvent)
	s.handleUplink("$thing/up/action/", tc.handleAction)
	s.onDeviceState(func(id DeviceID, online bool) {
		if !online {
			tc.deviceOffline(id)
		}
	})
	s.initAPI()
	return nil
}

// AddProduct registers a product's data template under tpl.ProductID; the platform then validates
// that product's reports, events, control and actions against it.
func (s *Server) AddProduct(tpl *template.Template) error {
	if tpl == nil {
		return errors.New("explorertest: AddProduct: nil template")
	}
	if tpl.ProductID == "" {
		return errors.New("explorertest: AddProduct: template has no profile.ProductId; use AddProductAs")
	}
	return s.AddProductAs(tpl.ProductID, tpl)
}

// AddProductAs registers tpl as the data template of product pid (replacing any earlier one).
func (s *Server) AddProductAs(pid string, tpl *template.Template) error {
	if pid == "" {
		return errors.New("explorertest: AddProductAs: empty product id")
	}
	if tpl == nil {
		return fmt.Errorf("explorertest: AddProductAs %s: nil template", pid)
	}
	tc := s.things()
	tc.mu.Lock()
	tc.products[pid] = tpl
	tc.mu.Unlock()
	return nil
}

// Product returns the data template registered for pid.
func (s *Server) Product(pid string) (*template.Template, bool) {
	tpl := s.things().template(pid)
	return tpl, tpl != nil
}

// SendControl sends control (params: a JSON object as text — []byte, json.RawMessage or string —
// or any value that marshals to one) to a device and waits for its control_reply. Only writable (rw) properties
// of the template are accepted; an invalid value is refused before anything is sent (the error
// wraps template.ErrUnknownID or template.ErrInvalidValue). If the device is offline the control
// is stored as pending — served through get_status type control until the device sends
// clear_control — and the error wraps ErrDeviceOffline. A missing reply ends with ctx's error.
func (s *Server) SendControl(ctx context.Context, pid, dn string, params any) (*ControlReply, error) {
	return s.things().sendControl(ctx, DeviceID{ProductID: pid, DeviceName: dn}, params)
}

// InvokeAction sends action actionID with its input params to an online device and waits for
// the action_reply. Input is checked against the template first. When the device answers code 0
// with a response that does not match the action's outputs, the reply is returned together with
// an error wrapping the template check error.
func (s *Server) InvokeAction(ctx context.Context, pid, dn, actionID string, params any) (*ActionReply, error) {
	return s.things().invokeAction(ctx, DeviceID{ProductID: pid, DeviceName: dn}, actionID, params)
}

// Reported returns a copy of the device's reported properties (merged over all reports).
func (s *Server) Reported(pid, dn string) map[string]json.RawMessage {
	tc := s.things()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return copyValues(tc.peekLocked(DeviceID{ProductID: pid, DeviceName: dn}).reported)
}

// SetReported seeds the device's reported state as if the device had reported params (a JSON
// object, validated against the template) — handy to give get_status something to return.
func (s *Server) SetReported(pid, dn string, params any) error {
	id := DeviceID{ProductID: pid, DeviceName: dn}
	tc := s.things()
	tpl := tc.template(pid)
	if tpl == nil {
		return fmt.Errorf("explorertest: SetReported %s: %w", id, ErrNoTemplate)
	}
	raw, err := toObject(params)
	if err == nil {
		err = tpl.CheckProperties(raw, false)
	}
	if err != nil {
		return fmt.Errorf("explorertest: SetReported %s: %w", id, err)
	}
	values, err := splitObject(raw)
	if err != nil {
		return fmt.Errorf("explorertest: SetReported %s: params: %w", id, err)
	}
	now := tc.now().UnixMilli()
	tc.mu.Lock()
	d := tc.deviceLocked(id)
	for k, v := range values {
		d.reported[k] = v
		d.reportedAt[k] = now
	}
	tc.notifyLocked()
	tc.mu.Unlock()
	return nil
}

// PendingControl returns the control stored for an offline device that it has not cleared yet
// (nil when none).
func (s *Server) PendingControl(pid, dn string) map[string]json.RawMessage {
	tc := s.things()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	d := tc.peekLocked(DeviceID{ProductID: pid, DeviceName: dn})
	if len(d.pending) == 0 {
		return nil
	}
	return copyValues(d.pending)
}

// Events returns the events the device posted, oldest first.
func (s *Server) Events(pid, dn string) []EventRecord {
	tc := s.things()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return append([]EventRecord(nil), tc.peekLocked(DeviceID{ProductID: pid, DeviceName: dn}).events...)
}

// ReportedInfo returns what the device last sent with report_info.
func (s *Server) ReportedInfo(pid, dn string) (InfoReport, bool) {
	tc := s.things()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	info := tc.peekLocked(DeviceID{ProductID: pid, DeviceName: dn}).info
	if info == nil {
		return InfoReport{}, false
	}
	return *info, true
}

// WaitReported waits until the device has reported property key and returns its value.
func (s *Server) WaitReported(ctx context.Context, pid, dn, key string) (json.RawMessage, error) {
	var v json.RawMessage
	err := s.WaitThing(ctx, pid, dn, func(st ThingState) bool {
		var ok bool
		v, ok = st.Reported[key]
		return ok
	})
	if err != nil {
		return nil, fmt.Errorf("explorertest: waiting for %s/%s to report %q: %w", pid, dn, key, err)
	}
	return v, nil
}

// WaitEvents waits until the device has posted at least n events and returns them all.
func (s *Server) WaitEvents(ctx context.Context, pid, dn string, n int) ([]EventRecord, error) {
	var evs []EventRecord
	err := s.WaitThing(ctx, pid, dn, func(st ThingState) bool {
		evs = st.Events
		return len(evs) >= n
	})
	if err != nil {
		return nil, fmt.Errorf("explorertest: waiting for %d events from %s/%s: %w", n, pid, dn, err)
	}
	return append([]EventRecord(nil), evs...), nil
}

// ThingState is a read-only view of a device's data-template state, given to WaitThing's
// condition. Do not keep or modify it after the call.
type ThingState struct {
	Reported map[string]json.RawMessage
	Pending  map[string]json.RawMessage
	Events   []EventRecord
	Info     *InfoReport
}

// WaitThing waits until cond holds for the device's data-template state. cond is evaluated
// under the data-template lock after every data-template state change (reports, events, pending
// control, info, a device going offline): keep it short, and do not call the Server's
// data-template methods from it (Reported, Events, ...: same lock). Registry queries such as
// Online are fine.
func (s *Server) WaitThing(ctx context.Context, pid, dn string, cond func(ThingState) bool) error {
	tc := s.things()
	id := DeviceID{ProductID: pid, DeviceName: dn}
	return tc.waitFor(ctx, func() bool {
		d := tc.peekLocked(id)
		return cond(ThingState{Reported: d.reported, Pending: d.pending, Events: d.events, Info: d.info})
	})
}
