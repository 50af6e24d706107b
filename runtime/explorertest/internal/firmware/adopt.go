package firmware

import (
	"fmt"
	"os"
	"path/filepath"
)

// Adopt registers an image whose file already sits in the store's directory as "{ID}.bin"
// (written by an earlier Put of a store on the same directory); the platform's persistence
// (--data) restores its firmware this way after a restart. The file's size must match img.Size.
// Among adopted and put images of one pid and version, the newest Created is the one Lookup
// returns.
func (s *Store) Adopt(img Image) error {
	if img.ID == "" || filepath.Base(img.ID) != img.ID {
		return fmt.Errorf("%w: image id %q", ErrInvalid, img.ID)
	}
	path := filepath.Join(s.dir, img.ID+".bin")
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("firmware: adopt %s %s: %w", img.ProductID, img.Version, err)
	}
	if st.Size() != img.Size {
		return fmt.Errorf("firmware: adopt %s %s: %s has %d bytes, want %d", img.ProductID, img.Version, path, st.Size(), img.Size)
	}
	img.path = path
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.images[img.ID] = &img
	key := img.ProductID + "\x00" + img.Version
	if cur, ok := s.images[s.latest[key]]; !ok || !cur.Created.After(img.Created) {
		s.latest[key] = img.ID
	}
	return nil
}

// Dir is the directory holding the image files.
func (s *Store) Dir() string { return s.dir }
