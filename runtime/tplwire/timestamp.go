package tplwire

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"

	json "github.com/goccy/go-json"
)

// msThreshold separates seconds from milliseconds when decoding: 1e11 seconds is the year
// 5138, while 1e11 milliseconds is 1973, so any real value above it must be milliseconds.
const msThreshold = 1e11

// Timestamp is a template timestamp: Unix time in whole seconds.
//
// It marshals as a JSON integer of seconds, which is what the SDKs and platform logs use
// (docs/PROTOCOL.md §2.3). Because the console documentation describes the type as a UTC
// millisecond string, UnmarshalJSON also accepts milliseconds (any value above 1e11) and
// numeric strings of either, normalising to seconds.
type Timestamp int64

// TimestampOf returns t truncated to whole seconds.
func TimestampOf(t time.Time) Timestamp { return Timestamp(t.Unix()) }

// Time returns the timestamp as a time.Time in UTC.
func (ts Timestamp) Time() time.Time { return time.Unix(int64(ts), 0).UTC() }

// String formats the timestamp as RFC 3339 in UTC.
func (ts Timestamp) String() string { return ts.Time().Format(time.RFC3339) }

// MarshalJSON encodes ts as an integer number of seconds.
func (ts Timestamp) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, int64(ts), 10), nil
}

// UnmarshalJSON accepts an integer (or integral number) of seconds or milliseconds, or a
// string holding one. JSON null leaves ts unchanged.
func (ts *Timestamp) UnmarshalJSON(data []byte) error {
	text := bytes.TrimSpace(data)
	if string(text) == "null" {
		return nil
	}
	if len(text) > 0 && text[0] == '"' {
		var s string
		if err := json.Unmarshal(text, &s); err != nil {
			return fmt.Errorf("tplwire: timestamp: %w", err)
		}
		text = []byte(s)
	}
	v, err := parseTimestamp(string(text))
	if err != nil {
		return fmt.Errorf("tplwire: timestamp must be an integer of seconds or milliseconds, got %s", quoteInput(data))
	}
	*ts = v
	return nil
}

func parseTimestamp(s string) (Timestamp, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > msThreshold {
			n /= 1000
		}
		return Timestamp(n), nil
	}
	// Some senders render numbers with an exponent or ".0"; accept them only when integral.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) >= math.MaxInt64 {
		return 0, strconv.ErrSyntax
	}
	if f > msThreshold {
		f = math.Floor(f / 1000)
	}
	return Timestamp(int64(f)), nil
}
