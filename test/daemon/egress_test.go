package daemon_test

import (
	"bufio"
	"context"
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
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/testdns"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// egressSetup is a daemon whose [network] allows *.test at one port of an
// HTTP upstream on this machine's loopback, with a test DNS that names
// it, and an audit log.
type egressSetup struct {
	d        *testdaemon.Daemon
	port     string
	upstream atomic.Int64 // connections the upstream accepted
	auditLog string
}

func startEgress(t *testing.T) *egressSetup {
	t.Helper()
	e := &egressSetup{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			e.upstream.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	_, e.port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	dns, err := testdns.Start(func(name string) []netip.Addr {
		switch name {
		case "pkgs.test", "other.test":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}
		case "meta.test":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	dir := t.TempDir()
	conf := filepath.Join(dir, "sandboxd.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[network]
allowed = ["*.test:%s"]
allowed_private = ["127.0.0.1:%s"]
dns = %q
max_connections = 4
`, e.port, e.port, dns.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	e.auditLog = filepath.Join(dir, "audit.log")
	e.d = testdaemon.Start(t, "--config", conf, "--audit-log", e.auditLog)
	e.d.ImportDir("busybox", testRootfs)
	return e
}

func (e *egressSetup) run(ctx context.Context, t *testing.T, script string, allow ...string) *api.ExecuteResponse {
	t.Helper()
	req := &api.ExecuteRequest{Image: "busybox", Cmd: []string{"sh", "-c", script}}
	if allow != nil {
		req.Network = &api.Network{Allow: allow}
	}
	resp, err := e.d.Client.Execute(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestEgressThroughTheProxy: a program reaches an allowed host through
// the daemon's proxy (plain HTTP, and a CONNECT tunnel), is refused the
// others with a 403 it can read, never connects directly, and has no
// proxy at all without a policy. The result counts it; the audit log has
// a line per connection; a policy beyond the operator's list is a 400.
func TestEgressThroughTheProxy(t *testing.T) {
	e := startEgress(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pkgs := "pkgs.test:" + e.port

	r := e.run(ctx, t, "wget -qO- http://"+pkgs+"/simple/", pkgs)
	if r.Status != "ok" || r.Run.Stdout != "hello from /simple/" || r.Run.Network == nil || r.Run.Network.Connections != 1 || r.Run.Network.BytesIn == 0 {
		t.Errorf("allowed host over HTTP: %s %q %q %+v", r.Status, r.Run.Stdout, r.Run.Stderr, r.Run.Network)
	}
	tunnel := fmt.Sprintf(`printf 'CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nGET /tunnel HTTP/1.0\r\nHost: pkgs.test\r\n\r\n' | nc 127.0.0.1 3128`, pkgs, pkgs)
	if r := e.run(ctx, t, tunnel, pkgs); !strings.Contains(r.Run.Stdout, "200 Connection established") || !strings.HasSuffix(r.Run.Stdout, "hello from /tunnel") {
		t.Errorf("CONNECT tunnel: %q %q", r.Run.Stdout, r.Run.Stderr)
	}
	before := e.upstream.Load()
	for _, tc := range []struct{ name, script, want string }{
		{"a host not in the request's list", "wget -qO- http://other.test:" + e.port + "/ 2>&1; echo rc=$?", "403"},
		{"a name resolving to the metadata address", "wget -qO- http://meta.test:" + e.port + "/ 2>&1; echo rc=$?", "403"},
		{"a direct connection", "nc -w 2 127.0.0.1 " + e.port + " </dev/null 2>&1; echo rc=$?", "rc=1"},
		{"a direct connection past the proxy", "wget -qO- -Y off http://" + pkgs + "/ 2>&1; echo rc=$?", "rc=1"},
	} {
		r := e.run(ctx, t, tc.script, pkgs, "meta.test:"+e.port)
		if !strings.Contains(r.Run.Stdout, tc.want) || strings.Contains(r.Run.Stdout, "hello") {
			t.Errorf("%s: %q, want %q", tc.name, r.Run.Stdout, tc.want)
		}
	}
	if got := e.upstream.Load() - before; got != 0 {
		t.Errorf("the upstream accepted %d connections from refused attempts", got)
	}
	if r := e.run(ctx, t, "nc -z -w 2 127.0.0.1 3128; echo rc=$?; env | grep -i proxy"); r.Run.Network != nil || r.Run.Stdout != "rc=1\n" {
		t.Errorf("without a policy: %q, network %+v", r.Run.Stdout, r.Run.Network)
	}
	_, err := e.d.Client.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}, Network: &api.Network{Allow: []string{"pkgs.test:1"}}})
	if !client.IsCode(err, api.CodeInvalidRequest) || !strings.Contains(err.Error(), `"pkgs.test:1"`) {
		t.Errorf("a policy beyond the operator's: %v", err)
	}
	checkEgressAudit(t, e.auditLog)
}

// checkEgressAudit: one network.connect line per connection, with the
// caller, host, port and verdict, never content.
func checkEgressAudit(t *testing.T, path string) {
	t.Helper()
	var verdicts []string
	testdaemon.WaitUntil(t, "the audit lines", 5*time.Second, func() bool {
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		verdicts = nil
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r audit.Record
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.Action == "network.connect" && r.Connection != nil {
				if r.User == "" || r.SandboxID == "" || r.Connection.Port == 0 {
					t.Fatalf("audit line without its caller, sandbox or port: %s", sc.Bytes())
				}
				verdicts = append(verdicts, r.Connection.Host+" "+r.Connection.Verdict)
			}
		}
		return len(verdicts) >= 4
	})
	want := []string{"pkgs.test allowed", "pkgs.test allowed", "other.test denied_host", "meta.test denied_address"}
	if strings.Join(verdicts, ",") != strings.Join(want, ",") {
		t.Errorf("audit verdicts %q, want %q", verdicts, want)
	}
}
