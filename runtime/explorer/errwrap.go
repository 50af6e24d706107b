package explorer

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// opError carries a readable message and unwraps to its sentinel kinds and its cause, so
// errors.Is works for all of them while the text reads "explorer: <what>: <kind>: <detail>:
// <cause>".
type opError struct {
	msg   string
	wraps []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.wraps }

// newError builds an error of the given kind about what (e.g. `publish "a/b"`) with an
// optional cause (nil for none) and no further detail.
func newError(kind, cause error, what string) error {
	return buildError([]error{kind}, cause, what, "")
}

// newErrorf is newError with a detail saying why and what to check. Only called on failure
// paths, so the formatting costs nothing on success.
func newErrorf(kind, cause error, what, format string, args ...any) error {
	return buildError([]error{kind}, cause, what, fmt.Sprintf(format, args...))
}

// notSentf builds an error wrapping both ErrNotSent and kind (a ctx error, ErrClosed, ...):
// the message never left the device.
func notSentf(kind error, what, format string, args ...any) error {
	return buildError([]error{ErrNotSent, kind}, nil, what, fmt.Sprintf(format, args...))
}

func buildError(kinds []error, cause error, what, detail string) error {
	var b strings.Builder
	b.WriteString("explorer: ")
	b.WriteString(what)
	for _, k := range kinds {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(k.Error(), "explorer: "))
	}
	if detail != "" {
		b.WriteString(": ")
		b.WriteString(detail)
	}
	wraps := kinds
	if cause != nil {
		b.WriteString(": ")
		b.WriteString(cause.Error())
		wraps = append(wraps, cause)
	}
	return &opError{msg: b.String(), wraps: wraps}
}

// isCtxErr reports whether err is a context cancellation or deadline.
func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
