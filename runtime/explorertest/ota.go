package explorertest

// OTA (docs/PROTOCOL.md §4): firmware store + signed HTTP(S) download server, and one OTA job per
// device driven by the device's reports:
//
//	report_version V   -> report_version_rsp; if the device's job targets another version,
//	                      update_firmware is (re)pushed with a freshly signed URL (state pending)
//	report_progress    -> job state: pending -> downloading(percent) -> burning -> done | fail(code)
//	report_version = target -> done
//
// Images are served by a download host of their own, like the real cloud's object storage: a
// plain and a TLS listener (WithFirmwareAddr, WithFirmwareTLSAddr) serving
// /{pid}_{version}_{id}?expires=&nonce=&sign= — one path segment, the default port never named
// (the official SDKs depend on both; see internal/firmware). URLs in update_firmware use HTTPS
// unless WithPlainHTTPURL is given. The hosts keep their ports across Restart.
//
//
// Files: ota.go (the feature: types, state, registration, pushing update_firmware),
// ota_api.go (the Server methods), ota_uplink.go ($ota/report/*), ota_http.go (JSON API).

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

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

// ErrUnknownFirmware: no firmware of that version was uploaded for the product.
var ErrUnknownFirmware = errors.New("unknown firmware")

// MaxOTAHistory bounds an OTA job's History (oldest entries dropped and counted first).
const MaxOTAHistory = 128

// maxOTAResultMsg bounds one history entry's result_msg, in bytes.
const maxOTAResultMsg = 256

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
	ProductID       string   `json:"product_id"`
	DeviceName      string   `json:"device_name"`
	TargetVersion   string   `json:"target_version"`
	VersionID       string   `json:"version_id"`
	State           OTAState `json:"state"`
	Percent         int      `json:"percent"`
	ResultCode      int      `json:"result_code"`
	ResultMsg       string   `json:"result_msg,omitempty"`
	ReportedVersion string   `json:"reported_version,omitempty"` // last report_version
	Pushes          int      `json:"pushes"`                     // update_firmware messages sent
	LastURL         string   `json:"-"`                          // URL of the last push (signed)
	// History is the job's recent progress, oldest first: at most MaxOTAHistory entries; older
	// ones are dropped and counted in HistoryDropped (a device can send report_progress forever).
	History        []OTAProgress `json:"history"`
	HistoryDropped int           `json:"history_dropped"`
	Updated        time.Time     `json:"updated"`
}

// PushOption configures PushUpdate.
type PushOption func(*pushConfig)

type pushConfig struct {
	plainHTTP   bool
	ttl         time.Duration
	userDefined string
}

// WithPlainHTTPURL puts an http:// URL (the plain firmware download host) in update_firmware instead of
// https:// (devices then need ota.WithInsecureHTTP).
func WithPlainHTTPURL() PushOption { return func(c *pushConfig) { c.plainHTTP = true } }

// WithURLTTL sets how long each pushed URL stays valid (default 1h). A negative ttl pushes an
// already expired URL (the download answers 403).
func WithURLTTL(ttl time.Duration) PushOption { return func(c *pushConfig) { c.ttl = ttl } }

// WithUserDefined sets the user_defined text of update_firmware (omitted from the message when
// empty, as devices built on the C SDK refuse an empty one).
func WithUserDefined(s string) PushOption { return func(c *pushConfig) { c.userDefined = s } }

type otaJob struct {
	state OTAJobState
	cfg   pushConfig
}

type otaCloud struct {
	s       *Server
	store   *firmware.Store
	log     *slog.Logger
	fwHTTP  *firmware.Host // plain download host
	fwHTTPS *firmware.Host // TLS download host

	mu       sync.Mutex
	jobs     map[DeviceID]*otaJob
	versions map[DeviceID]string // last report_version of every device
	changed  chan struct{}
}

// initOTA is the OTA feature's init (features.go): the firmware store and job table in s.ota,
// the $ota/report handler, the download handler and the JSON API.
func (s *Server) initOTA() error {
	fwOpts := []firmware.Option{firmware.WithClock(s.clock), firmware.WithRequestHook(s.logFirmwareRequest)}
	if s.data != nil {
		// --data: URLs signed with the stored key stay valid across restarts (persist.go).
		key, err := s.signingKey(fwKeySection, firmware.SigningKeySize)
		if err != nil {
			return err
		}
		fwOpts = append(fwOpts, firmware.WithSigningKey(key))
	}
	store, err := firmware.NewStore(s.dataPath("firmware"), fwOpts...)
	if err != nil {
		return err
	}
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	fwHTTP, err := store.Serve(s.fwAddr, nil, errLog)
	if err != nil {
		store.Close()
		return fmt.Errorf("firmware download host: %w", err)
	}
	fwHTTPS, err := store.Serve(s.fwTLSAddr, &tls.Config{Certificates: []tls.Certificate{s.serverCert}, MinVersion: tls.VersionTLS12}, errLog)
	if err != nil {
		fwHTTP.Close()
		store.Close()
		return fmt.Errorf("firmware download host (TLS): %w", err)
	}
	s.fwAddr, s.fwTLSAddr = fwHTTP.Addr(), fwHTTPS.Addr()
	oc := &otaCloud{s: s, store: store, log: s.log, fwHTTP: fwHTTP, fwHTTPS: fwHTTPS, jobs: map[DeviceID]*otaJob{}, versions: map[DeviceID]string{}, changed: make(chan struct{})}
	s.ota = oc
	s.addCloser(func() {
		fwHTTPS.Close()
		fwHTTP.Close()
		store.Close()
	})
	s.handleUplink("$ota/report/", oc.handleReport)
	s.addDeviceDetail("ota", s.otaJobJSON)
	s.onDeviceRemoved(func(id DeviceID) {
		oc.mu.Lock()
		delete(oc.jobs, id)
		delete(oc.versions, id)
		oc.notifyLocked()
		oc.mu.Unlock()
	})
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

// step records a state change of id's job and logs it (every OTA step is a log line); call
// with oc.mu held.
func (oc *otaCloud) step(id DeviceID, j *otaJob, p OTAProgress) {
	j.event(p, oc.s.clock())
	last := j.state.History[len(j.state.History)-1]
	oc.log.Info("ota: job "+string(last.State), "device", id.String(), "version", j.state.TargetVersion,
		"percent", j.state.Percent, "result_code", last.ResultCode, "result_msg", last.ResultMsg)
}

// logFirmwareRequest logs a download from the firmware host; a refused one says why.
func (s *Server) logFirmwareRequest(r firmware.Request) {
	attrs := []any{"image", r.ID, "status", r.Status, "range", r.Range, "start", r.Start, "bytes", r.Sent}
	if img, ok := s.ota.store.Get(r.ID); ok {
		attrs = append(attrs, "product", img.ProductID, "version", img.Version)
	}
	switch {
	case r.Status >= 400:
		reason := http.StatusText(r.Status)
		if r.Status == http.StatusForbidden {
			reason = "URL signature invalid or expired (ask for a new push)"
		}
		s.log.Warn("ota: firmware download refused", append(attrs, "code", r.Status, "reason", reason)...)
	case r.Cut:
		s.log.Info("ota: firmware download cut (fault injected)", attrs...)
	default:
		s.log.Info("ota: firmware download", attrs...)
	}
}

// event records a state change; call with oc.mu held.
func (j *otaJob) event(p OTAProgress, now time.Time) {
	if len(p.ResultMsg) > maxOTAResultMsg {
		p.ResultMsg = strings.ToValidUTF8(p.ResultMsg[:maxOTAResultMsg], "") + "…(truncated)"
	}
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
	if len(j.state.History) >= MaxOTAHistory {
		// Shift in place: the backing array never grows past the cap.
		n := copy(j.state.History, j.state.History[len(j.state.History)-MaxOTAHistory+1:])
		clear(j.state.History[n:])
		j.state.HistoryDropped += len(j.state.History) - n
		j.state.History = j.state.History[:n]
	}
	j.state.History = append(j.state.History, p)
}

type updateFirmwareMsg struct {
	Type     string `json:"type"`
	Version  string `json:"version"`
	URL      string `json:"url"`
	MD5      string `json:"md5sum"`
	FileSize int64  `json:"file_size"`
	// Omitted when unset: the C SDK (v3.2.1) refuses the whole update_firmware when
	// user_defined is an empty string.
	UserDefined string `json:"user_defined,omitempty"`
}

// pushLocked sends update_firmware with a freshly signed URL (like a re-signed COS URL).
func (oc *otaCloud) pushLocked(id DeviceID, job *otaJob) error {
	img, ok := oc.store.Get(job.state.VersionID)
	if !ok {
		// Deleted after the push: hand out a URL that answers 404, as a vanished COS object would.
		img = firmware.Image{ID: job.state.VersionID, Version: job.state.TargetVersion, MD5: strings.Repeat("0", 32), Size: 1}
	}
	base := oc.s.deviceBase(id, oc.fwHTTPS.URL(), oc.fwHTTPS.Addr())
	if job.cfg.plainHTTP {
		base = oc.s.deviceBase(id, oc.fwHTTP.URL(), oc.fwHTTP.Addr())
	}
	url := oc.store.URL(base, img.ID, oc.s.clock().Add(job.cfg.ttl))
	msg, err := marshalJSON(updateFirmwareMsg{Type: "update_firmware", Version: job.state.TargetVersion, URL: url, MD5: img.MD5, FileSize: img.Size, UserDefined: job.cfg.userDefined})
	if err != nil {
		return err
	}
	job.state.Pushes++
	job.state.LastURL = url
	if job.state.State != OTAPending {
		oc.step(id, job, OTAProgress{State: OTAPending, ResultMsg: "update_firmware re-pushed"})
	}
	if err := oc.s.Publish("$ota/update/"+id.ProductID+"/"+id.DeviceName, msg, 1); err != nil {
		return fmt.Errorf("explorertest: push update_firmware to %s: %w", id, err)
	}
	oc.log.Info("ota: update_firmware sent", "device", id.String(), "version", job.state.TargetVersion, "size", img.Size, "md5", img.MD5, "push", job.state.Pushes)
	return nil
}

func (j *otaJob) snapshot() OTAJobState {
	st := j.state
	st.History = append([]OTAProgress(nil), j.state.History...)
	return st
}
