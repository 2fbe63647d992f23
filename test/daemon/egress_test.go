package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	// slowCut is when a /slow download's client went away (unix ns).
	slowCut atomic.Int64
}

// slowDownload sends 1 KiB every 50 ms for a minute, and notes when its
// client went away.
func slowDownload(w http.ResponseWriter, r *http.Request, cut *atomic.Int64) {
	w.Header().Set("Content-Length", fmt.Sprint(1200*1024))
	chunk := []byte(strings.Repeat("x", 1024))
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
send:
	for range 1200 {
		if _, err := w.Write(chunk); err != nil {
			break
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			break send
		case <-tick.C:
		}
	}
	cut.Store(time.Now().UnixNano())
}

func startEgress(t *testing.T, args ...string) *egressSetup {
	t.Helper()
	e := &egressSetup{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			slowDownload(w, r, &e.slowCut)
			return
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(bigDownload))
			io.Copy(w, io.LimitReader(zeros{}, bigDownload))
			return
		}
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
	e.d = testdaemon.Start(t, append([]string{"--config", conf, "--audit-log", e.auditLog}, args...)...)
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

// TestSessionInstallThenLock: a sandbox created with a network reaches its
// allowed host from every exec; a PATCH with an empty allow-list cuts an
// open download within about a second and refuses the next one, and GET
// shows the policy and the counts. A sandbox created without a network
// gets one by PATCH; a list beyond the operator's is a 400 naming it.
func TestSessionInstallThenLock(t *testing.T) {
	e := startEgress(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, pkgs := e.d.Client, "pkgs.test:"+e.port
	sb, err := c.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox", Network: &api.Network{Allow: []string{pkgs}}})
	if err != nil {
		t.Fatal(err)
	}
	if sb.Network == nil || strings.Join(sb.Network.Allow, ",") != pkgs {
		t.Fatalf("created with %+v, want allow [%s]", sb.Network, pkgs)
	}
	get := "wget -qO- http://" + pkgs + "/simple/ 2>&1; echo rc=$?"
	if out := sessionSh(ctx, t, c, sb.ID, get); out != "hello from /simple/rc=0\n" {
		t.Fatalf("download before the lock: %q", out)
	}
	slow, err := c.Detach(ctx, sb.ID, &api.SandboxExecRequest{Cmd: []string{"sh", "-c", "wget -qO /work/slow http://" + pkgs + "/slow; echo rc=$?"}})
	if err != nil {
		t.Fatal(err)
	}
	testdaemon.WaitUntil(t, "the slow download to start", 30*time.Second, func() bool {
		got, err := c.Sandbox(ctx, sb.ID)
		return err == nil && got.Network != nil && got.Network.BytesIn > 10*1024
	})
	locked := time.Now()
	sb, err = c.UpdateSandbox(ctx, sb.ID, &api.UpdateSandboxRequest{Network: &api.Network{Allow: []string{}}})
	if err != nil {
		t.Fatal(err)
	}
	if sb.Network == nil || len(sb.Network.Allow) != 0 {
		t.Errorf("after the lock: %+v, want an empty allow-list", sb.Network)
	}
	done, err := c.DetachedExec(ctx, sb.ID, slow.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	// Within 1 s by the proxy's watch; the bound leaves room for a loaded
	// machine, and is far below the download's 60 s.
	if took := time.Since(locked); done.State != api.ExecExited || took > 5*time.Second || e.slowCut.Load() == 0 {
		t.Errorf("the open download after the lock: state %s after %v, upstream saw the cut: %v", done.State, took, e.slowCut.Load() != 0)
	}
	if out := sessionSh(ctx, t, c, sb.ID, get); !strings.Contains(out, "403") || strings.Contains(out, "hello") {
		t.Errorf("a download after the lock: %q, want a 403", out)
	}
	if got, err := c.Sandbox(ctx, sb.ID); err != nil || got.Network == nil || got.Network.Connections < 2 || got.Network.Denied < 1 {
		t.Errorf("GET after the lock: %+v %v", got, err)
	}
	checkPatchWithoutNetwork(ctx, t, e)
}

// checkPatchWithoutNetwork: a sandbox created without a network has no
// proxy until a PATCH allows a host; one beyond the operator's list is a
// 400 naming it, and an empty body a 400.
func checkPatchWithoutNetwork(ctx context.Context, t *testing.T, e *egressSetup) {
	t.Helper()
	c, pkgs := e.d.Client, "pkgs.test:"+e.port
	sb, err := c.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	if sb.Network != nil {
		t.Errorf("created without a network: %+v", sb.Network)
	}
	if out := sessionSh(ctx, t, c, sb.ID, "nc -z -w 2 127.0.0.1 3128; echo rc=$?"); out != "rc=1\n" {
		t.Errorf("a proxy before the PATCH: %q", out)
	}
	_, err = c.UpdateSandbox(ctx, sb.ID, &api.UpdateSandboxRequest{Network: &api.Network{Allow: []string{"pkgs.test:1"}}})
	if !client.IsCode(err, api.CodeInvalidRequest) || !strings.Contains(err.Error(), `"pkgs.test:1"`) {
		t.Errorf("a PATCH beyond the operator's list: %v", err)
	}
	if _, err = c.UpdateSandbox(ctx, sb.ID, &api.UpdateSandboxRequest{}); !client.IsCode(err, api.CodeInvalidRequest) {
		t.Errorf("a PATCH without network: %v", err)
	}
	if _, err = c.UpdateSandbox(ctx, sb.ID, &api.UpdateSandboxRequest{Network: &api.Network{Allow: []string{pkgs}}}); err != nil {
		t.Fatal(err)
	}
	if out := sessionSh(ctx, t, c, sb.ID, "wget -qO- http://"+pkgs+"/after"); out != "hello from /after" {
		t.Errorf("a download after the PATCH: %q", out)
	}
}

// sessionSh runs a shell script in a session and returns its stdout.
func sessionSh(ctx context.Context, t *testing.T, c *client.Client, id, script string) string {
	t.Helper()
	r, err := c.Exec(ctx, id, &api.SandboxExecRequest{Cmd: []string{"sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	return r.Run.Stdout
}
