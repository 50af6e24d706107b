// Package roundtrip holds the wire-format tests of generated code: docs/PROTOCOL.md and
// conformance payloads are decoded into the golden packages' types (testdata/golden/...) and
// re-encoded, and must come out as the same JSON. It has no non-test code; it lives outside
// testdata so `go test ./...` runs it.
package roundtrip
