package attacks_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// TestSessionLimitsHoldForTheWholeSandbox: a session sandbox's
// memory_bytes and pids bound all its execs together, not each exec. (Each
// exec used to get the whole limit in a cgroup of its own: with 4 execs at
// once a session used 4 × memory_bytes, and what one exec left in /tmp
// counted against no later one.)
func TestSessionLimitsHoldForTheWholeSandbox(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := d.Client.CreateSandbox(ctx, &api.CreateSandboxRequest{Image: "busybox",
		Limits: &api.Limits{MemoryBytes: ptr(int64(64 << 20)), Pids: ptr(int64(12)), TmpBytes: ptr(int64(128 << 20)), FileSizeBytes: ptr(int64(64 << 20))}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Client.DeleteSandbox(context.Background(), sb.ID)
	exec := func(ctx context.Context, script string) *api.ExecuteResponse {
		r, err := d.Client.Exec(ctx, sb.ID, &api.SandboxExecRequest{Cmd: []string{"/bin/sh", "-c", script}})
		if err != nil {
			t.Fatalf("%v\n%s", err, d.Log())
		}
		return r
	}

	// Memory: 40 MB left in /tmp by one exec stays the sandbox's, so a
	// later exec that allocates 40 MB more passes the 64 MiB.
	if r := exec(ctx, `head -c 40000000 /dev/zero > /tmp/held && echo kept`); r.Status != runtime.StatusOK {
		t.Fatalf("writing /tmp: %s %q", r.Status, r.Run.Stderr)
	}
	if r := exec(ctx, `probe alloc 40`); r.Status != runtime.StatusMemoryLimit {
		t.Errorf("40 MB in /tmp and 40 MB allocated in a 64 MiB sandbox: %s (%q), want memory_limit", r.Status, r.Run.Stdout)
	}
	if r := exec(ctx, `rm /tmp/held && probe alloc 40`); r.Status != runtime.StatusOK || r.Run.Stdout != "allocated\n" {
		t.Errorf("40 MB once /tmp is empty: %s %q, want ok", r.Status, r.Run.Stdout)
	}

	// Pids: one exec holds 8 sleeps while another starts as many as it
	// can; together they get the sandbox's 12 tasks, not 12 each.
	const marker = "4.0137" // the holder's sleeps, told by their argv
	holder := make(chan *api.ExecuteResponse, 1)
	go func() {
		holder <- exec(ctx, `for i in 1 2 3 4 5 6 7 8; do sleep `+marker+` 2>/dev/null & done; wait`)
	}()
	testdaemon.WaitUntil(t, "the holder's sleeps", 20*time.Second, func() bool {
		return len(testdaemon.ProcessesWith(marker)) >= 8 // its shell's argv names it too
	})
	// Builtins only after the sleeps, which need no task: the count of
	// its processes is its entry, its shell and the sleeps that started.
	r, err := d.Client.Exec(ctx, sb.ID, &api.SandboxExecRequest{Cmd: []string{"/bin/sh", "-c",
		`for i in 1 2 3 4 5 6 7 8; do sleep 1 2>/dev/null & done; set -- /proc/[0-9]*; echo $#`}})
	<-holder
	// The exec's sandbox may not even start (its init needs a few tasks
	// for a moment): then a clear busy error, never an internal one.
	var apiErr *client.Error
	if errors.As(err, &apiErr) && apiErr.Code == api.CodeBusy && strings.Contains(apiErr.Message, "pids limit") {
		t.Logf("the second exec beside the holder's 10 tasks: refused: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("the second exec: %v\n%s", err, d.Log())
	}
	// busybox sh gives up at the first fork that fails (EAGAIN), else it
	// counts what started.
	got := strings.TrimSpace(r.Run.Stdout)
	n, err := strconv.Atoi(got)
	refused := r.Status == runtime.StatusRuntimeError && strings.Contains(r.Run.Stderr, "can't fork")
	if !refused && (err != nil || n >= 10) {
		t.Errorf("the second exec: %s, %q processes at once (its entry, its shell and 8 sleeps would be 10), stderr %q: "+
			"the holder's 10 tasks must leave it fewer of the sandbox's 12 pids", r.Status, got, r.Run.Stderr)
	}
	t.Logf("the second exec beside the holder's 10 tasks: %s, %q, %q", r.Status, got, r.Run.Stderr)
}
