package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/sandboxd/sandboxd/queue"
)

// Which calls go to another daemon: only those about a session whose id
// names a known peer, from a caller with a token, not forwarded already.
func TestForwardTarget(t *testing.T) {
	peer, _ := url.Parse("https://sandboxd-1.peers:8443")
	s := New(Options{Queue: queue.New(1, 1), Access: &Access{}})
	fw := newForwarder(s, &Forwarding{Self: "sandboxd-0", Peer: func(pod string) (*url.URL, bool) {
		return peer, pod == "sandboxd-1"
	}})
	jwt, unix := &Caller{User: "alice", Auth: "jwt"}, &Caller{User: "uid:0", Auth: "peer"}
	for _, tc := range []struct {
		name, path string
		caller     *Caller
		forwarded  bool
		want       bool
	}{
		{"a peer's session", "/v1/sandboxes/sb-0123.sandboxd-1", jwt, false, true},
		{"below it", "/v1/sandboxes/sb-0123.sandboxd-1/files/a/b", jwt, false, true},
		{"its WebSocket", "/v1/sandboxes/sb-0123.sandboxd-1/execs/ex-1/ws", jwt, false, true},
		{"this daemon's", "/v1/sandboxes/sb-0123.sandboxd-0/exec", jwt, false, false},
		{"an id naming no pod", "/v1/sandboxes/sb-0123/exec", jwt, false, false},
		{"an unknown pod", "/v1/sandboxes/sb-0123.sandboxd-9", jwt, false, false},
		{"the list", "/v1/sandboxes", jwt, false, false},
		{"not a session", "/v1/execute", jwt, false, false},
		{"a Unix-socket caller", "/v1/sandboxes/sb-0123.sandboxd-1", unix, false, false},
		{"no caller", "/v1/sandboxes/sb-0123.sandboxd-1", nil, false, false},
		{"forwarded already", "/v1/sandboxes/sb-0123.sandboxd-1", jwt, true, false},
	} {
		r := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.caller != nil {
			r = r.WithContext(context.WithValue(r.Context(), callerKey{}, tc.caller))
		}
		if tc.forwarded {
			r.Header.Set(forwardedHeader, "sandboxd-2")
		}
		if u, ok := fw.target(r); ok != tc.want || (ok && u != peer) {
			t.Errorf("%s: forwarded %v to %v, want %v", tc.name, ok, u, tc.want)
		}
	}
}
