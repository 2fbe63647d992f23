package images

import (
	"archive/tar"
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
	"runtime"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// SourceBuild is the Source of images built from a recipe.
const SourceBuild = "build"

// Derive stores, as name, the image parent with an overlay upper directory
// (a build's layer, rootfs.Layer) applied over it. Both go through the
// unpacker as tar layers, exactly as a pulled two-layer image would: the
// parent's root, then the layer, its overlay whiteouts turned into OCI
// ones, every owner root and every time the epoch, so that the same
// parent and the same changes give the same layer digest. The image's id
// is the digest of a config naming both layers' digests and its
// environment: the parent's with env laid over it.
func (s *Store) Derive(ctx context.Context, parent, upper, name string, env []string) (*Image, error) {
	img, err := s.derive(ctx, parent, upper, name, env)
	return img, s.public(err)
}

func (s *Store) derive(ctx context.Context, parent, upper, name string, env []string) (*Image, error) {
	name, err := ParseName(name)
	if err != nil {
		return nil, err
	}
	p, release, err := s.Acquire(parent)
	if err != nil {
		return nil, err
	}
	defer release()
	buildDir, diffIDs, err := s.flatten(ctx, []layerStream{
		{open: func() (io.ReadCloser, error) { return tarStream(p.Rootfs, false), nil }},
		{open: func() (io.ReadCloser, error) { return tarStream(upper, true), nil }},
	})
	if err != nil {
		return nil, err
	}
	cfg := p.Config
	cfg.Env = mergeEnv(p.Config.Env, env)
	id, err := derivedID(diffIDs, cfg)
	if err == nil && s.has(id) {
		// The same image is there already: the build changed nothing new.
		err = os.RemoveAll(buildDir)
	} else if err == nil {
		err = s.finish(buildDir, id, cfg)
	} else {
		_ = os.RemoveAll(buildDir)
	}
	if err != nil {
		return nil, err
	}
	img, err := s.tag(name, id, SourceBuild)
	if errors.Is(err, errGone) {
		return nil, fmt.Errorf("images: image %s was removed while building it", id)
	}
	return img, err
}

// mergeEnv lays over on base: a variable of over replaces base's.
func mergeEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range over {
		k := kv
		if i := strings.IndexByte(kv, '='); i >= 0 {
			k = kv[:i]
		}
		replaced := false
		for i, b := range out {
			if j := strings.IndexByte(b, '='); j >= 0 && b[:j] == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// derivedID is the digest of the OCI config of an image with these
// layers and cfg's environment, working directory and command.
func derivedID(diffIDs []string, cfg ImageConfig) (string, error) {
	cf := v1.ConfigFile{Architecture: runtime.GOARCH, OS: "linux", RootFS: v1.RootFS{Type: "layers"},
		Config: v1.Config{Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User, Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd}}
	for _, d := range diffIDs {
		h, err := v1.NewHash(d)
		if err != nil {
			return "", err
		}
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, h)
	}
	data, err := json.Marshal(cf)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// tarStream writes dir as a tar, in lexical order, to the reader it
// returns. For an overlay upper directory (upper), whiteouts (0:0
// character devices) become .wh. entries, an opaque directory gets a
// .wh..wh..opq entry, and owners and times are normalized; otherwise
// entries keep their owners and times. Hard links are kept as links.
func tarStream(dir string, upper bool) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		w := &dirTar{tw: tw, root: dir, upper: upper, links: map[[2]uint64]string{}}
		err := filepath.WalkDir(dir, w.entry)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

type dirTar struct {
	tw    *tar.Writer
	root  string
	upper bool
	links map[[2]uint64]string
}

func (w *dirTar) entry(path string, d fs.DirEntry, err error) error {
	if err != nil {
		return err
	}
	rel, _ := filepath.Rel(w.root, path)
	if rel == "." {
		return nil
	}
	info, err := d.Info()
	if err != nil {
		return err
	}
	st, _ := info.Sys().(*syscall.Stat_t)
	hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: int64(info.Mode().Perm()), ModTime: info.ModTime().Truncate(time.Second), Format: tar.FormatPAX}
	if info.Mode()&fs.ModeSetuid != 0 {
		hdr.Mode |= 0o4000
	}
	if info.Mode()&fs.ModeSetgid != 0 {
		hdr.Mode |= 0o2000
	}
	if info.Mode()&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	if st != nil && !w.upper {
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	}
	if w.upper {
		hdr.ModTime = time.Unix(0, 0)
	}
	return w.write(path, info, st, hdr)
}

// write adds one entry by its type; what a layer can't hold (sockets,
// devices other than whiteouts) is left out.
func (w *dirTar) write(path string, info fs.FileInfo, st *syscall.Stat_t, hdr *tar.Header) error {
	m := info.Mode()
	switch {
	case m.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		if err := w.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if w.upper && opaque(path) {
			return w.tw.WriteHeader(&tar.Header{Name: hdr.Name + whiteoutOpaque, Typeflag: tar.TypeReg, ModTime: hdr.ModTime, Mode: 0o644, Format: tar.FormatPAX})
		}
		return nil
	case m&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		return w.tw.WriteHeader(hdr)
	case m&fs.ModeCharDevice != 0 && w.upper && st != nil && st.Rdev == 0:
		dir, base := filepath.Split(hdr.Name)
		return w.tw.WriteHeader(&tar.Header{Name: dir + whiteoutPrefix + base, Typeflag: tar.TypeReg, ModTime: hdr.ModTime, Mode: 0o644, Format: tar.FormatPAX})
	case m.IsRegular():
		return w.regular(path, info, st, hdr)
	}
	return nil
}

func (w *dirTar) regular(path string, info fs.FileInfo, st *syscall.Stat_t, hdr *tar.Header) error {
	if st != nil && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := w.links[key]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return w.tw.WriteHeader(hdr)
		}
		w.links[key] = hdr.Name
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
	if err := w.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.CopyN(w.tw, f, info.Size())
	return err
}

// opaque reports whether overlayfs marked the upper directory at path as
// hiding everything below it in the lower layers.
func opaque(path string) bool {
	buf := make([]byte, 4)
	n, err := unix.Lgetxattr(path, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}
