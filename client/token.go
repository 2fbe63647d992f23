package client

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// bearer adds "Authorization: Bearer" to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// NewWithToken returns a client for the Unix socket path that sends token
// (a JWT) with every request, for a daemon run with --require-auth or to
// be known by the token's subject rather than by uid.
func NewWithToken(socket, token string) *Client {
	c := New(socket)
	c.http = &http.Client{Transport: bearer{token, c.http.Transport}}
	return c
}

// NewTCP returns a client for a daemon's TCP listener (host:port), which
// always requires a token. tlsConf nil means plain HTTP (loopback only).
func NewTCP(addr, token string, tlsConf *tls.Config) *Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:     tlsConf,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	scheme := "http://"
	if tlsConf != nil {
		scheme = "https://"
	}
	return &Client{http: &http.Client{Transport: bearer{token, tr}}, base: scheme + addr}
}

// NewWithTransport returns a client that sends every request through rt,
// for a caller that reaches the API neither by socket nor by TCP: the
// daemon's /mcp endpoint calls the API in process, as its own caller.
func NewWithTransport(rt http.RoundTripper) *Client {
	return &Client{http: &http.Client{Transport: rt}, base: "http://sandboxd"}
}
