package registrar

import "net/http"

// Error codes. V2 codes follow the Tencent Cloud API naming style; legacy codes are numbers. The
// real platform's exact codes are not documented in our sources (docs/PROTOCOL.md §6), so these
// are this package's own, stable choices; clients should rely on the shape, not the values.
const (
	CodeInvalidParameter = "InvalidParameterValue"                              // malformed request
	CodeSignature        = "AuthFailure.SignatureFailure"                       // signature mismatch
	CodeExpired          = "AuthFailure.SignatureExpire"                        // timestamp outside the window
	CodeProductNotExist  = "ResourceNotFound.ProductNotExist"                   // unknown product
	CodeDeviceNotExist   = "ResourceNotFound.DeviceNotExist"                    // unknown device, no auto-create
	CodeDisabled         = "UnauthorizedOperation.DynamicRegisterDisabled"      // registration off
	CodeActivated        = "UnauthorizedOperation.DeviceHasActivated"           // device already connected
	CodeInternal         = "InternalError"                                      // registry failure
	CodeMethod           = "UnsupportedOperation.MethodNotAllowed"              // not POST
	CodeTooLarge         = "InvalidParameterValue.RequestBodyTooLarge"          // body over the limit
	CodeUnsupported      = "UnsupportedOperation.CustomCertificateNotSupported" // EncryptionType 1 + ClientCert
)

// Legacy API numeric codes, one per V2 code (0 is success).
const (
	LegacyInvalidParameter = 1000
	LegacySignature        = 1001
	LegacyExpired          = 1002
	LegacyProductNotExist  = 1003
	LegacyDeviceNotExist   = 1004
	LegacyDisabled         = 1005
	LegacyActivated        = 1006
	LegacyInternal         = 1500
	LegacyMethod           = 1405
	LegacyTooLarge         = 1413
	LegacyUnsupported      = 1007
)

// apiError is one rejection, rendered in the shape of the API that was called.
type apiError struct {
	code    string
	legacy  int
	status  int
	message string
	// product and device name the request when its body named them (for the log only).
	product, device string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func newErr(code string, message string) *apiError {
	e := &apiError{code: code, status: http.StatusOK, message: message}
	switch code {
	case CodeInvalidParameter:
		e.legacy = LegacyInvalidParameter
	case CodeSignature:
		e.legacy = LegacySignature
	case CodeExpired:
		e.legacy = LegacyExpired
	case CodeProductNotExist:
		e.legacy = LegacyProductNotExist
	case CodeDeviceNotExist:
		e.legacy = LegacyDeviceNotExist
	case CodeDisabled:
		e.legacy = LegacyDisabled
	case CodeActivated:
		e.legacy = LegacyActivated
	case CodeUnsupported:
		e.legacy = LegacyUnsupported
	case CodeMethod:
		e.legacy, e.status = LegacyMethod, http.StatusMethodNotAllowed
	case CodeTooLarge:
		e.legacy, e.status = LegacyTooLarge, http.StatusRequestEntityTooLarge
	default:
		e.legacy, e.status = LegacyInternal, http.StatusInternalServerError
	}
	return e
}
