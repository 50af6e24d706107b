package thing

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tplgen/tplgen/runtime/template"
	"github.com/tplgen/tplgen/runtime/tplwire"
)

// Event is one event of a batch sent with PostEvents.
type Event struct {
	// ID is the template event id.
	ID string
	// Params is the event's parameters: a struct, a map, or []byte/json.RawMessage of a
	// JSON object.
	Params any
	// Time is when the event happened; zero means now.
	Time time.Time
}

// PostEvent sends one event (event_post, single-object form of docs/PROTOCOL.md §2.4.6) and waits
// for event_reply. The event type (info/alert/fault) comes from the template. An unknown
// event id or invalid params is a local error (wrapping template.ErrUnknownID or
// ErrInvalidValue) and nothing is sent.
//
// Offline: while the connection is down the event waits in the connection's offline queue; if
// ctx ends while it is still queued it is withdrawn and never sent (the error wraps
// explorer.ErrNotSent), so a retry makes no duplicate. Once it has gone out, a lost reply is
// ctx's error and the platform may have the event.
func (t *Thing) PostEvent(ctx context.Context, id string, params any) error {
	we, err := t.wireEvent(Event{ID: id, Params: params})
	if err != nil {
		return fmt.Errorf("thing: PostEvent: %w", err)
	}
	seq := t.nextSeq()
	b := t.appendHead(make([]byte, 0, 128+len(we.Params)), methodEventPost, seq)
	b = append(b, ',')
	b = we.appendMembers(b)
	b = append(b, '}')
	// events_reply is accepted too: the platform answers the official Python SDK's
	// array-form event_post with it.
	_, err = t.request(ctx, t.topics.upEvent, 1, methodEventPost, seq, b,
		methodEventReply, methodEventsReply)
	return err
}

// PostEvents sends several events in one message (events_post) and waits for
// events_reply. Every event is checked first; any error is local and nothing is sent.
func (t *Thing) PostEvents(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return errors.New("thing: PostEvents: no events")
	}
	wes := make([]wireEvent, 0, len(events))
	size := 64
	for i, e := range events {
		we, err := t.wireEvent(e)
		if err != nil {
			return fmt.Errorf("thing: PostEvents: events[%d]: %w", i, err)
		}
		wes = append(wes, we)
		size += 96 + len(we.Params)
	}
	seq := t.nextSeq()
	b := t.appendHead(make([]byte, 0, size), methodEventsPost, seq)
	b = append(b, `,"events":[`...)
	for i, we := range wes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = we.appendMembers(b)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	_, err := t.request(ctx, t.topics.upEvent, 1, methodEventsPost, seq, b, methodEventsReply)
	return err
}

// appendMembers appends `"eventId":…,"type":…,"timestamp":…,"params":{…}`.
func (we wireEvent) appendMembers(b []byte) []byte {
	b = append(b, `"eventId":`...)
	b = tplwire.AppendString(b, we.EventID)
	b = append(b, `,"type":`...)
	b = tplwire.AppendString(b, we.Type)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, we.Timestamp, 10)
	b = append(b, `,"params":`...)
	return append(b, we.Params...)
}

// wireEvent checks one event against the template and renders it.
func (t *Thing) wireEvent(e Event) (wireEvent, error) {
	def := t.tpl.Event(e.ID)
	if def == nil {
		return wireEvent{}, fmt.Errorf("event %q: %w", e.ID, template.ErrUnknownID)
	}
	raw, err := marshalObject(fmt.Sprintf("event %q: params", e.ID), e.Params)
	if err != nil {
		return wireEvent{}, err
	}
	if err := t.tpl.CheckEventParams(e.ID, raw); err != nil {
		return wireEvent{}, fmt.Errorf("event %q: %w", e.ID, err)
	}
	ts := t.nowMillis()
	if !e.Time.IsZero() {
		ts = e.Time.UnixMilli()
	}
	return wireEvent{EventID: e.ID, Type: string(def.Type), Timestamp: ts, Params: raw}, nil
}
