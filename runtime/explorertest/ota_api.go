package explorertest

// The OTA feature's Server methods: firmware, jobs, fault injection.

import (
	"context"
	"fmt"
	"io"
	"time"
)

// FirmwareURL is the base URL of the plain firmware download host, e.g.
// "http://127.0.0.1:41234", or "http://127.0.0.1" on port 80 (WithFirmwareAddr).
func (s *Server) FirmwareURL() string { return s.ota.fwHTTP.URL() }

// FirmwareTLSURL is the base URL of the TLS firmware download host (certificate from RootCAs).
func (s *Server) FirmwareTLSURL() string { return s.ota.fwHTTPS.URL() }

// FirmwareRequestsDropped counts download requests dropped from the bounded request log
// behind FirmwareRequests (internal/firmware keeps the newest 1024, fields clipped).
func (s *Server) FirmwareRequestsDropped() int64 { return s.ota.store.RequestsDropped() }

// UploadFirmware stores an image for product pid and version, streaming r to disk (big images
// are never held in memory). Uploading a version again replaces it for later pushes.
func (s *Server) UploadFirmware(pid, version string, r io.Reader) (FirmwareInfo, error) {
	oc := s.liveOTA()
	if oc == nil {
		return FirmwareInfo{}, ErrClosed
	}
	img, err := oc.store.Put(pid, version, r)
	if err != nil {
		return FirmwareInfo{}, fmt.Errorf("explorertest: UploadFirmware %s %q: %w", pid, version, err)
	}
	s.changedKey(changeFirmware, img.ID)
	s.log.Info("ota: firmware uploaded", "product", pid, "version", version, "size", img.Size, "md5", img.MD5)
	return FirmwareInfo{VersionID: img.ID, ProductID: img.ProductID, Version: img.Version, Size: img.Size, MD5: img.MD5}, nil
}

// DeleteFirmware removes an uploaded version; its download URLs answer 404 from then on.
func (s *Server) DeleteFirmware(pid, version string) error {
	oc := s.liveOTA()
	if oc == nil {
		return ErrClosed
	}
	img, err := oc.lookup(pid, version)
	if err != nil {
		return fmt.Errorf("explorertest: DeleteFirmware: %w", err)
	}
	if err := oc.store.Delete(img.ID); err != nil {
		return err
	}
	s.changedKey(changeFirmware, img.ID)
	return nil
}

// CutFirmwareDownload injects faults: each absolute byte offset closes the connection of the
// next download response of that image reaching it, right after that many bytes.
func (s *Server) CutFirmwareDownload(pid, version string, offsets ...int64) error {
	oc := s.liveOTA()
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
	oc := s.liveOTA()
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
	oc := s.liveOTA()
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
	oc := s.liveOTA()
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
	oc.step(id, job, OTAProgress{State: OTAPending, ResultMsg: "job created"})
	current, reported := oc.versions[id]
	job.state.ReportedVersion = current
	switch {
	case reported && current == version:
		oc.step(id, job, OTAProgress{State: OTADone, Percent: 100, ResultMsg: "device already runs " + version})
	case reported && s.Online(pid, dn):
		if err := oc.pushLocked(id, job); err != nil {
			oc.notifyLocked()
			s.changed(changeOTA, id, nil)
			return err
		}
	}
	oc.notifyLocked()
	s.changed(changeOTA, id, nil)
	return nil
}

// OTAJob returns a snapshot of the device's OTA job.
func (s *Server) OTAJob(pid, dn string) (OTAJobState, bool) {
	oc := s.liveOTA()
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

// FirmwareVersion returns the version the device last reported with report_version.
func (s *Server) FirmwareVersion(pid, dn string) (string, bool) {
	oc := s.liveOTA()
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
	oc := s.liveOTA()
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
