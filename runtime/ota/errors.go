package ota

import (
	"errors"
	"fmt"
)

// FailCode is an OTA failure result_code as defined by docs/PROTOCOL.md §4.2. It is sent in a
// report_progress message with state "fail".
type FailCode int

// Failure codes of report_progress (docs/PROTOCOL.md §4.2).
const (
	FailTimeout          FailCode = -1 // download timed out / network failure
	FailNotFound         FailCode = -2 // firmware file not found (HTTP 404)
	FailSignatureExpired FailCode = -3 // pre-signed URL expired or refused (HTTP 403)
	FailAuth             FailCode = -3 // authentication failure: the protocol's −3 also covers a TLS certificate the device rejects
	FailMD5Mismatch      FailCode = -4 // downloaded image does not match md5sum
	FailBurn             FailCode = -5 // installing (burning) the image failed
)

// String returns a short, stable description used as the default result_msg.
func (c FailCode) String() string {
	switch c {
	case FailTimeout:
		return "time_out"
	case FailNotFound:
		return "file not found"
	case FailSignatureExpired:
		return "signature expired"
	case FailMD5Mismatch:
		return "md5 mismatch"
	case FailBurn:
		return "burn failed"
	case 0:
		return "ok"
	}
	return fmt.Sprintf("fail code %d", int(c))
}

// Sentinel errors returned (wrapped) by Download; use errors.Is. Code maps each to its FailCode.
var (
	// ErrTimeout: the download made no progress and the retry budget is exhausted.
	ErrTimeout = errors.New("ota: download timed out")
	// ErrNotFound: the server answered 404/410 for the firmware URL.
	ErrNotFound = errors.New("ota: firmware not found")
	// ErrSignatureExpired: the server answered 401/403 (expired or bad pre-signed URL).
	ErrSignatureExpired = errors.New("ota: firmware URL signature expired or refused")
	// ErrTLS: the HTTPS connection failed for a reason a retry cannot fix (certificate not
	// trusted, expired or for another name, server not speaking TLS). Not retried; Code maps
	// it to FailAuth (−3), and the message says what to change.
	ErrTLS = errors.New("ota: TLS failure")
	// ErrMD5Mismatch: the image (or its size) does not match the announced md5sum/file_size.
	ErrMD5Mismatch = errors.New("ota: firmware md5 mismatch")
	// ErrInsecureURL: the URL is plain http and WithInsecureHTTP was not given.
	ErrInsecureURL = errors.New("ota: plain http firmware URL refused (use WithInsecureHTTP)")
	// ErrInvalidFirmware: the Firmware description itself is unusable (bad URL, md5, size).
	ErrInvalidFirmware = errors.New("ota: invalid firmware description")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("ota: client closed")
)

// Code returns the report_progress failure code that describes err: 0 for nil, −2 for
// ErrNotFound, −3 for ErrSignatureExpired and ErrTLS (authentication failures), −4 for
// ErrMD5Mismatch, −5 for a *BurnError, otherwise −1 (timeout / generic download failure, as
// the C SDK does).
func Code(err error) FailCode {
	var be *BurnError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrNotFound):
		return FailNotFound
	case errors.Is(err, ErrSignatureExpired), errors.Is(err, ErrTLS):
		return FailAuth
	case errors.Is(err, ErrMD5Mismatch):
		return FailMD5Mismatch
	case errors.As(err, &be):
		return FailBurn
	}
	return FailTimeout
}

// BurnError marks an installation failure; Code maps it to FailBurn (−5).
type BurnError struct{ Err error }

// Error describes the failed installation.
func (e *BurnError) Error() string { return "ota: burn failed: " + e.Err.Error() }

// Unwrap returns the installer's error.
func (e *BurnError) Unwrap() error { return e.Err }

// ResultError is a non-zero result_code in a report_version_rsp.
type ResultError struct {
	Topic   string // downlink topic the reply arrived on
	Version string // version that was reported
	Code    int    // result_code
	Msg     string // result_msg
}

// Error names the topic, the version and the platform's result.
func (e *ResultError) Error() string {
	return fmt.Sprintf("ota: %s: report_version %q rejected: result_code %d (%s)", e.Topic, e.Version, e.Code, e.Msg)
}
