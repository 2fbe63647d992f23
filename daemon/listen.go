package daemon

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/sandboxd/sandboxd/auth"
	"github.com/sandboxd/sandboxd/config"
	"github.com/sandboxd/sandboxd/server"
)

// jwtLeeway absorbs clock skew between the token issuer and this host in
// exp and nbf.
const jwtLeeway = 30 * time.Second

// listeners are the API's listening sockets.
type listeners struct {
	lns     []net.Listener
	created []string // socket files this daemon made, removed at exit
	gids    []uint32 // groups of the Unix sockets: allowed by default
}

func (l *listeners) close() {
	for _, ln := range l.lns {
		ln.Close()
	}
	for _, p := range l.created {
		os.Remove(p)
	}
}

// openListeners opens every listen address. Sockets passed by systemd
// (socket activation: LISTEN_FDS, with LISTEN_PID equal to this process)
// take the place of the unix:// addresses; tcp:// addresses are still
// opened here. tcp:// listeners speak TLS when a certificate is set. Each
// refuses requests with ambiguous framing (server.StrictFraming).
func openListeners(cfg *config.Resolved, log *slog.Logger) (*listeners, error) {
	l := &listeners{}
	var tlsConf *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// Every listener checks request framing (server.StrictFraming),
	// inside TLS where there is TLS: the check reads plaintext heads.
	wrap := func(ln net.Listener) net.Listener {
		if tlsConf != nil && ln.Addr().Network() == "tcp" {
			ln = tls.NewListener(ln, tlsConf)
		}
		return server.StrictFraming(ln)
	}
	activated, err := activation.Listeners()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	for _, ln := range activated {
		if ln == nil {
			continue // not a listening socket
		}
		log.Info("socket activation", "listener", ln.Addr().Network()+"://"+ln.Addr().String())
		l.lns = append(l.lns, wrap(ln))
		l.noteGroup(ln)
	}
	for _, a := range cfg.Listeners {
		var ln net.Listener
		switch {
		case a.Network == "unix" && len(activated) > 0:
			continue
		case a.Network == "unix":
			if err := os.MkdirAll(filepath.Dir(a.Address), 0o755); err != nil {
				l.close()
				return nil, err
			}
			ln, err = listenUnix(a.Address, cfg.SocketMode, cfg.SocketGroup)
			if err == nil {
				l.created = append(l.created, a.Address)
				l.noteGroup(ln)
				ln = wrap(ln)
			}
		default:
			ln, err = net.Listen("tcp", a.Address)
			if err == nil {
				ln = wrap(ln)
			}
		}
		if err != nil {
			l.close()
			return nil, fmt.Errorf("listening on %s: %w", a, err)
		}
		l.lns = append(l.lns, ln)
	}
	if err := l.openCompat(cfg, wrap); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

// openCompat opens [compat] listen: the Piston and Judge0 endpoints only,
// with a token, or as the user "anonymous" (config allows that on a
// loopback address only).
func (l *listeners) openCompat(cfg *config.Resolved, wrap func(net.Listener) net.Listener) error {
	a := cfg.Compat.Listen
	if a == nil {
		return nil
	}
	ln, err := net.Listen("tcp", a.Address)
	if err != nil {
		return fmt.Errorf("[compat] listening on %s: %w", a, err)
	}
	l.lns = append(l.lns, server.CompatListener(wrap(ln), cfg.Compat.Anonymous))
	return nil
}

// noteGroup remembers the group owning a Unix socket's file.
func (l *listeners) noteGroup(ln net.Listener) {
	if ln.Addr().Network() != "unix" {
		return
	}
	if st, err := os.Stat(ln.Addr().String()); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			l.gids = append(l.gids, sys.Gid)
		}
	}
}

// access builds the API's access rules from the configuration: allowed
// uids (default root), allowed groups (default the sockets' groups) and the
// JWT verifier.
func access(cfg *config.Resolved, l *listeners) (*server.Access, error) {
	a := &server.Access{RequireAuth: cfg.RequireAuth, AllowedUIDs: []uint32{0}, AllowedGIDs: l.gids}
	if len(cfg.AllowedUIDs) > 0 {
		a.AllowedUIDs = nil
		for _, id := range cfg.AllowedUIDs {
			a.AllowedUIDs = append(a.AllowedUIDs, uint32(id))
		}
	}
	if len(cfg.AllowedGIDs) > 0 {
		a.AllowedGIDs = nil
		for _, id := range cfg.AllowedGIDs {
			a.AllowedGIDs = append(a.AllowedGIDs, uint32(id))
		}
	}
	if cfg.JWTEnabled() {
		v, err := auth.NewVerifier(auth.Config{
			SecretFile: cfg.JWTSecretFile, PublicKeyFile: cfg.JWTPublicKeyFile, JWKSFile: cfg.JWTJWKSFile,
			Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Leeway: jwtLeeway,
		})
		if err != nil {
			return nil, err
		}
		a.Verifier = v
	}
	return a, nil
}
