package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// archiveKind is what an import tarball holds.
type archiveKind int

const (
	kindRootfs archiveKind = iota // a plain root filesystem
	kindDocker                    // `docker save`: manifest.json at the top
	kindOCI                       // OCI image layout: oci-layout, index.json
)

// Import stores an image from a tarball of any kind the store knows,
// gzip- or zstd-compressed or not: a `docker save` archive or an OCI
// image layout (told by manifest.json, oci-layout or index.json at the top
// level), else a plain rootfs. The API's POST /v1/images/import uses it.
func (s *Store) Import(ctx context.Context, r io.Reader, name string) (*Image, error) {
	img, err := s.importAny(ctx, r, name)
	return img, s.public(err)
}

func (s *Store) importAny(ctx context.Context, r io.Reader, name string) (*Image, error) {
	sp, kind, err := s.spoolKind(ctx, r)
	if err != nil {
		return nil, err
	}
	defer sp.Close()
	if kind == kindRootfs {
		return s.importRootfs(ctx, sp.reader(), name)
	}
	return s.importArchive(ctx, sp, kind, name)
}

// ImportArchive stores the image of a `docker save` archive or an OCI
// image-layout tarball (compressed or not). name "" takes the name the
// archive gives, if any. An archive must hold one image (an OCI index may
// hold one per platform: this machine's is taken).
func (s *Store) ImportArchive(ctx context.Context, r io.Reader, name string) (*Image, error) {
	img, err := s.importArchiveTar(ctx, r, name)
	return img, s.public(err)
}

func (s *Store) importArchiveTar(ctx context.Context, r io.Reader, name string) (*Image, error) {
	sp, kind, err := s.spoolKind(ctx, r)
	if err != nil {
		return nil, err
	}
	defer sp.Close()
	if kind == kindRootfs {
		return nil, invalidf("not an image archive: no manifest.json, oci-layout or index.json at its top level")
	}
	return s.importArchive(ctx, sp, kind, name)
}

// spoolKind spools r and tells what kind of tarball it is; the caller
// closes the spool.
func (s *Store) spoolKind(ctx context.Context, r io.Reader) (*spooled, archiveKind, error) {
	sp, err := s.spool(ctx, r)
	if err != nil {
		return nil, 0, err
	}
	kind, err := sp.kind()
	if err != nil {
		sp.Close()
		return nil, 0, err
	}
	return sp, kind, nil
}

func (s *Store) importArchive(ctx context.Context, sp *spooled, kind archiveKind, name string) (_ *Image, err error) {
	var (
		img     v1.Image
		tagged  string
		cleanup = func() {}
		dir     string
	)
	// ggcr reads the layout lazily, so its errors name files under dir
	// until the end: they are made layout-relative.
	defer func() { err = withinDir(err, dir) }()
	switch kind {
	case kindDocker:
		img, tagged, err = dockerImage(sp)
	case kindOCI:
		if dir, err = os.MkdirTemp(s.tmpDir(), "oci-"); err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
		cleanup = func() { _ = os.RemoveAll(dir) }
		if err = sp.extractLayout(dir); err == nil {
			img, tagged, err = ociImage(dir)
		}
	}
	defer cleanup()
	if err != nil {
		return nil, archiveError(err)
	}
	if name == "" {
		if tagged == "" {
			return nil, invalidf("the archive names no image: give a name")
		}
		name = tagged
	}
	if name, err = ParseName(name); err != nil {
		return nil, err
	}
	id, cfg, diffIDs, err := imageConfig(img)
	if err != nil {
		return nil, archiveError(err)
	}
	return s.obtain(ctx, id, name, SourceImport, nil, func(ctx context.Context, _ Progress) (*Image, error) {
		layers, err := img.Layers()
		if err != nil {
			return nil, archiveError(err)
		}
		if len(layers) != len(diffIDs) {
			return nil, invalidf("image has %d layers but its config lists %d", len(layers), len(diffIDs))
		}
		streams := make([]layerStream, len(layers))
		for i, l := range layers {
			streams[i] = layerStream{diffID: diffIDs[i], open: func() (io.ReadCloser, error) {
				rc, err := l.Uncompressed()
				if err != nil {
					return nil, archiveError(err)
				}
				return rc, nil
			}}
		}
		buildDir, _, err := s.flatten(ctx, streams)
		if err != nil {
			return nil, err
		}
		return nil, s.finish(buildDir, id, cfg)
	})
}

// archiveError classes what ggcr says about an archive: it's the
// archive's fault.
func archiveError(err error) error {
	if classed(err) {
		return err
	}
	return fmt.Errorf("%w: bad image archive: %w", ErrInvalid, err)
}

func dockerImage(sp *spooled) (v1.Image, string, error) {
	opener := func() (io.ReadCloser, error) { return io.NopCloser(sp.reader()), nil }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, "", err
	}
	if len(m) != 1 {
		return nil, "", invalidf("the archive holds %d images; import one at a time", len(m))
	}
	img, err := tarball.Image(opener, nil)
	if err != nil {
		return nil, "", err
	}
	tagged := ""
	if len(m[0].RepoTags) > 0 {
		tagged = nameOf(m[0].RepoTags[0])
	}
	return img, tagged, nil
}

// ociImage picks the image of an OCI layout: its index must list one
// image, or one index whose entry for this machine's platform is taken.
func ociImage(dir string) (v1.Image, string, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, "", err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, "", err
	}
	var top []v1.Descriptor
	for _, d := range im.Manifests {
		if d.MediaType.IsImage() || d.MediaType.IsIndex() {
			top = append(top, d)
		}
	}
	if len(top) != 1 {
		return nil, "", invalidf("the layout holds %d images; import one at a time", len(top))
	}
	d := top[0]
	tagged := nameOf(d.Annotations["io.containerd.image.name"])
	// ref.name is often a bare tag ("latest"), which names no image.
	if rn := d.Annotations["org.opencontainers.image.ref.name"]; tagged == "" && strings.ContainsAny(rn, ":/@") {
		tagged = nameOf(rn)
	}
	if d.MediaType.IsImage() {
		img, err := idx.Image(d.Digest)
		return img, tagged, err
	}
	child, err := idx.ImageIndex(d.Digest)
	if err != nil {
		return nil, "", err
	}
	cm, err := child.IndexManifest()
	if err != nil {
		return nil, "", err
	}
	for _, c := range cm.Manifests {
		if c.MediaType.IsImage() && c.Platform != nil && c.Platform.OS == "linux" && c.Platform.Architecture == runtime.GOARCH {
			img, err := child.Image(c.Digest)
			return img, tagged, err
		}
	}
	return nil, "", invalidf("the layout has no image for linux/%s", runtime.GOARCH)
}

// nameOf derives a store name from a full reference an archive carries,
// or "" if it is none (OCI ref.name annotations are often a bare tag).
func nameOf(ref string) string {
	if ref == "" {
		return ""
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return ""
	}
	n, err := nameFromRef(r)
	if err != nil {
		return ""
	}
	return n
}
