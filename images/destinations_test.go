package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/sandboxd/sandboxd/internal/netrule"
)

// TestParseRegistries: the registry rule's own reading of an entry (the
// syntax is netrule's, tested there).
func TestParseRegistries(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want netrule.Entry
	}{
		{"docker.io", netrule.Entry{Host: "index.docker.io"}},
		{"*.docker.io", netrule.Entry{Host: "docker.io", Wildcard: true}},
		{"Registry.Example.org:5000", netrule.Entry{Host: "registry.example.org", Port: "5000"}},
	} {
		if got, err := parseRegistryEntry(tc.in); err != nil || got != tc.want {
			t.Errorf("%q: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
	if err := ParseRegistries([]string{"ok.example", "not ok"}); err == nil || !strings.Contains(err.Error(), `registry "not ok"`) {
		t.Errorf("ParseRegistries took a bad entry: %v", err)
	}
}

func TestRegistryListMatches(t *testing.T) {
	d, err := newDestinations([]string{"reg.example", "10.0.0.5:5000", "*.corp.example", "[::1]:5001"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hostport string
		listed   bool
	}{
		{"reg.example", true},
		{"reg.example:443", true},
		{"reg.example:80", true},
		{"REG.example.:443", true},
		{"reg.example:5000", false},
		{"sub.reg.example", false},
		{"10.0.0.5:5000", true},
		{"10.0.0.5", false},
		{"10.0.0.5:443", false},
		{"a.corp.example", true},
		{"a.b.corp.example:443", true},
		{"corp.example", false},
		{"evilcorp.example", false},
		{"[::1]:5001", true},
		{"[0:0::1]:5001", true},
		{"127.0.0.1:5001", false},
	} {
		h, p := netrule.SplitHostPort(tc.hostport)
		if got := d.isListed(h, p); got != tc.listed {
			t.Errorf("%s: listed %v, want %v", tc.hostport, got, tc.listed)
		}
	}
}

// countedServer is an httptest server on 127.0.0.1 that counts the
// connections it accepts.
type countedServer struct {
	*httptest.Server
	host  string
	conns atomic.Int64
}

func newCountedServer(t *testing.T, h http.Handler) *countedServer {
	t.Helper()
	s := &countedServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	s.host = strings.TrimPrefix(s.URL, "http://")
	return s
}

// redirecting serves h, but sends blob GETs to the server at *to.
func redirecting(h http.Handler, to *string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet && *to != "" {
			http.Redirect(w, r, "http://"+*to+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// fakeDNS answers names ending in ".test" with what it was given and
// anything else as the system does.
func fakeDNS(names map[string][]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		addrs, ok := names[host]
		if !ok {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

// TestPullDestinations: registries on 127.0.0.1 are refused unless
// listed, before any connection, whatever name reaches them (DNS that
// points at loopback, a listed registry's redirect); listed ones work.
func TestPullDestinations(t *testing.T) {
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var redirectTo string
	reg := newCountedServer(t, redirecting(h, &redirectTo))
	cdn := newCountedServer(t, h)
	img := testImage(t, v1Config(), tarLayer(t, file("x", "x")))
	ref := pushTo(t, reg.host, "tool:1", img)
	_, port, _ := net.SplitHostPort(reg.host)
	dns := fakeDNS(map[string][]string{
		"loop.test":  {"127.0.0.1"},
		"mixed.test": {"93.184.216.34", "127.0.0.1"},
		"meta.test":  {"169.254.169.254"},
	})
	for _, tc := range []struct {
		name       string
		registries []string
		ref        string
		redirect   string // blob GETs go to this host
		err        error  // nil: the pull works
		wantMsg    string // in the error's text
	}{
		{name: "default refuses loopback", ref: ref, err: ErrRegistryNotAllowed, wantMsg: `registry "` + reg.host + `" is not allowed`},
		{name: "default refuses localhost", ref: "localhost:" + port + "/tool:1", err: ErrRegistryNotAllowed},
		{name: "default refuses a name on loopback", ref: "loop.test:" + port + "/tool:1", err: ErrRegistryNotAllowed, wantMsg: `"loop.test:` + port + `" is not allowed`},
		{name: "default refuses a name with one private address", ref: "mixed.test:" + port + "/tool:1", err: ErrRegistryNotAllowed},
		{name: "default refuses the metadata service", ref: "169.254.169.254/latest:1", err: ErrRegistryNotAllowed},
		{name: "default refuses a name on the metadata service", ref: "meta.test/x:1", err: ErrRegistryNotAllowed},
		{name: "default refuses private", ref: "10.0.0.1:5000/x:1", err: ErrRegistryNotAllowed},
		{name: "listed works", registries: []string{reg.host}, ref: ref},
		{name: "listed localhost works", registries: []string{"localhost:" + port}, ref: "localhost:" + port + "/tool:1"},
		{name: "unlisted refused when a list is set", registries: []string{"other.example"}, ref: ref, err: ErrRegistryNotAllowed, wantMsg: "not in the daemon's [images] registries"},
		{name: "listed host, other port", registries: []string{"127.0.0.1"}, ref: ref, err: ErrRegistryNotAllowed},
		{name: "redirect to unlisted loopback refused", registries: []string{reg.host}, ref: ref, redirect: cdn.host, err: ErrRegistryNotAllowed, wantMsg: "sent the pull to another host"},
		{name: "redirect to listed works", registries: []string{reg.host, cdn.host}, ref: ref, redirect: cdn.host},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{Registries: tc.registries})
			e.store.dest.lookup = dns
			redirectTo = tc.redirect
			regBefore, cdnBefore := reg.conns.Load(), cdn.conns.Load()
			_, err := e.store.Pull(bg, tc.ref, "", nil)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("pull: %v", err)
				}
				if tc.redirect != "" && cdn.conns.Load() == cdnBefore {
					t.Error("the redirect target saw no connection")
				}
				return
			}
			mustClass(t, err, ErrInvalid)
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("pull: %v, want %v with %q", err, tc.err, tc.wantMsg)
			}
			var de *DestinationError
			if !errors.As(err, &de) {
				t.Errorf("%v is no *DestinationError", err)
			}
			if strings.Contains(err.Error(), "127.0.0.1") && !strings.Contains(tc.ref, "127.0.0.1") {
				t.Errorf("the message shows an address the caller did not give: %v", err)
			}
			if tc.redirect == "" && reg.conns.Load() != regBefore {
				t.Errorf("the registry saw %d connections", reg.conns.Load()-regBefore)
			}
			if cdn.conns.Load() != cdnBefore {
				t.Errorf("the redirect target saw %d connections", cdn.conns.Load()-cdnBefore)
			}
			e.checkNoLeftovers(t)
		})
	}
}

// pushTo pushes img to the registry at host as repo:tag and returns the
// reference.
func pushTo(t *testing.T, host, repoTag string, img v1.Image) string {
	t.Helper()
	return (&testRegistry{host: host}).push(t, repoTag, img)
}

// logBuffer is a log that a test reads while the store writes it.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRegistryWordsNeverInTheMessage: whatever a registry answers, the
// error's text (which the API shows) has its status and known codes, never
// its words; the log keeps them.
func TestRegistryWordsNeverInTheMessage(t *testing.T) {
	const marker = "MARKER-7f3c-registry-said-this"
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		class   error
		want    string
	}{
		{"500 with a body", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, marker, http.StatusInternalServerError)
		}, ErrUnavailable, "registry answered 500"},
		{"404 with spec errors", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":%q,"detail":%q}]}`, marker, marker)
		}, ErrNotFound, "registry answered 404 Not Found (MANIFEST_UNKNOWN)"},
		{"unknown code", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"errors":[{"code":%q,"message":"x"}]}`, marker)
		}, ErrUnavailable, "registry answered 400 Bad Request"},
		{"token server reply", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/token" {
				fmt.Fprintf(w, `{"details":%q}`, marker) // no token: ggcr quotes the reply
				return
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="x"`, r.Host))
			w.WriteHeader(http.StatusUnauthorized)
		}, ErrUnavailable, "could not be used"},
		{"redirect to a URL with the marker", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v2/" {
				return
			}
			http.Redirect(w, r, "https://"+strings.ToLower(marker)+".invalid/x?"+marker, http.StatusTemporaryRedirect)
		}, ErrUnavailable, "could not be resolved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newCountedServer(t, tc.handler)
			logged := &logBuffer{}
			e := newEnv(t, Options{Registries: []string{srv.host}, Logger: slog.New(slog.NewTextHandler(logged, nil))})
			e.store.dest.lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
				if ip, err := netip.ParseAddr(host); err == nil {
					return []netip.Addr{ip}, nil
				}
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			}
			_, err := e.store.Pull(bg, srv.host+"/x:1", "", nil)
			mustClass(t, err, tc.class)
			if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(marker)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q: want %q and not the registry's words", err, tc.want)
			}
			if !strings.Contains(strings.ToLower(logged.String()), strings.ToLower(marker)) {
				t.Errorf("the log lost the registry's words:\n%s", logged.String())
			}
		})
	}
}
