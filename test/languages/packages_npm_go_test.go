package languages_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
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
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// packageIndex serves h on this machine's loopback as host (through a
// test DNS), and returns a daemon whose [packages] key names it, with the
// language images given; hits counts the requests the index answered.
func packageIndex(t *testing.T, host, key, urlFmt string, h func(base string) http.Handler, images ...string) (*testdaemon.Daemon, *atomic.Int64) {
	t.Helper()
	hits := &atomic.Int64{}
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	base := fmt.Sprintf(urlFmt, host+":"+port)
	handler = h(base)
	dns, err := testdns.Start(func(name string) []netip.Addr {
		if name == host {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	conf := filepath.Join(t.TempDir(), "sandboxd.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[network]\nallowed_private = [\"127.0.0.1:%s\"]\ndns = %q\n\n[packages]\n%s = %q\n",
		port, dns.Addr, key, base)), 0o644); err != nil {
		t.Fatal(err)
	}
	return startWithImagesArgs(t, []string{"--config", conf}, images...), hits
}

// npmTarball is a package tarball as npm publishes it: package/ with a
// package.json and the module.
func npmTarball(t *testing.T, name, version, index string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct{ name, body string }{
		{"package/package.json", fmt.Sprintf(`{"name":%q,"version":%q,"main":"index.js"}`, name, version)},
		{"package/index.js", index},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1e9, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}

// npmRegistry answers a packument and the tarball of one package.
func npmRegistry(name, version string, tgz []byte) func(string) http.Handler {
	return func(base string) http.Handler {
		s1 := sha1.Sum(tgz)
		s512 := sha512.Sum512(tgz)
		file := name + "-" + version + ".tgz"
		doc, _ := json.Marshal(map[string]any{
			"name": name, "dist-tags": map[string]string{"latest": version},
			"versions": map[string]any{version: map[string]any{
				"name": name, "version": version, "main": "index.js",
				"dist": map[string]string{"tarball": base + name + "/-/" + file, "shasum": hex.EncodeToString(s1[:]),
					"integrity": "sha512-" + base64.StdEncoding.EncodeToString(s512[:])},
			}},
		})
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/" + name:
				w.Header().Set("Content-Type", "application/json")
				w.Write(doc)
			case "/" + name + "/-/" + file:
				w.Write(tgz)
			default:
				http.NotFound(w, r)
			}
		})
	}
}

// TestNPMInstallThroughTheProxy: in a node session with a network policy
// (an empty list: only the operator's npm_registry), npm install fetches a
// package from that registry through the egress proxy into
// /work/node_modules, and a later exec requires it; once the session is
// locked, npm reaches nothing.
func TestNPMInstallThroughTheProxy(t *testing.T) {
	tgz := npmTarball(t, "left-pad", "1.3.0", "module.exports = (s, n, c) => String(c || ' ').repeat(Math.max(0, n - String(s).length)) + s;\n")
	d, hits := packageIndex(t, "npm.test", "npm_registry", "http://%s/", npmRegistry("left-pad", "1.3.0", tgz), "node")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := d.Client
	sb, err := c.CreateSandbox(ctx, &api.CreateSandboxRequest{Language: "javascript", Network: &api.Network{Allow: []string{}},
		Limits: &api.Limits{MemoryBytes: ptr(int64(512 << 20)), CPUs: ptr(1.0)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.DeleteSandbox(ctx, sb.ID)
	long := &api.Limits{WallTimeMS: ptr(int64(60000)), CPUTimeMS: ptr(int64(60000))}
	r, err := c.Exec(ctx, sb.ID, &api.SandboxExecRequest{Cmd: []string{"npm", "install", "--no-audit", "--no-fund", "--no-update-notifier", "left-pad"}, Limits: long})
	if err != nil {
		t.Fatal(err)
	}
	if r.Run.ExitCode != 0 {
		t.Fatalf("npm install: %s exit %v\n%s\n%s", r.Status, r.Run.ExitCode, r.Run.Stdout, r.Run.Stderr)
	}
	r, err = c.Exec(ctx, sb.ID, &api.SandboxExecRequest{Cmd: []string{"node", "-e", `console.log(require("left-pad")("7", 3, "0"))`}})
	if err != nil || r.Run.Stdout != "007\n" {
		t.Fatalf("require after npm install: %+v %v", r, err)
	}
	if _, err := c.UpdateSandbox(ctx, sb.ID, &api.UpdateSandboxRequest{Network: &api.Network{Allow: []string{}}}); err != nil {
		t.Fatal(err)
	}
	before := hits.Load()
	r, err = c.Exec(ctx, sb.ID, &api.SandboxExecRequest{Cmd: []string{"npm", "view", "--no-update-notifier", "--fetch-retries=0", "left-pad", "version"}, Limits: long})
	if err != nil {
		t.Fatal(err)
	}
	if r.Run.ExitCode == 0 || hits.Load() != before {
		t.Errorf("npm after the lock: exit %v %q, the registry answered %d more requests", r.Run.ExitCode, r.Run.Stdout, hits.Load()-before)
	}
}

// goModule is a module proxy (GOPROXY protocol) serving one module.
func goModule(path, version string, files map[string]string) func(string) http.Handler {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, _ := zw.Create(path + "@" + version + "/" + name)
		w.Write([]byte(body))
	}
	zw.Close()
	prefix := "/" + path + "/@v/"
	return func(string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch strings.TrimPrefix(r.URL.Path, prefix) {
			case "list":
				fmt.Fprintln(w, version)
			case version + ".info":
				fmt.Fprintf(w, `{"Version":%q,"Time":"2026-01-01T00:00:00Z"}`, version)
			case version + ".mod":
				w.Write([]byte(files["go.mod"]))
			case version + ".zip":
				w.Write(buf.Bytes())
			default:
				http.NotFound(w, r)
			}
		})
	}
}

// TestGoModDownloadThroughTheProxy: in a go session with a network
// policy, go mod download fetches a module from the operator's goproxy
// through the egress proxy, and the program that imports it builds and
// runs.
func TestGoModDownloadThroughTheProxy(t *testing.T) {
	mod := goModule("example.test/greet", "v1.0.0", map[string]string{
		"go.mod":   "module example.test/greet\n\ngo 1.19\n",
		"greet.go": "package greet\n\nfunc Hello() string { return \"hello from a module\" }\n",
	})
	d, hits := packageIndex(t, "goproxy.test", "goproxy", "http://%s", mod, "go")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := d.Client
	sb, err := c.CreateSandbox(ctx, &api.CreateSandboxRequest{Language: "go", Network: &api.Network{Allow: []string{}},
		Env:    map[string]string{"GONOSUMDB": "example.test", "GOFLAGS": "-mod=mod"},
		Limits: &api.Limits{MemoryBytes: ptr(int64(512 << 20)), CPUs: ptr(1.0)},
		Files: []api.File{
			{Name: "go.mod", Content: "module demo\n\ngo 1.19\n\nrequire example.test/greet v1.0.0\n"},
			{Name: "main.go", Content: "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.test/greet\"\n)\n\nfunc main() { fmt.Println(greet.Hello()) }\n"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.DeleteSandbox(ctx, sb.ID)
	long := &api.Limits{WallTimeMS: ptr(int64(60000)), CPUTimeMS: ptr(int64(60000))}
	r, err := c.Exec(ctx, sb.ID, &api.SandboxExecRequest{Cmd: []string{"sh", "-c", "go mod download && go build -o demo . && ./demo"}, Limits: long})
	if err != nil {
		t.Fatal(err)
	}
	if r.Run.Stdout != "hello from a module\n" || hits.Load() < 2 {
		t.Fatalf("go mod download through the proxy: %s %q %q, the proxy answered %d requests", r.Status, r.Run.Stdout, r.Run.Stderr, hits.Load())
	}
}
