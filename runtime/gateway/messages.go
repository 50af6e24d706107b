package gateway

import "github.com/goccy/go-json"

// Operation types on $gateway/operation[/result] (docs/PROTOCOL.md §5.2).
const (
	opBind      = "bind"
	opUnbind    = "unbind"
	opOnline    = "online"
	opOffline   = "offline"
	opDescribe  = "describe_sub_devices"
	opChange    = "change"
	opUnbindAll = "unbind_all"
	opSearch    = "search_devices"
)

type wireDevice struct {
	ProductID  string `json:"product_id"`
	DeviceName string `json:"device_name"`
	Signature  string `json:"signature,omitempty"`
	Random     int64  `json:"random,omitempty"`
	Timestamp  int64  `json:"timestamp,omitempty"`
	SignMethod string `json:"signmethod,omitempty"`
	AuthType   string `json:"authtype,omitempty"`
	Result     *int   `json:"result,omitempty"`
}

type request struct {
	Type    string          `json:"type"`
	Payload *requestPayload `json:"payload,omitempty"`
}

type requestPayload struct {
	Status  *int         `json:"status,omitempty"`
	Devices []wireDevice `json:"devices"`
}

// downlink is everything the platform sends on the result topic; fields are optional
// because the shape depends on the type.
type downlink struct {
	Type    string `json:"type"`
	Result  *int   `json:"result"`
	Payload struct {
		Status  *int            `json:"status"`
		Devices json.RawMessage `json:"devices"`
	} `json:"payload"`
}

type ackPayload struct {
	Status  *int         `json:"status,omitempty"`
	Result  *int         `json:"result,omitempty"`
	Devices []wireDevice `json:"devices,omitempty"`
}

type ack struct {
	Type    string     `json:"type"`
	Payload ackPayload `json:"payload"`
}

func intPtr(v int) *int { return &v }
