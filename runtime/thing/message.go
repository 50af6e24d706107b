package thing

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

// Methods of the data-template protocol (docs/PROTOCOL.md §2.4).
const (
	methodReport          = "report"
	methodReportInfo      = "report_info"
	methodGetStatus       = "get_status"
	methodClearControl    = "clear_control"
	methodControl         = "control"
	methodControlReply    = "control_reply"
	methodEventPost       = "event_post"
	methodEventsPost      = "events_post"
	methodEventReply      = "event_reply"
	methodEventsReply     = "events_reply"
	methodAction          = "action"
	methodActionReply     = "action_reply"
	replySuffix           = "_reply"
	actionSuccessStatus   = "action execute success!"
	controlSuccessStatus  = "success"
	maxReplyStatusBytes   = 64 // the C SDK's MAX_CONTORL_REPLY_STATUS_LEN
	topicKindProperty     = "property"
	topicKindEvent        = "event"
	topicKindAction       = "action"
	topicKindService      = "service"
	downTopicPrefix       = "$thing/down/"
	upTopicPrefix         = "$thing/up/"
	defaultStatusOnReject = "rejected by device"
)

// Uplink message shapes. Field order follows the official SDKs so captured traffic reads the
// same; order is irrelevant to the platform.

type wireEvent struct {
	EventID   string          `json:"eventId"`
	Type      string          `json:"type"`
	Timestamp int64           `json:"timestamp"`
	Params    json.RawMessage `json:"params"`
}

type controlReplyMsg struct {
	Method      string `json:"method"`
	ClientToken string `json:"clientToken"`
	Code        int    `json:"code"`
	Status      string `json:"status,omitempty"`
}

type actionReplyMsg struct {
	Method      string          `json:"method"`
	ClientToken string          `json:"clientToken"`
	Code        int             `json:"code"`
	Status      string          `json:"status"`
	Response    json.RawMessage `json:"response"`
}

// downMsg is a parsed downlink message. Only the fields the engine uses are kept; each is
// checked for its JSON kind so a malformed message is reported with the offending field.
type downMsg struct {
	Method      string
	ClientToken string
	HasCode     bool
	Code        int
	Status      string
	Type        string
	ActionID    string
	Timestamp   int64           // milliseconds or seconds as sent; 0 when absent
	Params      json.RawMessage // nil when absent
	Data        json.RawMessage // nil when absent
	Raw         []byte
}

// fieldError names the field of a downlink message that is wrong.
type fieldError struct {
	Field string
	Msg   string
}

func (e *fieldError) Error() string { return "field " + e.Field + ": " + e.Msg }

// parseDown decodes a downlink payload. It never panics; the error names the field.
//
// When the payload is a JSON object the returned message is non-nil even on error, with
// Method and ClientToken filled in as far as they were readable, so the caller can still
// answer or fail the matching request with a precise error.
//
// The payload is untrusted: it is size-capped and checked by the project's guard
// (internal/jsonguard) first; the fields are then picked out of the checked bytes in one
// pass, as sub-slices of payload (no copies, no intermediate map or struct).
func parseDown(payload []byte) (*downMsg, error) {
	m := new(downMsg)
	obj, err := parseDownInto(payload, m)
	if !obj {
		return nil, err
	}
	return m, err
}

// parseDownInto is parseDown into the caller's message (the dispatcher keeps it on the
// stack); obj reports whether m was filled in (the payload is a JSON object).
func parseDownInto(payload []byte, m *downMsg) (obj bool, err error) {
	if k := kindOf(payload); k != "object" {
		return false, fmt.Errorf("payload: want a JSON object, got %s", k)
	}
	if err := jsonguard.CheckLimit(payload, maxDownlinkBytes); err != nil {
		return false, fmt.Errorf("payload: invalid JSON: %v", err)
	}
	var f struct {
		Method, ClientToken, Status, Type, ActionID, Code, Params, Data, Timestamp []byte
	}
	eachMember(payload, func(key, val []byte) {
		switch string(key) {
		case "method":
			f.Method = val
		case "clientToken":
			f.ClientToken = val
		case "status":
			f.Status = val
		case "type":
			f.Type = val
		case "actionId":
			f.ActionID = val
		case "code":
			f.Code = val
		case "params":
			f.Params = val
		case "data":
			f.Data = val
		case "timestamp":
			f.Timestamp = val
		}
	})
	*m = downMsg{Raw: payload}
	// clientToken first: with it a bad reply can still fail its waiter with a clear error.
	if m.ClientToken, err = stringField("clientToken", f.ClientToken, false); err != nil {
		return true, err
	}
	if m.Method, err = stringField("method", f.Method, true); err != nil {
		return true, err
	}
	if m.Status, err = stringField("status", f.Status, false); err != nil {
		return true, err
	}
	if m.Type, err = stringField("type", f.Type, false); err != nil {
		return true, err
	}
	if m.ActionID, err = stringField("actionId", f.ActionID, false); err != nil {
		return true, err
	}
	if len(f.Code) > 0 && !isNull(f.Code) {
		if k := kindOf(f.Code); k != "number" {
			return true, &fieldError{"code", "want an integer, got " + k}
		}
		i, err := strconv.ParseInt(string(f.Code), 10, 32)
		if err != nil {
			return true, &fieldError{"code", "want a 32-bit integer, got " + string(f.Code)}
		}
		m.HasCode, m.Code = true, int(i)
	}
	if m.Params, err = objectField("params", f.Params); err != nil {
		return true, err
	}
	if m.Data, err = objectField("data", f.Data); err != nil {
		return true, err
	}
	// The timestamp only informs (notices carry one); a strange one is ignored, not an error.
	if len(f.Timestamp) > 0 && kindOf(f.Timestamp) == "number" {
		if n, err := strconv.ParseInt(string(f.Timestamp), 10, 64); err == nil {
			m.Timestamp = n
		}
	}
	return true, nil
}

// maxDownlinkBytes caps a downlink payload before it is parsed: the platform's MQTT payload
// limit (docs/PROTOCOL.md §8.1) with room to spare.
const maxDownlinkBytes = 64 << 10

// eachMember calls fn with the key (raw, between the quotes) and the raw value of every
// member of the top-level object in data, which must be well-formed JSON (checked by the
// caller). Keys with escapes are passed escaped: the fields the engine reads have none.
func eachMember(data []byte, fn func(key, val []byte)) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return
	}
	i++
	for {
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != '"' {
			return // '}' (or the end): done
		}
		kEnd := endOfString(data, i)
		key := data[i+1 : kEnd-1]
		i = skipSpace(data, kEnd)
		i = skipSpace(data, i+1) // ':'
		vEnd := endOfValue(data, i)
		fn(key, data[i:vEnd])
		i = skipSpace(data, vEnd)
		if i < len(data) && data[i] == ',' {
			i++
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// endOfString returns the offset just after the string starting at data[i] ('"').
func endOfString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(data)
}

// endOfValue returns the offset just after the (well-formed) value starting at data[i].
func endOfValue(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return endOfString(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				i = endOfString(data, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(data)
	}
	for ; i < len(data); i++ { // number or literal
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}

// stringField decodes a string-valued field; raw is nil when the field is absent.
func stringField(name string, raw json.RawMessage, required bool) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || isNull(raw) {
		if required {
			return "", &fieldError{name, "missing"}
		}
		return "", nil
	}
	if k := kindOf(raw); k != "string" {
		return "", &fieldError{name, "want a string, got " + k}
	}
	var s string
	if bytes.IndexByte(raw, '\\') < 0 {
		s = bytesString(raw[1 : len(raw)-1]) // no escapes: the text between the quotes
	} else {
		var err error
		if s, err = unescapeString(raw); err != nil {
			return "", &fieldError{name, "invalid string: " + err.Error()}
		}
	}
	if required && s == "" {
		return "", &fieldError{name, "empty"}
	}
	return s, nil
}

// objectField returns the raw JSON of an object-valued field, nil when absent or null.
func objectField(name string, raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || isNull(raw) {
		return nil, nil
	}
	if kindOf(raw) != "object" {
		return nil, &fieldError{name, "want an object, got " + kindOf(raw)}
	}
	return raw, nil
}

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

// kindOf names the JSON kind of a raw value for error messages.
func kindOf(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		if s := string(raw); s == "true" || s == "false" {
			return "boolean"
		}
	case 'n':
		if string(raw) == "null" {
			return "null"
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "number"
	}
	return "invalid JSON"
}

// isEmptyObject reports whether raw is absent, null or {}.
func isEmptyObject(raw []byte) bool {
	if len(raw) == 0 || isNull(raw) {
		return true
	}
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && len(m) == 0
}

// marshalObject turns params into the raw JSON of an object. []byte and json.RawMessage are
// taken as JSON text; anything else is marshaled. what names the value in errors.
func marshalObject(what string, v any) (json.RawMessage, error) {
	var raw []byte
	switch x := v.(type) {
	case nil:
		return nil, fmt.Errorf("%s: nil, want a JSON object", what)
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	case string:
		return nil, fmt.Errorf("%s: a Go string, want a JSON object (pass []byte for JSON text)", what)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		raw = b
	}
	raw = bytes.TrimSpace(raw)
	if k := kindOf(raw); k != "object" {
		return nil, fmt.Errorf("%s: want a JSON object, got %s", what, k)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%s: invalid JSON", what)
	}
	return json.RawMessage(raw), nil
}

// truncateStatus keeps a reply status within the length devices and the platform accept
// (maxReplyStatusBytes), cutting at a rune boundary and marking the cut with "…".
func truncateStatus(s string) string {
	if len(s) <= maxReplyStatusBytes {
		return s
	}
	const ellipsis = "…"
	cut := maxReplyStatusBytes - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// splitDownTopic returns the kind (property, event, action, service) of a
// $thing/down/{kind}/{pid}/{dn} topic.
func splitDownTopic(topic string) (kind string, ok bool) {
	rest, ok := strings.CutPrefix(topic, downTopicPrefix)
	if !ok {
		return "", false
	}
	kind, _, ok = strings.Cut(rest, "/")
	return kind, ok
}

// bytesString returns b as a string without copying. The downlink payload a message is
// parsed from is owned by the engine and never written to (explorer.Message hands it over),
// so strings pointing into it stay valid and unchanged; they keep the payload alive.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// unescapeString decodes a JSON string with escapes (kept apart so the common path's string
// does not escape to the heap).
func unescapeString(raw []byte) (string, error) {
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}
