package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/auth"
	"github.com/sandboxd/sandboxd/errdefs"
)

// Access says who may call.
type Access struct {
	// Verifier checks bearer tokens; nil when no JWT key is configured.
	Verifier *auth.Verifier
	// RequireAuth makes a token necessary on the Unix socket too (it always
	// is on TCP).
	RequireAuth bool
	// A Unix-socket peer is allowed when its uid is in AllowedUIDs, or its
	// primary or a supplementary group is in AllowedGIDs.
	AllowedUIDs []uint32
	AllowedGIDs []uint32
}

// Caller is who made a request.
type Caller struct {
	User      string // the token's subject, or "uid:N" for a peer without a token
	Auth      string // "jwt", "peer", or "none" on a compat listener without tokens
	Transport string // "unix" or "tcp"
	Peer      *auth.Peer
	Remote    string
	Limits    *api.Limits // narrowing from the token's sandboxd_limits claim
}

var (
	errUnauthorized = errdefs.New(errdefs.ErrUnauthorized, "unauthorized")
	errForbidden    = errdefs.New(errdefs.ErrForbidden, "forbidden")
)

type connKey struct{}

type connInfo struct {
	transport string
	peer      *auth.Peer
	remote    string
	framing   *framedConn // nil on a listener without StrictFraming
	// compat: a compat listener's (compat.go); anonymous: one without
	// tokens.
	compat, anonymous bool
}

// ConnContext is http.Server.ConnContext for the API's listeners: it
// records the transport and, on a Unix socket, the peer's credentials,
// read once per connection from the kernel; on a StrictFraming listener,
// the framing check's refusals.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	cc, _ := c.(*compatConn)
	if cc != nil {
		c = cc.Conn
	}
	fc, _ := c.(*framedConn)
	if fc != nil {
		c = fc.Conn
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	info := &connInfo{transport: "tcp", remote: c.RemoteAddr().String(), framing: fc,
		compat: cc != nil, anonymous: cc != nil && cc.anonymous}
	if uc, ok := c.(*net.UnixConn); ok {
		info.transport, info.remote = "unix", ""
		info.peer, _ = auth.PeerOf(uc) // nil: refused as forbidden
	}
	return context.WithValue(ctx, connKey{}, info)
}

type callerKey struct{}

// callerOf returns the authenticated caller of a request (nil when the
// server runs without access control).
func callerOf(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

type requestIDKey struct{}

func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID gives every request an id, in its context and in the
// X-Request-Id response header; the audit log and the daemon's log use it.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id := "req-" + hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// authenticate identifies the caller of every request or refuses it: 403
// for a Unix-socket peer that is not allowed, 401 for a missing or bad
// token where one is needed. The caller's user also keys its place in the
// fair queue (admit.go hands it to the core).
func (s *Server) authenticate(next http.Handler) http.Handler {
	checked := s.checkAccess(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info, _ := r.Context().Value(connKey{}).(*connInfo); info != nil && info.anonymous {
			c := &Caller{User: "anonymous", Auth: authNone, Transport: info.transport, Remote: info.remote}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
			return
		}
		checked.ServeHTTP(w, r)
	})
}

// checkAccess identifies the caller of a request that came in on a
// listener with access rules.
func (s *Server) checkAccess(next http.Handler) http.Handler {
	if s.Access == nil {
		return next
	}
	a := s.Access
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := r.Context().Value(connKey{}).(*connInfo)
		if info == nil {
			s.writeError(w, r, nil, errForbidden)
			return
		}
		c := &Caller{Transport: info.transport, Peer: info.peer, Remote: info.remote}
		needToken := info.transport != "unix" || a.RequireAuth
		if info.transport == "unix" {
			p := info.peer
			if p == nil || !(slices.Contains(a.AllowedUIDs, p.UID) || slices.ContainsFunc(a.AllowedGIDs, p.HasGroup)) {
				uid := int64(-1)
				if p != nil {
					uid = int64(p.UID)
				}
				s.log.Info("refused a peer that is not allowed", "uid", uid, "path", r.URL.Path)
				s.writeError(w, r, nil, errForbidden)
				return
			}
			c.User, c.Auth = "uid:"+strconv.FormatUint(uint64(p.UID), 10), "peer"
		}
		token, hasToken := bearer(r)
		if hasToken && a.Verifier != nil {
			claims, err := a.Verifier.Verify(token)
			if err != nil {
				s.log.Debug("refused a token", "err", err, "transport", info.transport)
				s.writeError(w, r, nil, errUnauthorized)
				return
			}
			c.User, c.Auth, c.Limits = claims.Subject, "jwt", claims.Limits
		} else if needToken {
			s.writeError(w, r, nil, errUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	t := strings.TrimSpace(h[7:])
	return t, t != ""
}
