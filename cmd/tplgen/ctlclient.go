package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

// maxAPIResponse bounds what ctl reads from one API answer: a device document holds up to
// 10 000 events, a few MiB.
const maxAPIResponse = 64 << 20

// apiClient talks to the JSON API of tplgen emulate (runtime/explorertest).
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// apiError is an error answered by the API: its HTTP status and its message, verbatim.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("API %d %s: %s", e.Status, http.StatusText(e.Status), e.Msg)
}

func newAPIClient(base, token string) (*apiClient, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--api %q: want the emulator's HTTP address, e.g. http://127.0.0.1:8080", base)
	}
	// No overall timeout: --follow and --watch hold requests open; each call has its context.
	return &apiClient{base: u, token: token, http: &http.Client{}}, nil
}

// url joins path segments, each escaped (a device name may hold characters that are special
// in URLs), to the base, with an optional query.
func (c *apiClient) url(query url.Values, segments ...string) string {
	p := c.base.EscapedPath()
	for _, s := range segments {
		p += "/" + url.PathEscape(s)
	}
	if len(query) > 0 {
		p += "?" + query.Encode()
	}
	return c.base.Scheme + "://" + c.base.Host + p
}

func (c *apiClient) newRequest(ctx context.Context, method, target string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends a request and returns the status and the body of a 2xx answer; any other answer
// becomes an *apiError carrying the API's own message.
func (c *apiClient) do(req *http.Request) (int, []byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return 0, nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse+1))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the answer: %w", req.Method, req.URL.Redacted(), err)
	}
	if len(data) > maxAPIResponse {
		return 0, nil, fmt.Errorf("%s %s: answer larger than %d MiB", req.Method, req.URL.Redacted(), maxAPIResponse>>20)
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, data, &apiError{Status: resp.StatusCode, Msg: errorMessage(data)}
	}
	return resp.StatusCode, data, nil
}

// errorMessage extracts {"error": "..."} or, for answers that are not the API's JSON (a
// proxy, an unknown route on an older emulator), the text itself.
func errorMessage(data []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		return e.Error
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	if msg == "" {
		msg = "(empty answer)"
	}
	return msg
}

// getJSON GETs the path and decodes the answer into v.
func (c *apiClient) getJSON(ctx context.Context, v any, segments ...string) error {
	req, err := c.newRequest(ctx, http.MethodGet, c.url(nil, segments...), nil)
	if err != nil {
		return err
	}
	_, data, err := c.do(req)
	if err != nil {
		return err
	}
	return decodeAnswer(req, data, v)
}

// postJSON POSTs body as JSON and decodes the answer into v; it returns the status.
func (c *apiClient) postJSON(ctx context.Context, query url.Values, body, v any, segments ...string) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := c.newRequest(ctx, http.MethodPost, c.url(query, segments...), bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	status, data, err := c.do(req)
	if err != nil {
		return status, err
	}
	return status, decodeAnswer(req, data, v)
}

func decodeAnswer(req *http.Request, data []byte, v any) error {
	if v == nil {
		return nil
	}
	if raw, ok := v.(*json.RawMessage); ok {
		if !json.Valid(data) {
			return fmt.Errorf("%s %s: the answer is not JSON: %.200s", req.Method, req.URL.Redacted(), data)
		}
		*raw = append((*raw)[:0], data...)
		return nil
	}
	if err := jsonguard.UnmarshalLimit(data, v, len(data)); err != nil {
		return fmt.Errorf("%s %s: unexpected answer: %v", req.Method, req.URL.Redacted(), err)
	}
	return nil
}

// timeoutQuery is the ?timeout= the API's POST routes take (how long to wait for the device).
func timeoutQuery(d time.Duration) url.Values {
	if d <= 0 {
		return nil
	}
	return url.Values{"timeout": {d.String()}}
}
