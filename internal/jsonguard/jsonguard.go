// Package jsonguard is the project's one policy for decoding untrusted JSON (anything that
// arrived over the network: MQTT payloads, HTTP bodies, HTTP responses).
//
// goccy/go-json is the project's JSON library, but its decoder has read out of bounds on some
// truncated inputs (a payload ending inside an object key with a backslash made
// decodeKeyByBitmapUint16 index beyond the buffer: a fatal checkptr error under -race, an
// out-of-bounds read otherwise). So untrusted input is, in this order:
//
//  1. size-capped: longer than the cap is ErrTooLarge, before any byte is parsed;
//  2. validated by the standard library's scanner (encoding/json.Valid), which does not
//     allocate per value and has no known out-of-bounds bug: invalid is ErrInvalid, with the
//     byte offset of the first error;
//  3. decoded by goccy/go-json under a recover, so a decoder panic becomes an error wrapping
//     ErrDecoder instead of taking the process down.
//
// Trusted JSON (produced by this process) is decoded with goccy directly.
package jsonguard

import (
	"bytes"
	stdjson "encoding/json" // validation only; decoding stays with goccy
	"errors"
	"fmt"
	"io"

	json "github.com/goccy/go-json"
)

// DefaultMaxBytes is the cap of Unmarshal, Compact and Check: 1 MiB, far above any
// protocol message (an MQTT payload is at most 16 KiB, docs/PROTOCOL.md §8.1) yet small
// enough that a hostile input cannot make a parse expensive. Use the *Limit variants for
// another cap.
const DefaultMaxBytes = 1 << 20

// Errors, matched with errors.Is.
var (
	// ErrTooLarge: the input is longer than the cap.
	ErrTooLarge = errors.New("JSON too large")
	// ErrInvalid: the input is not well-formed JSON.
	ErrInvalid = errors.New("not valid JSON")
	// ErrDecoder: the decoder failed (panicked) on well-formed input.
	ErrDecoder = errors.New("JSON decoder failure")
)

// Check returns nil when data is well-formed JSON of at most DefaultMaxBytes.
func Check(data []byte) error { return CheckLimit(data, DefaultMaxBytes) }

// CheckLimit returns nil when data is well-formed JSON of at most max bytes. The error wraps
// ErrTooLarge or ErrInvalid and names the byte offset of the first syntax error.
func CheckLimit(data []byte, max int) error {
	if len(data) > max {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), max)
	}
	if stdjson.Valid(data) {
		return nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%w: empty input", ErrInvalid)
	}
	// Only on the error path: decode once more to learn where it went wrong.
	var raw stdjson.RawMessage
	err := stdjson.Unmarshal(data, &raw)
	var syn *stdjson.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("%w at byte %d: %s (input %s)", ErrInvalid, syn.Offset, syn.Error(), Clip(data))
	}
	return fmt.Errorf("%w: %s", ErrInvalid, Clip(data))
}

// Unmarshal decodes data into v with goccy/go-json after Check.
func Unmarshal(data []byte, v any) error { return UnmarshalLimit(data, v, DefaultMaxBytes) }

// UnmarshalLimit is Unmarshal with a cap of max bytes.
func UnmarshalLimit(data []byte, v any, max int) error {
	if err := CheckLimit(data, max); err != nil {
		return err
	}
	return guard(func() error { return json.Unmarshal(data, v) })
}

// UnmarshalStrict is UnmarshalLimit that also refuses object keys v has no field for (at any
// depth); the error names the key. For request bodies whose shape is documented.
func UnmarshalStrict(data []byte, v any, max int) error {
	if err := CheckLimit(data, max); err != nil {
		return err
	}
	return guard(func() error {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		return dec.Decode(v)
	})
}

// Compact appends to dst the compacted form of src after Check.
func Compact(dst *bytes.Buffer, src []byte) error {
	if err := Check(src); err != nil {
		return err
	}
	return guard(func() error { return json.Compact(dst, src) })
}

// ReadAll reads at most max bytes from r (an HTTP body, say) and fails with ErrTooLarge when
// there is more, without reading the rest into memory.
func ReadAll(r io.Reader, max int) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return data, nil
}

// Decode reads at most max bytes from r and decodes them into v (ReadAll, then UnmarshalLimit).
func Decode(r io.Reader, v any, max int) error {
	data, err := ReadAll(r, max)
	if err != nil {
		return err
	}
	return UnmarshalLimit(data, v, max)
}

// guard turns a decoder panic into an error wrapping ErrDecoder.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrDecoder, r)
		}
	}()
	return fn()
}

// Clip shortens untrusted bytes for an error message (64 bytes, then "…"), quoted so control
// characters cannot forge log lines.
func Clip(data []byte) string {
	const max = 64
	if len(data) > max {
		return fmt.Sprintf("%q…", data[:max])
	}
	return fmt.Sprintf("%q", data)
}
