package explorertest

// Device logs, the cloud side (docs/PROTOCOL.md §7.2).
//
//   - $log/operation/{pid}/{dn} {"type":"get_log_level","clientToken"} is answered on
//     $log/operation/result/{pid}/{dn} with {"type":"get_log_level","clientToken","log_level",
//     "result":0,"timestamp"}; SetLogLevel (and the API) pushes the same message, without a
//     clientToken, to an online device. The level of a device starts at 0 (no upload) until set.
//   - POST /device/reportlog (signed as §6.2, see gatewayapi.go) stores the lines of
//     {"ProductId","DeviceName","Message":[...]} for the device.
//
// Bounds (a device must not grow the platform's memory): at most logMaxLines lines and
// logMaxBytes bytes per device (oldest dropped, counted), each line at most logMaxLine bytes
// (cut), at most logMaxBatch lines per request (413 beyond the body limit, refused beyond the
// line count). Devices are bounded by the registry; a removed device's logs are forgotten.
// With --data each device's level, counters and kept lines are one record of section devlog
// (written when they change, coalesced), restored within the same bounds.
//
// JSON API:
//
//	PUT /api/devices/{pid}/{dn}/log-level  {"level":0..4} -> 200 {"level","pushed"} ("pushed":
//	                                       false when the device is offline; it gets the level
//	                                       when it asks)
//	GET /api/devices/{pid}/{dn}/logs[?limit=N] -> 200 {"level","lines":[{"seq","at","level",
//	                                       "text"}],"total","dropped"} (newest N, default all kept)

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"
)

const (
	logMaxLines = 2000
	logMaxBytes = 512 << 10
	logMaxLine  = 4096
	logMaxBatch = 1000
	logMaxBody  = 1 << 20
)

// LogLine is one stored device log line.
type LogLine struct {
	Seq   uint64    `json:"seq"`   // per device, from 1
	At    time.Time `json:"at"`    // platform time of the upload
	Level string    `json:"level"` // DBG, INF, WRN, ERR from the line's prefix; "" if it has none
	Text  string    `json:"text"`  // the line as uploaded (cut to 4096 bytes)
}

// DeviceLogs is a snapshot of a device's stored logs.
type DeviceLogs struct {
	Level   int       `json:"level"`   // the cloud log level set for the device
	Lines   []LogLine `json:"lines"`   // oldest first
	Total   uint64    `json:"total"`   // lines ever accepted
	Dropped uint64    `json:"dropped"` // lines dropped by the bounds
}

type deviceLog struct {
	level   int
	lines   []LogLine
	bytes   int
	total   uint64
	dropped uint64
}

// add appends a line and drops the oldest ones beyond the bounds.
func (d *deviceLog) add(l LogLine) {
	d.lines = append(d.lines, l)
	d.bytes += len(l.Text)
	for len(d.lines) > logMaxLines || d.bytes > logMaxBytes {
		d.bytes -= len(d.lines[0].Text)
		d.lines[0] = LogLine{}
		d.lines = d.lines[1:]
		d.dropped++
	}
}

// save is the devlog section's snapshot of one device (--data).
func (lc *logCloud) save(key string) ([]byte, bool, error) {
	id, err := splitKey(key)
	if err != nil {
		return nil, false, err
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	d := lc.by[id]
	if d == nil {
		return nil, false, nil
	}
	b, err := json.Marshal(DeviceLogs{Level: d.level, Lines: d.lines, Total: d.total, Dropped: d.dropped})
	return b, true, err
}

// restore puts a saved device log back, keeping the bounds: lines beyond them are dropped
// (and counted) as if they had just arrived.
func (lc *logCloud) restore(key string, b []byte) error {
	id, err := splitKey(key)
	if err != nil {
		return err
	}
	var saved DeviceLogs
	if err := unmarshalUntrusted(b, &saved); err != nil {
		return err
	}
	if saved.Level < 0 || saved.Level > 4 {
		return fmt.Errorf("level %d: want 0 … 4", saved.Level)
	}
	d := &deviceLog{level: saved.Level, total: saved.Total, dropped: saved.Dropped}
	for i, l := range saved.Lines {
		if l.Seq == 0 || l.Seq > saved.Total || (i > 0 && l.Seq <= saved.Lines[i-1].Seq) {
			return fmt.Errorf("lines[%d]: seq %d out of order (total %d)", i, l.Seq, saved.Total)
		}
		if len(l.Text) > logMaxLine {
			l.Text = l.Text[:logMaxLine]
		}
		d.add(l)
	}
	lc.mu.Lock()
	lc.by[id] = d
	lc.mu.Unlock()
	return nil
}

type logCloud struct {
	s  *Server
	mu sync.Mutex
	by map[DeviceID]*deviceLog
}

// logs returns the feature's state (Server field dlog), or nil after Close.
func (s *Server) logs() *logCloud {
	if s.isFinished() {
		return nil
	}
	return s.dlog
}

func (s *Server) initDevLog() error {
	lc := &logCloud{s: s, by: map[DeviceID]*deviceLog{}}
	s.dlog = lc
	s.handleUplink("$log/operation/", lc.handleUplink)
	s.onDeviceRemoved(func(id DeviceID) {
		lc.mu.Lock()
		delete(lc.by, id)
		lc.mu.Unlock()
	})
	s.persistSection(changeDevLog, persistFuncs{save: lc.save, restore: lc.restore})
	s.mux.HandleFunc("POST /device/reportlog", s.serveReportLog)
	s.mux.HandleFunc("PUT /api/devices/{pid}/{dn}/log-level", s.apiSetLogLevel)
	s.mux.HandleFunc("GET /api/devices/{pid}/{dn}/logs", s.apiGetLogs)
	return nil
}

// get returns id's record, creating it; nil for devices not registered. Caller holds lc.mu.
func (lc *logCloud) get(id DeviceID) *deviceLog {
	if d := lc.by[id]; d != nil {
		if _, ok := lc.s.Device(id.ProductID, id.DeviceName); ok {
			return d
		}
		delete(lc.by, id)
		return nil
	}
	if _, ok := lc.s.Device(id.ProductID, id.DeviceName); !ok {
		return nil
	}
	d := &deviceLog{}
	lc.by[id] = d
	return d
}

func (lc *logCloud) level(id DeviceID) int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if d := lc.get(id); d != nil {
		return d.level
	}
	return 0
}

func (lc *logCloud) handleUplink(u uplink) {
	if !strings.HasPrefix(u.Topic, "$log/operation/"+u.Device.ProductID+"/") {
		return // $log/operation/result/... is cloud-to-device; the ACL refuses it anyway
	}
	var req struct {
		Type        string `json:"type"`
		ClientToken string `json:"clientToken"`
	}
	if err := unmarshalUntrusted(u.Payload, &req); err != nil {
		lc.s.log.Warn("explorertest: $log/operation message ignored", "device", u.Device.String(), "err", err)
		return
	}
	if req.Type != "get_log_level" {
		lc.s.log.Warn("explorertest: $log/operation type not supported", "device", u.Device.String(), "type", req.Type)
		return
	}
	lc.push(u.Device, lc.level(u.Device), req.ClientToken)
}

// push sends the level message to the device.
func (lc *logCloud) push(id DeviceID, level int, token string) error {
	m := map[string]any{"type": "get_log_level", "log_level": level, "result": 0, "timestamp": lc.s.clock().Unix()}
	if token != "" {
		m["clientToken"] = clip([]byte(token))
	}
	b, _ := json.Marshal(m)
	return lc.s.Publish("$log/operation/result/"+id.ProductID+"/"+id.DeviceName, b, 0)
}

// SetLogLevel sets the cloud log level (0 none … 4 debug) of a device and pushes it when the
// device is online; pushed reports whether it was.
func (s *Server) SetLogLevel(pid, dn string, level int) (pushed bool, err error) {
	id := DeviceID{pid, dn}
	if level < 0 || level > 4 {
		return false, fmt.Errorf("explorertest: SetLogLevel %s: log level %d: want 0 (none) … 4 (debug)", id, level)
	}
	lc := s.logs()
	if lc == nil {
		return false, ErrClosed
	}
	lc.mu.Lock()
	d := lc.get(id)
	if d != nil {
		d.level = level
	}
	lc.mu.Unlock()
	if d == nil {
		return false, fmt.Errorf("explorertest: SetLogLevel: %w %s", ErrUnknownDevice, id)
	}
	s.changed(changeDevLog, id, map[string]any{"level": level})
	if !s.Online(pid, dn) {
		return false, nil
	}
	return true, lc.push(id, level, "")
}

// DeviceLogs returns the stored logs of a device (ok false for an unknown device).
func (s *Server) DeviceLogs(pid, dn string) (DeviceLogs, bool) {
	lc := s.logs()
	if lc == nil {
		return DeviceLogs{}, false
	}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	d := lc.get(DeviceID{pid, dn})
	if d == nil {
		return DeviceLogs{}, false
	}
	return DeviceLogs{Level: d.level, Lines: append([]LogLine{}, d.lines...), Total: d.total, Dropped: d.dropped}, true
}

type reportLogBody struct {
	gatewayIdentity
	Message []string `json:"Message"`
}

func (s *Server) serveReportLog(w http.ResponseWriter, r *http.Request) {
	var m reportLogBody
	id, _, e := s.readGatewayRequest(r, logMaxBody, &m)
	if e == nil {
		e = s.storeLog(id, m.Message)
	}
	if e != nil {
		s.log.Info("explorertest: log upload refused", "device", id.String(), "code", e.code, "reason", e.message)
	}
	writeGateway(w, e)
}

func (s *Server) storeLog(id DeviceID, msg []string) *gwError {
	if len(msg) > logMaxBatch {
		return gwErr(GWInvalidParameter, "Message has %d lines, at most %d per request", len(msg), logMaxBatch)
	}
	lc := s.logs()
	if lc == nil {
		return &gwError{status: http.StatusInternalServerError, code: "InternalError", message: "server closed"}
	}
	now := s.clock()
	lc.mu.Lock()
	defer lc.mu.Unlock()
	d := lc.get(id)
	if d == nil {
		return gwErr(GWDeviceNotExist, "device %s does not exist", id)
	}
	for _, text := range msg {
		if len(text) > logMaxLine {
			text = text[:logMaxLine]
		}
		lvl := ""
		if len(text) >= 3 {
			switch text[:3] {
			case "DBG", "INF", "WRN", "ERR":
				lvl = text[:3]
			}
		}
		d.total++
		d.add(LogLine{Seq: d.total, At: now, Level: lvl, Text: text})
	}
	s.changed(changeDevLog, id, map[string]any{"total": d.total, "level": d.level})
	return nil
}

func (s *Server) apiSetLogLevel(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	var body struct {
		Level *int `json:"level"`
	}
	if !decodeBody(w, r, &body, `{"level":0..4}`) {
		return
	}
	if body.Level == nil {
		writeError(w, http.StatusBadRequest, `level: missing; want {"level":0..4}`)
		return
	}
	pushed, err := s.SetLogLevel(id.ProductID, id.DeviceName, *body.Level)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"level": *body.Level, "pushed": pushed})
}

func (s *Server) apiGetLogs(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	logs, _ := s.DeviceLogs(id.ProductID, id.DeviceName)
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "limit: want a count ≥ 0, got "+l)
			return
		}
		if n < len(logs.Lines) {
			logs.Lines = logs.Lines[len(logs.Lines)-n:]
		}
	}
	writeJSON(w, http.StatusOK, logs)
}
