// Package dirtar turns a directory tree into the tar stream that
// `sandboxd image import` takes: symlinks kept as symlinks, owners numeric.
// Tests, the soak and the VM harness use it; it needs no tar program.
package dirtar

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Tar returns dir as an uncompressed tar stream, held in memory. edit, when
// not nil, may change each header, or return false to leave the entry out.
func Tar(dir string, edit func(*tar.Header) bool) (io.Reader, error) {
	var buf bytes.Buffer
	if err := write(&buf, dir, edit); err != nil {
		return nil, err
	}
	return &buf, nil
}

// Stream returns dir as a tar stream produced while it is read, for trees
// too large to hold in memory (language images); a walk error ends the
// stream with that error.
func Stream(dir string) io.ReadCloser {
	r, w := io.Pipe()
	go func() { w.CloseWithError(write(w, dir, nil)) }()
	return r
}

func write(out io.Writer, dir string, edit func(*tar.Header) bool) error {
	tw := tar.NewWriter(out)
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name, hdr.Uname, hdr.Gname = filepath.ToSlash(rel), "", ""
		if e.IsDir() {
			hdr.Name += "/"
		}
		if edit != nil && !edit(hdr) {
			return nil
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
