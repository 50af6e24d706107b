package explorertest

// Helpers for reading device- and client-supplied JSON: every decode goes through
// internal/jsonguard (size cap, validation, recover), and every refusal carries the platform
// reply code and names the field (codeError).

import (
	"bytes"
	"errors"
	"fmt"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
	"github.com/tplgen/tplgen/runtime/template"
)

// reply is a cloud→device *_reply. Data is raw so that an empty object can be sent as {}.
type reply struct {
	Method      string          `json:"method,omitempty"` // empty only when the request had none
	ClientToken string          `json:"clientToken"`
	Version     string          `json:"version,omitempty"`
	Code        int             `json:"code"`
	Status      string          `json:"status"`
	Type        string          `json:"type,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// codeError is a rejection with the platform's reply code.
type codeError struct {
	code int
	msg  string
}

func (e *codeError) Error() string { return e.msg }

func rejectf(code int, format string, args ...any) *codeError {
	return &codeError{code: code, msg: fmt.Sprintf(format, args...)}
}

// templateCode maps a template check error to the platform's reply code.
func templateCode(err error) int {
	switch {
	case errors.Is(err, template.ErrUnknownID):
		return CodeUnknownID
	case errors.Is(err, template.ErrInvalidValue):
		return CodeInvalidValue
	default: // template.ErrMalformed and anything unexpected about the JSON shape
		return CodeBadJSON
	}
}

// unmarshalUntrusted and compactUntrusted apply the project's untrusted-JSON policy
// (internal/jsonguard: size cap, validation, recover) to device- and client-supplied JSON.
func unmarshalUntrusted(data []byte, v any) error { return jsonguard.Unmarshal(data, v) }

func compactUntrusted(dst *bytes.Buffer, src []byte) error { return jsonguard.Compact(dst, src) }

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func rawString(raw json.RawMessage, field string) (string, *codeError) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := unmarshalUntrusted(raw, &s); err != nil {
		return "", rejectf(CodeBadJSON, "%s: must be a string, got %s", field, clip(raw))
	}
	return s, nil
}

// clip shortens raw JSON for an error message.
func clip(raw []byte) string {
	const max = 64
	if len(raw) > max {
		return string(raw[:max]) + "…"
	}
	return string(raw)
}

// parseObject checks that raw is a JSON object.
func parseObject(raw json.RawMessage, field string) *codeError {
	if isNull(raw) {
		return rejectf(CodeBadJSON, "%s: missing", field)
	}
	if raw[0] != '{' {
		return rejectf(CodeBadJSON, "%s: must be a JSON object, got %s", field, clip(raw))
	}
	return nil
}

// marshalJSON encodes everything the platform writes (downlinks, API answers) without HTML
// escaping: goccy's Marshal, like encoding/json's, writes & < > as \u0026 \u003c \u003e, even
// inside a json.RawMessage, and the C SDK does not unescape them, so a signed firmware URL
// arrived with "\u0026" in its query and the download was refused.
func marshalJSON(v any) ([]byte, error) {
	return json.MarshalWithOption(v, json.DisableHTMLEscape())
}
