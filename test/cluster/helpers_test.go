// Package cluster_test drives several real daemons as the pods of one
// Kubernetes StatefulSet would be: session forwarding between them, and
// readiness. Run it with `make test` (root, the static binary, the busybox
// test rootfs).
package cluster_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

var testRootfs string

func TestMain(m *testing.M) {
	_, testRootfs = testdaemon.RequireEnv("cluster")
	os.Exit(m.Run())
}

// secret is the HS256 key every daemon of a test cluster shares, as the
// pods of one StatefulSet share their Secret.
const secret = "sandboxd-cluster-test-secret-0123456789"

// token signs a token for sub that every daemon of the cluster accepts.
func token(t *testing.T, sub string) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "iss": "test", "aud": "sandboxd", "exp": time.Now().Add(time.Hour).Unix()}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeFile writes text to name in a fresh directory and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// response is an answer read whole.
type response struct {
	status int
	body   []byte
	took   time.Duration
}

// code is the API error code of an error answer, or "".
func (r response) code() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Code
}

// call makes one request to base over TCP with a bearer token (none when
// tok is "").
func call(t *testing.T, base, method, path, tok, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, base, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, body: b, took: time.Since(start)}
}

// ndjsonTimed reads a streamed answer's events, and when the first output
// event arrived (since start) into firstOut.
func ndjsonTimed(t *testing.T, r io.Reader, start time.Time, firstOut *time.Duration) []map[string]any {
	t.Helper()
	var events []map[string]any
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if *firstOut == 0 && strings.Contains(sc.Text(), `"type":"stdout"`) {
			*firstOut = time.Since(start)
		}
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

// node is one daemon of a test cluster.
type node struct {
	name, base string
	d          *testdaemon.Daemon
}

// startCluster starts one daemon per name, each with its own socket, TCP
// port and pod name, and a static peer map of all of them in place of
// the headless Service's DNS.
func startCluster(t *testing.T, names ...string) []*node {
	t.Helper()
	nodes := make([]*node, len(names))
	peers := ""
	for i, n := range names {
		nodes[i] = &node{name: n, base: fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
		peers += fmt.Sprintf("%q = %q\n", n, nodes[i].base)
	}
	cfg := writeFile(t, "sandboxd.toml", fmt.Sprintf(`jwt_secret_file = %q
jwt_issuer = "test"
jwt_audience = "sandboxd"

[cluster]
[cluster.peers]
%s`, writeFile(t, "jwt.secret", secret), peers))
	for _, n := range nodes {
		n.d = testdaemon.Start(t, "--config", cfg, "--pod-name", n.name,
			"--listen", "unix://", "--listen", "tcp://"+strings.TrimPrefix(n.base, "http://"))
	}
	return nodes
}
