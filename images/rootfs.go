package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImportRootfs stores a plain root filesystem tarball (as made by
// mmdebstrap, or tar -C dir .), gzip- or zstd-compressed or not, as name.
// Its config is empty but for PATH; like `docker import`, its id is the
// digest of a config made up for it, naming the tar's diffID.
func (s *Store) ImportRootfs(ctx context.Context, r io.Reader, name string) (*Image, error) {
	img, err := s.importRootfs(ctx, r, name)
	return img, s.public(err)
}

func (s *Store) importRootfs(ctx context.Context, r io.Reader, name string) (*Image, error) {
	if name == "" {
		return nil, invalidf("a rootfs import needs a name")
	}
	name, err := ParseName(name)
	if err != nil {
		return nil, err
	}
	dr, err := decompress(r)
	if err != nil {
		return nil, streamError("reading rootfs tarball", err)
	}
	defer dr.Close()
	buildDir, diffIDs, err := s.flatten(ctx, []layerStream{{open: func() (io.ReadCloser, error) { return io.NopCloser(dr), nil }}})
	if err != nil {
		return nil, err
	}
	cfg := ImageConfig{Env: []string{DefaultPath}}
	id, err := syntheticID(diffIDs[0], cfg)
	if err != nil {
		_ = os.RemoveAll(buildDir)
		return nil, err
	}
	if err := s.finish(buildDir, id, cfg); err != nil {
		return nil, err
	}
	img, err := s.tag(name, id, SourceImport)
	if errors.Is(err, errGone) {
		// Collected between finish and tag: the rootfs is gone with it,
		// and r can't be read twice.
		return nil, fmt.Errorf("images: image %s was removed while importing it", id)
	}
	return img, err
}

// syntheticID is the digest of the OCI config a single-layer image with
// cfg would have. Ids are always config digests this way, so a rootfs
// import can't claim the id of a registry image (which would make a later
// pull of it reuse the import).
func syntheticID(diffID string, cfg ImageConfig) (string, error) {
	h, err := v1.NewHash(diffID)
	if err != nil {
		return "", err
	}
	cf := v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{h}},
		Config:       v1.Config{Env: cfg.Env},
	}
	data, err := json.Marshal(cf)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
