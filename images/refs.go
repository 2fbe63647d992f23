package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// refsFile is STATE/refs.json: which image each name:tag points at.
type refsFile struct {
	Version int                 `json:"version"`
	Refs    map[string]refEntry `json:"refs"`
}

type refEntry struct {
	ID     string    `json:"id"`
	Source string    `json:"source"`
	Tagged time.Time `json:"tagged"`
}

const refsVersion = 1

func loadRefs(file string) (map[string]refEntry, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]refEntry{}, nil
	}
	if err != nil {
		return nil, err
	}
	var rf refsFile
	if err := json.Unmarshal(data, &rf); err != nil {
		// Refuse to start rather than garbage-collect every image.
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	if rf.Version != refsVersion {
		return nil, fmt.Errorf("%s: unknown version %d", file, rf.Version)
	}
	if rf.Refs == nil {
		rf.Refs = map[string]refEntry{}
	}
	return rf.Refs, nil
}

func saveRefs(file string, refs map[string]refEntry) error {
	data, err := json.MarshalIndent(refsFile{Version: refsVersion, Refs: refs}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(file, append(data, '\n'), 0o644)
}

// writeFileAtomic replaces file with data so that a crash leaves either
// the old or the new content: write a temp file beside it, fsync, rename,
// fsync the directory.
func writeFileAtomic(file string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(file)
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), file); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
