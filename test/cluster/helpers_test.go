// Package cluster_test drives several real daemons as the pods of one
// Kubernetes StatefulSet would be: session forwarding between them, and
// readiness. Run it with `make test` (root, the static binary, the busybox
// test rootfs).
package cluster_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
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

var sandboxdBin, testRootfs string

func TestMain(m *testing.M) {
	sandboxdBin, testRootfs = testdaemon.RequireEnv("cluster")
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
	resp, err := httpClient.Do(req)
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

// httpClient and clusterTLS trust the test cluster's CA (startCluster
// sets them).
var (
	httpClient = http.DefaultClient
	clusterTLS *tls.Config
)

// node is one daemon of a test cluster.
type node struct {
	name, base string
	d          *testdaemon.Daemon
}

// startCluster starts one daemon per name, each with its own socket, TCP
// port and pod name, and a static peer map of all of them in place of
// the headless Service's DNS. They speak TLS, with a certificate of one
// CA, which they trust for their peers (peer_ca_file), as in Kubernetes.
func startCluster(t *testing.T, names ...string) []*node {
	t.Helper()
	nodes := make([]*node, len(names))
	peers := ""
	for i, n := range names {
		nodes[i] = &node{name: n, base: fmt.Sprintf("https://127.0.0.1:%d", testdaemon.FreePort(t))}
		peers += fmt.Sprintf("%q = %q\n", n, nodes[i].base)
	}
	crt, key, ca := testCerts(t)
	cfg := writeFile(t, "sandboxd.toml", fmt.Sprintf(`jwt_secret_file = %q
jwt_issuer = "test"
jwt_audience = "sandboxd"
tls_cert = %q
tls_key = %q

[cluster]
peer_ca_file = %q
[cluster.peers]
%s`, writeFile(t, "jwt.secret", secret), crt, key, ca, peers))
	for _, n := range nodes {
		n.d = testdaemon.Start(t, "--config", cfg, "--pod-name", n.name,
			"--listen", "unix://", "--listen", "tcp://"+strings.TrimPrefix(n.base, "https://"))
	}
	return nodes
}

// testCerts writes a CA and a certificate it signs for 127.0.0.1, and
// points httpClient at the CA; it returns the files' paths.
func testCerts(t *testing.T) (crt, key, caFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sandboxd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "sandboxd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(kind string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}))
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	clusterTLS = &tls.Config{RootCAs: roots}
	httpClient = &http.Client{Transport: &http.Transport{TLSClientConfig: clusterTLS}}
	t.Cleanup(func() { httpClient, clusterTLS = http.DefaultClient, nil })
	return writeFile(t, "tls.crt", pemOf("CERTIFICATE", leafDER)), writeFile(t, "tls.key", pemOf("EC PRIVATE KEY", keyDER)),
		writeFile(t, "ca.crt", pemOf("CERTIFICATE", caDER))
}
