package ota

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"

	"github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

// Version length limits of report_version (docs/PROTOCOL.md §4.2, C OTA_VERSION_STR_LEN_MIN/MAX).
const (
	MinVersionLen = 1
	MaxVersionLen = 32
)

// Firmware describes one firmware image offered by the platform in an update_firmware message.
type Firmware struct {
	Version     string // target version, 1–32 characters
	URL         string // pre-signed download URL (http or https)
	MD5         string // 32 lower-case hex characters
	Size        int64  // bytes (file_size)
	UserDefined string // user_defined text set in the console, may be empty
}

// File is the download description of fw (its version is the resume identity).
func (fw Firmware) File() File {
	return File{ID: fw.Version, URL: fw.URL, MD5: fw.MD5, Size: fw.Size}
}

// String describes fw with its URL's query (the signature, a credential) removed.
func (fw Firmware) String() string {
	return fmt.Sprintf("ota.Firmware{Version:%q URL:%q MD5:%s Size:%d UserDefined:%q}",
		fw.Version, redactURL(fw.URL), fw.MD5, fw.Size, fw.UserDefined)
}

// GoString is String, so %#v does not print the URL's signature either.
func (fw Firmware) GoString() string { return fw.String() }

// LogValue keeps the URL's signature out of structured logs.
func (fw Firmware) LogValue() slog.Value {
	return slog.GroupValue(slog.String("version", fw.Version), slog.String("url", redactURL(fw.URL)),
		slog.String("md5", fw.MD5), slog.Int64("size", fw.Size))
}

// Validate checks the description; the error wraps ErrInvalidFirmware and names the field.
func (fw Firmware) Validate() error {
	if err := checkVersion(fw.Version); err != nil {
		return fmt.Errorf("%w: version: %v", ErrInvalidFirmware, err)
	}
	if err := checkURL(fw.URL); err != nil {
		return fmt.Errorf("%w: url: %v", ErrInvalidFirmware, err)
	}
	if !isMD5Hex(fw.MD5) {
		return fmt.Errorf("%w: md5sum: %q is not 32 hex characters", ErrInvalidFirmware, fw.MD5)
	}
	if fw.Size <= 0 {
		return fmt.Errorf("%w: file_size: %d is not a positive byte count", ErrInvalidFirmware, fw.Size)
	}
	return nil
}

func checkVersion(v string) error {
	if len(v) < MinVersionLen || len(v) > MaxVersionLen {
		return fmt.Errorf("%q must be %d–%d characters, got %d", v, MinVersionLen, MaxVersionLen, len(v))
	}
	return nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("no host")
	}
	return nil
}

func isMD5Hex(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// redactURL drops the query (the signature) so URLs can appear in logs and errors.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid url>"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// updateMsg is the wire form of update_firmware.
type updateMsg struct {
	Type        string          `json:"type"`
	Version     string          `json:"version"`
	URL         string          `json:"url"`
	MD5         string          `json:"md5sum"`
	FileSize    json.RawMessage `json:"file_size"`
	UserDefined json.RawMessage `json:"user_defined"`
}

// ParseUpdate decodes an update_firmware payload received on topic. file_size may be a JSON
// number or a decimal string; the MD5 is normalised to lower case. Errors name the topic and
// the offending field and wrap ErrInvalidFirmware.
func ParseUpdate(topic string, payload []byte) (Firmware, error) {
	var m updateMsg
	if err := jsonguard.Unmarshal(payload, &m); err != nil {
		return Firmware{}, fmt.Errorf("%w: %s: malformed JSON: %v", ErrInvalidFirmware, topic, err)
	}
	if m.Type != "update_firmware" {
		return Firmware{}, fmt.Errorf("%w: %s: type: %q is not update_firmware", ErrInvalidFirmware, topic, m.Type)
	}
	size, err := parseSize(m.FileSize)
	if err != nil {
		return Firmware{}, fmt.Errorf("%w: %s: file_size: %v", ErrInvalidFirmware, topic, err)
	}
	ud, err := parseUserDefined(m.UserDefined)
	if err != nil {
		return Firmware{}, fmt.Errorf("%w: %s: user_defined: %v", ErrInvalidFirmware, topic, err)
	}
	fw := Firmware{Version: m.Version, URL: m.URL, MD5: toLowerHex(m.MD5), Size: size, UserDefined: ud}
	if err := fw.Validate(); err != nil {
		return Firmware{}, fmt.Errorf("%s: %w", topic, err)
	}
	return fw, nil
}

// parseInt accepts an integer as a JSON number or a decimal string (the platform and the SDKs
// disagree on which, docs/PROTOCOL.md §4.2).
func parseInt(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, fmt.Errorf("missing")
	}
	text := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, fmt.Errorf("bad string: %v", err)
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer", raw)
	}
	return n, nil
}

func parseSize(raw json.RawMessage) (int64, error) {
	n, err := parseInt(raw)
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, fmt.Errorf("%d is not a positive byte count", n)
	}
	return n, nil
}

// parseUserDefined accepts the documented JSON-encoded string and, leniently, a raw JSON
// object (kept as its text).
func parseUserDefined(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	}
	if raw[0] == '{' {
		return string(raw), nil
	}
	return "", fmt.Errorf("%s is not a string", raw)
}

func toLowerHex(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
