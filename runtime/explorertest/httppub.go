package explorertest

// HTTP publish, the cloud side (docs/PROTOCOL.md §7.9): POST /device/publish on the HTTP and
// HTTPS listeners, signed as in §6.2 (see gatewayapi.go for the answers and error codes).
//
// An accepted message is handled exactly like the same publish over MQTT: the topic ACL
// applies (the device may only publish on its own up topics and custom topics), the uplink
// handlers of every feature see it (a $thing/up/property report updates the reported state,
// and its report_reply goes to the device's MQTT subscription if it has one), and MQTT
// subscribers of the topic receive it. Payload ≤ 16 KiB after base64 decoding.

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// maxHTTPPublishBody bounds a /device/publish body: a 16 KiB payload base64-encoded and
// JSON-escaped, plus the envelope.
const maxHTTPPublishBody = 8*MaxPayload + 4096

type httpPublishBody struct {
	gatewayIdentity
	TopicName       string `json:"TopicName"`
	Payload         string `json:"Payload"`
	PayloadEncoding string `json:"PayloadEncoding"`
	Qos             *int   `json:"Qos"`
}

func (s *Server) initHTTPPublish() error {
	s.mux.HandleFunc("POST /device/publish", s.serveHTTPPublish)
	return nil
}

func (s *Server) serveHTTPPublish(w http.ResponseWriter, r *http.Request) {
	var m httpPublishBody
	id, _, e := s.readGatewayRequest(r, maxHTTPPublishBody, &m)
	if e != nil {
		s.log.Info("explorertest: HTTP publish refused", "device", id.String(), "code", e.code, "reason", e.message)
		writeGateway(w, e)
		return
	}
	if e := s.httpPublish(id, m); e != nil {
		s.log.Info("explorertest: HTTP publish refused", "device", id.String(), "topic", m.TopicName, "code", e.code, "reason", e.message)
		writeGateway(w, e)
		return
	}
	writeGateway(w, nil)
}

func (s *Server) httpPublish(id DeviceID, m httpPublishBody) *gwError {
	qos := 0
	if m.Qos != nil {
		qos = *m.Qos
	}
	payload := []byte(m.Payload)
	switch {
	case m.TopicName == "":
		return gwErr(GWInvalidParameter, "TopicName is missing")
	case qos != 0 && qos != 1:
		return gwErr(GWInvalidParameter, "Qos %d: the platform supports 0 and 1", qos)
	case m.PayloadEncoding != "" && !strings.EqualFold(m.PayloadEncoding, "base64"):
		return gwErr(GWInvalidParameter, "PayloadEncoding %q: only \"base64\" (or none) is supported", m.PayloadEncoding)
	case m.PayloadEncoding != "":
		b, err := base64.StdEncoding.DecodeString(m.Payload)
		if err != nil {
			return gwErr(GWInvalidParameter, "Payload is not base64 although PayloadEncoding is base64: %v", err)
		}
		payload = b
	}
	if len(payload) > MaxPayload {
		return gwErr(GWPayloadTooLarge, "Payload of %d bytes, the limit is %d", len(payload), MaxPayload)
	}
	if err := s.checkTopic(id, m.TopicName, accessPublish); err != nil {
		return gwErr(GWTopicNotAllowed, "device %s may not publish on %q: %v", id, m.TopicName, err)
	}
	s.log.Info("explorertest: HTTP publish", "device", id.String(), "topic", m.TopicName, "bytes", len(payload))
	s.dispatchUplink(id, m.TopicName, payload, byte(qos))
	// MQTT subscribers of the topic (custom topics) receive it too; device up topics have none.
	if err := s.Publish(m.TopicName, payload, byte(qos)); err != nil {
		return &gwError{status: http.StatusInternalServerError, code: "InternalError", message: err.Error()}
	}
	return nil
}
