package resstore

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// checkKey accepts the keys this package creates (newKey: 24 lower-case hex characters), so a
// restored record can never name a path outside the store's directory.
func checkKey(key string) error {
	if len(key) != 24 {
		return fmt.Errorf("%w: key %q is not 24 hex characters", ErrInvalid, clip(key))
	}
	for _, c := range key {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w: key %q is not 24 hex characters", ErrInvalid, clip(key))
		}
	}
	return nil
}

func checkMD5(sum string, required bool) error {
	if sum == "" && !required {
		return nil
	}
	if b, err := hex.DecodeString(sum); err != nil || len(b) != md5.Size || strings.ToLower(sum) != sum {
		return fmt.Errorf("%w: md5 %q is not 32 lower-case hex characters", ErrInvalid, clip(sum))
	}
	return nil
}

// Adopt registers an object whose file {dir}/{obj.Key} was stored by an earlier store on the
// same directory (see the package doc). The file must exist and have obj.Size bytes; the object
// must fit the bounds (ErrFull otherwise: the file is left alone).
func (s *Store) Adopt(obj Object) error {
	if err := checkKey(obj.Key); err != nil {
		return err
	}
	if obj.Owner == "" || obj.Name == "" || obj.Size <= 0 {
		return fmt.Errorf("%w: object %s needs an owner, a name and a positive size", ErrInvalid, obj.Key)
	}
	if err := checkMD5(obj.MD5, true); err != nil {
		return err
	}
	path := filepath.Join(s.dir, obj.Key)
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: the file %s of %s (%s) is missing", ErrNotFound, path, obj.Name, obj.Owner)
	case err != nil:
		return fmt.Errorf("resstore: %w", err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file", ErrInvalid, path)
	case st.Size() != obj.Size:
		return fmt.Errorf("%w: the file %s has %d bytes, the object %s (%s) has %d", ErrInvalid, path, st.Size(), obj.Name, obj.Owner, obj.Size)
	}
	obj.path = path
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.objects[obj.Key]; dup {
		return fmt.Errorf("%w: object %s adopted twice", ErrInvalid, obj.Key)
	}
	if _, dup := s.slots[obj.Key]; dup {
		return fmt.Errorf("%w: %s is an upload slot already", ErrInvalid, obj.Key)
	}
	if err := s.checkNewLocked(obj.Owner, obj.Size); err != nil {
		return err
	}
	s.objects[obj.Key] = &obj
	s.bytes += obj.Size
	return nil
}

// AdoptSlot reopens an upload slot reserved by an earlier store on the same directory (obj as
// Slot returned it), so a PUT URL issued before stays usable until it expires. When the slot's
// file is already there — the PUT completed but the caller had not saved the object yet — the
// file is adopted as the object instead (its size and MD5 computed, and checked against what the
// slot announced) and returned with true.
func (s *Store) AdoptSlot(obj Object) (Object, bool, error) {
	if err := checkKey(obj.Key); err != nil {
		return Object{}, false, err
	}
	if obj.Owner == "" || obj.Name == "" || obj.Size < 0 {
		return Object{}, false, fmt.Errorf("%w: slot %s needs an owner and a name", ErrInvalid, obj.Key)
	}
	if err := checkMD5(obj.MD5, false); err != nil {
		return Object{}, false, err
	}
	path := filepath.Join(s.dir, obj.Key)
	if _, err := os.Stat(path); err == nil {
		size, sum, err := fileMD5(path)
		if err != nil {
			return Object{}, false, err
		}
		if (obj.Size != 0 && size != obj.Size) || (obj.MD5 != "" && sum != obj.MD5) {
			return Object{}, false, fmt.Errorf("%w: the file %s (%d bytes, MD5 %s) is not the upload announced for slot %s (%d bytes, MD5 %s)",
				ErrInvalid, path, size, sum, obj.Key, obj.Size, obj.MD5)
		}
		obj.Size, obj.MD5 = size, sum
		if err := s.Adopt(obj); err != nil {
			return Object{}, false, err
		}
		return obj, true, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.objects[obj.Key]; dup {
		return Object{}, false, fmt.Errorf("%w: %s is an object already", ErrInvalid, obj.Key)
	}
	if _, dup := s.slots[obj.Key]; dup {
		return Object{}, false, fmt.Errorf("%w: slot %s adopted twice", ErrInvalid, obj.Key)
	}
	obj.path = ""
	if err := s.addSlotLocked(obj); err != nil {
		return Object{}, false, err
	}
	return obj, false, nil
}

func fileMD5(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fmt.Errorf("resstore: %w", err)
	}
	defer f.Close()
	h := md5.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 64<<10))
	if err != nil {
		return 0, "", fmt.Errorf("resstore: reading %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// Sweep removes the files of the store's directory that belong to no object: uploads cut off
// mid-body ({key}.part) and files whose object was never saved. Keys in keep (objects the
// caller knows but did not adopt, e.g. beyond the bounds) are left alone. Call it after
// adopting and before serving (an upload in flight has a .part file too). It returns the names
// removed.
func (s *Store) Sweep(keep map[string]bool) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("resstore: %w", err)
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		key := strings.TrimSuffix(name, partSuffix)
		if checkKey(key) != nil {
			continue // not a file of this store
		}
		s.mu.Lock()
		_, known := s.objects[key]
		s.mu.Unlock()
		if name != key || (!known && !keep[key]) {
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return removed, fmt.Errorf("resstore: %w", err)
			}
			removed = append(removed, name)
		}
	}
	return removed, nil
}
