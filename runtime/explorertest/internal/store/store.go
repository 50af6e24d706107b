// Package store is the platform emulator's persistent state: one SQLite database (through the
// pure-Go modernc.org/sqlite driver, so no C toolchain is needed) holding keyed records and
// bounded append-only logs, grouped in named sections that each platform feature owns.
//
// The model is deliberately small so that any feature can persist its state without a schema
// change:
//
//   - records: (section, key) -> value bytes; Put replaces, Delete removes, Load walks a
//     section in key order. A feature typically stores one JSON document per device.
//   - logs: (section, key) -> ordered values, trimmed to the newest `keep` on every Append
//     (oldest dropped, the number dropped returned so callers can count it).
//
// Every write is its own transaction in WAL mode with synchronous=NORMAL: a write that returned
// survives the process being killed (not necessarily a power cut), which is what an emulator
// restarted on the same directory needs.
//
// Open refuses, with an error that says what to do, a file that is not a SQLite database or is
// damaged (ErrCorrupt) and a database written by a newer schema (ErrNewerSchema); it never
// silently starts over.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// SchemaVersion is the schema this build writes. Migrations from older versions run in Open.
const SchemaVersion = 1

// FileName is the database file inside a data directory.
const FileName = "platform.db"

// Errors returned by Open.
var (
	// ErrCorrupt: the file is not a SQLite database, or SQLite's integrity check failed.
	ErrCorrupt = errors.New("database is corrupt or not a tplgen platform database")
	// ErrNewerSchema: the database was written by a newer tplgen.
	ErrNewerSchema = errors.New("database schema is newer than this build")
	// ErrClosed: the DB was closed.
	ErrClosed = errors.New("store: closed")
)

// DB is an open platform database. Its methods are safe for concurrent use.
type DB struct {
	path string
	db   *sql.DB

	mu     sync.Mutex // serialises writers: one connection, no SQLITE_BUSY surprises
	closed bool
}

// schema creates the version-1 tables. records and logs are generic on purpose (package doc).
var schema = []string{
	`CREATE TABLE schema_version (version INTEGER NOT NULL)`,
	`CREATE TABLE records (
		section TEXT NOT NULL,
		key     TEXT NOT NULL,
		value   BLOB NOT NULL,
		PRIMARY KEY (section, key)
	) WITHOUT ROWID`,
	`CREATE TABLE logs (
		seq     INTEGER PRIMARY KEY AUTOINCREMENT,
		section TEXT NOT NULL,
		key     TEXT NOT NULL,
		value   BLOB NOT NULL
	)`,
	`CREATE INDEX logs_by_key ON logs (section, key, seq)`,
}

// OpenDir opens (creating when missing) the database of data directory dir, creating dir too.
func OpenDir(dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", dir, err)
	}
	return Open(filepath.Join(dir, FileName))
}

var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// Open opens the database at path, creating it with the current schema when the file does not
// exist or is empty.
func Open(path string) (*DB, error) {
	// Pragmas are applied per connection by the driver; there is only one connection.
	// The path is part of a SQLite URI: "?", "#" and "%" in it must be escaped, or a directory
	// named "a#b" would open the database "a".
	dsn := "file:" + uriPath.Replace(path) + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	sqldb.SetMaxOpenConns(1)
	d := &DB{path: path, db: sqldb}
	if err := d.init(); err != nil {
		_ = sqldb.Close()
		return nil, err
	}
	return d, nil
}

// corrupt wraps a driver error that means the file cannot be read as a database.
func (d *DB) corrupt(detail string) error {
	return fmt.Errorf("%s: %w (%s); move the file away to start with an empty platform, or restore a backup", d.path, ErrCorrupt, detail)
}

func isNotADB(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "file is not a database") || strings.Contains(msg, "malformed") ||
		strings.Contains(msg, "SQLITE_NOTADB") || strings.Contains(msg, "SQLITE_CORRUPT")
}

func (d *DB) init() error {
	ctx := context.Background()
	// Any read of the header detects a non-database file.
	var n int
	if err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
		if isNotADB(err) {
			return d.corrupt(err.Error())
		}
		return fmt.Errorf("open %s: %w", d.path, err)
	}
	if n == 0 {
		return d.create(ctx)
	}
	var version int
	err := d.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version)
	switch {
	case err != nil && isNotADB(err):
		return d.corrupt(err.Error())
	case err != nil:
		return d.corrupt("no schema_version: " + err.Error())
	case version > SchemaVersion:
		return fmt.Errorf("%s: %w (database schema %d, this build knows %d): run the tplgen that wrote it, or use another --data directory", d.path, ErrNewerSchema, version, SchemaVersion)
	case version < 1:
		return d.corrupt(fmt.Sprintf("schema_version %d", version))
	}
	var check string
	if err := d.db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil {
		return d.corrupt(err.Error())
	}
	if check != "ok" {
		return d.corrupt("integrity check: " + check)
	}
	return nil
}

func (d *DB) create(ctx context.Context) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create %s: %w", d.path, err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range schema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create %s: %w", d.path, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (?)`, SchemaVersion); err != nil {
		return fmt.Errorf("create %s: %w", d.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create %s: %w", d.path, err)
	}
	return nil
}

// Path is the database file.
func (d *DB) Path() string { return d.path }

// Close checkpoints the write-ahead log and closes the database. It is safe to call twice.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	_, _ = d.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return d.db.Close()
}

func (d *DB) exec(query string, args ...any) (sql.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	return d.db.Exec(query, args...)
}

// Put stores value under (section, key), replacing what was there.
func (d *DB) Put(section, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	if _, err := d.exec(`INSERT INTO records (section, key, value) VALUES (?, ?, ?)
		ON CONFLICT (section, key) DO UPDATE SET value = excluded.value`, section, key, value); err != nil {
		return fmt.Errorf("store: put %s/%s: %w", section, key, err)
	}
	return nil
}

// Delete removes (section, key); removing a missing record is not an error.
func (d *DB) Delete(section, key string) error {
	if _, err := d.exec(`DELETE FROM records WHERE section = ? AND key = ?`, section, key); err != nil {
		return fmt.Errorf("store: delete %s/%s: %w", section, key, err)
	}
	return nil
}

// Get returns the value of (section, key) and whether it exists.
func (d *DB) Get(section, key string) ([]byte, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, false, ErrClosed
	}
	var v []byte
	err := d.db.QueryRow(`SELECT value FROM records WHERE section = ? AND key = ?`, section, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: get %s/%s: %w", section, key, err)
	}
	return v, true, nil
}

// Load calls fn for every record of section in key order. An error from fn stops the walk and
// is returned wrapped with the record's key.
func (d *DB) Load(section string, fn func(key string, value []byte) error) error {
	type rec struct {
		k string
		v []byte
	}
	var recs []rec
	// Read everything first so fn may call back into the DB (the one connection is busy while
	// rows are open).
	err := d.query(`SELECT key, value FROM records WHERE section = ? ORDER BY key`, []any{section}, func(rows *sql.Rows) error {
		var r rec
		if err := rows.Scan(&r.k, &r.v); err != nil {
			return err
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: load %s: %w", section, err)
	}
	for _, r := range recs {
		if err := fn(r.k, r.v); err != nil {
			return fmt.Errorf("store: %s/%s: %w", section, r.k, err)
		}
	}
	return nil
}

func (d *DB) query(q string, args []any, row func(*sql.Rows) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	rows, err := d.db.Query(q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Append adds value to the log (section, key) and trims it to its newest keep values, returning
// how many old values were dropped. keep < 1 is treated as 1.
func (d *DB) Append(section, key string, value []byte, keep int) (dropped int, err error) {
	if keep < 1 {
		keep = 1
	}
	if value == nil {
		value = []byte{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, ErrClosed
	}
	tx, err := d.db.Begin()
	if err != nil {
		return 0, fmt.Errorf("store: append %s/%s: %w", section, key, err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.Exec(`INSERT INTO logs (section, key, value) VALUES (?, ?, ?)`, section, key, value); err != nil {
		return 0, fmt.Errorf("store: append %s/%s: %w", section, key, err)
	}
	// Everything at or below the (keep+1)-th newest seq goes.
	res, err := tx.Exec(`DELETE FROM logs WHERE section = ?1 AND key = ?2 AND seq <= (
		SELECT seq FROM logs WHERE section = ?1 AND key = ?2 ORDER BY seq DESC LIMIT 1 OFFSET ?3)`, section, key, keep)
	if err != nil {
		return 0, fmt.Errorf("store: trim %s/%s: %w", section, key, err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: append %s/%s: %w", section, key, err)
	}
	return int(n), nil
}

// Log returns the values of log (section, key), oldest first.
func (d *DB) Log(section, key string) ([][]byte, error) {
	var out [][]byte
	err := d.query(`SELECT value FROM logs WHERE section = ? AND key = ? ORDER BY seq`, []any{section, key}, func(rows *sql.Rows) error {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: log %s/%s: %w", section, key, err)
	}
	return out, nil
}

// LogKeys returns the keys of section that have a log, in key order.
func (d *DB) LogKeys(section string) ([]string, error) {
	var out []string
	err := d.query(`SELECT DISTINCT key FROM logs WHERE section = ? ORDER BY key`, []any{section}, func(rows *sql.Rows) error {
		var k string
		if err := rows.Scan(&k); err != nil {
			return err
		}
		out = append(out, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: log keys %s: %w", section, err)
	}
	return out, nil
}

// ClearLog removes every value of log (section, key).
func (d *DB) ClearLog(section, key string) error {
	if _, err := d.exec(`DELETE FROM logs WHERE section = ? AND key = ?`, section, key); err != nil {
		return fmt.Errorf("store: clear log %s/%s: %w", section, key, err)
	}
	return nil
}
