package explorertest

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

// Strict request bodies (issue 13): a body must be one JSON object with only the documented
// top-level fields; anything else is a 400 naming the field and showing the expected shape.

// decodeBody reads r's body (at most maxAPIBody) into v, a pointer to a struct whose json tags
// are the allowed fields: the one way every JSON API route reads its body. On failure it
// answers 413 (too large) or 400 naming the problem and the expected shape, and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	return readBody(w, r, v, shape, false)
}

// decodeOptionalBody is decodeBody for routes whose body may be left out (empty means {}).
func decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	return readBody(w, r, v, shape, true)
}

func readBody(w http.ResponseWriter, r *http.Request, v any, shape string, optional bool) bool {
	data, err := jsonguard.ReadAll(r.Body, maxAPIBody)
	if err == nil && !(optional && len(bytes.TrimSpace(data)) == 0) {
		err = decodeStrict(data, v)
	}
	switch {
	case err == nil:
		return true
	case errors.Is(err, jsonguard.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "body: "+err.Error())
	default:
		writeError(w, http.StatusBadRequest, "body: "+err.Error()+"; want "+shape)
	}
	return false
}

// decodeStrict decodes a JSON object into v, refusing fields v's struct does not declare.
func decodeStrict(data []byte, v any) error {
	var fields map[string]json.RawMessage
	if err := unmarshalUntrusted(data, &fields); err != nil {
		return err
	}
	if fields == nil {
		return fmt.Errorf("not a JSON object")
	}
	allowed := jsonFields(reflect.TypeOf(v).Elem())
	var unknown []string
	for k := range fields {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown field %s (allowed: %s)", quoteList(unknown), strings.Join(allowed, ", "))
	}
	// Nested objects are strict too (the error names the key).
	return jsonguard.UnmarshalStrict(data, v, maxAPIBody)
}

func quoteList(ks []string) string {
	q := make([]string, len(ks))
	for i, k := range ks {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q, ", ")
}

// jsonFields lists the json names of a struct type's fields.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// sortBy sorts xs by a string key.
func sortBy[T any](xs []T, key func(T) string) {
	slices.SortFunc(xs, func(a, b T) int { return strings.Compare(key(a), key(b)) })
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// templateOrder renders a property map as a JSON object in the product template's order
// (unknown keys last, sorted), as the console and API clients expect to read it.
func (s *Server) templateOrder(pid string, values map[string]json.RawMessage) json.RawMessage {
	tpl, _ := s.Product(pid)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range orderedKeys(tpl, values) {
		if i > 0 {
			b.WriteByte(',')
		}
		writeKey(&b, k)
		b.Write(values[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// reportedAt is when each reported property was last set (Unix ms).
func (s *Server) reportedAt(id DeviceID) map[string]int64 {
	tc := s.thing
	tc.mu.Lock()
	defer tc.mu.Unlock()
	out := map[string]int64{}
	for k, v := range tc.peekLocked(id).reportedAt {
		out[k] = v
	}
	return out
}

// gatewayOf returns the gateway a sub-device is bound to.
func (s *Server) gatewayOf(id DeviceID) (DeviceID, bool) {
	g := s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	gw, ok := g.bound[id]
	return gw, ok
}

// productKnown reports whether pid has a data template or at least one registered device.
func (s *Server) productKnown(pid string) bool {
	if _, ok := s.Product(pid); ok {
		return true
	}
	s.regMu.Lock()
	defer s.regMu.Unlock()
	for id := range s.devices {
		if id.ProductID == pid {
			return true
		}
	}
	return false
}
