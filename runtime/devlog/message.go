package devlog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

// Topics of the log level exchange.
func upTopic(pid, dn string) string   { return "$log/operation/" + pid + "/" + dn }
func downTopic(pid, dn string) string { return "$log/operation/result/" + pid + "/" + dn }

// levelRequest is the device's get_log_level message.
type levelRequest struct {
	Type        string `json:"type"`
	ClientToken string `json:"clientToken"`
}

// LevelMessage is a decoded $log/operation/result message.
type LevelMessage struct {
	Type        string
	ClientToken string
	Level       Level
	Result      int
}

// ErrBadMessage is wrapped by ParseLevelMessage errors.
var ErrBadMessage = errors.New("devlog: malformed log level message")

// ParseLevelMessage decodes a message received on topic ($log/operation/result/...). The
// error names the topic and the field.
func ParseLevelMessage(topic string, payload []byte) (LevelMessage, error) {
	var raw struct {
		Type        string          `json:"type"`
		ClientToken string          `json:"clientToken"`
		LogLevel    json.RawMessage `json:"log_level"`
		Result      json.RawMessage `json:"result"`
	}
	if err := jsonguard.Unmarshal(payload, &raw); err != nil {
		return LevelMessage{}, fmt.Errorf("%w on %s: %v", ErrBadMessage, topic, err)
	}
	if raw.Type != "get_log_level" {
		return LevelMessage{}, fmt.Errorf("%w on %s: type %q is not get_log_level", ErrBadMessage, topic, raw.Type)
	}
	m := LevelMessage{Type: raw.Type, ClientToken: raw.ClientToken}
	if len(raw.Result) > 0 && string(raw.Result) != "null" {
		r, err := number(raw.Result)
		if err != nil {
			return LevelMessage{}, fmt.Errorf("%w on %s: result: %v", ErrBadMessage, topic, err)
		}
		m.Result = int(r)
	}
	if m.Result != 0 {
		return m, nil // a refusal carries no level
	}
	if len(raw.LogLevel) == 0 || string(raw.LogLevel) == "null" {
		return LevelMessage{}, fmt.Errorf("%w on %s: log_level is missing", ErrBadMessage, topic)
	}
	n, err := number(raw.LogLevel)
	if err != nil {
		return LevelMessage{}, fmt.Errorf("%w on %s: log_level: %v", ErrBadMessage, topic, err)
	}
	if !Level(n).Valid() {
		return LevelMessage{}, fmt.Errorf("%w on %s: log_level %d is not 0..4", ErrBadMessage, topic, n)
	}
	m.Level = Level(n)
	return m, nil
}

// number reads a JSON integer or a string holding one.
func number(raw json.RawMessage) (int64, error) {
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(raw, &str); err != nil {
			return 0, err
		}
		s = strings.TrimSpace(str)
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%.20q is not an integer", s)
	}
	return n, nil
}

// reportBody is the upload request body.
type reportBody struct {
	ProductID  string   `json:"ProductId"`
	DeviceName string   `json:"DeviceName"`
	Message    []string `json:"Message"`
}
