// Package nilconn tells whether a connection handed to a runtime package as an interface is
// missing. A nil *explorer.Conn stored in an interface is not == nil, and the packages that
// accept any connection with the right methods (runtime/rrpc, runtime/devlog,
// runtime/resource) must refuse it with an error instead of panicking on first use.
package nilconn

import "reflect"

// Is reports whether conn is nil, or a nil pointer held in a non-nil interface.
func Is(conn any) bool {
	if conn == nil {
		return true
	}
	v := reflect.ValueOf(conn)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
