package explorer

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// opError carries a readable message and unwraps to its sentinel kind and its cause, so that
// errors.Is works for both while the text reads "explorer: <what>: <kind>: <cause>".
type opError struct {
	msg   string
	wraps []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.wraps }

// newError builds an error of the given kind about what (e.g. `publish "a/b"`), with an
// optional cause (an error or nil) and reason text.
func newError(kind error, cause error, what string, reasonArgs ...any) error {
	var b strings.Builder
	b.WriteString("explorer: ")
	b.WriteString(what)
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(kind.Error(), "explorer: "))
	if len(reasonArgs) > 0 {
		format, _ := reasonArgs[0].(string)
		b.WriteString(": ")
		b.WriteString(fmt.Sprintf(format, reasonArgs[1:]...))
	}
	wraps := []error{kind}
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
