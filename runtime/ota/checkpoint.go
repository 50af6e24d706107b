package ota

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/goccy/go-json"

	"github.com/tplgen/tplgen/internal/jsonguard"
)

// checkpoint is the resume record stored next to the part file as dest+".ota.json".
// Done counts bytes of the part file that were fsync'd before the checkpoint was written,
// so after a crash the part file holds at least Done valid bytes.
type checkpoint struct {
	Version string `json:"version"`
	URL     string `json:"url"` // without query: the signature is a credential and changes anyway
	Size    int64  `json:"size"`
	MD5     string `json:"md5"`
	Done    int64  `json:"done"`
}

func partPath(dest string) string       { return dest + ".part" }
func checkpointPath(dest string) string { return dest + ".ota.json" }

// loadCheckpoint returns (nil, nil) when no checkpoint exists. A corrupt one is reported as an
// error so the caller can log it and start over.
func loadCheckpoint(dest string) (*checkpoint, error) {
	data, err := os.ReadFile(checkpointPath(dest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var cp checkpoint
	if err := jsonguard.Unmarshal(data, &cp); err != nil {
		return nil, fmt.Errorf("corrupt checkpoint %s: %v", checkpointPath(dest), err)
	}
	if cp.Done < 0 || cp.Size <= 0 || cp.Done > cp.Size {
		return nil, fmt.Errorf("corrupt checkpoint %s: done %d of size %d", checkpointPath(dest), cp.Done, cp.Size)
	}
	return &cp, nil
}

// save writes the checkpoint atomically (temp file, fsync, rename).
func (cp *checkpoint) save(dest string) error {
	data, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	final := checkpointPath(dest)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

func removeState(dest string) {
	os.Remove(partPath(dest))
	os.Remove(checkpointPath(dest))
	os.Remove(checkpointPath(dest) + ".tmp")
}

// syncDir makes a rename durable; best effort (not all platforms allow opening directories).
func syncDir(path string) {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return
	}
	d.Sync()
	d.Close()
}
