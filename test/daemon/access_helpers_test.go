package daemon_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// testSecret is the HS256 secret of the access tests' daemons.
const testSecret = "sandboxd-test-secret-0123456789abcdef"

func writeSecret(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jwt.secret")
	if err := os.WriteFile(p, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// token signs claims for sub (issuer "test", audience "sandboxd", valid for
// an hour) with key, after mod has changed them.
func token(t *testing.T, sub string, key []byte, mod func(jwt.MapClaims)) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "iss": "test", "aud": "sandboxd", "exp": time.Now().Add(time.Hour).Unix(), "nbf": time.Now().Add(-time.Minute).Unix()}
	if mod != nil {
		mod(c)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodToken(t *testing.T, sub string) string { return token(t, sub, []byte(testSecret), nil) }

// jwtFlags configure a daemon for testSecret, issuer "test", audience "sandboxd".
func jwtFlags(t *testing.T) []string {
	return []string{"--jwt-secret-file", writeSecret(t), "--jwt-issuer", "test", "--jwt-audience", "sandboxd"}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int { return testdaemon.FreePort(t) }

// endpoint is a way to reach a daemon: its Unix socket or a TCP address.
type endpoint struct {
	name string
	http *http.Client
	base string
}

func unixEndpoint(socket string) endpoint {
	return endpoint{"unix", testdaemon.HTTPClient(socket), "http://sandboxd"}
}

func tcpEndpoint(addr string) endpoint {
	return endpoint{"tcp", &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}, "http://" + addr}
}

// call sends one request with an optional bearer token.
func (e endpoint) call(t *testing.T, method, path, tok, body string) rawResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", method, path, e.name, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return rawResponse{resp.StatusCode, resp.Header, data}
}

// metricsOf parses the Prometheus text format into "name{labels}" → value.
func metricsOf(t *testing.T, body []byte) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}
