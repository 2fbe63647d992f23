package ociimage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// refAnnotation names an image in an OCI layout's index (the ref `push`
// gives it under the registry).
const refAnnotation = "org.opencontainers.image.ref.name"

// Named is an image and the reference it goes by, "repo:tag" without a
// registry ("sandboxd:latest", "lang/python:3").
type Named struct {
	Ref   string
	Image v1.Image
}

// WriteLayout writes imgs as a new OCI layout at dir, each annotated with
// its ref. The layout is made beside dir and renamed into place, so dir is
// never half-written.
func WriteLayout(dir string, imgs []Named) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	for _, n := range imgs {
		if err := p.AppendImage(n.Image, layout.WithAnnotations(map[string]string{refAnnotation: n.Ref})); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("oci layout %s: %s: %w", dir, n.Ref, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// WriteTarball writes imgs as one `docker load`-able tarball at path.
func WriteTarball(path string, imgs []Named) error {
	refs := map[name.Reference]v1.Image{}
	for _, n := range imgs {
		tag, err := name.NewTag(n.Ref)
		if err != nil {
			return fmt.Errorf("image name %q: %w", n.Ref, err)
		}
		refs[tag] = n.Image
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, refs); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tarball %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// Push pushes every image of the OCI layout at dir to registry (host[:port]
// with an optional path: "registry.example:5000/sandboxd"), each under its
// ref, with the Docker config's credentials. It returns the pushed
// references.
func Push(ctx context.Context, dir, registry string) ([]string, error) {
	registry = strings.TrimSuffix(registry, "/")
	if registry == "" || strings.Contains(registry, "://") {
		return nil, fmt.Errorf("registry %q: want host[:port][/path]", registry)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var pushed []string
	for _, desc := range m.Manifests {
		ref := desc.Annotations[refAnnotation]
		if ref == "" {
			return pushed, fmt.Errorf("oci layout %s: image %s has no %s annotation", dir, desc.Digest, refAnnotation)
		}
		dst, err := name.NewTag(registry + "/" + ref)
		if err != nil {
			return pushed, fmt.Errorf("image name %q: %w", registry+"/"+ref, err)
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return pushed, err
		}
		if err := remote.Write(dst, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return pushed, fmt.Errorf("pushing %s: %w", dst, err)
		}
		pushed = append(pushed, dst.String())
	}
	if len(pushed) == 0 {
		return nil, errors.New("oci layout " + dir + " holds no image")
	}
	return pushed, nil
}
