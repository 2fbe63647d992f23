package attacks_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// The attacks of hardening round 2 (issue 19): each broke a guarantee on
// the engine before its fix.

// hostIDBase is the first host uid that the user namespace of process
// procDir maps, or "" for a process in the host's own namespace.
func hostIDBase(procDir string) string {
	m, err := os.ReadFile(filepath.Join(procDir, "uid_map"))
	f := strings.Fields(string(m))
	if err != nil || len(f) != 3 || f[1] == "0" {
		return ""
	}
	return f[1]
}

// slotOwners maps each host id base in use to the sandboxes using it, for
// every sandbox process under the cgroup parents given.
func slotOwners(parents ...string) map[string]map[string]bool {
	owners := map[string]map[string]bool{}
	for _, parent := range parents {
		for _, p := range testdaemon.ProcessesOfSandboxes(parent) {
			dir, _, _ := strings.Cut(p, ":")
			cg, _ := os.ReadFile(filepath.Join(dir, "cgroup"))
			base, id := hostIDBase(dir), testdaemon.SandboxID(string(cg))
			if base == "" || id == "" {
				continue
			}
			if owners[base] == nil {
				owners[base] = map[string]bool{}
			}
			owners[base][parent+"/"+id] = true
		}
	}
	return owners
}

// TestHostIDSlotsAreHostWide: two daemons with their own state and run
// dirs, and a `sandboxd exec` with a third run dir, all over the same id
// range, never map the same host ids at once. (The slot locks used to live
// under each run dir: all three took slot 0.)
func TestHostIDSlotsAreHostWide(t *testing.T) {
	a, b := testdaemon.Start(t, "--pool-size", "2"), testdaemon.Start(t, "--pool-size", "2")
	for _, d := range []*testdaemon.Daemon{a, b} {
		d.ImportDir("busybox", testRootfs)
		// The pool parks sandboxes of the images in use.
		if _, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}}); err != nil {
			t.Fatal(err)
		}
		testdaemon.WaitUntil(t, "parked sandboxes", 20*time.Second, func() bool {
			return len(testdaemon.ProcessesOfSandboxes(d.CgroupParent)) >= 1
		})
	}
	parent := "sandboxd-attacks-exec-" + randHex(4)
	defer testdaemon.RemoveCgroupParent(parent)
	cmd := exec.Command(sandboxdBin, "exec", "--run-dir", t.TempDir(), "--cgroup-parent", parent,
		"--rootfs", testRootfs, "--", "/bin/sleep", "3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	testdaemon.WaitUntil(t, "the exec's sandbox", 10*time.Second, func() bool {
		return len(slotOwners(parent)) == 1
	})
	owners := slotOwners(a.CgroupParent, b.CgroupParent, parent)
	sandboxes := 0
	for base, ids := range owners {
		sandboxes += len(ids)
		if len(ids) > 1 {
			t.Errorf("host ids from %s are mapped by %d sandboxes at once: %v", base, len(ids), ids)
		}
	}
	if sandboxes < 3 {
		t.Errorf("saw %d sandboxes, want the two daemons' parked ones and the exec's: %v", sandboxes, owners)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("sandboxd exec: %v", err)
	}
}

// counterShare is what counters (testdata/attacks/counters.c) took.
type counterShare struct{ instances, watches, signals, queues int }

func parseShare(t *testing.T, who, out string) counterShare {
	t.Helper()
	var s counterShare
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "inotify_instances=%d inotify_watches=%d sigpending=%d mqueues=%d",
		&s.instances, &s.watches, &s.signals, &s.queues); err != nil {
		t.Fatalf("%s: %q: %v", who, out, err)
	}
	return s
}

// TestPerUserKernelCountersHaveBudgets: a sandbox takes all it can of the
// counters the kernel keeps per user (inotify instances and watches, queued
// signals, message-queue bytes) and holds them; a second sandbox then still
// gets a full budget, and host root still gets as much. Before the budgets,
// all of it was charged to host root: the first sandbox took root's 128
// inotify instances and 800 KiB of queues, and the others got none.
func TestPerUserKernelCountersHaveBudgets(t *testing.T) {
	d := testdaemon.Start(t, "--concurrency", "4")
	d.ImportDir("busybox", testRootfs)
	budget := counterShare{runtime.InotifyInstancesBudget, runtime.InotifyWatchesBudget, runtime.SigPendingBudget,
		runtime.MsgQueueBudget / (17 << 10)} // a queue: 16 KiB of messages and the kernel's overhead, under 1 KiB
	run := func(hold string) (*api.ExecuteResponse, error) {
		return d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox",
			Cmd:    []string{"counters", "/work/cnt", hold, "100000", "1000000", "1000000", "100000"},
			Limits: &api.Limits{WallTimeMS: ptr(int64(30000))}})
	}
	type answer struct {
		r   *api.ExecuteResponse
		err error
	}
	first := make(chan answer, 1)
	go func() { r, err := run("6000"); first <- answer{r, err} }()
	testdaemon.WaitUntil(t, "the first sandbox to take its share", 20*time.Second, func() bool {
		return len(d.WorkGlob("cnt/taken")) == 1
	})
	second, err := run("0")
	if err != nil || second.Status != runtime.StatusOK {
		t.Fatalf("second sandbox: %v %s", err, describe(second, err))
	}
	host, err := exec.Command(filepath.Join(testRootfs, "usr/local/bin/counters"), t.TempDir(), "0",
		fmt.Sprint(budget.instances), fmt.Sprint(budget.watches), fmt.Sprint(budget.signals), fmt.Sprint(budget.queues)).Output()
	if err != nil {
		t.Fatalf("host root's share: %v", err)
	}
	a := <-first
	if a.err != nil || a.r.Status != runtime.StatusOK {
		t.Fatalf("first sandbox: %s", describe(a.r, a.err))
	}
	got := map[string]counterShare{"first sandbox": parseShare(t, "first", a.r.Run.Stdout),
		"second sandbox": parseShare(t, "second", second.Run.Stdout), "host root": parseShare(t, "host", string(host))}
	t.Logf("budget %+v, took %+v", budget, got)
	for who, s := range got {
		if s.instances > budget.instances || s.watches > budget.watches || s.signals > budget.signals || s.queues > budget.queues {
			t.Errorf("%s took %+v, more than the budget %+v", who, s, budget)
		}
		if who != "first sandbox" && s != budget {
			t.Errorf("%s got %+v while the first sandbox held its share, want the whole budget %+v", who, s, budget)
		}
	}
}

// TestTCPBuffersCountAgainstMemory: a 64 MiB sandbox fills loopback TCP
// buffers that it never reads. On cgroup v1 the kernel counts them apart
// from the memory usage, and only under a TCP limit of their own: without
// one, this queued 470 MB here, with the cgroup's usage at 3 MiB.
func TestTCPBuffersCountAgainstMemory(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	const limit = 64 << 20
	r, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox",
		Cmd: []string{"tcpbuf", "120"}, Limits: &api.Limits{MemoryBytes: ptr(int64(limit))}})
	if err != nil {
		t.Fatal(err)
	}
	var queued, pairs int64
	if _, err := fmt.Sscanf(r.Run.Stdout, "queued=%d pairs=%d", &queued, &pairs); err != nil {
		// Killed for memory while filling them is a held limit too.
		if r.Status == runtime.StatusMemoryLimit {
			return
		}
		t.Fatalf("%s: %v", describe(r, err), err)
	}
	t.Logf("queued %d bytes over %d connections, memory limit %d", queued, pairs, limit)
	if queued > limit*5/4 {
		t.Errorf("a %d-byte sandbox queued %d bytes of TCP buffers", limit, queued)
	}
}

// hostLocksOf counts the byte-range locks that host /proc/locks lists for
// process pid.
func hostLocksOf(pid string) int {
	n := 0
	for _, l := range lines(readFile("/proc/locks")) {
		f := strings.Fields(l)
		if len(f) > 5 && f[4] == pid {
			n++
		}
	}
	return n
}

// TestByteRangeLocksAreNotKernelMemory: locks are kernel memory that no
// cgroup counts, without a cap of their own. A sandbox taking 20,000
// byte-range locks used to hold 20,000 kernel lock objects (800,000 took
// 146 MiB of slab); now the filter answers those commands with success
// and the kernel keeps none (see seccomp/locks.go).
func TestByteRangeLocksAreNotKernelMemory(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	marker := "locks-" + randHex(4)
	done := make(chan *api.ExecuteResponse, 1)
	go func() {
		r, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox",
			Cmd: []string{"attack", "fcntlmany", "/work/f", "20000", "2000", marker}})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	testdaemon.WaitUntil(t, "the locks to be taken", 20*time.Second, func() bool {
		return len(d.WorkGlob("f.taken")) == 1
	})
	procs := testdaemon.ProcessesWith(marker)
	if len(procs) != 1 {
		t.Fatalf("want the one attack process, found %v", procs)
	}
	pid := strings.TrimPrefix(strings.SplitN(procs[0], ":", 2)[0], "/proc/")
	held := hostLocksOf(pid)
	r := <-done
	if r == nil {
		return
	}
	t.Logf("the sandbox saw %q; the kernel held %d locks for it", strings.TrimSpace(r.Run.Stdout), held)
	if r.Status != runtime.StatusOK || strings.TrimSpace(r.Run.Stdout) != "locked=20000" {
		t.Errorf("the program's locks should succeed: %s", describe(r, nil))
	}
	if held > 0 {
		t.Errorf("the kernel holds %d byte-range locks for one sandbox process", held)
	}
}

// TestLockingStillWorksInside: what programs use locks for keeps working:
// flock(2) excludes another process of the same sandbox, a byte-range
// lock succeeds, F_GETLK answers.
func TestLockingStillWorksInside(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	r, err := d.Client.Execute(context.Background(), &api.ExecuteRequest{Image: "busybox",
		Cmd: sh(`echo x > /work/f; attack lockhold /work/f 1500 & sleep 0.5; attack locktry /work/f; attack fcntlhold /work/f 0; attack fcntltry /work/f; wait`)})
	if err != nil {
		t.Fatal(err)
	}
	want := "flock=OK\nflock=EWOULDBLOCK\nfcntl_rdlck=OK\ngetlk=UNLOCKED\n"
	if r.Status != runtime.StatusOK || r.Run.Stdout != want {
		t.Errorf("got %s, want stdout %q", describe(r, nil), want)
	}
}

// tarEntry is one entry of a test tarball: a regular file holds body.
type tarEntry struct {
	hdr  tar.Header
	body string
}

func regular(name, body string) tarEntry {
	return tarEntry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, body}
}

func linkEntry(typ byte, name, to string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: typ, Linkname: to, Mode: 0o777}}
}

// tarOf builds an uncompressed tar of the entries, in order.
func tarOf(t *testing.T, ents ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		e.hdr.Size = int64(len(e.body))
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImportErrorsNameNoHostPath: malformed archives are refused with
// messages that name entries as the image has them, never the daemon's
// state directory. (They used to carry the build directory's host path:
// `cannot create subdirectories in "/…/state/images/tmp/build-…/rootfs/x"`.)
func TestImportErrorsNameNoHostPath(t *testing.T) {
	d := testdaemon.Start(t)
	const missing = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	index := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` +
		missing + `","size":10}]}`
	for _, tc := range []struct {
		name, want string
		tar        []byte
	}{
		{"file where a directory is expected", `"/x"`, tarOf(t, regular("x", "f"), regular("x/y", "z"))},
		{"symlink loop", "/la", tarOf(t, linkEntry(tar.TypeSymlink, "la", "la"), regular("la/x", "z"))},
		{"hard link out of the image", "/etc", tarOf(t, linkEntry(tar.TypeLink, "p", "/etc/passwd"))},
		{"OCI layout without its blobs", "blobs/sha256", tarOf(t,
			regular("oci-layout", `{"imageLayoutVersion":"1.0.0"}`), regular("index.json", index))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Client.Import(context.Background(), bytes.NewReader(tc.tar), "bad:1")
			var aerr *client.Error
			if !errors.As(err, &aerr) || aerr.Code != api.CodeInvalidRequest {
				t.Fatalf("import: %v, want invalid_request", err)
			}
			t.Logf("refused: %s", aerr.Message)
			if strings.Contains(aerr.Message, d.Dir) || strings.Contains(aerr.Message, "/tmp/") {
				t.Errorf("message names a host path: %q", aerr.Message)
			}
			if !strings.Contains(aerr.Message, tc.want) {
				t.Errorf("message %q does not name %q", aerr.Message, tc.want)
			}
		})
	}
}
