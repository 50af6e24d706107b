package explorertest

// Persistence (WithDataDir, `tplgen emulate --data DIR`): the platform's state in one SQLite
// database (internal/store) plus the firmware files beside it, written as it changes and
// restored by NewServer before any listener starts. Without a data directory nothing here runs.
//
// THE PERSISTENCE HOOK for features. A feature whose state should survive a restart:
//
//  1. in its init, registers a section:
//
//     s.persistSection("devlog", persistFuncs{
//     save:    func(key string) ([]byte, bool, error) { ... }, // snapshot of key; false = deleted
//     restore: func(key string, value []byte) error { ... },   // put the snapshot back
//     })
//
//  2. after every change (lock held or not), calls s.changed("devlog", id, nil) for per-device
//     state (key = id.String(), "PID/DN") or s.changedKey("devlog", key) for other state.
//
//  3. optionally sets persistFuncs.loaded: called once the whole section was restored, for
//     work that needs every record (bounds over the section, files beside the database).
//
// Saves run on the change-feed goroutine, so save takes the feature's lock itself. They are
// coalesced: the changes reported while the feed was busy are handled as one batch, and a
// record changed several times in a batch is written once. Restore runs in NewServer after
// every feature's init, in registration order (the core sections first: products, registry,
// then the features'), before the broker starts; snapshots should be JSON so a schema can
// evolve. Bounded append-only history (events) uses s.data.db.Append through a section's own
// code (see the thing events below).
//
// Files beside the database: firmware images in firmware/{id}.bin, resource objects (the
// product libraries and device uploads) in resources/{key}. A file is written completely before
// its record, so a record whose file is missing or has another size is an error at restore
// (never skipped), and a file without a record (the process was killed between the two) is
// removed at restore with a warning. Both stores keep their bounds (count and bytes) when
// restoring: a resource object beyond them is not loaded, with a warning, and stays on disk.
//
// Resources (sections resource_objects, resources, resource_key): the library and device uploads
// (one record per object or open upload slot, keyed by object key), each device's reported list,
// jobs and upload records (per device), and the key that signs the presigned URLs, so a URL
// issued before a restart stays valid until its own expiry (and an expired one stays expired).
// A job still pending is pushed when its device comes online. The key signing firmware URLs is
// kept the same way (section firmware_key); OTA jobs still pending are pushed again after a
// restart.
//
// App tokens (section app_tokens, per device) keep their expiry and whether they were used;
// dynamic-registration settings (section dynreg, per product) keep the product secret; device
// logs (section devlog, per device) keep the level, the counters and the lines within bounds.

import (
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"

	"github.com/tplgen/tplgen/runtime/explorertest/internal/firmware"
	"github.com/tplgen/tplgen/runtime/explorertest/internal/registrar"
	"github.com/tplgen/tplgen/runtime/explorertest/internal/resstore"
	"github.com/tplgen/tplgen/runtime/explorertest/internal/store"
	"github.com/tplgen/tplgen/runtime/template"
)

// WithDataDir keeps the platform's state in dir (created when missing): products and their
// templates, devices and secrets, reported state, pending control, event history (bounded),
// firmware images, OTA jobs, resources, app tokens, bindings, dynamic-registration settings,
// gateway topology, device logs and their levels, and the state of every feature using the
// persistence hook. A Server started on the same dir finds it all again. A database that is
// corrupt or was written by a newer tplgen, or a record that cannot be restored, makes
// NewServer fail with an error that says so (naming the section and key of a record).
func WithDataDir(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return optErr("WithDataDir: empty directory")
		}
		c.dataDir = dir
		return nil
	}
}

// Errors of a data directory that NewServer refuses to use (matched with errors.Is). Neither
// is ever repaired or overwritten: the error names the file and what to do.
var (
	// ErrDataCorrupt: the database file is not a SQLite database, or is damaged.
	ErrDataCorrupt = store.ErrCorrupt
	// ErrDataNewerSchema: the database was written by a newer tplgen.
	ErrDataNewerSchema = store.ErrNewerSchema
)

// persistFuncs saves and restores one section (see the hook above).
type persistFuncs struct {
	save    func(key string) (value []byte, ok bool, err error)
	restore func(key string, value []byte) error
	loaded  func() error // optional: after every record of the section was restored
}

// Change kinds (and sections) of the features persisted here besides the core ones; like every
// change kind they are also event types on /api/stream.
const (
	changeResources = "resources"        // per device: reported resource list, jobs, uploads
	changeResObject = "resource_objects" // key: object key (library resource, device upload, open upload slot)
	changeAppTokens = "app_tokens"       // per device: the app tokens issued for it
	changeDynreg    = "dynreg"           // key: product id (dynamic-registration settings)
)

// resKeySection and fwKeySection hold the keys signing resource and firmware URLs (record
// "hmac" each), so URLs handed out before a restart stay valid until they expire.
const (
	resKeySection = "resource_key"
	fwKeySection  = "firmware_key"
)

type persistSection struct {
	name string
	persistFuncs
}

// persister is the --data state (Server.data).
type persister struct {
	s   *Server
	dir string
	db  *store.DB

	mu       sync.Mutex
	sections []*persistSection
	byName   map[string]*persistSection
	writes   uint64
	failures uint64
	lastErr  string
	trimmed  uint64 // events dropped from the bounded history on disk

	// saved holds the section/key records written in the current batch of changes (only the
	// change-feed goroutine uses it): a record is a snapshot of state as it is when saved, so
	// once per batch is enough however many changes of it the batch holds.
	saved map[sectionKey]bool
}

type sectionKey struct{ section, key string }

// startBatch begins a batch of changes (change-feed goroutine).
func (p *persister) startBatch() { clear(p.saved) }

// openData runs in NewServer before the features: it opens the data directory (when
// configured) and creates the console state the features' change calls go to.
func (s *Server) openData(cfg config) error {
	s.cons = &consoleState{token: cfg.apiToken}
	if cfg.dataDir == "" {
		return nil
	}
	db, err := store.OpenDir(cfg.dataDir)
	if err != nil {
		return fmt.Errorf("explorertest: data directory %s: %w", cfg.dataDir, err)
	}
	s.data = &persister{s: s, dir: cfg.dataDir, db: db, byName: map[string]*persistSection{}}
	return nil
}

// dataPath is a path inside the data directory, or "" when the state is kept in memory.
func (s *Server) dataPath(name string) string {
	if s.data == nil {
		return ""
	}
	return filepath.Join(s.data.dir, name)
}

// persistSection registers a persisted section (call from a feature's init; no-op in memory).
func (s *Server) persistSection(name string, f persistFuncs) {
	p := s.data
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.byName[name]; dup {
		panic("explorertest: persist section " + name + " registered twice")
	}
	sec := &persistSection{name: name, persistFuncs: f}
	p.sections = append(p.sections, sec)
	p.byName[name] = sec
}

// sectionOf maps a change kind to the section that stores it.
var sectionOf = map[string]string{
	changeRegistry: "registry",
	changeDevice:   "registry", // last seen
	changeProduct:  "products",
	changeReported: "thing",
	changePending:  "thing",
	changeThing:    "thing",
	changeOTA:      "ota",
	changeFirmware: "firmware",
	changeGateway:  "gateway",
	changeBinding:  "binding",
}

// perDevice are the sections keyed by device ("PID/DN"): their records go when the device is
// deleted, and records of a device the registry does not hold are dropped at restore. A
// feature section keyed by device adds its name here.
var perDevice = []string{"thing", "ota", "gateway", changeBinding, changeResources, changeAppTokens, changeDevLog}

// apply writes one change (change-feed goroutine).
func (p *persister) apply(c change) {
	if c.kind == changeEvent {
		if rec, ok := c.data.(EventRecord); ok {
			b, err := json.Marshal(rec)
			if err == nil {
				var n int
				n, err = p.db.Append("thing.events", c.key, b, maxEventsKept)
				p.mu.Lock()
				p.trimmed += uint64(n)
				p.mu.Unlock()
			}
			p.done(c, err)
		}
		return
	}
	name, ok := sectionOf[c.kind]
	if !ok {
		name = c.kind // a feature's own section
	}
	p.mu.Lock()
	sec := p.byName[name]
	p.mu.Unlock()
	if sec == nil {
		return // not persisted (control/action replies, the platform's own log)
	}
	sk := sectionKey{name, c.key}
	if p.saved[sk] {
		return // already written in this batch, after this change was made
	}
	if p.saved == nil {
		p.saved = map[sectionKey]bool{}
	}
	p.saved[sk] = true
	kept, err := p.write(sec, c.key)
	if err == nil && !kept && name == "registry" {
		err = p.forgetDevice(c.key)
	}
	p.done(c, err)
}

// write stores sec's snapshot of key, or deletes its record when the feature keeps none, and
// reports which.
func (p *persister) write(sec *persistSection, key string) (kept bool, err error) {
	v, keep, err := sec.save(key)
	switch {
	case err != nil:
		return false, err
	case keep:
		return true, p.db.Put(sec.name, key, v)
	default:
		return false, p.db.Delete(sec.name, key)
	}
}

// forgetDevice deletes a deleted device's per-device records and event history.
func (p *persister) forgetDevice(key string) error {
	for _, name := range perDevice {
		delete(p.saved, sectionKey{name, key}) // a device re-created later in the batch is saved again
		if err := p.db.Delete(name, key); err != nil {
			return err
		}
	}
	return p.db.ClearLog("thing.events", key)
}

func (p *persister) done(c change, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.writes++
		return
	}
	p.failures++
	if p.lastErr != err.Error() {
		p.lastErr = err.Error()
		p.s.log.Error("explorertest: --data: saving state failed", "kind", c.kind, "key", c.key, "error", err)
	}
}

func (p *persister) stats() map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return map[string]any{"dir": p.dir, "writes": p.writes, "failures": p.failures, "last_error": p.lastErr, "events_trimmed": p.trimmed}
}

// initPersist is the last feature: it registers the core sections, restores every section and
// opens the change feed.
func (s *Server) initPersist() error {
	defer s.cons.ready.Store(true)
	p := s.data
	if p == nil {
		return nil
	}
	// Closers run in reverse order of registration, so this one runs before the change feed
	// stops: write what is queued first, then close the database.
	s.addCloser(func() {
		s.flushChanges()
		_ = p.db.Close()
	})
	core := []*persistSection{
		{"products", persistFuncs{save: s.saveProduct, restore: s.restoreProduct}},
		{"registry", persistFuncs{save: s.saveDevice, restore: s.restoreDevice}},
		{"thing", persistFuncs{save: s.saveThing, restore: s.restoreThing}},
		{"firmware", persistFuncs{save: s.saveFirmware, restore: s.restoreFirmware}},
		{"ota", persistFuncs{save: s.saveOTA, restore: s.restoreOTA}},
		{"gateway", persistFuncs{save: s.saveGateway, restore: s.restoreGateway}},
	}
	p.mu.Lock()
	for _, sec := range core {
		p.byName[sec.name] = sec
	}
	p.sections = append(core, p.sections...)
	sections := p.sections
	p.mu.Unlock()
	for _, sec := range sections {
		if slices.Contains(perDevice, sec.name) {
			sec.restore = s.skipOrphans(sec.name, sec.restore)
		}
	}
	for _, sec := range sections {
		err := p.db.Load(sec.name, sec.restore)
		if err == nil && sec.loaded != nil {
			err = sec.loaded()
		}
		if err != nil {
			_ = p.db.Close()
			return fmt.Errorf("restoring %s from %s: %w", sec.name, p.db.Path(), err)
		}
	}
	if err := s.restoreEvents(); err != nil {
		_ = p.db.Close()
		return err
	}
	s.log.Info("explorertest: state restored", "data", p.dir, "devices", len(s.Devices()))
	return nil
}

// skipOrphans wraps a per-device section's restore: a record of a device that is not registered
// (deleted while its change was still queued, or a gateway whose sub-device went) is dropped
// with a debug line instead of bringing back state nobody can reach.
func (s *Server) skipOrphans(section string, restore func(string, []byte) error) func(string, []byte) error {
	return func(key string, b []byte) error {
		id, err := splitKey(key)
		if err != nil {
			return err
		}
		if _, ok := s.lookupDevice(id); !ok {
			s.log.Debug("explorertest: --data: record of a deleted device dropped", "section", section, "device", key)
			return s.data.db.Delete(section, key)
		}
		return restore(key, b)
	}
}

func splitKey(key string) (DeviceID, error) {
	pid, dn, ok := strings.Cut(key, "/")
	if !ok || pid == "" || dn == "" {
		return DeviceID{}, fmt.Errorf("key %q is not PID/DN", key)
	}
	return DeviceID{ProductID: pid, DeviceName: dn}, nil
}

// ---------------------------------------------------------------------------------------------
// Core sections

func (s *Server) saveProduct(pid string) ([]byte, bool, error) {
	tpl, ok := s.Product(pid)
	if !ok {
		return nil, false, nil
	}
	b, err := encodeTemplate(pid, tpl)
	return b, true, err
}

func (s *Server) restoreProduct(pid string, b []byte) error {
	tpl, err := template.Parse("products/"+pid, b)
	if err != nil {
		return err
	}
	return s.AddProductAs(pid, tpl)
}

type savedDevice struct {
	Secret      string `json:"secret,omitempty"`
	Certificate bool   `json:"certificate,omitempty"`
	CertPEM     []byte `json:"cert_pem,omitempty"`
	KeyPEM      []byte `json:"key_pem,omitempty"`
	LastSeen    int64  `json:"last_seen,omitempty"`
}

func (s *Server) saveDevice(key string) ([]byte, bool, error) {
	id, err := splitKey(key)
	if err != nil {
		return nil, false, err
	}
	d, ok := s.lookupDevice(id)
	if !ok {
		return nil, false, nil
	}
	sd := savedDevice{Secret: d.secret, Certificate: d.certificate, CertPEM: d.certPEM, KeyPEM: d.keyPEM}
	if t := s.lastSeen(id); !t.IsZero() {
		sd.LastSeen = t.UnixMilli()
	}
	b, err := json.Marshal(sd)
	return b, true, err
}

func (s *Server) restoreDevice(key string, b []byte) error {
	id, err := splitKey(key)
	if err != nil {
		return err
	}
	var sd savedDevice
	if err := unmarshalUntrusted(b, &sd); err != nil {
		return err
	}
	if sd.Certificate {
		// The test CA is per process: a certificate device gets a new certificate from it.
		if _, err := s.AddDevice(id.ProductID, id.DeviceName, WithCertificate()); err != nil {
			return err
		}
		s.log.Warn("explorertest: certificate device restored with a new certificate (the test CA is new each run)", "device", key)
	} else if _, err := s.AddDevice(id.ProductID, id.DeviceName, WithSecret(sd.Secret)); err != nil {
		return err
	}
	if sd.LastSeen > 0 {
		s.cons.mu.Lock()
		s.cons.lastSeen[id] = time.UnixMilli(sd.LastSeen)
		s.cons.mu.Unlock()
	}
	return nil
}

type savedThing struct {
	Reported   map[string]json.RawMessage `json:"reported,omitempty"`
	ReportedAt map[string]int64           `json:"reported_at,omitempty"`
	Pending    map[string]json.RawMessage `json:"pending,omitempty"`
	Info       json.RawMessage            `json:"info,omitempty"`
}

func (s *Server) saveThing(key string) ([]byte, bool, error) {
	id, err := splitKey(key)
	if err != nil {
		return nil, false, err
	}
	tc := s.thing
	tc.mu.Lock()
	d, ok := tc.devices[id]
	var st savedThing
	if ok {
		st = savedThing{Reported: copyValues(d.reported), ReportedAt: map[string]int64{}, Pending: copyValues(d.pending)}
		for k, v := range d.reportedAt {
			st.ReportedAt[k] = v
		}
		if d.info != nil {
			st.Info = d.info.Raw
		}
	}
	tc.mu.Unlock()
	if !ok {
		return nil, false, nil
	}
	b, err := json.Marshal(st)
	return b, true, err
}

func (s *Server) restoreThing(key string, b []byte) error {
	id, err := splitKey(key)
	if err != nil {
		return err
	}
	var st savedThing
	if err := unmarshalUntrusted(b, &st); err != nil {
		return err
	}
	var info *InfoReport
	if len(st.Info) > 0 {
		info = &InfoReport{Raw: st.Info}
		if err := unmarshalUntrusted(st.Info, info); err != nil {
			return fmt.Errorf("info: %w", err)
		}
	}
	tc := s.thing
	tc.mu.Lock()
	defer tc.mu.Unlock()
	d := tc.deviceLocked(id)
	for k, v := range st.Reported {
		d.reported[k] = v
	}
	for k, v := range st.ReportedAt {
		d.reportedAt[k] = v
	}
	if len(st.Pending) > 0 {
		d.pending = st.Pending
	}
	d.info = info
	return nil
}

func (s *Server) restoreEvents() error {
	keys, err := s.data.db.LogKeys("thing.events")
	if err != nil {
		return err
	}
	tc := s.thing
	for _, key := range keys {
		id, err := splitKey(key)
		if err != nil {
			return fmt.Errorf("thing.events: %w", err)
		}
		vals, err := s.data.db.Log("thing.events", key)
		if err != nil {
			return err
		}
		recs := make([]EventRecord, 0, len(vals))
		for i, v := range vals {
			var r EventRecord
			if err := unmarshalUntrusted(v, &r); err != nil {
				return fmt.Errorf("thing.events %s[%d]: %w", key, i, err)
			}
			recs = append(recs, r)
		}
		tc.mu.Lock()
		tc.deviceLocked(id).events = recs
		tc.mu.Unlock()
	}
	return nil
}

// savedImage is a firmware image's description; the file is firmware/{id}.bin.
type savedImage struct {
	ProductID string    `json:"product_id"`
	Version   string    `json:"version"`
	Size      int64     `json:"size"`
	MD5       string    `json:"md5"`
	Created   time.Time `json:"created"`
}

func (s *Server) saveFirmware(id string) ([]byte, bool, error) {
	img, ok := s.ota.store.Get(id)
	if !ok {
		return nil, false, nil
	}
	b, err := json.Marshal(savedImage{img.ProductID, img.Version, img.Size, img.MD5, img.Created})
	return b, true, err
}

func (s *Server) restoreFirmware(id string, b []byte) error {
	var si savedImage
	if err := unmarshalUntrusted(b, &si); err != nil {
		return err
	}
	return s.ota.store.Adopt(firmware.Image{ID: id, ProductID: si.ProductID, Version: si.Version, Size: si.Size, MD5: si.MD5, Created: si.Created})
}

type savedOTA struct {
	Job         *OTAJobState `json:"job,omitempty"`
	PlainHTTP   bool         `json:"plain_http,omitempty"`
	TTL         int64        `json:"ttl_ns,omitempty"`
	UserDefined string       `json:"user_defined,omitempty"`
	Version     *string      `json:"version,omitempty"` // last report_version
}

func (s *Server) saveOTA(key string) ([]byte, bool, error) {
	id, err := splitKey(key)
	if err != nil {
		return nil, false, err
	}
	oc := s.ota
	oc.mu.Lock()
	var so savedOTA
	if job, ok := oc.jobs[id]; ok {
		st := job.state
		st.History = append([]OTAProgress(nil), st.History...)
		so.Job, so.PlainHTTP, so.TTL, so.UserDefined = &st, job.cfg.plainHTTP, int64(job.cfg.ttl), job.cfg.userDefined
	}
	if v, ok := oc.versions[id]; ok {
		so.Version = &v
	}
	oc.mu.Unlock()
	if so.Job == nil && so.Version == nil {
		return nil, false, nil
	}
	b, err := json.Marshal(so)
	return b, true, err
}

func (s *Server) restoreOTA(key string, b []byte) error {
	id, err := splitKey(key)
	if err != nil {
		return err
	}
	var so savedOTA
	if err := unmarshalUntrusted(b, &so); err != nil {
		return err
	}
	oc := s.ota
	oc.mu.Lock()
	defer oc.mu.Unlock()
	if so.Job != nil {
		if len(so.Job.History) > MaxOTAHistory {
			so.Job.History = so.Job.History[len(so.Job.History)-MaxOTAHistory:]
		}
		oc.jobs[id] = &otaJob{state: *so.Job, cfg: pushConfig{plainHTTP: so.PlainHTTP, ttl: time.Duration(so.TTL), userDefined: so.UserDefined}}
	}
	if so.Version != nil {
		oc.versions[id] = *so.Version
	}
	return nil
}

type savedSubDevice struct {
	Gateway string `json:"gateway"`
	Online  bool   `json:"online"`
}

func (s *Server) saveGateway(key string) ([]byte, bool, error) {
	sub, err := splitKey(key)
	if err != nil {
		return nil, false, err
	}
	g := s.gw
	g.mu.Lock()
	gw, bound := g.bound[sub]
	online := g.online[sub]
	g.mu.Unlock()
	if !bound {
		return nil, false, nil
	}
	b, err := json.Marshal(savedSubDevice{gw.String(), online})
	return b, true, err
}

func (s *Server) restoreGateway(key string, b []byte) error {
	sub, err := splitKey(key)
	if err != nil {
		return err
	}
	var ss savedSubDevice
	if err := unmarshalUntrusted(b, &ss); err != nil {
		return err
	}
	gw, err := splitKey(ss.Gateway)
	if err != nil {
		return errors.New("gateway: " + err.Error())
	}
	if _, ok := s.lookupDevice(gw); !ok {
		return s.data.db.Delete("gateway", key) // the gateway was deleted
	}
	g := s.gw
	g.mu.Lock()
	defer g.mu.Unlock()
	g.link(sub, gw)
	if ss.Online {
		g.online[sub] = true
	}
	return nil
}

// ---------------------------------------------------------------------------------------------
// Feature sections (registered by the feature through persistSection)

// saveBinding and restoreBinding are the binding feature's section (binding.go registers it).
func (s *Server) saveBinding(key string) ([]byte, bool, error) {
	id, err := splitKey(key)
	if err != nil {
		return nil, false, err
	}
	bd, ok := s.Binding(id.ProductID, id.DeviceName)
	if !ok {
		return nil, false, nil
	}
	b, err := json.Marshal(bd)
	return b, true, err
}

func (s *Server) restoreBinding(key string, b []byte) error {
	id, err := splitKey(key)
	if err != nil {
		return err
	}
	var bd Binding
	if err := unmarshalUntrusted(b, &bd); err != nil {
		return err
	}
	if bd.User == "" {
		return errors.New("binding without a user")
	}
	s.bind.mu.Lock()
	s.bind.bound[id] = bd
	s.bind.mu.Unlock()
	return nil
}

// resave writes section's record of key now (restore time, before the change feed runs).
func (p *persister) resave(section, key string) error {
	p.mu.Lock()
	sec := p.byName[section]
	p.mu.Unlock()
	_, err := p.write(sec, key)
	return err
}

// signingKey returns the URL-signing key stored in section, making and storing a random one
// of size bytes the first time.
func (s *Server) signingKey(section string, size int) ([]byte, error) {
	const key = "hmac"
	db := s.data.db
	b, ok, err := db.Get(section, key)
	if err != nil {
		return nil, fmt.Errorf("restoring %s from %s: %w", section, db.Path(), err)
	}
	if ok {
		if len(b) != size {
			return nil, fmt.Errorf("restoring %s from %s: store: %s/%s: %w: %d bytes, want %d",
				section, db.Path(), section, key, ErrDataCorrupt, len(b), size)
		}
		return b, nil
	}
	b = make([]byte, size)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	if err := db.Put(section, key, b); err != nil {
		return nil, err
	}
	return b, nil
}

// savedResObject is a resource object (Slot false: its file is resources/{key}) or an open
// upload slot (Slot true: Size and MD5 as announced, zero when not).
type savedResObject struct {
	Owner   string    `json:"owner"`
	Name    string    `json:"name"`
	Version string    `json:"version,omitempty"`
	Type    string    `json:"type,omitempty"`
	Size    int64     `json:"size"`
	MD5     string    `json:"md5,omitempty"`
	Created time.Time `json:"created"`
	Slot    bool      `json:"slot,omitempty"`
}

type restoredObject struct {
	key string
	savedResObject
}

func (s *Server) saveResObject(key string) ([]byte, bool, error) {
	st := s.res.store
	o, ok := st.Get(key)
	slot := false
	if !ok {
		if o, ok = st.Slot(key); !ok {
			return nil, false, nil
		}
		slot = true
	}
	b, err := json.Marshal(savedResObject{o.Owner, o.Name, o.Version, o.Type, o.Size, o.MD5, o.Created, slot})
	return b, true, err
}

// restoreResObject reads a record; adoptResObjects puts them back once all are read.
func (s *Server) restoreResObject(key string, b []byte) error {
	var so savedResObject
	if err := unmarshalUntrusted(b, &so); err != nil {
		return err
	}
	s.res.restoring = append(s.res.restoring, restoredObject{key, so})
	return nil
}

// adoptResObjects gives the restored objects and slots back to the store, oldest first within
// its bounds, then removes the files nobody holds a record of.
func (s *Server) adoptResObjects() error {
	rc := s.res
	recs := rc.restoring
	rc.restoring = nil
	sort.Slice(recs, func(i, j int) bool {
		return recs[i].Created.Before(recs[j].Created) || recs[i].Created.Equal(recs[j].Created) && recs[i].key < recs[j].key
	})
	keep := map[string]bool{}
	for _, r := range recs {
		obj := resstore.Object{Key: r.key, Owner: r.Owner, Name: r.Name, Version: r.Version, Type: r.Type, Size: r.Size, MD5: r.MD5, Created: r.Created}
		var err error
		if r.Slot {
			var done bool
			if obj, done, err = rc.store.AdoptSlot(obj); err == nil && done {
				s.log.Info("explorertest: --data: an upload completed just before the restart was recovered", "owner", r.Owner, "name", r.Name, "size", obj.Size, "md5", obj.MD5)
				err = s.data.resave(changeResObject, r.key)
			}
		} else {
			err = rc.store.Adopt(obj)
		}
		switch {
		case errors.Is(err, resstore.ErrFull):
			keep[r.key] = true
			s.log.Warn("explorertest: --data: resource object not loaded: beyond the store's bounds (its record and file stay in the data directory)",
				"section", changeResObject, "key", r.key, "owner", r.Owner, "name", r.Name, "error", err)
		case err != nil:
			return fmt.Errorf("store: %s/%s: %w", changeResObject, r.key, err)
		}
	}
	removed, err := rc.store.Sweep(keep)
	for _, name := range removed {
		s.log.Warn("explorertest: --data: resource file without a record removed (an upload cut off, or written just before the process was killed)",
			"file", filepath.Join(s.dataPath("resources"), name))
	}
	return err
}

// savedResDevice is a device's resource state (resource.go).
type savedResDevice struct {
	Reported []ResourceEntry `json:"reported,omitempty"`
	Jobs     []savedResJob   `json:"jobs,omitempty"`
	Uploads  []DeviceUpload  `json:"uploads,omitempty"`
	Dropped  int             `json:"dropped_uploads,omitempty"`
}

type savedResJob struct {
	ResourceJob
	TTL int64 `json:"url_ttl_ns"`
}

func (s *Server) saveResDevice(key string) ([]byte, bool, error) {
	id, err := splitKey(key)
	if err != nil {
		return nil, false, err
	}
	rc := s.res
	rc.mu.Lock()
	d := rc.devs[id]
	var sd savedResDevice
	if d != nil {
		sd = savedResDevice{Reported: append([]ResourceEntry(nil), d.reported...), Dropped: d.dropped}
		for _, j := range d.jobs {
			c := *j
			c.History = append([]ResourceProgress(nil), j.History...)
			sd.Jobs = append(sd.Jobs, savedResJob{c, int64(j.ttl)})
		}
		for _, up := range d.uploads {
			sd.Uploads = append(sd.Uploads, *up)
		}
	}
	rc.mu.Unlock()
	if len(sd.Reported)+len(sd.Jobs)+len(sd.Uploads) == 0 && sd.Dropped == 0 {
		return nil, false, nil
	}
	sort.Slice(sd.Jobs, func(a, b int) bool { return sd.Jobs[a].Name < sd.Jobs[b].Name })
	b, err := json.Marshal(sd)
	return b, true, err
}

func (s *Server) restoreResDevice(key string, b []byte) error {
	id, err := splitKey(key)
	if err != nil {
		return err
	}
	var sd savedResDevice
	if err := unmarshalUntrusted(b, &sd); err != nil {
		return err
	}
	rc := s.res
	d := &resDevice{reported: sd.Reported, jobs: map[string]*ResourceJob{}, dropped: max(sd.Dropped, 0)}
	if len(d.reported) > resMaxReported {
		d.reported = d.reported[:resMaxReported]
	}
	for i := range sd.Jobs {
		j := sd.Jobs[i].ResourceJob
		switch {
		case j.Name == "":
			return fmt.Errorf("jobs[%d]: no resource name", i)
		case j.API != "files" && j.API != "tasks":
			return fmt.Errorf("jobs[%d] (%s): api %q is neither files nor tasks", i, j.Name, clipText(j.API))
		case d.jobs[j.Name] != nil:
			return fmt.Errorf("jobs[%d]: resource %s has two jobs", i, j.Name)
		}
		j.ttl = time.Duration(sd.Jobs[i].TTL)
		if len(j.History) > resMaxHistory {
			j.History = j.History[len(j.History)-resMaxHistory:]
		}
		d.jobs[j.Name] = &j
	}
	if len(d.jobs) > resMaxJobs {
		return fmt.Errorf("%d jobs, the limit is %d", len(d.jobs), resMaxJobs)
	}
	for i := range sd.Uploads {
		up := sd.Uploads[i]
		if up.Token == "" {
			return fmt.Errorf("uploads[%d] (%s): no token", i, clipText(up.Name))
		}
		if o, stored := rc.store.Get(up.Token); stored && (up.State == "requested" || up.State == "uploading") {
			// The PUT completed just before the restart (the object was recovered).
			up.State, up.Size, up.MD5, up.Updated = "uploaded", o.Size, o.MD5, o.Created
			if up.API == "tasks" {
				up.State, up.Percent = "done", 100
			}
		}
		d.uploads = append(d.uploads, &up)
	}
	if n := len(d.uploads) - resMaxUploads; n > 0 {
		d.uploads, d.dropped = d.uploads[n:], d.dropped+n
	}
	rc.mu.Lock()
	rc.devs[id] = d
	rc.mu.Unlock()
	return nil
}

// savedAppToken is one app token (binding.go) of the device its record belongs to.
type savedAppToken struct {
	AppToken
	Seq  uint64 `json:"seq"`
	Used bool   `json:"used,omitempty"`
}

func (s *Server) saveAppTokens(key string) ([]byte, bool, error) {
	id, err := splitKey(key)
	if err != nil {
		return nil, false, err
	}
	b := s.bind
	var out []savedAppToken
	b.mu.Lock()
	for _, t := range b.tokens {
		if t.ProductID == id.ProductID && t.DeviceName == id.DeviceName {
			out = append(out, savedAppToken{t.AppToken, t.seq, t.used})
		}
	}
	b.mu.Unlock()
	if len(out) == 0 {
		return nil, false, nil
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	v, err := json.Marshal(out)
	return v, true, err
}

func (s *Server) restoreAppTokens(key string, v []byte) error {
	id, err := splitKey(key)
	if err != nil {
		return err
	}
	var list []savedAppToken
	if err := unmarshalUntrusted(v, &list); err != nil {
		return err
	}
	b := s.bind
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, t := range list {
		switch {
		case t.Token == "" || len(t.Token) > maxTokenLen:
			return fmt.Errorf("[%d]: token of %d bytes (want 1–%d)", i, len(t.Token), maxTokenLen)
		case t.ProductID != id.ProductID || t.DeviceName != id.DeviceName:
			return fmt.Errorf("[%d]: token of %s/%s in the record of %s", i, clipText(t.ProductID), clipText(t.DeviceName), id)
		case t.User == "":
			return fmt.Errorf("[%d]: token without a user", i)
		case t.ExpiresAt.IsZero():
			return fmt.Errorf("[%d]: token without an expiry", i)
		case b.tokens[t.Token] != nil:
			return fmt.Errorf("[%d]: token issued twice", i)
		}
		b.tokens[t.Token] = &appToken{AppToken: t.AppToken, seq: t.Seq, used: t.Used}
		b.seq = max(b.seq, t.Seq)
	}
	return nil
}

// boundAppTokens applies the token bounds (expired, count) to what was restored and writes the
// records of the devices that lost tokens.
func (s *Server) boundAppTokens() error {
	b := s.bind
	b.mu.Lock()
	affected := b.pruneLocked(s.clock(), 0)
	b.mu.Unlock()
	for _, id := range affected {
		if err := s.data.resave(changeAppTokens, id.String()); err != nil {
			return err
		}
	}
	return nil
}

type savedDynreg struct {
	ProductSecret string `json:"product_secret"`
	Enabled       bool   `json:"enabled"`
	AutoCreate    bool   `json:"auto_create,omitempty"`
	Credential    string `json:"credential"`
}

func (s *Server) saveDynreg(pid string) ([]byte, bool, error) {
	p, ok := s.dynreg.Product(pid)
	if !ok {
		return nil, false, nil
	}
	b, err := json.Marshal(savedDynreg{p.Secret, p.Enabled, p.AutoCreate, string(p.Credential)})
	return b, true, err
}

func (s *Server) restoreDynreg(pid string, b []byte) error {
	var sd savedDynreg
	if err := unmarshalUntrusted(b, &sd); err != nil {
		return err
	}
	kind := registrar.Credential(sd.Credential)
	if kind != registrar.PSK && kind != registrar.Cert {
		return fmt.Errorf("credential %q is neither %s nor %s", clipText(sd.Credential), registrar.PSK, registrar.Cert)
	}
	if err := checkIDPart("product id", pid); err != nil {
		return err
	}
	return s.dynreg.SetProduct(pid, registrar.Product{Secret: sd.ProductSecret, Enabled: sd.Enabled, AutoCreate: sd.AutoCreate, Credential: kind})
}
