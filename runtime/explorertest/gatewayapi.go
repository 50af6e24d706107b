package explorertest

// The device gateway's signed HTTPS API (docs/PROTOCOL.md §6.2 signing), shared by HTTP publish
// (§7.9, httppub.go) and the device log upload (§7.2, devlog.go). Answers use the gateway's
// envelope: {"Response":{"RequestId":...}} on success and
// {"Response":{"Error":{"Code","Message"},"RequestId"}} on failure, with HTTP 200 as the cloud
// API does, except 405 (not POST), 413 (body too large) and 500. Error codes (this project's
// choice where the platform documents none, in the style of registrar's):
//
//	InvalidParameterValue                 malformed body or field (the message names it)
//	InvalidParameterValue.RequestBodyTooLarge
//	AuthFailure.SignatureFailure          signature header missing, malformed or wrong
//	AuthFailure.SignatureExpire           X-TC-Timestamp more than 5 minutes from platform time
//	ResourceNotFound.DeviceNotExist       unknown ProductId/DeviceName
//	UnauthorizedOperation.TopicNotAllowed publish to a topic the device may not publish on
//	LimitExceeded.PayloadTooLarge         payload over the 16 KiB publish limit

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/internal/devhttp"
)

// Gateway API error codes.
const (
	GWInvalidParameter = "InvalidParameterValue"
	GWTooLarge         = "InvalidParameterValue.RequestBodyTooLarge"
	GWSignature        = "AuthFailure.SignatureFailure"
	GWExpired          = "AuthFailure.SignatureExpire"
	GWDeviceNotExist   = "ResourceNotFound.DeviceNotExist"
	GWTopicNotAllowed  = "UnauthorizedOperation.TopicNotAllowed"
	GWPayloadTooLarge  = "LimitExceeded.PayloadTooLarge"
)

// gatewayMaxSkew is how far X-TC-Timestamp may be from the platform's clock.
const gatewayMaxSkew = 5 * time.Minute

type gwError struct {
	status  int
	code    string
	message string
}

func gwErr(code, format string, args ...any) *gwError {
	return &gwError{status: http.StatusOK, code: code, message: fmt.Sprintf(format, args...)}
}

func gwRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func writeGateway(w http.ResponseWriter, e *gwError) {
	resp := map[string]any{"RequestId": gwRequestID()}
	status := http.StatusOK
	if e != nil {
		resp["Error"] = map[string]string{"Code": e.code, "Message": e.message}
		status = e.status
	}
	b, _ := json.Marshal(map[string]any{"Response": resp})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// gatewayIdentity is the part of every gateway request body naming the device.
type gatewayIdentity struct {
	ProductID  string `json:"ProductId"`
	DeviceName string `json:"DeviceName"`
}

// readGatewayRequest reads a signed gateway request of at most limit bytes, decodes it into v
// (which must embed or contain ProductId/DeviceName) and checks the device's signature.
func (s *Server) readGatewayRequest(r *http.Request, limit int64, v any) (DeviceID, []byte, *gwError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return DeviceID{}, nil, gwErr(GWInvalidParameter, "reading the request body: %v", err)
	}
	if int64(len(body)) > limit {
		return DeviceID{}, nil, &gwError{status: http.StatusRequestEntityTooLarge, code: GWTooLarge, message: fmt.Sprintf("request body over %d bytes", limit)}
	}
	var ident gatewayIdentity
	if err := unmarshalUntrusted(body, &ident); err != nil {
		return DeviceID{}, nil, gwErr(GWInvalidParameter, "request body: %v", err)
	}
	if ident.ProductID == "" || ident.DeviceName == "" {
		return DeviceID{}, nil, gwErr(GWInvalidParameter, "request body needs ProductId and DeviceName")
	}
	id := DeviceID(ident)
	cred, ok := s.gatewayCredentials(id)
	if !ok {
		return id, nil, gwErr(GWDeviceNotExist, "device %s does not exist", id)
	}
	if err := devhttp.Verify(r, body, cred, s.clock(), gatewayMaxSkew); err != nil {
		if errors.Is(err, devhttp.ErrExpired) {
			return id, nil, gwErr(GWExpired, "%v", err)
		}
		return id, nil, gwErr(GWSignature, "device %s: %v", id, err)
	}
	if err := unmarshalUntrusted(body, v); err != nil {
		return id, nil, gwErr(GWInvalidParameter, "request body: %v", err)
	}
	return id, body, nil
}

// gatewayCredentials returns what checks a device's request signature.
func (s *Server) gatewayCredentials(id DeviceID) (devhttp.Credentials, bool) {
	s.regMu.Lock()
	d, ok := s.devices[id]
	var secret string
	var certPEM []byte
	if ok {
		secret, certPEM = d.secret, d.certPEM
	}
	s.regMu.Unlock()
	if !ok {
		return devhttp.Credentials{}, false
	}
	if secret != "" {
		return devhttp.Credentials{Secret: secret}, true
	}
	if blk, _ := pem.Decode(certPEM); blk != nil {
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
			return devhttp.Credentials{Certificate: c}, true
		}
	}
	return devhttp.Credentials{}, true // a device without usable credentials fails every signature
}
