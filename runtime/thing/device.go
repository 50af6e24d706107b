package thing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

// Params is implemented by the value types tplgen generates (Properties, event params,
// action input and output): a typed check against the template's limits and a JSON encoder
// that appends the value without reflection. Validate fails with *tplwire.ValueError values
// (errors.Is(err, tplwire.ErrInvalidValue)), the same vocabulary as the raw checks.
type Params interface {
	Validate() error
	AppendJSON(b []byte) []byte
}

// EventParams is implemented by generated event params types.
type EventParams interface {
	Params
	// EventID returns the template id of the event.
	EventID() string
	// EventType returns the event's type (info, alert or fault).
	EventType() string
}

// Spec is the template-dependent part of a typed device, filled in by generated code (one
// package-level Spec per generated package); everything else lives in Device. C is the
// generated ControlProperties type, H the generated Handler interface.
type Spec[C any, H any] struct {
	// ProductID is the product the template was exported from ("" if the template names
	// none). NewDevice refuses a device of another product.
	ProductID string
	// Source names the template in messages (the path given to the generator).
	Source string
	// TemplateJSON is the data template in canonical form; it is parsed once, on first use.
	TemplateJSON string
	// Control is the Handler's Control method (a method expression, e.g. Handler.Control).
	Control func(h H, ctx context.Context, c C) error
	// Actions are the template's actions, each bound to its Handler method with ActionOf.
	Actions []Action[H]

	once sync.Once
	tpl  *template.Template
	err  error
}

// Template returns the parsed data template, or nil if TemplateJSON does not parse with this
// runtime (NewDevice then returns the error).
func (s *Spec[C, H]) Template() *template.Template {
	t, _ := s.parse()
	return t
}

func (s *Spec[C, H]) parse() (*template.Template, error) {
	s.once.Do(func() {
		name := s.Source
		if name == "" {
			name = "embedded template"
		}
		s.tpl, s.err = template.Parse(name, []byte(s.TemplateJSON))
	})
	return s.tpl, s.err
}

// Action binds one template action to its typed Handler method; make it with ActionOf.
type Action[H any] struct {
	id   string
	call func(h H, ctx context.Context, input []byte) ([]byte, error)
}

// ActionOf binds action id to fn, a Handler method expression such as Handler.LightOn. The
// input (already checked against the template by the runtime) is decoded into I; the output
// is checked with its Validate method and encoded with AppendJSON.
func ActionOf[H any, I any, O Params](id string, fn func(h H, ctx context.Context, in I) (O, error)) Action[H] {
	return Action[H]{id: id, call: func(h H, ctx context.Context, input []byte) ([]byte, error) {
		var in I
		if err := json.Unmarshal(input, &in); err != nil {
			// The input passed the template check, so the generated type disagrees with the
			// template: answer like any other value problem.
			return nil, Errorf(CodeInvalidValue, "decode action %s input: %v", id, err)
		}
		out, err := fn(h, ctx, in)
		if err != nil {
			return nil, err
		}
		if err := out.Validate(); err != nil {
			return nil, &outputError{err}
		}
		return out.AppendJSON(make([]byte, 0, 64)), nil
	}}
}

// outputError marks an action output that failed its typed check.
type outputError struct{ err error }

func (e *outputError) Error() string { return "invalid action output: " + e.err.Error() }
func (e *outputError) Unwrap() error { return e.err }

// Device is the typed device generated packages embed: P is the generated Properties type,
// C the ControlProperties type. It reports P, hands control to the Handler as C and actions
// as their typed inputs, and carries every template-independent call: status, pending
// control, device info, events batch, binding, service messages, and the features beside the
// data template (Now, OnRRPC, OnBroadcast, NewLogUploader, NewFiles, NewResourceTasks). It
// wraps a *Thing, which runs the protocol. Safe for concurrent use.
type Device[P Params, C any] struct {
	t *Thing
}

// NewDevice starts the typed device of spec on conn with handler h; generated New calls it.
// Handler methods receive values already checked against the template; their error (or
// action output) becomes the reply. A Handler that also implements BindingObserver or
// ServiceObserver receives the service topic's notices. opts are the Thing's; the control and action handlers
// are set from spec and h (WithControlHandler and WithActionHandler in opts are overridden).
//
// NewDevice refuses a device of another product than spec's: the connection's own device,
// or the one given with WithDevice.
func NewDevice[P Params, C any, H any](conn Transport, spec *Spec[C, H], h H, opts ...Option) (*Device[P, C], error) {
	if spec == nil {
		return nil, errors.New("thing: NewDevice: nil Spec")
	}
	tpl, err := spec.parse()
	if err != nil {
		return nil, fmt.Errorf("thing: NewDevice: embedded data template: %w", err)
	}
	if any(h) == nil {
		return nil, errors.New("thing: NewDevice: nil Handler")
	}
	if spec.Control == nil {
		return nil, errors.New("thing: NewDevice: Spec has no Control method")
	}
	control := func(ctx context.Context, params []byte) error {
		var c C
		if err := json.Unmarshal(params, &c); err != nil {
			return Errorf(CodeInvalidValue, "decode control: %v", err)
		}
		return spec.Control(h, ctx, c)
	}
	all := append(append(make([]Option, 0, len(opts)+3), opts...), WithControlHandler(control))
	if len(spec.Actions) > 0 {
		byID := make(map[string]func(H, context.Context, []byte) ([]byte, error), len(spec.Actions))
		for _, a := range spec.Actions {
			byID[a.id] = a.call
		}
		all = append(all, func(o *options) error {
			o.action = nil
			o.actionEncoded = func(ctx context.Context, id string, input []byte) ([]byte, error) {
				call := byID[id]
				if call == nil {
					return nil, Errorf(CodeUnknownID, "unknown action %q", id)
				}
				return call(h, ctx, input)
			}
			return nil
		})
	}
	if spec.ProductID != "" {
		all = append(all, func(o *options) error { o.wantProduct = spec.ProductID; return nil })
	}
	// Optional Handler methods for the service topic.
	if b, ok := any(h).(BindingObserver); ok {
		all = append(all, WithBindingHandler(b.Binding))
	}
	if s, ok := any(h).(ServiceObserver); ok {
		all = append(all, WithServiceHandler(s.Service))
	}
	t, err := New(conn, tpl, all...)
	if err != nil {
		return nil, err
	}
	return &Device[P, C]{t: t}, nil
}

// Report sends the properties that are set (non-nil fields) and waits for the platform's
// report_reply. p is checked with its Validate method first: an invalid value is a local
// error (IsInvalidValue, a *tplwire.ValueError naming the JSON path) and nothing is sent;
// a rejection by the platform is a *ReplyError. The message is encoded by p's generated
// AppendJSON, with no reflection.
//
// Offline: while the connection is down the report waits in the connection's offline queue.
// If ctx ends while it is still queued it is withdrawn and never sent (the error wraps
// explorer.ErrNotSent and ctx's error), so retrying after such an error never makes a
// duplicate; once it has gone out, a lost reply is ctx's error alone (the platform may have
// the report). Thing.Report, PostEvent and PostEvents behave the same.
func (d *Device[P, C]) Report(ctx context.Context, p P) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("thing: Report: %w", err)
	}
	t := d.t
	token := t.nextSeq()
	buf := getBuf()
	b := t.appendHead(*buf, methodReport, token)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, t.nowMillis(), 10)
	b = append(b, `,"params":`...)
	b = p.AppendJSON(b)
	b = append(b, '}')
	_, err := t.request(ctx, t.topics.upProperty, 0, methodReport, token, b, methodReport+replySuffix)
	putBuf(buf, b) // the Transport does not keep the payload once Publish returned
	return err
}

// payloadPool recycles the buffers typed reports and events are encoded into.
var payloadPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBuf() *[]byte { return payloadPool.Get().(*[]byte) }

// putBuf returns the buffer, now grown to b, unless it grew unusually large.
func putBuf(buf *[]byte, b []byte) {
	if cap(b) > 16<<10 {
		return
	}
	*buf = b[:0]
	payloadPool.Put(buf)
}

// PostEvent posts one generated event (event_post) on d and waits for the event_reply. e
// is checked with its Validate method first; an invalid value is a local error and nothing
// is sent. Generated Post<Event> methods call it. Offline, an event whose ctx ends while it
// is still queued is withdrawn and never sent (explorer.ErrNotSent), as for Report.
func PostEvent[P Params, C any, E EventParams](ctx context.Context, d *Device[P, C], e E) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("thing: PostEvent %s: %w", e.EventID(), err)
	}
	t := d.t
	token := t.nextSeq()
	buf := getBuf()
	b := t.appendHead(*buf, methodEventPost, token)
	b = append(b, ',')
	b = appendEventMembers(b, e, t.nowMillis())
	b = append(b, '}')
	// events_reply is accepted too: the platform answers the array form with it.
	_, err := t.request(ctx, t.topics.upEvent, 1, methodEventPost, token, b, methodEventReply, methodEventsReply)
	putBuf(buf, b)
	return err
}

// appendEventMembers appends `"eventId":…,"type":…,"timestamp":…,"params":{…}`.
func appendEventMembers[E EventParams](b []byte, e E, ms int64) []byte {
	b = append(b, `"eventId":`...)
	b = tplwire.AppendString(b, e.EventID())
	b = append(b, `,"type":`...)
	b = tplwire.AppendString(b, e.EventType())
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, ms, 10)
	b = append(b, `,"params":`...)
	return e.AppendJSON(b)
}

// PostEvents posts several generated events in one events_post message and waits for the
// events_reply. Every event is checked first (its Validate method, and its id and type
// against the template); nothing is sent if one is invalid.
func (d *Device[P, C]) PostEvents(ctx context.Context, events ...EventParams) error {
	if len(events) == 0 {
		return errors.New("thing: PostEvents: no events")
	}
	t := d.t
	for i, e := range events {
		if e == nil {
			return fmt.Errorf("thing: PostEvents: events[%d] is nil", i)
		}
		def := t.tpl.Event(e.EventID())
		if def == nil {
			return fmt.Errorf("thing: PostEvents: events[%d]: event %q: %w", i, e.EventID(), template.ErrUnknownID)
		}
		if string(def.Type) != e.EventType() {
			return fmt.Errorf("thing: PostEvents: events[%d]: event %q has type %q in the template, not %q", i, e.EventID(), def.Type, e.EventType())
		}
		if err := e.Validate(); err != nil {
			return fmt.Errorf("thing: PostEvents: events[%d] (%s): %w", i, e.EventID(), err)
		}
	}
	token := t.nextSeq()
	b := make([]byte, 0, 64+160*len(events))
	b = t.appendHead(b, methodEventsPost, token)
	b = append(b, `,"events":[`...)
	ms := t.nowMillis()
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendEventMembers(b, e, ms)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	_, err := t.request(ctx, t.topics.upEvent, 1, methodEventsPost, token, b, methodEventsReply)
	return err
}

// GetStatus asks the platform for the last reported property values (get_status, type
// report) and decodes them into P. Values the platform holds for ids not in P are ignored.
func (d *Device[P, C]) GetStatus(ctx context.Context) (P, error) {
	var p P
	st, err := d.t.GetStatus(ctx, StatusReport, false)
	if err != nil || st.Reported == nil {
		return p, err
	}
	if err := decodeUntrusted(st.Reported, &p); err != nil {
		return p, fmt.Errorf("thing: GetStatus: data.reported: %w", err)
	}
	return p, nil
}

// GetPendingControl asks the platform for control sent while the device was offline and not
// yet cleared (get_status, type control); ok is false when nothing is pending. The control
// is checked against the template before it is decoded. The Device already applies pending
// control through the Handler on every connect (see SyncPendingControl); this is for
// devices that turned that off with WithResyncOnConnect(false).
func (d *Device[P, C]) GetPendingControl(ctx context.Context) (c C, ok bool, err error) {
	st, err := d.t.GetStatus(ctx, StatusControl, false)
	if err != nil || isEmptyObject(st.Control) {
		return c, false, err
	}
	if err := d.t.tpl.CheckProperties(st.Control, true); err != nil {
		return c, false, fmt.Errorf("thing: GetPendingControl: %w", err)
	}
	if err := json.Unmarshal(st.Control, &c); err != nil {
		return c, false, fmt.Errorf("thing: GetPendingControl: data.control: %w", err)
	}
	return c, true, nil
}

// ClearControl tells the platform the pending control was consumed (clear_control).
func (d *Device[P, C]) ClearControl(ctx context.Context) error { return d.t.ClearControl(ctx) }

// SyncPendingControl applies control sent while the device was offline through the
// Handler now and clears it; see Thing.SyncPendingControl. A gateway calls it for a
// sub-device once the sub-device is online again.
func (d *Device[P, C]) SyncPendingControl(ctx context.Context) (applied bool, err error) {
	return d.t.SyncPendingControl(ctx)
}

// ReportInfo sends the device's basic information (report_info): firmware version, module,
// IMEI, MAC, location, labels.
func (d *Device[P, C]) ReportInfo(ctx context.Context, info DeviceInfo) error {
	return d.t.ReportInfo(ctx, info)
}

// Thing returns the untyped engine, for raw-JSON access (and a gateway's Track).
func (d *Device[P, C]) Thing() *Thing { return d.t }

// ProductID returns the product the device speaks for.
func (d *Device[P, C]) ProductID() string { return d.t.pid }

// DeviceName returns the name of the device it speaks for.
func (d *Device[P, C]) DeviceName() string { return d.t.dn }

// Template returns the data template control and actions are checked against.
func (d *Device[P, C]) Template() *template.Template { return d.t.tpl }

// Close unsubscribes the device's topics, stops what was started through the device (RRPC,
// broadcast, files, resource tasks, the log uploader after uploading what it buffered) and
// waits (bounded by ctx) for running handlers. It does not close the connection.
func (d *Device[P, C]) Close(ctx context.Context) error { return d.t.Close(ctx) }

// decodeUntrusted decodes JSON received from the network through the project's guard
// (internal/jsonguard: size cap, encoding/json's validator, then goccy under a recover).
func decodeUntrusted(raw []byte, v any) error { return jsonguard.Unmarshal(raw, v) }

// appendHead appends `{"method":"…","clientToken":"{pid}-{seq}"`.
func (t *Thing) appendHead(b []byte, method string, seq uint64) []byte {
	b = append(b, `{"method":"`...)
	b = append(b, method...)
	b = append(b, `","clientToken":`...)
	return t.appendToken(b, seq)
}

// appendToken appends the JSON string "{pid}-{seq}".
func (t *Thing) appendToken(b []byte, seq uint64) []byte {
	b = append(b, '"')
	b = append(b, t.tokenPrefix...)
	b = append(b, '-')
	b = strconv.AppendUint(b, seq, 10)
	return append(b, '"')
}
