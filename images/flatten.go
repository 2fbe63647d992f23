package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// layerStream is one layer to flatten: open gives its uncompressed tar.
type layerStream struct {
	// diffID is the expected sha256 of the uncompressed tar ("sha256:..."),
	// or "" when there is nothing to check against.
	diffID string
	open   func() (io.ReadCloser, error)
}

// mountPoints must be empty directories in every rootfs: the sandbox
// mounts proc, tmpfs, sysfs and its scratch areas there. Whatever an image
// has in their place is replaced, so that nothing of an image can
// redirect a sandbox mount.
var mountPoints = []struct {
	name string
	mode uint32
}{
	{"proc", 0o555},
	{"dev", 0o755},
	{"sys", 0o555},
	{"tmp", 0o1777},
	{"work", 0o755},
}

// flatten unpacks layers in order into a new build directory under tmp/
// and returns it with the diffIDs it saw. The caller commits the
// directory or removes it; on error it is already removed.
func (s *Store) flatten(ctx context.Context, layers []layerStream) (_ string, diffIDs []string, err error) {
	buildDir, err := os.MkdirTemp(s.tmpDir(), "build-")
	if err != nil {
		return "", nil, fmt.Errorf("images: %w", err)
	}
	defer func() {
		if err != nil {
			if rerr := os.RemoveAll(buildDir); rerr != nil {
				s.log.Error("removing failed build", "dir", buildDir, "err", rerr)
			}
		}
	}()
	rootfs := filepath.Join(buildDir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return "", nil, fmt.Errorf("images: %w", err)
	}
	// MkdirTemp made it 0700; the image directory must be traversable.
	if err := os.Chmod(buildDir, 0o755); err != nil {
		return "", nil, fmt.Errorf("images: %w", err)
	}
	u, err := newUnpacker(rootfs, newBudget(s.opts.MaxImageBytes, s.opts.MaxEntries), s.log)
	if err != nil {
		return "", nil, fmt.Errorf("images: %w", err)
	}
	defer u.Close()
	for i, l := range layers {
		d, err := s.applyStream(ctx, u, l)
		if err != nil {
			s.log.Info("layer refused", "layer", i+1, "err", err)
			return "", nil, fmt.Errorf("layer %d: %w", i+1, withinDir(err, rootfs))
		}
		diffIDs = append(diffIDs, d)
	}
	if err := u.ensureMountPoints(); err != nil {
		return "", nil, withinDir(err, rootfs)
	}
	// One syncfs instead of an fsync per file: the image must be on disk
	// before a name points at it.
	if err := unix.Syncfs(int(u.root.Fd())); err != nil {
		return "", nil, fmt.Errorf("images: syncfs: %w", err)
	}
	return buildDir, diffIDs, nil
}

func (s *Store) applyStream(ctx context.Context, u *unpacker, l layerStream) (string, error) {
	rc, err := l.open()
	if err != nil {
		return "", streamError("opening layer", err)
	}
	defer rc.Close()
	h := sha256.New()
	r := io.TeeReader(&limitedReader{ctx: ctx, r: rc, b: u.budget}, h)
	if err := u.applyLayer(ctx, r); err != nil {
		return "", err
	}
	// The rest after the end-of-archive blocks counts towards the digest.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", streamError("reading layer", err)
	}
	got := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if l.diffID != "" && got != l.diffID {
		return "", invalidf("layer content %s does not match its diffID %s", got, l.diffID)
	}
	return got, nil
}

func (u *unpacker) ensureMountPoints() error {
	rfd := int(u.root.Fd())
	for _, m := range mountPoints {
		var st unix.Stat_t
		err := unix.Fstatat(rfd, m.name, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
			continue
		case err == nil:
			if err := removeAt(rfd, m.name); err != nil {
				return fmt.Errorf("images: mount point /%s: %w", m.name, err)
			}
		case !errors.Is(err, unix.ENOENT):
			return fmt.Errorf("images: mount point /%s: %w", m.name, err)
		}
		if err := unix.Mkdirat(rfd, m.name, 0o700); err != nil {
			return fmt.Errorf("images: mount point /%s: %w", m.name, err)
		}
		if err := unix.Fchmodat(rfd, m.name, m.mode, 0); err != nil {
			return fmt.Errorf("images: mount point /%s: %w", m.name, err)
		}
	}
	return nil
}

// finish records the image in the build directory and commits it.
func (s *Store) finish(buildDir, id string, cfg ImageConfig) error {
	size, err := diskUsage(filepath.Join(buildDir, "rootfs"))
	if err != nil {
		_ = os.RemoveAll(buildDir)
		return fmt.Errorf("images: disk usage: %w", err)
	}
	rec := imageRecord{ID: id, Config: withDefaultPath(cfg), SizeBytes: size, Created: time.Now().UTC()}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err == nil {
		err = writeFileAtomic(filepath.Join(buildDir, "config.json"), append(data, '\n'), 0o644)
	}
	if err == nil {
		err = s.commit(buildDir, rec)
	}
	if err != nil {
		_ = os.RemoveAll(buildDir)
		return fmt.Errorf("images: %w", err)
	}
	s.log.Info("image unpacked", "id", id, "bytes", size)
	return nil
}

func withDefaultPath(cfg ImageConfig) ImageConfig {
	for _, e := range cfg.Env {
		if len(e) >= 5 && e[:5] == "PATH=" {
			return cfg
		}
	}
	cfg.Env = append(append([]string(nil), cfg.Env...), DefaultPath)
	return cfg
}

// diskUsage sums the blocks of everything under dir, counting each inode
// once (hard links).
func diskUsage(dir string) (int64, error) {
	type ino struct{ dev, ino uint64 }
	seen := map[ino]bool{}
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			total += info.Size()
			return nil
		}
		k := ino{uint64(st.Dev), st.Ino}
		if st.Nlink > 1 {
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}
