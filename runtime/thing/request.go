package thing

import (
	"context"
	"fmt"
	"slices"

	json "github.com/goccy/go-json"
)

// waiter is one request waiting for its reply.
type waiter struct {
	method  string   // request method, for errors
	accept  []string // reply methods that answer it
	result  chan waitResult
	settled bool // guarded by Thing.mu
}

type waitResult struct {
	msg *downMsg
	err error
}

// finish hands the result to the waiting caller; the caller's Thing.mu must be held.
func (w *waiter) finish(msg *downMsg, err error) {
	if w.settled {
		return
	}
	w.settled = true
	w.result <- waitResult{msg, err} // buffered: never blocks
}

// request publishes payload and waits for the reply carrying token. A non-zero reply code
// becomes a *ReplyError; no reply ends with ctx's error.
func (t *Thing) request(ctx context.Context, topic string, qos byte, method, token string, payload []byte, accept ...string) (*downMsg, error) {
	w := &waiter{method: method, accept: accept, result: make(chan waitResult, 1)}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, fmt.Errorf("thing: %s: %w", method, ErrClosed)
	}
	t.waiters[token] = w
	t.mu.Unlock()
	defer t.dropWaiter(token, w)

	if err := t.conn.Publish(ctx, topic, qos, payload); err != nil {
		return nil, fmt.Errorf("thing: %s %s: publish: %w", method, token, err)
	}
	select {
	case r := <-w.result:
		if r.err != nil {
			return nil, fmt.Errorf("thing: %s %s: %w", method, token, r.err)
		}
		if r.msg.Code != CodeOK {
			return r.msg, &ReplyError{Code: r.msg.Code, Status: r.msg.Status, Method: r.msg.Method, ClientToken: token}
		}
		return r.msg, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("thing: %s %s: waiting for %s: %w", method, token, accept[0], ctx.Err())
	}
}

func (t *Thing) dropWaiter(token string, w *waiter) {
	t.mu.Lock()
	if t.waiters[token] == w {
		delete(t.waiters, token)
	}
	t.mu.Unlock()
}

// deliverReply routes a *_reply message (or the error found parsing it) to its waiter.
func (t *Thing) deliverReply(topic string, msg *downMsg, perr error) {
	t.mu.Lock()
	w := t.waiters[msg.ClientToken]
	if w == nil {
		t.mu.Unlock()
		t.log.Debug("reply without a waiting request (late or not ours)", "topic", topic,
			"method", msg.Method, "clientToken", msg.ClientToken)
		return
	}
	switch {
	case perr != nil:
		w.finish(nil, fmt.Errorf("malformed %s on %s: %w", msg.Method, topic, perr))
	case !slices.Contains(w.accept, msg.Method):
		t.mu.Unlock()
		t.log.Warn("reply method does not match the request; ignored", "topic", topic,
			"method", msg.Method, "want", w.accept[0], "clientToken", msg.ClientToken)
		return
	case !msg.HasCode:
		w.finish(nil, fmt.Errorf("malformed %s on %s: %w", msg.Method, topic, &fieldError{"code", "missing"}))
	default:
		w.finish(msg, nil)
	}
	t.mu.Unlock()
}

// Report sends a property report (method "report") and waits for report_reply. params is a
// struct, map, []byte/json.RawMessage of a JSON object; it is checked against the template
// first, and an invalid or unknown property is returned as a local error (wrapping
// template.ErrInvalidValue / ErrUnknownID) without sending anything.
func (t *Thing) Report(ctx context.Context, params any) error {
	raw, err := marshalObject("thing: Report: params", params)
	if err != nil {
		return err
	}
	if err := t.tpl.CheckProperties(raw, false); err != nil {
		return fmt.Errorf("thing: Report: %w", err)
	}
	token := t.nextToken()
	payload, err := json.Marshal(requestMsg{Method: methodReport, ClientToken: token, Timestamp: t.nowMillis(), Params: raw})
	if err != nil {
		return fmt.Errorf("thing: Report: %w", err)
	}
	_, err = t.request(ctx, t.topics.upProperty, 0, methodReport, token, payload, methodReport+replySuffix)
	return err
}

// StatusType selects what GetStatus asks for.
type StatusType string

const (
	// StatusReport asks for the last reported property values.
	StatusReport StatusType = "report"
	// StatusControl asks for control sent while the device was offline and not yet cleared.
	StatusControl StatusType = "control"
)

// Status is the platform's answer to get_status.
type Status struct {
	// Type is the type the reply names (the requested one if the reply omits it).
	Type StatusType
	// Reported is data.reported (the old docs' data.report is accepted too): a JSON object
	// of property values, or nil when the reply had none.
	Reported json.RawMessage
	// Control is data.control: the pending control as a JSON object, or nil when nothing
	// is pending.
	Control json.RawMessage
	// Data is the whole data object (including metadata when requested), or nil.
	Data json.RawMessage
}

// GetStatus asks the platform for the device's latest reported values (StatusReport) or its
// pending control (StatusControl), with metadata when showmeta is true.
func (t *Thing) GetStatus(ctx context.Context, typ StatusType, showmeta bool) (*Status, error) {
	if typ != StatusReport && typ != StatusControl {
		return nil, fmt.Errorf("thing: GetStatus: type %q is not %q or %q", typ, StatusReport, StatusControl)
	}
	token := t.nextToken()
	req := requestMsg{Method: methodGetStatus, ClientToken: token}
	// "report" is the platform's default; omitting it matches what the official SDKs send.
	if typ != StatusReport {
		req.Type = string(typ)
	}
	if showmeta {
		req.ShowMeta = 1
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("thing: GetStatus: %w", err)
	}
	msg, err := t.request(ctx, t.topics.upProperty, 0, methodGetStatus, token, payload, methodGetStatus+replySuffix)
	if err != nil {
		return nil, err
	}
	return parseStatus(t.topics.downProperty, msg, typ)
}

func parseStatus(topic string, msg *downMsg, typ StatusType) (*Status, error) {
	st := &Status{Type: typ, Data: msg.Data}
	if msg.Type != "" {
		st.Type = StatusType(msg.Type)
	}
	if msg.Data == nil {
		return st, nil
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(msg.Data, &data); err != nil {
		return nil, fmt.Errorf("thing: get_status_reply on %s: field data: %v", topic, err)
	}
	var err error
	for _, key := range []string{"reported", "report"} {
		if st.Reported != nil {
			break
		}
		if st.Reported, err = objectField(key, data[key]); err != nil {
			return nil, fmt.Errorf("thing: get_status_reply on %s: data.%w", topic, err)
		}
	}
	if st.Control, err = objectField("control", data["control"]); err != nil {
		return nil, fmt.Errorf("thing: get_status_reply on %s: data.%w", topic, err)
	}
	return st, nil
}

// ClearControl tells the platform the pending control was consumed (clear_control) and
// waits for clear_control_reply.
func (t *Thing) ClearControl(ctx context.Context) error {
	token := t.nextToken()
	payload, err := json.Marshal(requestMsg{Method: methodClearControl, ClientToken: token})
	if err != nil {
		return fmt.Errorf("thing: ClearControl: %w", err)
	}
	_, err = t.request(ctx, t.topics.upProperty, 0, methodClearControl, token, payload, methodClearControl+replySuffix)
	return err
}

// DeviceInfo is the device's basic information (report_info, protocol.md §2.4.5). Empty
// fields are not sent.
type DeviceInfo struct {
	ModuleHardInfo  string            `json:"module_hardinfo,omitempty"` // module hardware model
	ModuleSoftInfo  string            `json:"module_softinfo,omitempty"` // module software version
	FirmwareVersion string            `json:"fw_ver,omitempty"`          // MCU firmware version
	IMEI            string            `json:"imei,omitempty"`
	MAC             string            `json:"mac,omitempty"`
	Lat             string            `json:"lat,omitempty"` // latitude, decimal text
	Lon             string            `json:"lon,omitempty"` // longitude, decimal text
	Name            string            `json:"name,omitempty"`
	DeviceLabel     map[string]string `json:"device_label,omitempty"` // free-form labels
}

// ReportInfo sends the device's basic information (report_info) and waits for
// report_info_reply.
func (t *Thing) ReportInfo(ctx context.Context, info DeviceInfo) error {
	raw, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("thing: ReportInfo: %w", err)
	}
	token := t.nextToken()
	payload, err := json.Marshal(requestMsg{Method: methodReportInfo, ClientToken: token, Params: raw})
	if err != nil {
		return fmt.Errorf("thing: ReportInfo: %w", err)
	}
	_, err = t.request(ctx, t.topics.upProperty, 0, methodReportInfo, token, payload, methodReportInfo+replySuffix)
	return err
}
