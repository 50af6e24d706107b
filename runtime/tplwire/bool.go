package tplwire

import (
	"bytes"
	"fmt"
)

// Bool is a template bool. The platform carries bools as the integers 0 and 1
// (docs/PROTOCOL.md §2.3), so Bool marshals to 0/1; it unmarshals 0/1 and, leniently, true/false.
type Bool bool

// MarshalJSON encodes b as 1 or 0.
func (b Bool) MarshalJSON() ([]byte, error) {
	if b {
		return []byte("1"), nil
	}
	return []byte("0"), nil
}

// UnmarshalJSON accepts 0, 1, true and false. JSON null leaves b unchanged, as
// encoding/json does for other types.
func (b *Bool) UnmarshalJSON(data []byte) error {
	switch string(bytes.TrimSpace(data)) {
	case "1", "true":
		*b = true
	case "0", "false":
		*b = false
	case "null":
	default:
		return fmt.Errorf("tplwire: bool must be 0 or 1, got %s", quoteInput(data))
	}
	return nil
}

// String returns "true" or "false".
func (b Bool) String() string {
	if b {
		return "true"
	}
	return "false"
}

// quoteInput renders (a bounded prefix of) bad input for an error message.
func quoteInput(data []byte) string {
	const limit = 40
	if len(data) > limit {
		return fmt.Sprintf("%q...", data[:limit])
	}
	return fmt.Sprintf("%q", data)
}
