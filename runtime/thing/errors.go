package thing

import (
	"errors"
	"fmt"

	"github.com/tplgen/tplgen/runtime/template"
)

// ErrClosed is returned by calls on a Thing after Close, and by requests that were still
// waiting for their reply when Close ran.
var ErrClosed = errors.New("thing: closed")

// Reply codes used on the wire (docs/PROTOCOL.md §2.6). The platform uses the positive HTTP-like
// codes; devices answer control/action with 0 or a non-zero failure code.
const (
	CodeOK           = 0
	CodeMalformed    = 400 // payload is not valid JSON or a required field is missing
	CodeUnknownID    = 403 // unknown method, or an id that is not in the template
	CodeBadTimestamp = 405 // timestamp too far from server time
	CodeInvalidValue = 406 // value of the wrong type or out of range
	CodeInternal     = 503 // internal error (the device uses it when it is overloaded)
	CodeFailed       = -1  // a device handler failed (the C SDK's eDEAL_FAIL)
)

// ReplyError is a reply whose code was not 0: either the platform rejected one of our
// requests (Method is then the reply method, e.g. "report_reply"), or a device handler asked
// for a specific code in its control_reply/action_reply (handlers may return one).
//
// A ReplyError with code 403 matches template.ErrUnknownID and one with 406 matches
// template.ErrInvalidValue under errors.Is, so callers can treat local validation failures
// and platform rejections alike.
type ReplyError struct {
	Code        int
	Status      string
	Method      string
	ClientToken string
}

// Error implements error.
func (e *ReplyError) Error() string {
	msg := fmt.Sprintf("thing: %s code %d", e.Method, e.Code)
	if e.Status != "" {
		msg += fmt.Sprintf(" (%q)", e.Status)
	}
	if e.ClientToken != "" {
		msg += " for clientToken " + e.ClientToken
	}
	return msg
}

// Is maps the platform's codes onto the template package's error kinds.
func (e *ReplyError) Is(target error) bool {
	switch target {
	case template.ErrUnknownID:
		return e.Code == CodeUnknownID
	case template.ErrInvalidValue:
		return e.Code == CodeInvalidValue
	}
	return false
}

// Errorf builds the error a control or action handler returns to answer with a specific
// reply code instead of the default CodeFailed.
func Errorf(code int, format string, args ...any) error {
	return &ReplyError{Code: code, Status: fmt.Sprintf(format, args...)}
}

// ReplyCode returns the code carried by err: 0 for nil, the code of a *ReplyError, else
// CodeFailed.
func ReplyCode(err error) int {
	if err == nil {
		return CodeOK
	}
	var re *ReplyError
	if errors.As(err, &re) {
		return re.Code
	}
	return CodeFailed
}

// IsUnknownID reports whether err says an id (property, event, action) or method is not
// known: a local template check or a 403 from the platform.
func IsUnknownID(err error) bool { return errors.Is(err, template.ErrUnknownID) }

// IsInvalidValue reports whether err says a value has the wrong type or is out of range: a
// local template check or a 406 from the platform.
func IsInvalidValue(err error) bool { return errors.Is(err, template.ErrInvalidValue) }

// IsRejected reports whether err is a reply with a non-zero code (any code).
func IsRejected(err error) bool {
	var re *ReplyError
	return errors.As(err, &re)
}

// codeFor maps a template check error to the code the platform would use.
func codeFor(err error) int {
	switch {
	case errors.Is(err, template.ErrUnknownID):
		return CodeUnknownID
	case errors.Is(err, template.ErrInvalidValue):
		return CodeInvalidValue
	case errors.Is(err, template.ErrMalformed):
		return CodeMalformed
	}
	return CodeInvalidValue
}
