package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
)

// spooled is an import tarball, uncompressed, in an unlinked temp file:
// archives need random access, and an unlinked file disappears with the
// process whatever happens.
type spooled struct {
	f    *os.File
	size int64
}

func (s *Store) spool(ctx context.Context, r io.Reader) (*spooled, error) {
	dr, err := decompress(r)
	if err != nil {
		return nil, streamError("reading import", err)
	}
	defer dr.Close()
	f, err := os.CreateTemp(s.tmpDir(), "import-")
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	_ = os.Remove(f.Name())
	b := newBudget(s.opts.MaxImageBytes, s.opts.MaxEntries)
	n, err := io.Copy(f, &limitedReader{ctx: ctx, r: dr, b: b})
	if err != nil {
		_ = f.Close()
		return nil, streamError("reading import", err)
	}
	return &spooled{f: f, size: n}, nil
}

func (sp *spooled) Close() error { return sp.f.Close() }

func (sp *spooled) reader() *io.SectionReader { return io.NewSectionReader(sp.f, 0, sp.size) }

// kind looks at the top-level names only.
func (sp *spooled) kind() (archiveKind, error) {
	tr := tar.NewReader(sp.reader())
	oci := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("%w: not a tar archive: %w", ErrInvalid, err)
		}
		p, err := cleanEntryName(hdr.Name)
		if err != nil {
			return 0, err
		}
		switch p {
		case "manifest.json":
			return kindDocker, nil
		case "oci-layout", "index.json":
			oci = true
		}
	}
	if oci {
		return kindOCI, nil
	}
	return kindRootfs, nil
}

// Compiled on first use: a regexp built at package init costs every
// start of the binary (libcontainer's init among them) its compile.
var blobName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^blobs/sha256/[0-9a-f]{64}$`) })

// extractLayout writes the files of an OCI layout to dir. Only the names a
// layout has are taken, as regular files, into directories made here, so
// nothing of the tar can point a write elsewhere.
func (sp *spooled) extractLayout(dir string) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		return err
	}
	tr := tar.NewReader(sp.reader())
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return invalidf("reading layout: %v", err)
		}
		p, err := cleanEntryName(hdr.Name)
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg || !(p == "oci-layout" || p == "index.json" || blobName().MatchString(p)) {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(p)), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return invalidf("layout entry %q: %v", hdr.Name, err)
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("layout entry %q: %w", hdr.Name, err)
		}
	}
}
