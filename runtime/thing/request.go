package thing

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/tplwire"
)

// waiter is one request waiting for its reply. Waiters are pooled: a report round trip
// then costs no channel or waiter allocation.
type waiter struct {
	method  string // request method, for errors
	accept1 string // reply method that answers it
	accept2 string // a second accepted reply method, or ""
	result  chan waitResult
	settled bool // guarded by Thing.mu
}

type waitResult struct {
	msg downMsg // valid when ok
	ok  bool
	err error
}

var waiterPool = sync.Pool{New: func() any { return &waiter{result: make(chan waitResult, 1)} }}

func (w *waiter) accepts(method string) bool {
	return method == w.accept1 || (w.accept2 != "" && method == w.accept2)
}

// finish hands the result to the waiting caller; the caller's Thing.mu must be held.
func (w *waiter) finish(msg *downMsg, err error) {
	if w.settled {
		return
	}
	w.settled = true
	r := waitResult{err: err}
	if msg != nil {
		r.msg, r.ok = *msg, true
	}
	w.result <- r // buffered: never blocks
}

// request publishes payload and waits for the reply whose clientToken is "{pid}-{seq}". A
// non-zero reply code becomes a *ReplyError; no reply ends with ctx's error. accept lists
// the one or two reply methods that answer it.
func (t *Thing) request(ctx context.Context, topic string, qos byte, method string, seq uint64, payload []byte, accept ...string) (downMsg, error) {
	w := waiterPool.Get().(*waiter)
	w.method, w.accept1, w.accept2, w.settled = method, accept[0], "", false
	if len(accept) > 1 {
		w.accept2 = accept[1]
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		waiterPool.Put(w)
		return downMsg{}, fmt.Errorf("thing: %s: %w", method, ErrClosed)
	}
	t.waiters[seq] = w
	t.mu.Unlock()

	var r waitResult
	err := t.conn.Publish(ctx, topic, qos, payload)
	if err == nil {
		select {
		case r = <-w.result:
		case <-ctx.Done():
		}
	}
	// Remove the waiter; a reply that raced with ctx may have settled it meanwhile.
	t.mu.Lock()
	delete(t.waiters, seq)
	settled := w.settled
	t.mu.Unlock()
	if settled && !r.ok && r.err == nil {
		r = <-w.result
	}
	waiterPool.Put(w)

	switch {
	case err != nil:
		return downMsg{}, fmt.Errorf("thing: %s %s: publish: %w", method, t.token(seq), err)
	case r.err != nil:
		return downMsg{}, fmt.Errorf("thing: %s %s: %w", method, t.token(seq), r.err)
	case !r.ok:
		return downMsg{}, fmt.Errorf("thing: %s %s: waiting for %s: %w", method, t.token(seq), accept[0], ctx.Err())
	case r.msg.Code != CodeOK:
		return r.msg, &ReplyError{Code: r.msg.Code, Status: r.msg.Status, Method: r.msg.Method, ClientToken: t.token(seq)}
	}
	return r.msg, nil
}

// token renders the clientToken of seq (for errors).
func (t *Thing) token(seq uint64) string { return t.pid + "-" + strconv.FormatUint(seq, 10) }

// seqOf returns the sequence number of one of our clientTokens ("{pid}-{n}").
func (t *Thing) seqOf(token string) (uint64, bool) {
	if len(token) <= len(t.pid)+1 || token[:len(t.pid)] != t.pid || token[len(t.pid)] != '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(token[len(t.pid)+1:], 10, 64)
	return n, err == nil
}

// deliverReply routes a *_reply message (or the error found parsing it) to its waiter.
func (t *Thing) deliverReply(topic string, msg *downMsg, perr error) {
	seq, ours := t.seqOf(msg.ClientToken)
	t.mu.Lock()
	w := t.waiters[seq]
	if !ours || w == nil {
		t.mu.Unlock()
		t.log.Debug("reply without a waiting request (late or not ours)", "topic", topic,
			"method", msg.Method, "clientToken", msg.ClientToken)
		return
	}
	switch {
	case perr != nil:
		w.finish(nil, fmt.Errorf("malformed %s on %s: %w", msg.Method, topic, perr))
	case !w.accepts(msg.Method):
		t.mu.Unlock()
		t.log.Warn("reply method does not match the request; ignored", "topic", topic,
			"method", msg.Method, "want", w.accept1, "clientToken", msg.ClientToken)
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
// template.ErrInvalidValue / ErrUnknownID) without sending anything. Generated code uses
// Device.Report, which checks and encodes without reflection. See Device.Report for what
// happens to a report made while offline.
func (t *Thing) Report(ctx context.Context, params any) error {
	raw, err := marshalObject("thing: Report: params", params)
	if err != nil {
		return err
	}
	if err := t.tpl.CheckProperties(raw, false); err != nil {
		return fmt.Errorf("thing: Report: %w", err)
	}
	seq := t.nextSeq()
	b := make([]byte, 0, 96+len(raw))
	b = t.appendHead(b, methodReport, seq)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, t.nowMillis(), 10)
	b = append(b, `,"params":`...)
	b = append(b, raw...)
	b = append(b, '}')
	_, err = t.request(ctx, t.topics.upProperty, 0, methodReport, seq, b, methodReport+replySuffix)
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
	seq := t.nextSeq()
	b := make([]byte, 0, 96)
	b = t.appendHead(b, methodGetStatus, seq)
	// "report" is the platform's default; omitting it matches what the official SDKs send.
	if typ != StatusReport {
		b = append(b, `,"type":`...)
		b = tplwire.AppendString(b, string(typ))
	}
	if showmeta {
		b = append(b, `,"showmeta":1`...)
	}
	b = append(b, '}')
	msg, err := t.request(ctx, t.topics.upProperty, 0, methodGetStatus, seq, b, methodGetStatus+replySuffix)
	if err != nil {
		return nil, err
	}
	return parseStatus(t.topics.downProperty, &msg, typ)
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
	seq := t.nextSeq()
	b := t.appendHead(make([]byte, 0, 64), methodClearControl, seq)
	b = append(b, '}')
	_, err := t.request(ctx, t.topics.upProperty, 0, methodClearControl, seq, b, methodClearControl+replySuffix)
	return err
}

// DeviceInfo is the device's basic information (report_info, docs/PROTOCOL.md §2.4.5). Empty
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
	seq := t.nextSeq()
	b := t.appendHead(make([]byte, 0, 96+len(raw)), methodReportInfo, seq)
	b = append(b, `,"params":`...)
	b = append(b, raw...)
	b = append(b, '}')
	_, err = t.request(ctx, t.topics.upProperty, 0, methodReportInfo, seq, b, methodReportInfo+replySuffix)
	return err
}
