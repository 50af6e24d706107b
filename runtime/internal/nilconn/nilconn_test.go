package nilconn

import "testing"

type conn struct{}

func (*conn) ProductID() string { return "P" }

type namer interface{ ProductID() string }

func TestIs(t *testing.T) {
	var nilPtr *conn
	for _, c := range []struct {
		name string
		conn any
		want bool
	}{
		{"untyped nil", nil, true},
		{"nil interface", namer(nil), true},
		{"nil pointer in an interface", namer(nilPtr), true},
		{"a connection", namer(&conn{}), false},
		{"a value that is no pointer", "x", false},
	} {
		if got := Is(c.conn); got != c.want {
			t.Errorf("%s: Is = %v, want %v", c.name, got, c.want)
		}
	}
}
