package devhttp

import stdjson "encoding/json"

// validJSON is the standard library's validator, used as the guard in front of goccy.
func validJSON(b []byte) bool { return stdjson.Valid(b) }
