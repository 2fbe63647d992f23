package ociimage

import (
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Language is the image of one language rootfs (scripts/build-images.sh's
// tree): one layer, the tree as it is, so that `POST /v1/images/pull`
// (or `sandboxd image import` of its tarball) gives the daemon the same
// root as importing the tree. No entrypoint: sandboxd runs each request's
// own command.
func Language(rootfs, name string, created time.Time) (v1.Image, error) {
	layer, err := TreeLayer(rootfs, "/")
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(ociBase(), layer)
	if err != nil {
		return nil, err
	}
	return withConfig(img, v1.Config{
		Env:    []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Labels: map[string]string{"org.opencontainers.image.title": name},
	}, created)
}

// ociBase is the empty image with OCI media types (go-containerregistry's
// empty image has Docker's).
func ociBase() v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// goarch is the image's architecture: the binary and rootfs are this
// machine's.
func goarch() string { return runtime.GOARCH }
