package dynreg

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadResponse marks an HTTP answer that is not a well-formed platform response (non-2xx status
// without a platform error body, a body that is not JSON, missing fields).
var ErrBadResponse = errors.New("dynreg: bad registration response")

// ErrInvalidRequest marks a Request or option set that cannot be sent.
var ErrInvalidRequest = errors.New("dynreg: invalid registration request")

// Error is a rejection by the platform, from either API generation: legacy
// {"code":N,"message":"..."} (Code is the decimal number) or V2
// {"Response":{"Error":{"Code":"...","Message":"..."},"RequestId":"..."}}.
type Error struct {
	API        APIVersion // which API answered
	HTTPStatus int        // HTTP status of the answer (the platform may send errors with 200)
	Code       string     // platform error code
	Message    string     // platform error message
	RequestID  string     // V2 RequestId (empty for legacy)
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dynreg: platform rejected registration (%s API): code %s", e.API, e.Code)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	if e.HTTPStatus != 0 && (e.HTTPStatus < 200 || e.HTTPStatus > 299) {
		fmt.Fprintf(&b, " [HTTP %d]", e.HTTPStatus)
	}
	return b.String()
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidRequest}, args...)...)
}
