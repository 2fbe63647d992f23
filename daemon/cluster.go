package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/sandboxd/sandboxd/config"
	"github.com/sandboxd/sandboxd/images"
	"github.com/sandboxd/sandboxd/server"
)

// forwarding is the server's session forwarding of [cluster], or nil
// without a pod_name (session ids then name no daemon).
func forwarding(cfg *config.Resolved) (*server.Forwarding, error) {
	cl := cfg.Cluster
	if cl.PodName == "" {
		return nil, nil
	}
	f := &server.Forwarding{Self: cl.PodName, Peer: cl.PeerURL}
	if cl.PeerCAFile != "" {
		pem, err := os.ReadFile(cl.PeerCAFile)
		if err != nil {
			return nil, fmt.Errorf("[cluster] peer_ca_file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("[cluster] peer_ca_file %s: no PEM certificate", cl.PeerCAFile)
		}
		f.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return f, nil
}

// preloadWants are the images of [images] preload.
func preloadWants(cfg *config.Resolved) []images.Want {
	var out []images.Want
	for _, p := range cfg.Images.Preload {
		out = append(out, images.Want{Ref: p.Ref, File: p.File, Name: p.Name})
	}
	return out
}

// errDraining: the daemon is shutting down; what runs finishes, nothing
// new should come (GET /v1/readyz on the operations port answers 503).
var errDraining = errors.New("draining: shutting down")

// ready is the server's readiness: not while draining, nor before the
// preloaded images are in.
func (d *daemon) ready() error {
	if d.draining.Load() {
		return errDraining
	}
	return d.preload.Ready()
}
