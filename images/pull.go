package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Pull fetches ref (e.g. "busybox", "ghcr.io/org/img:1.2",
// "repo@sha256:...") for this machine's platform and stores it as name
// ("" derives it from ref: repository basename:tag). progress, if not nil,
// is told the compressed bytes fetched of all layers. Concurrent pulls of
// one image download and unpack it once. Only the registries that
// Options.Registries and the destination rule allow are reached
// (destinations.go); a refusal is a *DestinationError.
func (s *Store) Pull(ctx context.Context, ref, name string, progress Progress) (*Image, error) {
	r, err := parseRef(ref)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name, err = nameFromRef(r)
	} else {
		name, err = ParseName(name)
	}
	if err != nil {
		return nil, err
	}
	registry := r.Context().RegistryStr()
	if err := s.dest.checkRegistry(registry); err != nil {
		s.log.Warn("pull refused", "ref", r.String(), "err", err)
		return nil, err
	}
	tr := s.dest.transport(registry)
	defer tr.CloseIdleConnections()
	img, err := s.pull(ctx, r, name, tr, progress)
	if err != nil {
		// The API shows err's text only; what the registry said is here.
		s.log.Warn("pull failed", "ref", r.String(), "err", err, "detail", pullDetail(err))
	}
	return img, err
}

func (s *Store) pull(ctx context.Context, r name.Reference, name string, tr http.RoundTripper, progress Progress) (*Image, error) {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(s.opts.Keychain),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}),
		remote.WithTransport(tlsUnlessLoopback{tr}),
		remote.WithUserAgent("sandboxd"),
	}
	img, err := remote.Image(r, opts...)
	if err != nil {
		return nil, registryError("fetching manifest of "+r.String(), err)
	}
	id, cfg, diffIDs, err := imageConfig(img)
	if err != nil {
		return nil, registryError("fetching config of "+r.String(), err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, registryError("manifest digest of "+r.String(), err)
	}
	// By digest, so that the work below gets the manifest resolved now
	// even if the tag moves meanwhile.
	pinned := r.Context().Digest(digest.String())
	s.log.Info("pulling image", "ref", r.String(), "name", name, "id", id)
	return s.obtain(ctx, id, name, r.String(), progress, func(ctx context.Context, progress Progress) (*Image, error) {
		// img carries the first caller's context; the work runs on its
		// own, which ends only when every caller has gone.
		img, err := remote.Image(pinned, append(opts, remote.WithContext(ctx))...)
		if err != nil {
			return nil, registryError("fetching manifest of "+r.String(), err)
		}
		return nil, s.buildRemote(ctx, img, id, cfg, diffIDs, progress)
	})
}

func (s *Store) buildRemote(ctx context.Context, img v1.Image, id string, cfg ImageConfig, diffIDs []string, progress Progress) error {
	layers, err := img.Layers()
	if err != nil {
		return registryError("listing layers", err)
	}
	if len(layers) != len(diffIDs) {
		return invalidf("image has %d layers but its config lists %d", len(layers), len(diffIDs))
	}
	var total int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return registryError("layer size", err)
		}
		total += n
	}
	counter := &progressCounter{total: total, report: progress}
	counter.add(0)
	streams := make([]layerStream, len(layers))
	for i, l := range layers {
		streams[i] = layerStream{diffID: diffIDs[i], open: func() (io.ReadCloser, error) {
			// Compressed, not Uncompressed: progress counts what comes
			// over the wire, and ggcr verifies it against the layer
			// digest; flatten checks the diffID.
			rc, err := l.Compressed()
			if err != nil {
				return nil, registryError("fetching layer", err)
			}
			dr, err := decompress(&countingReader{r: rc, c: counter})
			if err != nil {
				_ = rc.Close()
				return nil, err
			}
			return readCloser{dr, func() error { _ = dr.Close(); return rc.Close() }}, nil
		}}
	}
	buildDir, _, err := s.flatten(ctx, streams)
	if err != nil {
		return err
	}
	return s.finish(buildDir, id, cfg)
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

type progressCounter struct {
	mu     sync.Mutex
	done   int64
	total  int64
	report Progress
}

func (c *progressCounter) add(n int64) {
	if c.report == nil {
		return
	}
	c.mu.Lock()
	c.done += n
	done := c.done
	c.mu.Unlock()
	c.report(done, c.total)
}

type countingReader struct {
	r io.Reader
	c *progressCounter
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.c.add(int64(n))
	}
	return n, err
}

// parseRef parses a registry reference. Registries on the loopback
// interface may speak plain HTTP, as in Docker; see tlsUnlessLoopback for
// the others.
func parseRef(ref string) (name.Reference, error) {
	if ref == "" {
		return nil, invalidf("empty image reference")
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: image reference %q: %w", ErrInvalid, ref, err)
	}
	if isLoopback(r.Context().RegistryStr()) {
		if r, err = name.ParseReference(ref, name.Insecure); err != nil {
			return nil, fmt.Errorf("%w: image reference %q: %w", ErrInvalid, ref, err)
		}
	}
	return r, nil
}

// isLoopback tells whether a registry host[:port] is this machine.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tlsUnlessLoopback refuses plain-HTTP requests to hosts off this machine.
// ggcr itself also speaks HTTP to private (RFC 1918) addresses and .local
// names; a sandbox daemon must not, since anyone on the path could swap
// the image.
type tlsUnlessLoopback struct{ next http.RoundTripper }

func (t tlsUnlessLoopback) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !isLoopback(req.URL.Host) {
		return nil, fmt.Errorf("%w: refusing plain HTTP to %s: only registries on localhost may go without TLS", errPlainHTTP, req.URL.Host)
	}
	return t.next.RoundTrip(req)
}

var errPlainHTTP = errors.New("plain HTTP refused")

// imageConfig returns an image's id, the config the store keeps and the
// diffIDs of its layers; only Linux images are accepted. The id is the
// digest of the config as read here, not as a manifest claims, and the
// diffIDs come from that config: flatten checks every layer against them,
// so the id vouches for the content (a forged archive can't pass as an
// image already stored or pulled later).
func imageConfig(img v1.Image) (string, ImageConfig, []string, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return "", ImageConfig{}, nil, err
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return "", ImageConfig{}, nil, fmt.Errorf("%w: image config: %w", ErrInvalid, err)
	}
	if cf.OS != "" && cf.OS != "linux" {
		// %.40q: the registry wrote it.
		return "", ImageConfig{}, nil, invalidf("image is for %.40q, not linux", cf.OS)
	}
	diffIDs := make([]string, len(cf.RootFS.DiffIDs))
	for i, d := range cf.RootFS.DiffIDs {
		diffIDs[i] = d.String()
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:]), ImageConfig{
		Env:        cf.Config.Env,
		WorkingDir: cf.Config.WorkingDir,
		User:       cf.Config.User,
		Entrypoint: cf.Config.Entrypoint,
		Cmd:        cf.Config.Cmd,
	}, diffIDs, nil
}
