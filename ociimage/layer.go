// Package ociimage builds OCI images without Docker, with
// go-containerregistry: sandboxd's own image (the static binary, the busybox
// rootfs, the language catalog, a default configuration and an entrypoint)
// and one image per language rootfs; it writes them as an OCI layout and a
// `docker load`-able tarball, and pushes them to a registry.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/sandboxd/sandboxd/internal/dirtar"
)

// File is one file of a layer made from contents rather than a directory.
type File struct {
	Path string // absolute, in the image
	Mode int64  // permission bits
	Data []byte
}

// epoch is the time of every entry FilesLayer writes: the same inputs give
// the same layer digest, whenever they are built.
var epoch = time.Unix(0, 0).UTC()

// layerOpts: OCI media types; gzip at its fastest, since language images
// are hundreds of MiB and are read twice (digest, then write).
var layerOpts = []tarball.LayerOption{tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithMediaType(types.OCILayer)}

// TreeLayer is a layer of the directory tree dir, placed under prefix ("/"
// for the image's root), owners numeric and symlinks kept. The tree is
// read again each time the layer is (no copy is held).
func TreeLayer(dir, prefix string) (v1.Layer, error) {
	prefix = strings.Trim(path.Clean("/"+prefix), "/")
	if prefix == "" {
		return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return dirtar.Stream(dir), nil }, layerOpts...)
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		// The prefix and its parents first, so that every runtime
		// creates them with these modes.
		var head bytes.Buffer
		tw := tar.NewWriter(&head)
		for _, d := range parents(prefix + "/x") {
			if err := tw.WriteHeader(dirHeader(d)); err != nil {
				return nil, err
			}
		}
		tw.Flush() // no Close: the tree's entries follow in the same archive
		body, err := dirtar.Tar(dir, func(h *tar.Header) bool {
			h.Name = prefix + "/" + h.Name
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", dir, err)
		}
		return io.NopCloser(io.MultiReader(&head, body)), nil
	}, layerOpts...)
}

// FilesLayer is a layer of the given files, with their parent directories
// (mode 0755, owned by root).
func FilesLayer(files []File) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		for _, d := range parents(f.Path) {
			dirs[d] = true
		}
	}
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sort.Strings(sorted)
	for _, d := range sorted {
		if err := tw.WriteHeader(dirHeader(d)); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		name := strings.TrimPrefix(path.Clean(f.Path), "/")
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: f.Mode, Size: int64(len(f.Data)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, layerOpts...)
}

// parents lists the directories above p (relative, without the root),
// outermost first.
func parents(p string) []string {
	var out []string
	for d := path.Dir(strings.TrimPrefix(path.Clean("/"+p), "/")); d != "." && d != "/" && d != ""; d = path.Dir(d) {
		out = append([]string{d}, out...)
	}
	return out
}

func dirHeader(name string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}
}
