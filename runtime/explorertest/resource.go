package explorertest

// Files and resources, the cloud side (docs/PROTOCOL.md §7.5), beside the firmware store.
//
// A resource library per product (UploadResource, POST /api/resources) lives in
// internal/resstore on disk; objects are downloaded and uploaded through presigned expiring
// URLs {base}/{key}?q-expires&q-method&q-signature served on both HTTP listeners (expired: 403
// "URL expired at ..."). {base} is the HTTPS listener for devices connected over TLS or wss and
// the plain HTTP listener for devices on plain MQTT or ws.
//
// File management ($thing/up|down/service, method-keyed):
//
//	report_version      stores the device's list, answers report_version_rsp {result_code 0,
//	                    resource_list: the list as accepted}, and re-pushes pending jobs whose
//	                    version the device does not report
//	update_resource     pushed by PushResource (and again when the device comes online)
//	report_progress     job -> downloading(percent) / burning
//	report_result       job -> done, or fail(result_code)
//	del_resource        pushed by DeleteDeviceResource; del_result -> job deleted / delete_failed
//	request_url         reserves an upload slot: request_url_resp {result_code, resource_url (PUT),
//	                    resource_token, request_id}; a refusal has result_code -1 and a message
//	report_post_result  upload -> done (the object must exist) or fail
//
// Resource management ($resource/up|down/service, type-keyed):
//
//	create_upload_task        slot for {size, name, md5sum}: create_upload_task_rsp {..., url}
//	report_upload_progress    upload progress; answered report_upload_progress_rsp
//	(PUT completed)           upload_result {name, result_code 0, result_msg} to the device
//	get_download_task         the first pending task: get_download_task_rsp {size,name,md5sum,url},
//	                          or result_code 1 "no download task"
//	download                  pushed by PushResource(..., WithTaskAPI())
//	report_download_progress  job -> downloading / done / fail; answered *_rsp
//
// JSON API:
//
//	POST   /api/resources?product=PID&name=N&version=V&type=FILE   raw body -> 201 ResourceInfo
//	GET    /api/resources?product=PID                             [ResourceInfo]
//	POST   /api/devices/{pid}/{dn}/resources   {"name","version"?,"api":"files"|"tasks"} -> 202 job
//	GET    /api/devices/{pid}/{dn}/resources   DeviceResources {reported, jobs, uploads, dropped_uploads}
//	DELETE /api/devices/{pid}/{dn}/resources/{name}   -> 202 (del_resource pushed; 409 offline)
//	GET    /api/uploads/{key}                  the content of a device upload
//
// Bounds: objects, bytes and open upload slots in resstore (1000 objects per owner, 1 GiB,
// 256 MiB per object); per device at most resMaxReported reported entries, resMaxJobs jobs,
// resMaxUploads upload records (oldest dropped, counted) and resMaxHistory progress entries
// per job.
//
// With WithDataDir the objects live in {dir}/resources and everything above survives a restart
// (sections resource_objects, resources and resource_key, persist.go): the library, device
// uploads, open upload slots, jobs (a pending one is pushed when its device comes online),
// reported lists, and the URL-signing key, so issued URLs keep their validity and expiry.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorertest/internal/resstore"
)

const (
	resMaxReported = 1000
	resMaxJobs     = 1000
	resMaxUploads  = 100
	resMaxHistory  = 50
	resURLTTL      = time.Hour
)

// Errors of the resource feature.
var (
	ErrUnknownResource = errors.New("unknown resource")
	ErrUnknownUpload   = errors.New("unknown upload")
)

// ResourceInfo describes a resource in a product's library.
type ResourceInfo struct {
	ResourceID string    `json:"resource_id"` // object key
	ProductID  string    `json:"product_id"`
	Name       string    `json:"name"`
	Version    string    `json:"version"`
	Type       string    `json:"type"`
	Size       int64     `json:"size"`
	MD5        string    `json:"md5"`
	Created    time.Time `json:"created"`
}

// ResourceProgress is one step of a job.
type ResourceProgress struct {
	State      string    `json:"state"`
	Percent    int       `json:"percent"`
	ResultCode int       `json:"result_code"`
	ResultMsg  string    `json:"result_msg,omitempty"`
	At         time.Time `json:"at"`
}

// ResourceJob is a resource pushed to a device.
type ResourceJob struct {
	ResourceInfo
	API        string             `json:"api"`   // "files" ($thing service) or "tasks" ($resource)
	State      string             `json:"state"` // pending downloading burning done fail deleting deleted delete_failed
	Percent    int                `json:"percent"`
	ResultCode int                `json:"result_code"`
	ResultMsg  string             `json:"result_msg,omitempty"`
	Pushes     int                `json:"pushes"`
	History    []ResourceProgress `json:"history"`
	Updated    time.Time          `json:"updated"`
	ttl        time.Duration
}

// DeviceUpload is a file a device uploaded (or is uploading).
type DeviceUpload struct {
	Token      string    `json:"token"` // object key; GET /api/uploads/{token}
	API        string    `json:"api"`
	Name       string    `json:"name"`
	Version    string    `json:"version,omitempty"`
	Type       string    `json:"type,omitempty"`
	Size       int64     `json:"size"`
	MD5        string    `json:"md5,omitempty"`
	State      string    `json:"state"` // requested uploading uploaded done fail
	Percent    int       `json:"percent"`
	ResultCode int       `json:"result_code"`
	ResultMsg  string    `json:"result_msg,omitempty"`
	Updated    time.Time `json:"updated"`
}

// DeviceResources is a device's resource state.
type DeviceResources struct {
	Reported       []ResourceEntry `json:"reported"`
	Jobs           []ResourceJob   `json:"jobs"`
	Uploads        []DeviceUpload  `json:"uploads"`
	DroppedUploads int             `json:"dropped_uploads"`
}

// ResourceEntry is one entry of a device's report_version.
type ResourceEntry struct {
	Name    string `json:"resource_name"`
	Version string `json:"version"`
	Type    string `json:"resource_type"`
}

type resDevice struct {
	reported []ResourceEntry
	jobs     map[string]*ResourceJob
	uploads  []*DeviceUpload
	dropped  int
}

type resCloud struct {
	s     *Server
	store *resstore.Store

	mu        sync.Mutex
	devs      map[DeviceID]*resDevice
	changed   chan struct{}
	restoring []restoredObject // --data: records read, adopted once the section is loaded
}

func (s *Server) liveRes() *resCloud {
	if s.isFinished() {
		return nil
	}
	return s.res
}

func (s *Server) initResources() error {
	opts := []resstore.Option{resstore.WithClock(s.clock)}
	if s.data != nil {
		// --data: objects in {dir}/resources, URLs signed with the stored key (persist.go).
		key, err := s.signingKey(resKeySection, resstore.SigningKeySize)
		if err != nil {
			return err
		}
		opts = append(opts, resstore.WithSigningKey(key))
	}
	st, err := resstore.New(s.dataPath("resources"), opts...)
	if err != nil {
		return err
	}
	rc := &resCloud{s: s, store: st, devs: map[DeviceID]*resDevice{}, changed: make(chan struct{})}
	s.res = rc
	s.addCloser(func() { st.Close() })
	st.OnUploaded(rc.uploaded)
	st.OnChange(func(key string) { s.changedKey(changeResObject, key) })
	// Objects first: restoring a device's uploads looks at the objects.
	s.persistSection(changeResObject, persistFuncs{save: s.saveResObject, restore: s.restoreResObject, loaded: s.adoptResObjects})
	s.persistSection(changeResources, persistFuncs{save: s.saveResDevice, restore: s.restoreResDevice})
	s.handleUplink("$thing/up/service/", rc.handleFiles)
	s.handleUplink("$resource/up/service/", rc.handleTasks)
	s.onDeviceState(func(id DeviceID, online bool) {
		if online {
			rc.pushPending(id, "")
		}
	})
	s.onDeviceRemoved(func(id DeviceID) {
		rc.mu.Lock()
		delete(rc.devs, id)
		rc.mu.Unlock()
		// Its uploads go too: nobody can list or fetch them through the API any more.
		if n, err := st.DeleteOwner(id.String()); err != nil {
			s.log.Warn("explorertest: resources: deleting a removed device's uploads", "device", id.String(), "deleted", n, "err", err)
		} else if n > 0 {
			s.log.Info("explorertest: resources: removed device's uploads deleted", "device", id.String(), "objects", n)
		}
	})
	obj := st.Handler()
	s.mux.Handle("GET /{key}", obj)
	s.mux.Handle("PUT /{key}", obj)
	s.mux.HandleFunc("POST /api/resources", s.apiUploadResource)
	s.mux.HandleFunc("GET /api/resources", s.apiListResources)
	s.mux.HandleFunc("POST /api/devices/{pid}/{dn}/resources", s.apiPushResource)
	s.mux.HandleFunc("GET /api/devices/{pid}/{dn}/resources", s.apiDeviceResources)
	s.mux.HandleFunc("DELETE /api/devices/{pid}/{dn}/resources/{name}", s.apiDeleteResource)
	s.mux.HandleFunc("GET /api/uploads/{key}", s.apiGetUpload)
	s.addDeviceDetail("resources", func(id DeviceID) any {
		if st, ok := s.DeviceResources(id.ProductID, id.DeviceName); ok && (len(st.Jobs)+len(st.Uploads)+len(st.Reported)) > 0 {
			return st
		}
		return nil
	})
	return nil
}

// notifyLocked wakes WaitDeviceResources and reports the change of device id's resource state
// (stream and --data). Caller holds rc.mu.
func (rc *resCloud) notifyLocked(id DeviceID) {
	close(rc.changed)
	rc.changed = make(chan struct{})
	rc.s.changed(changeResources, id, nil)
}

// dev returns id's record (created); nil for an unregistered device. Caller holds rc.mu.
func (rc *resCloud) dev(id DeviceID) *resDevice {
	if _, ok := rc.s.Device(id.ProductID, id.DeviceName); !ok {
		delete(rc.devs, id)
		return nil
	}
	d := rc.devs[id]
	if d == nil {
		d = &resDevice{jobs: map[string]*ResourceJob{}}
		rc.devs[id] = d
	}
	return d
}

func infoOf(o resstore.Object) ResourceInfo {
	return ResourceInfo{ResourceID: o.Key, ProductID: o.Owner, Name: o.Name, Version: o.Version, Type: o.Type, Size: o.Size, MD5: o.MD5, Created: o.Created}
}

// UploadResource stores a resource for product pid (streamed to disk). typ defaults to FILE.
func (s *Server) UploadResource(pid, name, version, typ string, r io.Reader) (ResourceInfo, error) {
	rc := s.liveRes()
	if rc == nil {
		return ResourceInfo{}, ErrClosed
	}
	if err := checkResourceName(name); err != nil {
		return ResourceInfo{}, err
	}
	if len(version) < 1 || len(version) > 32 {
		return ResourceInfo{}, fmt.Errorf("explorertest: UploadResource: version %q must be 1–32 characters", version)
	}
	if typ == "" {
		typ = "FILE"
	}
	o, err := rc.store.Put(pid, name, version, typ, r)
	if err != nil {
		return ResourceInfo{}, fmt.Errorf("explorertest: UploadResource %s %s: %w", name, version, err)
	}
	if s.data != nil {
		s.flushChanges() // --data: the object's record is written before the upload is answered
	}
	return infoOf(o), nil
}

func checkResourceName(name string) error {
	if name == "" || len(name) > 64 || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("explorertest: resource name %q: want a plain file name of 1–64 bytes", clip([]byte(name)))
	}
	return nil
}

// checkUploadName checks the name a device gives its upload. It is only a label on the
// platform (objects are stored under random keys), so paths are accepted: the official Python
// SDK's samples pass a file path.
func checkUploadName(name string) error {
	if name == "" || len(name) > 255 || strings.ContainsRune(name, 0) {
		return fmt.Errorf("explorertest: upload name %q: want 1–255 bytes without NUL", clip([]byte(name)))
	}
	return nil
}

// Resources lists product pid's library, oldest first.
func (s *Server) Resources(pid string) []ResourceInfo {
	rc := s.liveRes()
	if rc == nil {
		return nil
	}
	var out []ResourceInfo
	for _, o := range rc.store.List(pid) {
		out = append(out, infoOf(o))
	}
	return out
}

// findResource returns the newest library object of pid named name (of version, if given).
func (rc *resCloud) findResource(pid, name, version string) (ResourceInfo, bool) {
	objs := rc.store.List(pid)
	for i := len(objs) - 1; i >= 0; i-- {
		if objs[i].Name == name && (version == "" || objs[i].Version == version) {
			return infoOf(objs[i]), true
		}
	}
	return ResourceInfo{}, false
}

// ResourcePushOption configures PushResource.
type ResourcePushOption func(*resPush)

type resPush struct {
	api string
	ttl time.Duration
}

// WithTaskAPI pushes through resource management ($resource "download" task) instead of file
// management ($thing update_resource).
func WithTaskAPI() ResourcePushOption { return func(p *resPush) { p.api = "tasks" } }

// WithResourceURLTTL sets how long pushed URLs stay valid (default 1h; negative: already expired).
func WithResourceURLTTL(d time.Duration) ResourcePushOption { return func(p *resPush) { p.ttl = d } }

// PushResource makes a library resource (newest of that name, or of that version) a job of the
// device and pushes it now if the device is online (otherwise when it comes online).
func (s *Server) PushResource(pid, dn, name, version string, opts ...ResourcePushOption) (ResourceJob, error) {
	rc := s.liveRes()
	if rc == nil {
		return ResourceJob{}, ErrClosed
	}
	p := resPush{api: "files", ttl: resURLTTL}
	for _, o := range opts {
		o(&p)
	}
	id := DeviceID{pid, dn}
	info, ok := rc.findResource(pid, name, version)
	if !ok {
		return ResourceJob{}, fmt.Errorf("explorertest: PushResource: %w %q (version %q) in product %s", ErrUnknownResource, name, version, pid)
	}
	rc.mu.Lock()
	d := rc.dev(id)
	if d == nil {
		rc.mu.Unlock()
		return ResourceJob{}, fmt.Errorf("explorertest: PushResource: %w %s", ErrUnknownDevice, id)
	}
	if _, exists := d.jobs[name]; !exists && len(d.jobs) >= resMaxJobs {
		rc.mu.Unlock()
		return ResourceJob{}, fmt.Errorf("explorertest: PushResource %s: %d jobs, the limit is %d", id, len(d.jobs), resMaxJobs)
	}
	job := &ResourceJob{ResourceInfo: info, API: p.api, State: "pending", Updated: s.clock(), ttl: p.ttl}
	d.jobs[name] = job
	rc.notifyLocked(id)
	rc.mu.Unlock()
	rc.pushPending(id, name)
	st, _ := s.DeviceResources(pid, dn)
	for _, j := range st.Jobs {
		if j.Name == name {
			return j, nil
		}
	}
	return ResourceJob{}, fmt.Errorf("explorertest: PushResource: job of %s vanished", id)
}

// urlBase is the base of the URLs handed to a device: plain HTTP for a device connected over
// plain MQTT (tcp or ws: it already trusts an unauthenticated channel, and clients such as the
// official Python SDK's may not load the test CA for their HTTP calls), HTTPS otherwise.
func (rc *resCloud) urlBase(id DeviceID) string {
	rc.s.regMu.Lock()
	plain := false
	if d := rc.s.devices[id]; d != nil && d.session != nil {
		plain = d.session.listener == listenerTCP || d.session.listener == listenerWS
	}
	rc.s.regMu.Unlock()
	if plain {
		return rc.s.deviceBase(id, rc.s.HTTPURL(), rc.s.addr(&rc.s.httpAddr))
	}
	return rc.s.deviceBase(id, rc.s.HTTPSURL(), rc.s.addr(&rc.s.httpsAddr))
}

// pushPending pushes the device's pending jobs (only the one named, if name is set) when the
// device is online.
func (rc *resCloud) pushPending(id DeviceID, name string) {
	if !rc.s.Online(id.ProductID, id.DeviceName) {
		return
	}
	base := rc.urlBase(id)
	rc.mu.Lock()
	d := rc.dev(id)
	if d == nil {
		rc.mu.Unlock()
		return
	}
	type push struct {
		topic string
		msg   map[string]any
	}
	var pushes []push
	for _, j := range d.jobs {
		if j.State != "pending" || (name != "" && j.Name != name) {
			continue
		}
		url := rc.store.URL(base, j.ResourceID, http.MethodGet, rc.s.clock().Add(j.ttl))
		j.Pushes++
		j.Updated = rc.s.clock()
		if j.API == "tasks" {
			pushes = append(pushes, push{"$resource/down/service/" + id.ProductID + "/" + id.DeviceName,
				map[string]any{"type": "download", "name": j.Name, "size": j.Size, "md5sum": j.MD5, "url": url}})
		} else {
			pushes = append(pushes, push{"$thing/down/service/" + id.ProductID + "/" + id.DeviceName,
				map[string]any{"method": "update_resource", "resource_name": j.Name, "resource_type": j.Type, "version": j.Version,
					"url": url, "md5sum": j.MD5, "file_size": j.Size}})
		}
	}
	rc.notifyLocked(id)
	rc.mu.Unlock()
	for _, p := range pushes {
		name := p.msg["name"] // $resource download
		if name == nil {
			name = p.msg["resource_name"] // $thing update_resource
		}
		rc.s.log.Info("resource: pushed to device", "device", id.String(), "topic", p.topic, "resource", name)
		b, _ := json.Marshal(p.msg)
		if err := rc.s.Publish(p.topic, b, 1); err != nil {
			rc.s.log.Warn("explorertest: resource push failed", "device", id.String(), "err", err)
		}
	}
}

func (rc *resCloud) reply(id DeviceID, files bool, msg map[string]any) {
	topic := "$resource/down/service/"
	if files {
		topic = "$thing/down/service/"
	}
	b, _ := json.Marshal(msg)
	if err := rc.s.Publish(topic+id.ProductID+"/"+id.DeviceName, b, 1); err != nil {
		rc.s.log.Warn("explorertest: resource reply failed", "device", id.String(), "err", err)
	}
}

// wireNum reads a JSON number or numeric string; ok false when absent or malformed.
func wireNum(raw json.RawMessage) (int64, bool) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, false
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if unmarshalUntrusted(raw, &str) != nil {
			return 0, false
		}
		s = strings.TrimSpace(str)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

type wireProgress struct {
	ResourceName string          `json:"resource_name"`
	Token        string          `json:"resource_token"`
	State        string          `json:"state"`
	Percent      json.RawMessage `json:"percent"`
	ResultCode   json.RawMessage `json:"result_code"`
	ResultMsg    string          `json:"result_msg"`
}

type filesUplink struct {
	Method    string          `json:"method"`
	RequestID json.RawMessage `json:"request_id"`
	Report    struct {
		ResourceList []ResourceEntry `json:"resource_list"`
		Progress     wireProgress    `json:"progress"`
		Version      string          `json:"version"`
		ResourceEntry
	} `json:"report"`
}

// handleFiles handles the file management methods of $thing/up/service (others are ignored:
// the service topic is shared with other features).
func (rc *resCloud) handleFiles(u uplink) {
	var m filesUplink
	if err := unmarshalUntrusted(u.Payload, &m); err != nil {
		return // not ours to judge: other service-topic features log malformed messages
	}
	id := u.Device
	switch m.Method {
	case "report_version":
		list := m.Report.ResourceList
		if len(list) > resMaxReported {
			list = list[:resMaxReported]
		}
		for i := range list {
			list[i].Name, list[i].Version, list[i].Type = clipText(list[i].Name), clipText(list[i].Version), clipText(list[i].Type)
		}
		rc.mu.Lock()
		if d := rc.dev(id); d != nil {
			d.reported = list
			have := map[string]string{}
			for _, e := range list {
				have[e.Name] = e.Version
			}
			for _, j := range d.jobs {
				if j.API == "files" && j.State != "pending" && !strings.HasPrefix(j.State, "delet") && have[j.Name] != j.Version {
					j.State = "pending" // the device does not have it (failed, or restarted mid-download): push again
				}
			}
			rc.notifyLocked(id)
		}
		rc.mu.Unlock()
		if list == nil {
			list = []ResourceEntry{}
		}
		rc.reply(id, true, map[string]any{"method": "report_version_rsp", "result_code": 0, "result_msg": "success", "resource_list": list})
		rc.pushPending(id, "")
	case "report_progress", "report_result", "del_result":
		p := m.Report.Progress
		pct, _ := wireNum(p.Percent)
		code, _ := wireNum(p.ResultCode)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		d := rc.dev(id)
		if d == nil {
			return
		}
		j := d.jobs[p.ResourceName]
		if j == nil {
			rc.s.log.Info("explorertest: resource report for no job ignored", "device", id.String(), "method", m.Method, "resource", clipText(p.ResourceName))
			return
		}
		state := p.State
		switch {
		case m.Method == "del_result" && code == 0:
			state = "deleted"
			kept := d.reported[:0]
			for _, e := range d.reported {
				if e.Name != j.Name {
					kept = append(kept, e)
				}
			}
			d.reported = kept
		case m.Method == "del_result":
			state = "delete_failed"
		case m.Method == "report_result" && code == 0:
			state, pct = "done", 100
		case m.Method == "report_result":
			state = "fail"
		case state != "downloading" && state != "burning":
			state = "downloading"
		}
		j.update(state, int(pct), int(code), clipText(p.ResultMsg), rc.s.clock())
		rc.logStep(id, j)
		rc.notifyLocked(id)
	case "request_url":
		rid, ok := wireNum(m.RequestID)
		e := m.Report.ResourceEntry
		fail := func(msg string) {
			rc.reply(id, true, map[string]any{"method": "request_url_resp", "result_code": -1, "result_msg": msg, "request_id": strconv.FormatInt(rid, 10)})
		}
		if !ok {
			rc.s.log.Warn("explorertest: request_url without a numeric request_id ignored", "device", id.String())
			return
		}
		if err := checkUploadName(e.Name); err != nil {
			fail(err.Error())
			return
		}
		key, err := rc.reserve(id, "files", e.Name, clipText(e.Version), clipText(e.Type), 0, "")
		if err != nil {
			fail(err.Error())
			return
		}
		url := rc.store.URL(rc.urlBase(id), key, http.MethodPut, rc.s.clock().Add(resURLTTL))
		rc.reply(id, true, map[string]any{"method": "request_url_resp", "result_code": 0, "result_msg": "success",
			"resource_url": url, "resource_token": key, "request_id": strconv.FormatInt(rid, 10)})
	case "report_post_result":
		p := m.Report.Progress
		code, _ := wireNum(p.ResultCode)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		up := rc.findUpload(id, p.Token)
		if up == nil {
			rc.s.log.Info("explorertest: report_post_result for no upload ignored", "device", id.String(), "token", clipText(p.Token))
			return
		}
		_, stored := rc.store.Get(up.Token)
		switch {
		case code == 0 && stored:
			up.State, up.Percent = "done", 100
		case code == 0:
			up.State, up.ResultMsg = "fail", "the device reported success but no file was uploaded"
		default:
			up.State, up.ResultCode, up.ResultMsg = "fail", int(code), clipText(p.ResultMsg)
		}
		up.Updated = rc.s.clock()
		rc.notifyLocked(id)
	}
}

// logStep logs a resource job's state change (every resource step is a log line).
func (rc *resCloud) logStep(id DeviceID, j *ResourceJob) {
	rc.s.log.Info("resource: job "+j.State, "device", id.String(), "resource", j.Name, "version", j.Version, "api", j.API,
		"percent", j.Percent, "result_code", j.ResultCode, "result_msg", j.ResultMsg)
}

func (j *ResourceJob) update(state string, pct, code int, msg string, now time.Time) {
	j.State, j.Percent, j.ResultCode, j.ResultMsg, j.Updated = state, max(0, min(pct, 100)), code, msg, now
	j.History = append(j.History, ResourceProgress{State: state, Percent: j.Percent, ResultCode: code, ResultMsg: msg, At: now})
	if len(j.History) > resMaxHistory {
		j.History = append(j.History[:0:0], j.History[len(j.History)-resMaxHistory:]...)
	}
}

func clipText(s string) string {
	if len(s) > 128 {
		return s[:128]
	}
	return s
}

// reserve creates an upload slot and its record.
func (rc *resCloud) reserve(id DeviceID, api, name, version, typ string, size int64, md5 string) (string, error) {
	key, err := rc.store.Reserve(id.String(), name, version, typ, size, md5)
	if err != nil {
		return "", err
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	d := rc.dev(id)
	if d == nil {
		rc.store.Delete(key)
		return "", fmt.Errorf("%w %s", ErrUnknownDevice, id)
	}
	d.uploads = append(d.uploads, &DeviceUpload{Token: key, API: api, Name: name, Version: version, Type: typ, Size: size, MD5: md5, State: "requested", Updated: rc.s.clock()})
	for len(d.uploads) > resMaxUploads {
		old := d.uploads[0]
		if old.State == "requested" {
			rc.store.Delete(old.Token) // an open slot nobody will fill
		}
		d.uploads = d.uploads[1:]
		d.dropped++
	}
	rc.notifyLocked(id)
	return key, nil
}

// findUpload finds an upload record by token. Caller holds rc.mu.
func (rc *resCloud) findUpload(id DeviceID, token string) *DeviceUpload {
	d := rc.dev(id)
	if d == nil {
		return nil
	}
	for _, up := range d.uploads {
		if up.Token == token {
			return up
		}
	}
	return nil
}

// uploaded runs when a PUT filled a slot.
func (rc *resCloud) uploaded(o resstore.Object) {
	pid, dn, _ := strings.Cut(o.Owner, "/")
	id := DeviceID{pid, dn}
	rc.mu.Lock()
	up := rc.findUpload(id, o.Key)
	api := ""
	if up != nil {
		up.State, up.Size, up.MD5, up.Updated = "uploaded", o.Size, o.MD5, rc.s.clock()
		rc.s.log.Info("resource: device upload stored", "device", id.String(), "name", up.Name, "size", o.Size, "md5", o.MD5)
		if up.API == "tasks" {
			up.State, up.Percent = "done", 100
		}
		api = up.API
		rc.notifyLocked(id)
	}
	rc.mu.Unlock()
	if api == "tasks" {
		rc.reply(id, false, map[string]any{"type": "upload_result", "name": o.Name, "result_code": 0, "result_msg": "success"})
	}
}

type tasksUplink struct {
	Type     string          `json:"type"`
	Name     string          `json:"name"`
	Size     json.RawMessage `json:"size"`
	MD5      string          `json:"md5sum"`
	Progress wireProgress    `json:"progress"`
}

// handleTasks handles $resource/up/service.
func (rc *resCloud) handleTasks(u uplink) {
	id := u.Device
	var m tasksUplink
	if err := unmarshalUntrusted(u.Payload, &m); err != nil {
		rc.s.log.Warn("explorertest: $resource message ignored", "device", id.String(), "topic", u.Topic, "err", err)
		return
	}
	switch m.Type {
	case "create_upload_task":
		size, ok := wireNum(m.Size)
		rsp := map[string]any{"type": "create_upload_task_rsp", "name": m.Name, "size": size, "md5sum": clipText(m.MD5)}
		var err error
		switch {
		case !ok || size <= 0:
			err = fmt.Errorf("size: missing or not a positive integer")
		case len(m.MD5) != 32:
			err = fmt.Errorf("md5sum: want 32 hex characters")
		default:
			if err = checkUploadName(m.Name); err == nil {
				var key string
				if key, err = rc.reserve(id, "tasks", m.Name, "", "", size, strings.ToLower(m.MD5)); err == nil {
					rsp["url"] = rc.store.URL(rc.urlBase(id), key, http.MethodPut, rc.s.clock().Add(resURLTTL))
				}
			}
		}
		if err != nil {
			rsp["result_code"], rsp["result_msg"] = -1, err.Error()
		} else {
			rsp["result_code"], rsp["result_msg"] = 0, "success"
		}
		rc.reply(id, false, rsp)
	case "report_upload_progress":
		pct, _ := wireNum(m.Progress.Percent)
		code, _ := wireNum(m.Progress.ResultCode)
		rc.mu.Lock()
		if d := rc.dev(id); d != nil {
			for i := len(d.uploads) - 1; i >= 0; i-- {
				up := d.uploads[i]
				if up.API != "tasks" || up.Name != m.Name {
					continue
				}
				if code != 0 {
					up.State, up.ResultCode, up.ResultMsg = "fail", int(code), clipText(m.Progress.ResultMsg)
				} else if up.State == "requested" || up.State == "uploading" {
					up.State, up.Percent = "uploading", int(max(0, min(pct, 100)))
				}
				up.Updated = rc.s.clock()
				rc.notifyLocked(id)
				break
			}
		}
		rc.mu.Unlock()
		rc.reply(id, false, map[string]any{"type": "report_upload_progress_rsp", "result_code": 0, "result_msg": "ok"})
	case "get_download_task":
		base := rc.urlBase(id)
		rc.mu.Lock()
		var rsp map[string]any
		if d := rc.dev(id); d != nil {
			names := make([]string, 0, len(d.jobs))
			for n := range d.jobs {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				j := d.jobs[n]
				if j.API == "tasks" && j.State != "done" {
					rsp = map[string]any{"type": "get_download_task_rsp", "name": j.Name, "size": j.Size, "md5sum": j.MD5, "result_code": 0,
						"url": rc.store.URL(base, j.ResourceID, http.MethodGet, rc.s.clock().Add(j.ttl))}
					j.Pushes++
					break
				}
			}
		}
		rc.mu.Unlock()
		if rsp == nil {
			rsp = map[string]any{"type": "get_download_task_rsp", "result_code": 1, "result_msg": "no download task"}
		}
		rc.reply(id, false, rsp)
	case "report_download_progress":
		pct, _ := wireNum(m.Progress.Percent)
		code, _ := wireNum(m.Progress.ResultCode)
		rc.mu.Lock()
		if d := rc.dev(id); d != nil {
			if j := d.jobs[m.Name]; j != nil && j.API == "tasks" {
				state := "downloading"
				switch {
				case code != 0:
					state = "fail"
				case m.Progress.State == "done":
					state, pct = "done", 100
				}
				j.update(state, int(pct), int(code), clipText(m.Progress.ResultMsg), rc.s.clock())
				rc.logStep(id, j)
				rc.notifyLocked(id)
			}
		}
		rc.mu.Unlock()
		rc.reply(id, false, map[string]any{"type": "report_download_progress_rsp", "result_code": 0, "result_msg": "ok"})
	default:
		rc.s.log.Warn("explorertest: $resource type not supported", "device", id.String(), "type", clipText(m.Type))
	}
}

// DeviceResources returns a device's resource state (ok false for an unknown device).
func (s *Server) DeviceResources(pid, dn string) (DeviceResources, bool) {
	rc := s.liveRes()
	if rc == nil {
		return DeviceResources{}, false
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.snapshotLocked(DeviceID{pid, dn})
}

func (rc *resCloud) snapshotLocked(id DeviceID) (DeviceResources, bool) {
	d := rc.dev(id)
	if d == nil {
		return DeviceResources{}, false
	}
	out := DeviceResources{Reported: append([]ResourceEntry{}, d.reported...), Jobs: []ResourceJob{}, Uploads: []DeviceUpload{}, DroppedUploads: d.dropped}
	for _, j := range d.jobs {
		c := *j
		c.History = append([]ResourceProgress{}, j.History...)
		out.Jobs = append(out.Jobs, c)
	}
	sort.Slice(out.Jobs, func(a, b int) bool { return out.Jobs[a].Name < out.Jobs[b].Name })
	for _, up := range d.uploads {
		out.Uploads = append(out.Uploads, *up)
	}
	return out, true
}

// WaitDeviceResources waits until cond holds for the device's resource state (cond runs under
// the feature's lock: keep it short, do not call the Server from it).
func (s *Server) WaitDeviceResources(ctx context.Context, pid, dn string, cond func(DeviceResources) bool) (DeviceResources, error) {
	rc := s.liveRes()
	if rc == nil {
		return DeviceResources{}, ErrClosed
	}
	for {
		rc.mu.Lock()
		st, ok := rc.snapshotLocked(DeviceID{pid, dn})
		ch := rc.changed
		rc.mu.Unlock()
		if !ok {
			return st, fmt.Errorf("explorertest: WaitDeviceResources: %w %s/%s", ErrUnknownDevice, pid, dn)
		}
		if cond(st) {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, fmt.Errorf("explorertest: WaitDeviceResources %s/%s: %w", pid, dn, ctx.Err())
		}
	}
}

// DeleteDeviceResource asks an online device to delete a resource (del_resource).
func (s *Server) DeleteDeviceResource(pid, dn, name string) error {
	rc := s.liveRes()
	if rc == nil {
		return ErrClosed
	}
	id := DeviceID{pid, dn}
	if !s.Online(pid, dn) {
		return fmt.Errorf("explorertest: DeleteDeviceResource %s: %w", id, ErrDeviceOffline)
	}
	rc.mu.Lock()
	d := rc.dev(id)
	if d == nil {
		rc.mu.Unlock()
		return fmt.Errorf("explorertest: DeleteDeviceResource: %w %s", ErrUnknownDevice, id)
	}
	e := ResourceEntry{Name: name}
	for _, r := range d.reported {
		if r.Name == name {
			e = r
		}
	}
	j := d.jobs[name]
	if j == nil {
		if e.Version == "" {
			rc.mu.Unlock()
			return fmt.Errorf("explorertest: DeleteDeviceResource %s: %w %q (neither pushed nor reported)", id, ErrUnknownResource, name)
		}
		if len(d.jobs) >= resMaxJobs {
			rc.mu.Unlock()
			return fmt.Errorf("explorertest: DeleteDeviceResource %s: %d jobs, the limit is %d", id, len(d.jobs), resMaxJobs)
		}
		j = &ResourceJob{ResourceInfo: ResourceInfo{ProductID: pid, Name: name, Version: e.Version, Type: e.Type}, API: "files", ttl: resURLTTL}
		d.jobs[name] = j
	}
	if e.Version == "" {
		e.Version, e.Type = j.Version, j.Type
	}
	j.update("deleting", j.Percent, 0, "", s.clock())
	rc.logStep(id, j)
	rc.notifyLocked(id)
	rc.mu.Unlock()
	rc.reply(id, true, map[string]any{"method": "del_resource", "resource_name": name, "resource_type": e.Type, "version": e.Version})
	return nil
}

// CutResourceDownload makes the next downloads of a library resource break at the given
// byte offsets (for resume tests).
func (s *Server) CutResourceDownload(resourceID string, offsets ...int64) error {
	rc := s.liveRes()
	if rc == nil {
		return ErrClosed
	}
	if _, ok := rc.store.Get(resourceID); !ok {
		return fmt.Errorf("explorertest: CutResourceDownload: %w %q", ErrUnknownResource, resourceID)
	}
	rc.store.CutAt(resourceID, offsets...)
	return nil
}

// ThrottleResourceDownload limits downloads of a library resource to about bytesPerSec
// (0 removes the limit).
func (s *Server) ThrottleResourceDownload(resourceID string, bytesPerSec int64) error {
	rc := s.liveRes()
	if rc == nil {
		return ErrClosed
	}
	if _, ok := rc.store.Get(resourceID); !ok {
		return fmt.Errorf("explorertest: ThrottleResourceDownload: %w %q", ErrUnknownResource, resourceID)
	}
	rc.store.SetRate(resourceID, bytesPerSec)
	return nil
}

// ResourceRanges returns the Range headers of the downloads of a library resource so far
// ("" for a download from the start), oldest first.
func (s *Server) ResourceRanges(resourceID string) []string {
	rc := s.liveRes()
	if rc == nil {
		return nil
	}
	return rc.store.Ranges(resourceID)
}

// OpenUpload opens the content of a device upload (or any stored object) by token.
func (s *Server) OpenUpload(token string) (io.ReadCloser, error) {
	rc := s.liveRes()
	if rc == nil {
		return nil, ErrClosed
	}
	f, _, err := rc.store.Open(token)
	if err != nil {
		return nil, fmt.Errorf("explorertest: OpenUpload: %w %q", ErrUnknownUpload, clipText(token))
	}
	return f, nil
}

func (s *Server) apiUploadResource(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	info, err := s.UploadResource(q.Get("product"), q.Get("name"), q.Get("version"), q.Get("type"), r.Body)
	switch {
	case errors.Is(err, resstore.ErrFull):
		writeError(w, http.StatusInsufficientStorage, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error()+` (want POST /api/resources?product=PID&name=N&version=V[&type=FILE] with the file as the body)`)
	default:
		writeJSON(w, http.StatusCreated, info)
	}
}

func (s *Server) apiListResources(w http.ResponseWriter, r *http.Request) {
	list := s.Resources(r.URL.Query().Get("product"))
	if list == nil {
		list = []ResourceInfo{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) apiPushResource(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	var body struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		API     string `json:"api"`
		TTL     string `json:"url_ttl"`
	}
	const shape = `{"name":"N","version":"V" (optional),"api":"files"|"tasks","url_ttl":"1h"}`
	if !decodeBody(w, r, &body, shape) {
		return
	}
	if body.Name == "" {
		writeError(w, http.StatusBadRequest, "name: missing; want "+shape)
		return
	}
	var opts []ResourcePushOption
	switch body.API {
	case "", "files":
	case "tasks":
		opts = append(opts, WithTaskAPI())
	default:
		writeError(w, http.StatusBadRequest, `api: want "files" or "tasks", got `+clipText(body.API))
		return
	}
	if body.TTL != "" {
		d, err := time.ParseDuration(body.TTL)
		if err != nil {
			writeError(w, http.StatusBadRequest, "url_ttl: want a Go duration like 1h, got "+clipText(body.TTL))
			return
		}
		opts = append(opts, WithResourceURLTTL(d))
	}
	job, err := s.PushResource(id.ProductID, id.DeviceName, body.Name, body.Version, opts...)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrUnknownResource) {
			status = http.StatusNotFound
		}
		writeError(w, status, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, job)
}

func (s *Server) apiDeviceResources(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	st, _ := s.DeviceResources(id.ProductID, id.DeviceName)
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) apiDeleteResource(w http.ResponseWriter, r *http.Request) {
	id, ok := s.pathDevice(w, r)
	if !ok {
		return
	}
	err := s.DeleteDeviceResource(id.ProductID, id.DeviceName, r.PathValue("name"))
	switch {
	case errors.Is(err, ErrDeviceOffline):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, ErrUnknownResource):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeJSON(w, http.StatusAccepted, map[string]any{"name": r.PathValue("name"), "state": "deleting"})
	}
}

func (s *Server) apiGetUpload(w http.ResponseWriter, r *http.Request) {
	f, err := s.OpenUpload(r.PathValue("key"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = io.Copy(w, f)
}
