package explorertest

// The OTA feature's uplink handler: report_version and report_progress on $ota/report/{pid}/{dn}
// (docs/PROTOCOL.md §4).

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"
)

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

func (oc *otaCloud) handleReport(u uplink) {
	var m otaReport
	if err := unmarshalUntrusted(u.Payload, &m); err != nil {
		oc.log.Warn("explorertest: ota: malformed report", "device", u.Device.String(), "topic", u.Topic, "err", err)
		return
	}
	switch m.Type {
	case "report_version":
		oc.reportVersion(u, m.Report.Version)
	case "report_progress":
		oc.reportProgress(u, &m)
	default:
		oc.log.Warn("explorertest: ota: unknown report type", "device", u.Device.String(), "topic", u.Topic, "field", "type", "value", m.Type)
	}
}

func (oc *otaCloud) reportVersion(u uplink, v string) {
	rsp := reportVersionRsp{Type: "report_version_rsp", ResultMsg: "success", Version: v}
	valid := len(v) >= 1 && len(v) <= 32
	if !valid {
		oc.log.Warn("explorertest: ota: bad version", "device", u.Device.String(), "topic", u.Topic, "field", "report.version", "value", v)
		rsp.ResultCode, rsp.ResultMsg = 1, fmt.Sprintf("report.version must be 1-32 characters, got %d", len(v))
	}
	down := "$ota/update/" + u.Device.ProductID + "/" + u.Device.DeviceName
	b, _ := marshalJSON(rsp)
	oc.mu.Lock()
	defer oc.mu.Unlock()
	// State is updated before the reply, so a device holding its rsp sees the platform updated;
	// a (re)push goes out after the reply, in the order the real platform sends them.
	job := oc.jobs[u.Device]
	repush := false
	if valid {
		oc.log.Info("ota: report_version", "device", u.Device.String(), "version", v)
		oc.versions[u.Device] = v
		if job != nil {
			job.state.ReportedVersion = v
			switch {
			case v != job.state.TargetVersion:
				repush = true
			case job.state.State != OTADone:
				oc.step(u.Device, job, OTAProgress{State: OTADone, Percent: 100, ResultMsg: "device reports target version"})
			}
		}
		oc.notifyLocked()
		oc.s.changed(changeOTA, u.Device, nil)
	}
	if err := oc.s.Publish(down, b, 1); err != nil {
		oc.log.Warn("explorertest: ota: reply failed", "topic", down, "err", err)
	}
	if repush {
		if err := oc.pushLocked(u.Device, job); err != nil {
			oc.log.Warn("explorertest: ota: push failed", "device", u.Device.String(), "err", err)
		}
		oc.notifyLocked()
		oc.s.changed(changeOTA, u.Device, nil)
	}
}

func (oc *otaCloud) reportProgress(u uplink, m *otaReport) {
	p := m.Report.Progress
	if p == nil {
		oc.log.Warn("explorertest: ota: report_progress without progress", "device", u.Device.String(), "topic", u.Topic, "field", "report.progress")
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
		oc.log.Warn("explorertest: ota: bad report_progress", "device", u.Device.String(), "topic", u.Topic, "err", err)
		return
	}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	job, ok := oc.jobs[u.Device]
	switch {
	case !ok:
		oc.log.Warn("explorertest: ota: progress without a job", "device", u.Device.String(), "topic", u.Topic)
		return
	case m.Report.Version != job.state.TargetVersion:
		oc.log.Warn("explorertest: ota: progress for another version", "device", u.Device.String(), "topic", u.Topic, "field", "report.version", "value", m.Report.Version, "target", job.state.TargetVersion)
		return
	case job.state.State == OTADone:
		// Terminal until the next push; a late QoS 0 "downloading" must not undo it.
		oc.log.Info("explorertest: ota: progress after done ignored", "device", u.Device.String(), "topic", u.Topic, "state", p.State)
		return
	}
	oc.step(u.Device, job, ev)
	oc.notifyLocked()
	oc.s.changed(changeOTA, u.Device, nil)
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
