package ociimage

import (
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
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
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	return withConfig(img, v1.Config{
		Env:    []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		Labels: map[string]string{"org.opencontainers.image.title": name},
	}, created)
}

// goarch is the image's architecture: the binary and rootfs are this
// machine's.
func goarch() string { return runtime.GOARCH }
