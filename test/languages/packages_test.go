package languages_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/internal/testdns"
)

// wheel builds a pure-Python wheel of one module, as pip expects it:
// the module, METADATA, WHEEL and a RECORD with each file's hash.
func wheel(t *testing.T, name, version, module, source string) (string, []byte) {
	t.Helper()
	dist := strings.ReplaceAll(name, "-", "_")
	info := dist + "-" + version + ".dist-info/"
	files := []struct{ path, body string }{
		{module + "/__init__.py", source},
		{info + "METADATA", "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"},
		{info + "WHEEL", "Wheel-Version: 1.0\nGenerator: sandboxd-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, f := range files {
		w, err := zw.Create(f.path)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f.body))
		sum := sha256.Sum256([]byte(f.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.path, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.body))
	}
	fmt.Fprintf(&record, "%sRECORD,,\n", info)
	w, _ := zw.Create(info + "RECORD")
	w.Write([]byte(record.String()))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return dist + "-" + version + "-py3-none-any.whl", buf.Bytes()
}

// pypi is a simple index (PEP 503) of one wheel on this machine's
// loopback; it counts the requests it answers.
func pypi(t *testing.T, file string, data []byte) (port string, hits *atomic.Int64) {
	t.Helper()
	hits = &atomic.Int64{}
	sum := sha256.Sum256(data)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/simple/hello-sandboxd/":
			fmt.Fprintf(w, `<!DOCTYPE html><html><body><a href="/files/%s#sha256=%s">%s</a></body></html>`, file, hex.EncodeToString(sum[:]), file)
		case "/files/" + file:
			w.Write(data)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return port, hits
}

// TestPipInstallThroughTheProxy: with the operator's [packages]
// pip_index_url, a Python run given a network policy (even an empty
// list) installs a package with pip from that index through the egress
// proxy, into /work, and imports it; without a policy pip reaches
// nothing.
func TestPipInstallThroughTheProxy(t *testing.T) {
	file, data := wheel(t, "hello-sandboxd", "1.0", "hello_sandboxd", "def greet():\n    return 'hello from a wheel'\n")
	port, hits := pypi(t, file, data)
	dns, err := testdns.Start(func(name string) []netip.Addr {
		if name == "pypi.test" {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	conf := filepath.Join(t.TempDir(), "sandboxd.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[network]\nallowed_private = [\"127.0.0.1:%s\"]\ndns = %q\n\n[packages]\npip_index_url = \"http://pypi.test:%s/simple/\"\n",
		port, dns.Addr, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startWithImagesArgs(t, []string{"--config", conf}, "python")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prog := `import subprocess, sys
r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "-q", "--target", "/work/.pkgs", "hello-sandboxd"], capture_output=True, text=True)
print("pip", r.returncode, r.stderr[-300:] if r.returncode else "")
sys.path.insert(0, "/work/.pkgs")
import hello_sandboxd
print(hello_sandboxd.greet())
`
	req := &api.ExecuteRequest{Language: "python", Files: []api.File{{Name: "main.py", Content: prog}},
		Network: &api.Network{Allow: []string{}},
		Limits:  &api.Limits{WallTimeMS: ptr(int64(60000)), CPUTimeMS: ptr(int64(60000)), CPUs: ptr(1.0), MemoryBytes: ptr(int64(256 << 20))}}
	r, err := d.Client.ExecuteLanguage(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Run == nil || r.Run.Stdout != "pip 0 \nhello from a wheel\n" || r.Run.Network == nil || r.Run.Network.Connections < 2 {
		t.Fatalf("pip install through the proxy: %s %+v", r.Status, r.Run)
	}
	before := hits.Load()
	req.Network = nil
	r, err = d.Client.ExecuteLanguage(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if r.Run == nil || !strings.HasPrefix(r.Run.Stdout, "pip 1 ") || hits.Load() != before {
		t.Errorf("pip without a policy: %q, the index answered %d more requests", r.Run.Stdout, hits.Load()-before)
	}
}
