package explorertest

// OTA (protocol.md §4): firmware store + signed HTTP(S) download server, and one OTA job per
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
// JSON API (same mux as api.go):
//
//	POST /api/firmware?product=PID&version=V      raw image as the body (any Content-Type except
//	                                              multipart) -> 201 {"version_id","product_id","version","size","md5"}
//	POST /api/devices/{pid}/{dn}/ota              {"version":"1.0.1"} -> 202 job document
//	GET  /api/devices/{pid}/{dn}/ota              job document (404 when the device has none)
//
// The job document is also the "ota" section of GET /api/devices/{pid}/{dn} (otaJobJSON).

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
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

// otaClouds maps each Server to its OTA state (the Server struct belongs to the core).
var otaClouds sync.Map // *Server -> *otaCloud

func init() {
	addDeviceDetail("ota", func(s *Server, id DeviceID) any { return s.otaJobJSON(id) })
}

func (s *Server) ota() *otaCloud {
	oc, ok := otaClouds.Load(s)
	if !ok {
		return nil
	}
	return oc.(*otaCloud)
}

// initOTA wires the OTA feature into the server (called from initFeatures).
func (s *Server) initOTA() error {
	store, err := firmware.NewStore("", firmware.WithClock(s.clock))
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
	otaClouds.Store(s, oc)
	s.addCloser(func() {
		otaClouds.Delete(s)
		fwHTTPS.Close()
		fwHTTP.Close()
		store.Close()
	})
	s.handleUplink("$ota/report/", oc.handleReport)
	s.mux.HandleFunc("POST /api/firmware", s.apiUploadFirmware)
	s.mux.HandleFunc("POST /api/devices/{pid}/{dn}/ota", s.apiPushUpdate)
	s.mux.HandleFunc("GET /api/devices/{pid}/{dn}/ota", s.apiGetOTAJob)
	return nil
}

// notifyLocked wakes waiters; call with oc.mu held.
func (oc *otaCloud) notifyLocked() {
	close(oc.changed)
	oc.changed = make(chan struct{})
}

// FirmwareURL is the base URL of the plain firmware download host, e.g.
// "http://127.0.0.1:41234", or "http://127.0.0.1" on port 80.
func (s *Server) FirmwareURL() string {
	if oc := s.ota(); oc != nil {
		return oc.fwHTTP.URL()
	}
	return ""
}

// FirmwareTLSURL is the base URL of the TLS firmware download host (certificate from RootCAs).
func (s *Server) FirmwareTLSURL() string {
	if oc := s.ota(); oc != nil {
		return oc.fwHTTPS.URL()
	}
	return ""
}

// FirmwareRequestsDropped counts download requests dropped from the bounded request log
// behind FirmwareRequests (internal/firmware keeps the newest 1024, fields clipped).
func (s *Server) FirmwareRequestsDropped() int64 {
	if oc := s.ota(); oc != nil {
		return oc.store.RequestsDropped()
	}
	return 0
}

// UploadFirmware stores an image for product pid and version, streaming r to disk (big images
// are never held in memory). Uploading a version again replaces it for later pushes.
func (s *Server) UploadFirmware(pid, version string, r io.Reader) (FirmwareInfo, error) {
	oc := s.ota()
	if oc == nil {
		return FirmwareInfo{}, ErrClosed
	}
	img, err := oc.store.Put(pid, version, r)
	if err != nil {
		return FirmwareInfo{}, fmt.Errorf("explorertest: UploadFirmware %s %q: %w", pid, version, err)
	}
	return FirmwareInfo{VersionID: img.ID, ProductID: img.ProductID, Version: img.Version, Size: img.Size, MD5: img.MD5}, nil
}

func (oc *otaCloud) lookup(pid, version string) (firmware.Image, error) {
	img, ok := oc.store.Lookup(pid, version)
	if !ok {
		return firmware.Image{}, fmt.Errorf("%w: product %s has no firmware version %q", ErrUnknownFirmware, pid, version)
	}
	return img, nil
}

// DeleteFirmware removes an uploaded version; its download URLs answer 404 from then on.
func (s *Server) DeleteFirmware(pid, version string) error {
	oc := s.ota()
	if oc == nil {
		return ErrClosed
	}
	img, err := oc.lookup(pid, version)
	if err != nil {
		return fmt.Errorf("explorertest: DeleteFirmware: %w", err)
	}
	return oc.store.Delete(img.ID)
}

// CutFirmwareDownload injects faults: each absolute byte offset closes the connection of the
// next download response of that image reaching it, right after that many bytes.
func (s *Server) CutFirmwareDownload(pid, version string, offsets ...int64) error {
	oc := s.ota()
	if oc == nil {
		return ErrClosed
	}
	img, err := oc.lookup(pid, version)
	if err != nil {
		return fmt.Errorf("explorertest: CutFirmwareDownload: %w", err)
	}
	oc.store.CutAt(img.ID, offsets...)
	return nil
}

// SetFirmwareRate throttles downloads of an image to about bytesPerSec (0 = unlimited).
func (s *Server) SetFirmwareRate(pid, version string, bytesPerSec int64) error {
	oc := s.ota()
	if oc == nil {
		return ErrClosed
	}
	img, err := oc.lookup(pid, version)
	if err != nil {
		return fmt.Errorf("explorertest: SetFirmwareRate: %w", err)
	}
	oc.store.SetRate(img.ID, bytesPerSec)
	return nil
}

// FirmwareRequest is one download request the firmware server answered.
type FirmwareRequest struct {
	Range  string // Range header sent by the device ("" for a full GET)
	Status int    // HTTP status
	Start  int64  // offset of the first body byte
	Sent   int64  // body bytes sent
	Cut    bool   // closed mid-body by CutFirmwareDownload
}

// FirmwareRequests lists the download requests for the current image of pid/version.
func (s *Server) FirmwareRequests(pid, version string) []FirmwareRequest {
	oc := s.ota()
	if oc == nil {
		return nil
	}
	img, err := oc.lookup(pid, version)
	if err != nil {
		return nil
	}
	var out []FirmwareRequest
	for _, r := range oc.store.Requests() {
		if r.ID == img.ID {
			out = append(out, FirmwareRequest{Range: r.Range, Status: r.Status, Start: r.Start, Sent: r.Sent, Cut: r.Cut})
		}
	}
	return out
}

// PushUpdate creates (or replaces) the OTA job of device pid/dn targeting version, which must
// have been uploaded for pid. If the device has reported a version and is online,
// update_firmware is sent now; otherwise on its next report_version (as the real platform
// only pushes to devices that reported). A device already on version is marked done.
func (s *Server) PushUpdate(pid, dn, version string, opts ...PushOption) error {
	oc := s.ota()
	if oc == nil {
		return ErrClosed
	}
	if _, ok := s.Device(pid, dn); !ok {
		return fmt.Errorf("explorertest: PushUpdate: %w %s/%s", ErrUnknownDevice, pid, dn)
	}
	img, err := oc.lookup(pid, version)
	if err != nil {
		return fmt.Errorf("explorertest: PushUpdate %s/%s: %w", pid, dn, err)
	}
	cfg := pushConfig{ttl: time.Hour}
	for _, o := range opts {
		o(&cfg)
	}
	id := DeviceID{ProductID: pid, DeviceName: dn}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	job := &otaJob{cfg: cfg, state: OTAJobState{ProductID: pid, DeviceName: dn, TargetVersion: version, VersionID: img.ID, State: OTAPending}}
	oc.jobs[id] = job
	job.event(OTAProgress{State: OTAPending, ResultMsg: "job created"}, s.clock())
	current, reported := oc.versions[id]
	job.state.ReportedVersion = current
	switch {
	case reported && current == version:
		job.event(OTAProgress{State: OTADone, Percent: 100, ResultMsg: "device already runs " + version}, s.clock())
	case reported && s.Online(pid, dn):
		if err := oc.pushLocked(id, job); err != nil {
			oc.notifyLocked()
			return err
		}
	}
	oc.notifyLocked()
	return nil
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
	base := oc.fwHTTPS.URL()
	if job.cfg.plainHTTP {
		base = oc.fwHTTP.URL()
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

// OTAJob returns a snapshot of the device's OTA job.
func (s *Server) OTAJob(pid, dn string) (OTAJobState, bool) {
	oc := s.ota()
	if oc == nil {
		return OTAJobState{}, false
	}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	job, ok := oc.jobs[DeviceID{ProductID: pid, DeviceName: dn}]
	if !ok {
		return OTAJobState{}, false
	}
	return job.snapshot(), true
}

func (j *otaJob) snapshot() OTAJobState {
	st := j.state
	st.History = append([]OTAProgress(nil), j.state.History...)
	return st
}

// FirmwareVersion returns the version the device last reported with report_version.
func (s *Server) FirmwareVersion(pid, dn string) (string, bool) {
	oc := s.ota()
	if oc == nil {
		return "", false
	}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	v, ok := oc.versions[DeviceID{ProductID: pid, DeviceName: dn}]
	return v, ok
}

// WaitOTAJob waits until the device has a job for which cond holds and returns that snapshot.
// cond runs under the feature's lock after every change: keep it short, do not call the
// Server from it.
func (s *Server) WaitOTAJob(ctx context.Context, pid, dn string, cond func(OTAJobState) bool) (OTAJobState, error) {
	oc := s.ota()
	if oc == nil {
		return OTAJobState{}, ErrClosed
	}
	id := DeviceID{ProductID: pid, DeviceName: dn}
	for {
		oc.mu.Lock()
		job, ok := oc.jobs[id]
		var st OTAJobState
		if ok {
			st = job.snapshot()
		}
		ch := oc.changed
		oc.mu.Unlock()
		if ok && cond(st) {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, fmt.Errorf("explorertest: WaitOTAJob %s: state %q: %w", id, st.State, ctx.Err())
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Uplink handling.

type otaReport struct {
	Type   string `json:"type"`
	Report struct {
		Version  string `json:"version"`
		Progress *struct {
			State      string          `json:"state"`
			Percent    json.RawMessage `json:"percent"`
			ResultCode json.RawMessage `json:"result_code"`
			ResultMsg  string          `json:"result_msg"`
		} `json:"progress"`
	} `json:"report"`
}

type reportVersionRsp struct {
	Type       string `json:"type"`
	ResultCode int    `json:"result_code"`
	ResultMsg  string `json:"result_msg"`
	Version    string `json:"version"`
}

func (oc *otaCloud) handleReport(u Uplink) {
	var m otaReport
	if err := unmarshalUntrusted(u.Payload, &m); err != nil {
		oc.log.Warn("explorertest: ota: malformed report", "topic", u.Topic, "err", err)
		return
	}
	switch m.Type {
	case "report_version":
		oc.reportVersion(u, m.Report.Version)
	case "report_progress":
		oc.reportProgress(u, &m)
	default:
		oc.log.Warn("explorertest: ota: unknown report type", "topic", u.Topic, "field", "type", "value", m.Type)
	}
}

func (oc *otaCloud) reportVersion(u Uplink, v string) {
	rsp := reportVersionRsp{Type: "report_version_rsp", ResultMsg: "success", Version: v}
	valid := len(v) >= 1 && len(v) <= 32
	if !valid {
		oc.log.Warn("explorertest: ota: bad version", "topic", u.Topic, "field", "report.version", "value", v)
		rsp.ResultCode, rsp.ResultMsg = 1, fmt.Sprintf("report.version must be 1-32 characters, got %d", len(v))
	}
	down := "$ota/update/" + u.Device.ProductID + "/" + u.Device.DeviceName
	b, _ := json.Marshal(rsp)
	oc.mu.Lock()
	defer oc.mu.Unlock()
	// State is updated before the reply, so a device holding its rsp sees the platform updated;
	// a (re)push goes out after the reply, in the order the real platform sends them.
	job := oc.jobs[u.Device]
	repush := false
	if valid {
		oc.versions[u.Device] = v
		if job != nil {
			job.state.ReportedVersion = v
			switch {
			case v != job.state.TargetVersion:
				repush = true
			case job.state.State != OTADone:
				job.event(OTAProgress{State: OTADone, Percent: 100, ResultMsg: "device reports target version"}, oc.s.clock())
			}
		}
		oc.notifyLocked()
	}
	if err := oc.s.Publish(down, b, 1); err != nil {
		oc.log.Warn("explorertest: ota: reply failed", "topic", down, "err", err)
	}
	if repush {
		if err := oc.pushLocked(u.Device, job); err != nil {
			oc.log.Warn("explorertest: ota: push failed", "device", u.Device.String(), "err", err)
		}
		oc.notifyLocked()
	}
}

func (oc *otaCloud) reportProgress(u Uplink, m *otaReport) {
	p := m.Report.Progress
	if p == nil {
		oc.log.Warn("explorertest: ota: report_progress without progress", "topic", u.Topic, "field", "report.progress")
		return
	}
	ev := OTAProgress{State: OTAState(p.State), ResultMsg: p.ResultMsg}
	var err error
	switch ev.State {
	case OTADownloading:
		ev.Percent, err = wireInt(p.Percent)
		if err == nil && (ev.Percent < 0 || ev.Percent > 100) {
			err = fmt.Errorf("%d out of 0..100", ev.Percent)
		}
		if err != nil {
			err = fmt.Errorf("report.progress.percent: %v", err)
		}
	case OTABurning, OTADone:
	case OTAFail:
		ev.ResultCode, err = wireInt(p.ResultCode)
		if err != nil {
			err = fmt.Errorf("report.progress.result_code: %v", err)
		}
	default:
		err = fmt.Errorf("report.progress.state: %q is not downloading, burning, done or fail", p.State)
	}
	if err != nil {
		oc.log.Warn("explorertest: ota: bad report_progress", "topic", u.Topic, "err", err)
		return
	}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	job, ok := oc.jobs[u.Device]
	switch {
	case !ok:
		oc.log.Warn("explorertest: ota: progress without a job", "topic", u.Topic)
		return
	case m.Report.Version != job.state.TargetVersion:
		oc.log.Warn("explorertest: ota: progress for another version", "topic", u.Topic, "field", "report.version", "value", m.Report.Version, "target", job.state.TargetVersion)
		return
	case job.state.State == OTADone:
		// Terminal until the next push; a late QoS 0 "downloading" must not undo it.
		oc.log.Info("explorertest: ota: progress after done ignored", "topic", u.Topic, "state", p.State)
		return
	}
	job.event(ev, oc.s.clock())
	oc.notifyLocked()
}

// wireInt reads an integer sent as a string (as the SDKs do) or as a number.
func wireInt(raw json.RawMessage) (int, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, errors.New("missing")
	}
	if strings.HasPrefix(s, `"`) {
		if err := unmarshalUntrusted(raw, &s); err != nil {
			return 0, err
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer", raw)
	}
	return n, nil
}

// ---------------------------------------------------------------------------------------------
// JSON API.

// otaJobJSON is the "ota" section of GET /api/devices/{pid}/{dn}: the job document, or
// {"reported_version":...} for a device without a job, or nil when the device never spoke OTA.
func (s *Server) otaJobJSON(id DeviceID) any {
	oc := s.ota()
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
	if err := jsonguard.Decode(r.Body, &body, maxAPIBody); err != nil {
		writeError(w, http.StatusBadRequest, "body must be {\"version\":\"...\"}: "+err.Error())
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
