package gateway

import (
	"errors"
	"fmt"
)

// Result codes of gateway operations (docs/PROTOCOL.md §5.4), usable with errors.Is against a
// *ResultError.
var (
	ErrNotBound          = &ResultError{Code: -1}
	ErrSystem            = &ResultError{Code: -2}
	ErrInvalidParams     = &ResultError{Code: 801}
	ErrDeviceNotFound    = &ResultError{Code: 802}
	ErrBadSignature      = &ResultError{Code: 803}
	ErrSignMethod        = &ResultError{Code: 804}
	ErrSignatureExpired  = &ResultError{Code: 805}
	ErrBoundElsewhere    = &ResultError{Code: 806}
	ErrNotOrdinaryDevice = &ResultError{Code: 807}
	ErrNotAllowed        = &ResultError{Code: 808}
	ErrDuplicateBind     = &ResultError{Code: 809}
	ErrUnsupportedType   = &ResultError{Code: 810}
)

// ErrClosed is returned by operations on a closed Gateway.
var ErrClosed = errors.New("gateway: closed")

var resultText = map[int]string{
	-1:  "gateway is not bound to this sub-device",
	-2:  "system error",
	801: "invalid request parameters",
	802: "device name invalid or device does not exist",
	803: "signature check failed",
	804: "sign method not supported",
	805: "signature request expired",
	806: "device already bound to another gateway",
	807: "non-ordinary device cannot be bound",
	808: "operation not allowed",
	809: "duplicate bind",
	810: "sub-device type not supported",
}

// ResultError is a non-zero per-device result of a gateway operation.
type ResultError struct {
	Op     string // "bind", "unbind", "online", "offline"
	Device Device
	Code   int
}

// Error names the operation, the sub-device and the result code with its meaning.
func (e *ResultError) Error() string {
	text, ok := resultText[e.Code]
	if !ok {
		text = "unknown result code"
	}
	if e.Op == "" {
		return fmt.Sprintf("gateway: result %d (%s)", e.Code, text)
	}
	return fmt.Sprintf("gateway: %s %s: result %d (%s)", e.Op, e.Device, e.Code, text)
}

// Is matches another *ResultError with the same code, so errors.Is(err, ErrBadSignature) works.
func (e *ResultError) Is(target error) bool {
	t, ok := target.(*ResultError)
	return ok && t.Code == e.Code
}
