package explorertest

// The OTA feature's JSON API (same mux as api.go):
//
//	POST /api/firmware?product=PID&version=V      raw image as the body (any Content-Type except
//	                                              multipart) -> 201 {"version_id","product_id","version","size","md5"}
//	POST /api/devices/{pid}/{dn}/ota              {"version":"1.0.1"} -> 202 job document
//	GET  /api/devices/{pid}/{dn}/ota              job document (404 when the device has none)
//

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tplgen/tplgen/runtime/explorertest/internal/firmware"
)

// otaJobJSON is the "ota" section of GET /api/devices/{pid}/{dn}: the job document, or
// {"reported_version":...} for a device without a job, or nil when the device never spoke OTA.
func (s *Server) otaJobJSON(id DeviceID) any {
	oc := s.liveOTA()
	if oc == nil {
		return nil
	}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	if job, ok := oc.jobs[id]; ok {
		return job.snapshot()
	}
	if v, ok := oc.versions[id]; ok {
		return map[string]string{"reported_version": v}
	}
	return nil
}

func (s *Server) apiUploadFirmware(w http.ResponseWriter, r *http.Request) {
	pid, version := r.URL.Query().Get("product"), r.URL.Query().Get("version")
	if pid == "" || version == "" {
		writeError(w, http.StatusBadRequest, "query parameters product and version are required")
		return
	}
	if !s.productKnown(pid) {
		writeError(w, http.StatusNotFound, "product "+pid+" is unknown: it has no data template and no devices")
		return
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
		writeError(w, http.StatusUnsupportedMediaType, "send the image as the raw request body, not multipart")
		return
	}
	info, err := s.UploadFirmware(pid, version, http.MaxBytesReader(w, r.Body, maxFirmwareUpload))
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("firmware larger than %d bytes", int64(maxFirmwareUpload)))
		case errors.Is(err, firmware.ErrInvalid):
			writeError(w, http.StatusBadRequest, err.Error())
		default:
			writeError(w, http.StatusInternalServerError, err.Error())
		}
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

func (s *Server) apiPushUpdate(w http.ResponseWriter, r *http.Request) {
	pid, dn := r.PathValue("pid"), r.PathValue("dn")
	var body struct {
		Version     string `json:"version"`
		PlainHTTP   bool   `json:"plain_http"`
		UserDefined string `json:"user_defined"`
	}
	if !decodeBody(w, r, &body, `{"version":"V","plain_http":false,"user_defined":"..."}`) {
		return
	}
	if body.Version == "" {
		writeError(w, http.StatusBadRequest, "version: missing")
		return
	}
	opts := []PushOption{WithUserDefined(body.UserDefined)}
	if body.PlainHTTP {
		opts = append(opts, WithPlainHTTPURL())
	}
	if err := s.PushUpdate(pid, dn, body.Version, opts...); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrUnknownDevice) || errors.Is(err, ErrUnknownFirmware) {
			status = http.StatusNotFound
		}
		writeError(w, status, err.Error())
		return
	}
	st, _ := s.OTAJob(pid, dn)
	writeJSON(w, http.StatusAccepted, st)
}

func (s *Server) apiGetOTAJob(w http.ResponseWriter, r *http.Request) {
	pid, dn := r.PathValue("pid"), r.PathValue("dn")
	st, ok := s.OTAJob(pid, dn)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("device %s/%s has no OTA job", pid, dn))
		return
	}
	writeJSON(w, http.StatusOK, st)
}
