package dirtar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Extract unpacks the tar stream r into dir on the host. The stream may
// come from a sandbox, so it is hostile: every name is opened through an
// os.Root on dir (nothing lands outside it, whatever links the tree
// holds), names with ".." or a leading "/" are refused, and only regular
// files (permission bits only) and directories are created: symlinks,
// hard links and special files are skipped and counted.
func Extract(r io.Reader, dir string) (skipped int, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return skipped, nil
		}
		if err != nil {
			return skipped, fmt.Errorf("reading the archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." {
			continue
		}
		if path.IsAbs(h.Name) || name == ".." || strings.HasPrefix(name, "../") {
			return skipped, fmt.Errorf("archive entry %q leaves the target directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = root.MkdirAll(name, 0o755)
		case tar.TypeReg:
			err = extractFile(root, name, tr, os.FileMode(h.Mode).Perm())
		default:
			skipped++
		}
		if err != nil {
			return skipped, fmt.Errorf("%s: %w", name, err)
		}
	}
}

func extractFile(root *os.Root, name string, r io.Reader, mode os.FileMode) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	return errors.Join(err, f.Close())
}
