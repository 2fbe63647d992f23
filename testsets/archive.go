package testsets

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/sandboxd/sandboxd/errdefs"
)

// An archive is hostile, as an image is: these bound what one may make
// the daemon write and read, whatever its headers claim.
var (
	errBadArchive = errdefs.New(errdefs.ErrInvalid, "bad test set archive")
	errTooLarge   = errdefs.New(errdefs.ErrTooLarge, "test set too large")
)

// maxManifestBytes bounds testset.toml, which is read into memory.
const maxManifestBytes = 1 << 20

// maxEntries is how many entries an archive may have: two files per test,
// testset.toml and a checker's or interactor's few files.
func (l Limits) maxEntries() int { return 2*l.MaxTests + 64 }

// maxStream bounds the archive as sent (and a tar once gunzipped): its
// files, plus what headers and padding take in a sane archive.
func (l Limits) maxStream() int64 { return l.MaxBytes + int64(l.maxEntries())*2048 + 1<<20 }

// spool copies the body into an unlinked file under dir: a zip needs
// random access, and a client that stops half way leaves nothing.
func spool(ctx context.Context, dir string, r io.Reader, max int64) (*os.File, int64, error) {
	f, err := os.CreateTemp(dir, ".upload-")
	if err != nil {
		return nil, 0, fmt.Errorf("testsets: %w", err)
	}
	_ = os.Remove(f.Name())
	n, err := io.Copy(f, io.LimitReader(ctxReader{ctx, r}, max+1))
	switch {
	case err != nil:
		f.Close()
		return nil, 0, fmt.Errorf("reading the archive: %w", err)
	case n > max:
		f.Close()
		return nil, 0, fmt.Errorf("%w: the archive is larger than %d bytes ([testsets] max_bytes and its headers)", errTooLarge, max)
	}
	return f, n, nil
}

// ctxReader stops reading once the request is gone.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// extractor writes an archive's files, flat, into dir: a directory of
// the store's own, so that a name checked by entryName can point nowhere
// else, and O_EXCL refuses a name given twice.
type extractor struct {
	dir     string
	limits  Limits
	files   map[string]int64 // name -> bytes
	bytes   int64
	entries int
}

// extract reads a zip, a tar or a gzipped tar (told by their first
// bytes) from f into dir.
func extract(ctx context.Context, f *os.File, size int64, dir string, l Limits) (*extractor, error) {
	x := &extractor{dir: dir, limits: l, files: map[string]int64{}}
	magic := make([]byte, 4)
	n, _ := f.ReadAt(magic, 0)
	magic = magic[:n]
	switch {
	case bytes.HasPrefix(magic, []byte("PK\x03\x04")), bytes.HasPrefix(magic, []byte("PK\x05\x06")):
		return x, x.zip(ctx, f, size)
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bufio.NewReader(io.NewSectionReader(f, 0, size)))
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", errBadArchive, err)
		}
		// A gzip bomb: the tar it holds is bounded as sent ones are.
		return x, x.tar(ctx, &boundedReader{r: zr, left: l.maxStream()})
	}
	return x, x.tar(ctx, io.NewSectionReader(f, 0, size))
}

// boundedReader fails once more than left bytes come out of r.
type boundedReader struct {
	r    io.Reader
	left int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, errTooLarge
	}
	return n, err
}

func (x *extractor) tar(ctx context.Context, r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, errTooLarge) {
			return fmt.Errorf("%w: the archive unpacks to more than %d bytes", errTooLarge, x.limits.maxStream())
		}
		if err != nil {
			return fmt.Errorf("%w: not a tar, gzipped tar or zip archive: %v", errBadArchive, err)
		}
		if err := x.tarEntry(hdr, tr); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
}

func (x *extractor) tarEntry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // defaults for later entries, which the reader applied
	}
	if err := x.count(); err != nil {
		return err
	}
	name, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg, '\x00':
		if name == "" {
			return fmt.Errorf("%w: a file without a name", errBadArchive)
		}
		return x.write(name, r, hdr.Size)
	case tar.TypeDir:
		return x.dirEntry(name)
	}
	return refuseType(hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink,
		hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock || hdr.Typeflag == tar.TypeFifo)
}

func (x *extractor) zip(ctx context.Context, f *os.File, size int64) error {
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return fmt.Errorf("%w: zip: %v", errBadArchive, err)
	}
	if len(zr.File) > x.limits.maxEntries() {
		return fmt.Errorf("%w: the archive has %d entries, more than %d", errTooLarge, len(zr.File), x.limits.maxEntries())
	}
	for _, zf := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := x.zipEntry(zf); err != nil {
			return fmt.Errorf("entry %q: %w", zf.Name, err)
		}
	}
	return nil
}

func (x *extractor) zipEntry(zf *zip.File) error {
	if err := x.count(); err != nil {
		return err
	}
	name, err := entryName(zf.Name)
	if err != nil {
		return err
	}
	mode := zf.Mode()
	switch {
	case mode.IsDir():
		return x.dirEntry(name)
	case !mode.IsRegular():
		return refuseType(mode&os.ModeSymlink != 0, mode&(os.ModeDevice|os.ModeCharDevice|os.ModeNamedPipe) != 0)
	case name == "":
		return fmt.Errorf("%w: a file without a name", errBadArchive)
	}
	rc, err := zf.Open()
	if err != nil {
		return fmt.Errorf("%w: %v", errBadArchive, err)
	}
	defer rc.Close()
	// The size a zip declares may lie (a zip bomb): write bounds what
	// comes out whatever it says.
	return x.write(name, rc, int64(min(zf.UncompressedSize64, 1<<62)))
}

func (x *extractor) count() error {
	x.entries++
	if x.entries > x.limits.maxEntries() {
		return fmt.Errorf("%w: the archive has more than %d entries", errTooLarge, x.limits.maxEntries())
	}
	return nil
}

// dirEntry takes only the archive's top directory ("./"): a set's files
// are flat.
func (x *extractor) dirEntry(name string) error {
	if name == "" {
		return nil
	}
	return fmt.Errorf("%w: a directory: put the files at the archive's top level", errBadArchive)
}

func refuseType(link, device bool) error {
	switch {
	case link:
		return fmt.Errorf("%w: links are not allowed", errBadArchive)
	case device:
		return fmt.Errorf("%w: device nodes and FIFOs are not allowed", errBadArchive)
	}
	return fmt.Errorf("%w: only regular files are allowed", errBadArchive)
}

// entryName checks an entry's name: the top level of the archive ("" for
// the top directory itself), a leading "./" allowed.
func entryName(n string) (string, error) {
	for strings.HasPrefix(n, "./") {
		n = n[2:]
	}
	n = strings.TrimSuffix(n, "/")
	switch {
	case n == "" || n == ".":
		return "", nil
	case path.IsAbs(n):
		return "", fmt.Errorf("%w: an absolute path", errBadArchive)
	case n == ".." || strings.HasPrefix(n, "../") || strings.Contains(n, "/../") || strings.HasSuffix(n, "/.."):
		return "", fmt.Errorf("%w: the path climbs out with \"..\"", errBadArchive)
	case strings.Contains(n, "/"):
		return "", fmt.Errorf("%w: a file in a directory: put the files at the archive's top level", errBadArchive)
	case !validName(n):
		return "", fmt.Errorf("%w: the name is not NAME.in, NAME.ans, NAME.out, %s or a checker's or interactor's file "+
			"(letters, digits, '.', '_', '-'; at most %d bytes; not starting with '.')", errBadArchive, ManifestName, maxNameBytes)
	}
	return n, nil
}

// write creates dir/name and copies at most what the set may still hold.
func (x *extractor) write(name string, r io.Reader, declared int64) error {
	left := x.limits.MaxBytes - x.bytes
	if declared > left {
		return fmt.Errorf("%w: the set's files are larger than %d bytes ([testsets] max_bytes)", errTooLarge, x.limits.MaxBytes)
	}
	f, err := os.OpenFile(filepath.Join(x.dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: the name appears twice", errBadArchive)
	}
	if err != nil {
		return fmt.Errorf("testsets: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(r, left+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case n > left:
		return fmt.Errorf("%w: the set's files are larger than %d bytes ([testsets] max_bytes)", errTooLarge, x.limits.MaxBytes)
	case errors.Is(err, errTooLarge):
		return fmt.Errorf("%w: the archive unpacks to more than %d bytes", errTooLarge, x.limits.maxStream())
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return errdefs.Newf(errdefs.ErrNoSpace, "no space left for test sets")
	case err != nil:
		// A truncated or corrupt archive, a bad checksum: the sender's.
		return fmt.Errorf("%w: %v", errBadArchive, err)
	}
	x.files[name] = n
	x.bytes += n
	return nil
}
