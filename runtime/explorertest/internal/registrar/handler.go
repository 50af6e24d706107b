package registrar

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

// API paths.
const (
	PathV2     = "/device/register"
	PathLegacy = "/register/dev"
)

// maxBody bounds a registration request; a real one is ~100 bytes (a custom cert ~2 KB).
const maxBody = 64 << 10

type v2Body struct {
	ProductID      string `json:"ProductId"`
	DeviceName     string `json:"DeviceName"`
	EncryptionType int    `json:"EncryptionType"`
	ClientCert     string `json:"ClientCert"`
}

type legacyBody struct {
	DeviceName string `json:"deviceName"`
	Nonce      *int64 `json:"nonce"`
	ProductID  string `json:"productId"`
	Timestamp  *int64 `json:"timestamp"`
	Signature  string `json:"signature"`
}

// issued is a successful registration before encryption.
type issued struct {
	Plaintext []byte
	Secret    string
}

func (r *Registrar) serveV2(w http.ResponseWriter, req *http.Request) {
	requestID := newRequestID()
	res, err := r.handleV2(req)
	if err != nil {
		r.log.Info("registrar: v2 registration rejected", "product", err.product, "device", err.device,
			"code", err.code, "message", err.message, "remote", req.RemoteAddr, "request_id", requestID)
		writeJSON(w, err.status, map[string]any{"Response": map[string]any{
			"Error":     map[string]string{"Code": err.code, "Message": err.message},
			"RequestId": requestID,
		}})
		return
	}
	payload, encErr := Encrypt(res.Secret, res.Plaintext)
	if encErr != nil {
		e := newErr(CodeInternal, "encrypting payload failed")
		writeJSON(w, e.status, map[string]any{"Response": map[string]any{
			"Error": map[string]string{"Code": e.code, "Message": e.message}, "RequestId": requestID}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"Response": map[string]any{
		"Len": len(res.Plaintext), "Payload": payload, "RequestId": requestID,
	}})
}

func (r *Registrar) serveLegacy(w http.ResponseWriter, req *http.Request) {
	res, err := r.handleLegacy(req)
	if err != nil {
		r.log.Info("registrar: legacy registration rejected", "product", err.product, "device", err.device,
			"code", err.legacy, "message", err.message, "remote", req.RemoteAddr)
		writeJSON(w, err.status, map[string]any{"code": err.legacy, "message": err.message})
		return
	}
	payload, encErr := Encrypt(res.Secret, res.Plaintext)
	if encErr != nil {
		e := newErr(CodeInternal, "encrypting payload failed")
		writeJSON(w, e.status, map[string]any{"code": e.legacy, "message": e.message})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"code": 0, "message": "success", "len": len(res.Plaintext), "payload": payload})
}

func (r *Registrar) handleV2(req *http.Request) (res *issued, e *apiError) {
	var pid, dn string // from the body, once read: every later refusal names the device
	defer func() {
		if e != nil {
			e.product, e.device = pid, dn
		}
	}()
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	alg := req.Header.Get("X-TC-Algorithm")
	tsText := req.Header.Get("X-TC-Timestamp")
	nonceText := req.Header.Get("X-TC-Nonce")
	sig := req.Header.Get("X-TC-Signature")
	switch {
	case alg == "":
		return nil, newErr(CodeInvalidParameter, "missing header X-TC-Algorithm")
	case !strings.EqualFold(alg, "hmacsha256"):
		return nil, newErr(CodeInvalidParameter, fmt.Sprintf("X-TC-Algorithm %q is not supported (want hmacsha256)", alg))
	case sig == "":
		return nil, newErr(CodeInvalidParameter, "missing header X-TC-Signature")
	}
	ts, perr := strconv.ParseInt(tsText, 10, 64)
	if perr != nil {
		return nil, newErr(CodeInvalidParameter, fmt.Sprintf("header X-TC-Timestamp %q is not an integer", tsText))
	}
	if _, perr := strconv.ParseInt(nonceText, 10, 64); perr != nil {
		return nil, newErr(CodeInvalidParameter, fmt.Sprintf("header X-TC-Nonce %q is not an integer", nonceText))
	}
	var b v2Body
	if jerr := jsonguard.Unmarshal(body, &b); jerr != nil {
		return nil, newErr(CodeInvalidParameter, "request body is not a JSON object")
	}
	pid, dn = b.ProductID, b.DeviceName
	if b.ProductID == "" || b.DeviceName == "" {
		return nil, newErr(CodeInvalidParameter, "request body needs ProductId and DeviceName")
	}
	prod, ok := r.Product(b.ProductID)
	if !ok {
		return nil, newErr(CodeProductNotExist, fmt.Sprintf("product %s does not exist", b.ProductID))
	}
	// The algorithm is signed exactly as sent in the header. The host is signed as the Host
	// header carries it, or without its port: the official Python SDK signs the endpoint's
	// host name alone while its Host header names any non-default port (on the real cloud's
	// default ports the two agree), so both forms are accepted, nothing else.
	if !signedHostMatches(sig, prod.Secret, req.Host, req.URL.Path, alg, tsText, nonceText, body) {
		return nil, newErr(CodeSignature, "signature does not match")
	}
	if e := r.checkTime(ts); e != nil {
		return nil, e
	}
	if b.EncryptionType != 0 || b.ClientCert != "" {
		return nil, newErr(CodeUnsupported, "registration with a custom ClientCert is not supported")
	}
	return r.issue(prod, b.ProductID, b.DeviceName)
}

// signedHostMatches reports whether sig is the v2 signature over host, or over host with its
// ":port" removed.
func signedHostMatches(sig, secret, host, path, alg, ts, nonce string, body []byte) bool {
	if equalStrings(sig, v2Signature(secret, host, path, alg, ts, nonce, body)) {
		return true
	}
	name, _, err := net.SplitHostPort(host)
	if err != nil || name == "" {
		return false
	}
	if strings.Contains(name, ":") { // IPv6 literal: the Host header brackets it
		name = "[" + name + "]"
	}
	return equalStrings(sig, v2Signature(secret, name, path, alg, ts, nonce, body))
}

func (r *Registrar) handleLegacy(req *http.Request) (res *issued, e *apiError) {
	var pid, dn string // from the body, once read: every later refusal names the device
	defer func() {
		if e != nil {
			e.product, e.device = pid, dn
		}
	}()
	body, err := readBody(req)
	if err != nil {
		return nil, err
	}
	// The C SDK labels the JSON body application/x-www-form-urlencoded, so the content type is
	// not checked.
	var b legacyBody
	if jerr := jsonguard.Unmarshal(body, &b); jerr != nil {
		return nil, newErr(CodeInvalidParameter, "request body is not a JSON object with deviceName, nonce, productId, timestamp, signature")
	}
	pid, dn = b.ProductID, b.DeviceName
	switch {
	case b.ProductID == "":
		return nil, newErr(CodeInvalidParameter, "productId is missing")
	case b.DeviceName == "":
		return nil, newErr(CodeInvalidParameter, "deviceName is missing")
	case b.Nonce == nil:
		return nil, newErr(CodeInvalidParameter, "nonce is missing")
	case b.Timestamp == nil:
		return nil, newErr(CodeInvalidParameter, "timestamp is missing")
	case b.Signature == "":
		return nil, newErr(CodeInvalidParameter, "signature is missing")
	}
	prod, ok := r.Product(b.ProductID)
	if !ok {
		return nil, newErr(CodeProductNotExist, fmt.Sprintf("product %s does not exist", b.ProductID))
	}
	want := legacySignature(prod.Secret, b.ProductID, b.DeviceName, *b.Nonce, *b.Timestamp)
	if !equalStrings(b.Signature, want) {
		return nil, newErr(CodeSignature, "signature does not match")
	}
	if e := r.checkTime(*b.Timestamp); e != nil {
		return nil, e
	}
	return r.issue(prod, b.ProductID, b.DeviceName)
}

func (r *Registrar) checkTime(ts int64) *apiError {
	now := r.now()
	d := now.Sub(time.Unix(ts, 0))
	if d > r.maxSkew || d < -r.maxSkew {
		return newErr(CodeExpired, fmt.Sprintf("timestamp %d is outside ±%ds of platform time %d", ts, int(r.maxSkew/time.Second), now.Unix()))
	}
	return nil
}

// issue applies the product policy and builds the plaintext payload.
func (r *Registrar) issue(prod Product, pid, dn string) (*issued, *apiError) {
	if !prod.Enabled {
		return nil, newErr(CodeDisabled, fmt.Sprintf("dynamic registration is disabled for product %s", pid))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.devices.State(pid, dn) {
	case DeviceActivated:
		return nil, newErr(CodeActivated, fmt.Sprintf("device %s/%s is already activated; delete it before registering again", pid, dn))
	case DeviceUnknown:
		if !prod.AutoCreate {
			return nil, newErr(CodeDeviceNotExist, fmt.Sprintf("device %s/%s does not exist and auto-create is off", pid, dn))
		}
		if err := r.devices.Create(pid, dn, prod.Credential); err != nil {
			r.log.Warn("registrar: creating device failed", "product", pid, "device", dn, "err", err)
			return nil, newErr(CodeInternal, fmt.Sprintf("creating device %s/%s failed", pid, dn))
		}
	}
	var payload any
	switch prod.Credential {
	case PSK:
		psk, err := r.devices.PSK(pid, dn)
		if err != nil {
			r.log.Warn("registrar: reading device secret failed", "product", pid, "device", dn, "err", err)
			return nil, newErr(CodeInternal, fmt.Sprintf("no secret for device %s/%s", pid, dn))
		}
		payload = struct {
			EncryptionType int    `json:"encryptionType"`
			PSK            string `json:"psk"`
		}{2, psk}
	default:
		cert, key, err := r.devices.Certificate(pid, dn)
		if err != nil {
			r.log.Warn("registrar: issuing certificate failed", "product", pid, "device", dn, "err", err)
			return nil, newErr(CodeInternal, fmt.Sprintf("no certificate for device %s/%s", pid, dn))
		}
		payload = struct {
			EncryptionType int    `json:"encryptionType"`
			ClientCert     string `json:"clientCert"`
			ClientKey      string `json:"clientKey"`
		}{1, string(cert), string(key)}
	}
	plain, err := json.Marshal(payload)
	if err != nil {
		return nil, newErr(CodeInternal, "encoding payload failed")
	}
	r.log.Info("registrar: device registered", "product", pid, "device", dn, "credential", string(prod.Credential))
	return &issued{Plaintext: plain, Secret: prod.Secret}, nil
}

func readBody(req *http.Request) ([]byte, *apiError) {
	if req.Method != http.MethodPost {
		return nil, newErr(CodeMethod, fmt.Sprintf("method %s not allowed, use POST", req.Method))
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody+1))
	if err != nil {
		return nil, newErr(CodeInvalidParameter, "reading request body failed")
	}
	if len(body) > maxBody {
		return nil, newErr(CodeTooLarge, fmt.Sprintf("request body exceeds %d bytes", maxBody))
	}
	return body, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding response failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// newRequestID returns a UUID-shaped id like the platform's RequestId.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
