package explorertest

// The data-template uplink handlers: $thing/up/{property,event,action}/{pid}/{dn} (docs/PROTOCOL.md
// §2.4, reply codes §2.6).

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/template"
)

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
	payload, err := marshalJSON(r)
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
func (tc *thingCloud) handleProperty(u uplink) {
	id := u.Device
	m, method, token, cerr := decodeUp(u.Payload)
	if cerr != nil {
		tc.rejectUp("property", id, u.Topic, method, token, cerr)
		return
	}
	switch method {
	case "report":
		tc.answer("property", id, u.Topic, method, tc.report(id, m, token))
	case "get_status":
		tc.answer("property", id, u.Topic, method, tc.getStatus(id, m, token))
	case "clear_control":
		tc.answer("property", id, u.Topic, method, tc.clearControl(id, token))
	case "report_info":
		tc.answer("property", id, u.Topic, method, tc.reportInfo(id, m, token))
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
func (tc *thingCloud) handleEvent(u uplink) {
	id := u.Device
	m, method, token, cerr := decodeUp(u.Payload)
	if cerr != nil {
		tc.rejectUp("event", id, u.Topic, method, token, cerr)
		return
	}
	switch method {
	case "event_post", "events_post":
		tc.answer("event", id, u.Topic, method, tc.postEvents(id, m, method, token))
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
func (tc *thingCloud) handleAction(u uplink) {
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

// answer sends the reply to a device's request; a refusal (non-zero code) is logged with the
// device, topic, code and reason first, like rejectUp.
func (tc *thingCloud) answer(kind string, id DeviceID, topic, method string, r reply) {
	if r.Code != CodeSuccess {
		tc.log.Info("thing: rejected uplink", "device", id.String(), "topic", topic, "method", method, "code", r.Code, "reason", r.Status)
	}
	tc.send(kind, id, r)
}

// rejectUp answers a message the platform refuses and logs it with topic and reason. A broken
// *_reply is only logged: the platform never answers a reply.
func (tc *thingCloud) rejectUp(kind string, id DeviceID, topic, method, token string, cerr *codeError) {
	tc.log.Info("thing: rejected uplink", "device", id.String(), "topic", topic, "method", method, "code", cerr.code, "reason", cerr.msg)
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
	tc.onChange(changeReported, id, reportedChange{Params: m.Params, Timestamp: ts})
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

// getStatus answers get_status (docs/PROTOCOL.md §2.4.3). type "report" gets data.reported,
// type "control" gets data.control (or {} when nothing is pending). A get_status without type is
// answered with type "report" and data.reported plus, when control is pending, data.control: the
// C SDK sends it untyped after connecting and applies data.control from this same reply, then
// clears it (inferred from its data_template_client_manager.c). Devices that read only
// data.reported are unaffected by the extra key.
func (tc *thingCloud) getStatus(id DeviceID, m *upMsg, token string) reply {
	const method = "get_status_reply"
	typ, cerr := rawString(m.Type, "type")
	if cerr != nil {
		return failure(method, token, cerr)
	}
	untyped := typ == ""
	if untyped {
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
	var sections []statusSection
	if typ == "report" {
		sections = append(sections, statusSection{"reported", d.reported, d.reportedAt})
	}
	if len(d.pending) > 0 && (typ == "control" || untyped) {
		sections = append(sections, statusSection{"control", d.pending, nil})
	}
	data := statusData(tpl, sections, showMeta)
	tc.mu.Unlock()
	r := success(method, token)
	r.Type, r.Data = typ, data
	return r
}

// statusSection is one member of get_status_reply's data: its key and values (with the time each
// was set, for showmeta; nil when the section has no metadata).
type statusSection struct {
	key    string
	values map[string]json.RawMessage
	at     map[string]int64
}

// statusData renders {"<key>":{...},...} with each section's values in template order, plus with
// showmeta {"metadata":{"<key>":{"<id>":{"timestamp":ms}}}} for the sections that have times — the
// values keep their plain shape so a device that ignores metadata parses both variants alike.
func statusData(tpl *template.Template, sections []statusSection, showMeta bool) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	var meta []statusSection
	for i, sec := range sections {
		if i > 0 {
			b.WriteByte(',')
		}
		writeKey(&b, sec.key)
		b.WriteByte('{')
		for j, k := range orderedKeys(tpl, sec.values) {
			if j > 0 {
				b.WriteByte(',')
			}
			writeKey(&b, k)
			b.Write(sec.values[k])
		}
		b.WriteByte('}')
		if sec.at != nil {
			meta = append(meta, sec)
		}
	}
	if showMeta && len(meta) > 0 {
		b.WriteString(`,"metadata":{`)
		for i, sec := range meta {
			if i > 0 {
				b.WriteByte(',')
			}
			writeKey(&b, sec.key)
			b.WriteByte('{')
			for j, k := range orderedKeys(tpl, sec.values) {
				if j > 0 {
					b.WriteByte(',')
				}
				writeKey(&b, k)
				b.WriteString(`{"timestamp":` + strconv.FormatInt(sec.at[k], 10) + `}`)
			}
			b.WriteByte('}')
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.Bytes()
}

func writeKey(b *bytes.Buffer, k string) {
	q, _ := marshalJSON(k) // a string always marshals
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
		tc.onChange(changePending, id, nil)
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
	tc.onChange(changeThing, id, nil)
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
	d.addEvents(recs)
	tc.notifyLocked()
	tc.mu.Unlock()
	for _, r := range recs {
		tc.onChange(changeEvent, id, r)
	}
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
