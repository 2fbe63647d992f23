package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/session"
)

// Forwarding sends a session call to the daemon that holds the session.
// A session lives on the daemon (pod) that created it and its id names
// that daemon (session.OwnerOf); any daemon that gets a call for another's
// session passes it on, unchanged, to the owner, which authenticates,
// admits, audits and answers it as if it had come directly. Nothing about
// the caller is asserted to the owner: it gets the caller's own bearer
// token and checks it, so a daemon can't make a call as someone else.
type Forwarding struct {
	// Self is this daemon's name; calls for its sessions are served here.
	Self string
	// Peer returns the base URL of the daemon named pod; false: unknown,
	// and the call is answered here (404 unknown_sandbox).
	Peer func(pod string) (*url.URL, bool)
	// TLS configures https:// peer URLs (its RootCAs: the CAs of the
	// peers' certificates); nil: Go's defaults.
	TLS *tls.Config
}

// forwardedHeader marks a forwarded call, which is never forwarded again:
// two daemons that disagree on who owns an id answer 404 instead of
// passing the call back and forth. A caller that sets it only stops its
// own call from being forwarded.
const forwardedHeader = "X-Sandboxd-Forwarded-By"

// DialTimeout bounds the connection to a session's owner: an owner that is
// gone (its pod deleted, its address dead or refusing) is answered 404
// unknown_sandbox well within a second.
const DialTimeout = 500 * time.Millisecond

// forwarder is the reverse proxy of a Forwarding.
type forwarder struct {
	s     *Server
	f     *Forwarding
	proxy *httputil.ReverseProxy
}

func newForwarder(s *Server, f *Forwarding) *forwarder {
	fw := &forwarder{s: s, f: f}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: DialTimeout}).DialContext,
		TLSClientConfig:     f.TLS,
		TLSHandshakeTimeout: DialTimeout,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	fw.proxy = &httputil.ReverseProxy{
		Transport: tr,
		// Streamed answers (NDJSON) reach the caller line by line.
		FlushInterval: -1,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(peerURLKey{}).(*url.URL))
			pr.Out.Header.Set(forwardedHeader, f.Self)
		},
		ErrorHandler: fw.unreachable,
	}
	return fw
}

type peerURLKey struct{}

// wrap forwards the calls for other daemons' sessions and passes the rest
// to next. It runs after authenticate: a call this daemon refuses is
// never passed on.
func (fw *forwarder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, ok := fw.target(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		// The owner's request id is the one its log and audit line carry.
		w.Header().Del("X-Request-Id")
		fw.s.log.Debug("forwarding a session call", "path", r.URL.Path, "to", peer.Host, "request", requestIDOf(r.Context()))
		fw.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerURLKey{}, peer)))
	})
}

// target returns the URL of the daemon that owns the session a request
// names, when it is another daemon and the call may go there: it carries
// the caller's bearer token (a caller known by its Unix-socket
// credentials is known here only, and can own no session elsewhere), and
// was not forwarded already.
func (fw *forwarder) target(r *http.Request) (*url.URL, bool) {
	id, ok := sessionIDOf(r.URL.Path)
	if !ok || r.Header.Get(forwardedHeader) != "" {
		return nil, false
	}
	owner := session.OwnerOf(id)
	if owner == "" || owner == fw.f.Self {
		return nil, false
	}
	if fw.s.Access != nil {
		if c := callerOf(r.Context()); c == nil || c.Auth != "jwt" {
			return nil, false
		}
	}
	return fw.f.Peer(owner)
}

// sessionIDOf returns the id of /v1/sandboxes/{id} and the paths below it.
func sessionIDOf(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/v1/sandboxes/")
	if !ok {
		return "", false
	}
	id, _, _ := strings.Cut(rest, "/")
	return id, id != ""
}

// unreachable answers a call whose owner could not be reached: the
// session went with it.
func (fw *forwarder) unreachable(w http.ResponseWriter, r *http.Request, err error) {
	fw.s.log.Info("a session's owner is unreachable", "path", r.URL.Path, "err", err)
	if r.Context().Err() != nil {
		return // the caller went away: no one to answer
	}
	w.Header().Set("X-Request-Id", requestIDOf(r.Context())) // the answer is this daemon's
	fw.s.writeError(w, r, nil, fmt.Errorf("owner unreachable: %w", session.ErrUnknown))
}
