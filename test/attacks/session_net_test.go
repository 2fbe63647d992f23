package attacks_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// TestSessionNetworkIsTheSandboxsOwn: a session's execs share one network
// namespace (a detached server answers its later execs), and it is that
// session's alone: another session's execs, and the session's own, can't
// reach what listens in the other, nor a service on the host's loopback.
func TestSessionNetworkIsTheSandboxsOwn(t *testing.T) {
	d := testdaemon.Start(t, "--pool-size", "0")
	d.ImportDir("busybox", testRootfs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	newSession := func() string {
		sb, err := d.Client.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox",
			Files: []api.File{{Name: "www/x", Content: "secret of the first session\n"}}})
		if err != nil {
			t.Fatal(err)
		}
		return sb.ID
	}
	exec := func(id, script string) *api.Result {
		r, err := d.Client.Exec(ctx, id, &api.SandboxExecRequest{Cmd: []string{"/bin/sh", "-c", script},
			Limits: &api.Limits{WallTimeMS: ptr(int64(5000))}})
		if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		return r.Run
	}
	a, b := newSession(), newSession()
	if _, err := d.Client.Detach(ctx, a, &api.SandboxExecRequest{Cmd: []string{"httpd", "-f", "-p", "127.0.0.1:8000", "-h", "/work/www"}}); err != nil {
		t.Fatal(err)
	}
	// The control: the first session's own later exec gets the page.
	testdaemon.WaitUntil(t, "the server to answer its own session", 10*time.Second, func() bool {
		return exec(a, "wget -qO- http://127.0.0.1:8000/x").Stdout == "secret of the first session\n"
	})
	// Another session: its 127.0.0.1:8000 is its own, where nothing listens.
	if r := exec(b, "probe connect 8000"); r.Stdout != "error ECONNREFUSED\n" {
		t.Errorf("the other session connecting to 127.0.0.1:8000: %q, want ECONNREFUSED", r.Stdout)
	}
	if r := exec(b, "wget -qO- -T 2 http://127.0.0.1:8000/x"); strings.Contains(r.Stdout, "secret") {
		t.Errorf("the other session read the first one's server: %q", r.Stdout)
	}
	// Namespaces: one per session, the same for each of its execs.
	ns := func(id string) string { return strings.TrimSpace(exec(id, "readlink /proc/self/ns/net").Stdout) }
	a1, a2, b1 := ns(a), ns(a), ns(b)
	if a1 == "" || a1 != a2 || a1 == b1 {
		t.Errorf("network namespaces: first session %q and %q, second %q", a1, a2, b1)
	}
	// Loopback only, and the host's loopback is another interface.
	if r := exec(a, "ls /sys/class/net | tr '\\n' ' '; grep -c : /proc/net/dev"); r.Stdout != "lo 1\n" {
		t.Errorf("interfaces: %q, want only lo", r.Stdout)
	}
	// Its /sys (the namespace's sysfs, bound in) is read-only and masked
	// as a one-shot sandbox's.
	if r := exec(a, "ls /sys/firmware | wc -l; echo 1 > /sys/kernel/mm/ksm/run 2>/dev/null || echo denied; grep ' /sys ' /proc/mounts | grep -c ' ro,'"); r.Stdout != "0\ndenied\n1\n" {
		t.Errorf("/sys: %q", r.Stdout)
	}
	hostLoopbackUnreachable(t, func(script string) string { return exec(a, script).Stdout })
	// The sandbox can't change its namespace: it has no capability in it.
	if r := exec(a, "ip link set lo down 2>&1; ip addr add 10.9.9.9/24 dev lo 2>&1; ls /sys/class/net | tr '\\n' ' '"); !strings.HasSuffix(r.Stdout, "lo ") ||
		!strings.Contains(r.Stdout, "ermission") && !strings.Contains(r.Stdout, "not permitted") {
		t.Errorf("changing the network namespace: %q", r.Stdout)
	}
	// Nor bind a privileged port.
	if r := exec(a, "httpd -f -p 127.0.0.1:80 2>&1"); !strings.Contains(r.Stdout, "ermission denied") {
		t.Errorf("binding port 80: %s %q", r.Status, r.Stdout)
	}
	if r := exec(a, "wget -qO- http://127.0.0.1:8000/x"); r.Stdout != "secret of the first session\n" {
		t.Errorf("after the attempt to take lo down: %q", r.Stdout)
	}
	for _, id := range []string{a, b} {
		if err := d.Client.DeleteSandbox(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if l := d.Leftovers(); len(l) != 0 {
		t.Errorf("left on the host: %v", l)
	}
}

// hostLoopbackUnreachable: a listener on the host's 127.0.0.1 gets no
// connection from a session's exec (run), which is refused.
func hostLoopbackUnreachable(t *testing.T, run func(script string) string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if out := run("probe connect " + port); out != "error ECONNREFUSED\n" {
		t.Errorf("a session connecting to the host's 127.0.0.1:%s: %q, want ECONNREFUSED", port, out)
	}
	select {
	case <-accepted:
		t.Error("the host listener accepted a connection from a session")
	case <-time.After(100 * time.Millisecond):
	}
}
