package images

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Get returns the image a name points at.
func (s *Store) Get(name string) (*Image, error) {
	n, err := ParseName(name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.refs[n]
	if !ok {
		return nil, notFoundf("no image %s", n)
	}
	return s.image(n, e), nil
}

// List returns every named image, sorted by name.
func (s *Store) List() ([]Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Image, 0, len(s.refs))
	for n, e := range s.refs {
		out = append(out, *s.image(n, e))
	}
	slices.SortFunc(out, func(a, b Image) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Acquire returns the image a name points at and pins it: until release
// is called (once; more calls do nothing) its rootfs is not removed. The
// daemon holds it for the life of a sandbox.
func (s *Store) Acquire(name string) (*Image, func(), error) {
	n, err := ParseName(name)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.refs[n]
	if !ok {
		return nil, nil, notFoundf("no image %s", n)
	}
	s.inUse[e.ID]++
	var once sync.Once
	release := func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.unlockAndEmpty()
			if s.inUse[e.ID]--; s.inUse[e.ID] <= 0 {
				delete(s.inUse, e.ID)
			}
			s.collect(e.ID)
		})
	}
	return s.image(n, e), release, nil
}

// Remove deletes a name. When no other name points at its image, the
// image's rootfs goes too, unless a sandbox uses it: then nothing changes
// and the error is ErrInUse.
func (s *Store) Remove(name string) error {
	n, err := ParseName(name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.unlockAndEmpty()
	e, ok := s.refs[n]
	if !ok {
		return notFoundf("no image %s", n)
	}
	if s.inUse[e.ID] > 0 && s.refCount(e.ID) == 1 {
		return fmt.Errorf("%w: %s is used by %d sandbox(es)", ErrInUse, n, s.inUse[e.ID])
	}
	delete(s.refs, n)
	if err := saveRefs(s.refsFile(), s.refs); err != nil {
		s.refs[n] = e
		return fmt.Errorf("images: %w", err)
	}
	s.collect(e.ID)
	return nil
}

func (s *Store) refCount(id string) int {
	c := 0
	for _, e := range s.refs {
		if e.ID == id {
			c++
		}
	}
	return c
}

// collect removes an image that no name points at and no sandbox uses;
// s.mu held. Under the lock it is only renamed into tmp, so it vanishes
// at once; unlockAndEmpty deletes it after, so that deleting a large tree
// does not hold up the store, and a crash halfway leaves only tmp to
// clean.
func (s *Store) collect(id string) {
	if _, ok := s.images[id]; !ok || s.inUse[id] > 0 || s.refCount(id) > 0 {
		return
	}
	delete(s.images, id)
	trash, err := s.trashImageDir(idHex(id))
	if err != nil {
		s.log.Error("removing image", "id", id, "err", err)
		return
	}
	s.trash = append(s.trash, trash)
}

// unlockAndEmpty releases s.mu and deletes what collect set aside.
func (s *Store) unlockAndEmpty() {
	trash := s.trash
	s.trash = nil
	s.mu.Unlock()
	for _, t := range trash {
		if err := os.RemoveAll(t); err != nil {
			s.log.Error("removing image", "dir", t, "err", err)
		}
	}
}

// trashImageDir moves images/<hex> into a new directory under tmp and
// returns that directory.
func (s *Store) trashImageDir(hex string) (string, error) {
	trash, err := os.MkdirTemp(s.tmpDir(), "rm-")
	if err != nil {
		return "", fmt.Errorf("images: %w", err)
	}
	if err := os.Rename(filepath.Join(s.imagesDir(), hex), filepath.Join(trash, hex)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = os.Remove(trash)
		return "", fmt.Errorf("images: %w", err)
	}
	return trash, nil
}

func (s *Store) removeImageDir(hex string) error {
	trash, err := s.trashImageDir(hex)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("images: %w", err)
	}
	return nil
}
