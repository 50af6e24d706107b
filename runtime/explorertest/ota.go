package explorertest

// OTA (docs/PROTOCOL.md §4): firmware store + signed HTTP(S) download server, and one OTA job per
// device driven by the device's reports:
//
//	report_version V   -> report_version_rsp; if the device's job targets another version,
//	                      update_firmware is (re)pushed with a freshly signed URL (state pending)
//	report_progress    -> job state: pending -> downloading(percent) -> burning -> done | fail(code)
//	report_version = target -> done
//
// Images are served under /ota/firmware/{id}?expires=&sign= on both the HTTP and the HTTPS
// listener (URLs in update_firmware use HTTPS unless WithPlainHTTPURL is given).
//
//
// Files: ota.go (the feature: types, state, registration, pushing update_firmware),
// ota_api.go (the Server methods), ota_uplink.go ($ota/report/*), ota_http.go (JSON API).

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorertest/internal/firmware"
)

// OTAState is the state of a device's OTA job.
type OTAState string

// OTA job states.
const (
	OTAPending     OTAState = "pending"     // update_firmware pushed (or waiting for report_version)
	OTADownloading OTAState = "downloading" // device reported download progress
	OTABurning     OTAState = "burning"     // device is installing
	OTADone        OTAState = "done"        // device reported done, or reports the target version
	OTAFail        OTAState = "fail"        // device reported a failure code
)

// Errors of the OTA feature.
var (
	ErrUnknownDevice   = errors.New("unknown device")
	ErrUnknownFirmware = errors.New("unknown firmware")
)

// maxFirmwareUpload bounds POST /api/firmware (the IoT Hub limit is 2048 MB).
const maxFirmwareUpload = 2 << 30

// FirmwareInfo describes an uploaded firmware image.
type FirmwareInfo struct {
	VersionID string `json:"version_id"` // opaque id of this upload (used in download URLs)
	ProductID string `json:"product_id"`
	Version   string `json:"version"`
	Size      int64  `json:"size"`
	MD5       string `json:"md5"`
}

// OTAProgress is one accepted report_progress (or a platform event) in a job's history.
type OTAProgress struct {
	State      OTAState  `json:"state"`
	Percent    int       `json:"percent"`
	ResultCode int       `json:"result_code"`
	ResultMsg  string    `json:"result_msg,omitempty"`
	At         time.Time `json:"at"`
}

// OTAJobState is a snapshot of a device's OTA job.
type OTAJobState struct {
	ProductID       string        `json:"product_id"`
	DeviceName      string        `json:"device_name"`
	TargetVersion   string        `json:"target_version"`
	VersionID       string        `json:"version_id"`
	State           OTAState      `json:"state"`
	Percent         int           `json:"percent"`
	ResultCode      int           `json:"result_code"`
	ResultMsg       string        `json:"result_msg,omitempty"`
	ReportedVersion string        `json:"reported_version,omitempty"` // last report_version
	Pushes          int           `json:"pushes"`                     // update_firmware messages sent
	LastURL         string        `json:"-"`                          // URL of the last push (signed)
	History         []OTAProgress `json:"history"`
	Updated         time.Time     `json:"updated"`
}

// PushOption configures PushUpdate.
type PushOption func(*pushConfig)

type pushConfig struct {
	plainHTTP   bool
	ttl         time.Duration
	userDefined string
}

// WithPlainHTTPURL puts an http:// URL (the plain HTTP listener) in update_firmware instead of
// https:// (devices then need ota.WithInsecureHTTP).
func WithPlainHTTPURL() PushOption { return func(c *pushConfig) { c.plainHTTP = true } }

// WithURLTTL sets how long each pushed URL stays valid (default 1h). A negative ttl pushes an
// already expired URL (the download answers 403).
func WithURLTTL(ttl time.Duration) PushOption { return func(c *pushConfig) { c.ttl = ttl } }

// WithUserDefined sets the user_defined text of update_firmware.
func WithUserDefined(s string) PushOption { return func(c *pushConfig) { c.userDefined = s } }

type otaJob struct {
	state OTAJobState
	cfg   pushConfig
}

type otaCloud struct {
	s     *Server
	store *firmware.Store
	log   *slog.Logger

	mu       sync.Mutex
	jobs     map[DeviceID]*otaJob
	versions map[DeviceID]string // last report_version of every device
	changed  chan struct{}
}

// initOTA is the OTA feature's init (features.go): the firmware store and job table in s.ota,
// the $ota/report handler, the download handler and the JSON API.
func (s *Server) initOTA() error {
	store, err := firmware.NewStore("", firmware.WithClock(s.clock))
	if err != nil {
		return err
	}
	oc := &otaCloud{s: s, store: store, log: s.log, jobs: map[DeviceID]*otaJob{}, versions: map[DeviceID]string{}, changed: make(chan struct{})}
	s.ota = oc
	s.addCloser(func() { store.Close() })
	s.handleUplink("$ota/report/", oc.handleReport)
	s.addDeviceDetail("ota", s.otaJobJSON)
	s.mux.Handle("GET "+firmware.DefaultPrefix, store.Handler())
	s.mux.HandleFunc("POST /api/firmware", s.apiUploadFirmware)
	s.mux.HandleFunc("POST /api/devices/{pid}/{dn}/ota", s.apiPushUpdate)
	s.mux.HandleFunc("GET /api/devices/{pid}/{dn}/ota", s.apiGetOTAJob)
	return nil
}

// liveOTA returns the feature's state, or nil after Close (callers answer ErrClosed).
func (s *Server) liveOTA() *otaCloud {
	if s.isFinished() {
		return nil
	}
	return s.ota
}

// notifyLocked wakes waiters; call with oc.mu held.
func (oc *otaCloud) notifyLocked() {
	close(oc.changed)
	oc.changed = make(chan struct{})
}

func (oc *otaCloud) lookup(pid, version string) (firmware.Image, error) {
	img, ok := oc.store.Lookup(pid, version)
	if !ok {
		return firmware.Image{}, fmt.Errorf("%w: product %s has no firmware version %q", ErrUnknownFirmware, pid, version)
	}
	return img, nil
}

// event records a state change; call with oc.mu held.
func (j *otaJob) event(p OTAProgress, now time.Time) {
	p.At = now
	j.state.State, j.state.Updated = p.State, now
	switch p.State {
	case OTAPending:
		j.state.Percent, j.state.ResultCode, j.state.ResultMsg = 0, 0, ""
	case OTADownloading:
		j.state.Percent = p.Percent
	case OTADone:
		j.state.Percent = 100
	case OTAFail:
		j.state.ResultCode, j.state.ResultMsg = p.ResultCode, p.ResultMsg
	}
	j.state.History = append(j.state.History, p)
}

type updateFirmwareMsg struct {
	Type        string `json:"type"`
	Version     string `json:"version"`
	URL         string `json:"url"`
	MD5         string `json:"md5sum"`
	FileSize    int64  `json:"file_size"`
	UserDefined string `json:"user_defined"`
}

// pushLocked sends update_firmware with a freshly signed URL (like a re-signed COS URL).
func (oc *otaCloud) pushLocked(id DeviceID, job *otaJob) error {
	img, ok := oc.store.Get(job.state.VersionID)
	if !ok {
		// Deleted after the push: hand out a URL that answers 404, as a vanished COS object would.
		img = firmware.Image{ID: job.state.VersionID, Version: job.state.TargetVersion, MD5: strings.Repeat("0", 32), Size: 1}
	}
	base := oc.s.HTTPSURL()
	if job.cfg.plainHTTP {
		base = oc.s.HTTPURL()
	}
	url := oc.store.URL(base, img.ID, oc.s.clock().Add(job.cfg.ttl))
	msg, err := json.Marshal(updateFirmwareMsg{Type: "update_firmware", Version: job.state.TargetVersion, URL: url, MD5: img.MD5, FileSize: img.Size, UserDefined: job.cfg.userDefined})
	if err != nil {
		return err
	}
	job.state.Pushes++
	job.state.LastURL = url
	if job.state.State != OTAPending {
		job.event(OTAProgress{State: OTAPending, ResultMsg: "update_firmware re-pushed"}, oc.s.clock())
	}
	if err := oc.s.Publish("$ota/update/"+id.ProductID+"/"+id.DeviceName, msg, 1); err != nil {
		return fmt.Errorf("explorertest: push update_firmware to %s: %w", id, err)
	}
	return nil
}

func (j *otaJob) snapshot() OTAJobState {
	st := j.state
	st.History = append([]OTAProgress(nil), j.state.History...)
	return st
}
