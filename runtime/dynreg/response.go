package dynreg

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"

	"github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

type legacyResponse struct {
	Code    *flexCode `json:"code"`
	Message string    `json:"message"`
	Len     int       `json:"len"`
	Payload string    `json:"payload"`
}

type v2Response struct {
	Response *struct {
		Len       int    `json:"Len"`
		Payload   string `json:"Payload"`
		RequestID string `json:"RequestId"`
		Error     *struct {
			Code    flexCode `json:"Code"`
			Message string   `json:"Message"`
		} `json:"Error"`
	} `json:"Response"`
}

// flexCode accepts an error code sent as a JSON number or string.
type flexCode string

func (c *flexCode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = flexCode(s)
		return nil
	}
	if _, err := strconv.ParseFloat(string(b), 64); err != nil {
		return fmt.Errorf("code %s is neither a number nor a string", b)
	}
	*c = flexCode(b)
	return nil
}

// parseResponse returns the encrypted payload and its plaintext length, a platform *Error, or an
// ErrBadResponse error.
func parseResponse(api APIVersion, status int, body []byte) (payload string, length int, err error) {
	ok := status >= 200 && status <= 299
	bad := func(what string) error {
		if ok {
			return fmt.Errorf("%w: HTTP %d, %s", ErrBadResponse, status, what)
		}
		return fmt.Errorf("%w: HTTP %d %s, %s: %s", ErrBadResponse, status, statusText(status), what, snippet(body))
	}
	if api == Legacy {
		var r legacyResponse
		if err := jsonguard.Unmarshal(body, &r); err != nil {
			return "", 0, bad("body is not a legacy registration JSON object")
		}
		if r.Code == nil {
			return "", 0, bad(`answer has no "code"`)
		}
		if *r.Code != "0" || !ok {
			return "", 0, &Error{API: api, HTTPStatus: status, Code: string(*r.Code), Message: r.Message}
		}
		if r.Payload == "" {
			return "", 0, bad(`answer has code 0 but no "payload"`)
		}
		return r.Payload, r.Len, nil
	}
	var r v2Response
	if err := jsonguard.Unmarshal(body, &r); err != nil {
		return "", 0, bad("body is not a registration JSON object")
	}
	if r.Response == nil {
		return "", 0, bad(`answer has no "Response" object`)
	}
	if e := r.Response.Error; e != nil {
		return "", 0, &Error{API: api, HTTPStatus: status, Code: string(e.Code), Message: e.Message, RequestID: r.Response.RequestID}
	}
	if !ok {
		return "", 0, bad("Response without Error")
	}
	if r.Response.Payload == "" {
		return "", 0, bad(`Response has no "Payload"`)
	}
	return r.Response.Payload, r.Response.Len, nil
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "status"
}

// snippet quotes the start of an error body (non-2xx answers carry no credentials).
func snippet(b []byte) string {
	const max = 200
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	if len(b) == 0 {
		return "empty body"
	}
	return strconv.Quote(string(b))
}
