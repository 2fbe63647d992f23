package attacks_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// loud prints 500 KB on stdout and 500 KB on stderr, and leaves a 64 KB
// file to collect: about 1 MiB per test.
const loud = `yes 0123456789abcdef | head -c 500000
yes 0123456789abcdef | head -c 500000 >&2
yes 0123456789abcdef | head -c 64000 > out.txt
`

// vmKiB reads a "VmXXX:   N kB" line of a process's status.
func vmKiB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in status of %d", field, pid)
	return 0
}

func loudRequest(tests int) *api.ExecuteRequest {
	req := &api.ExecuteRequest{Language: "shrun", Files: []api.File{{Name: "main.sh", Content: loud}},
		Collect: []string{"out.txt"}, CollectBytes: ptr(int64(2 << 20))}
	for i := 0; i < tests; i++ {
		req.Tests = append(req.Tests, api.Test{Stdin: strconv.Itoa(i), ExpectedStdout: "x"})
	}
	return req
}

// checkLoud: every test ran and was judged, and what the answer kept of
// outputs and files is within the daemon's max_response_bytes.
func checkLoud(r *api.LanguageResponse, tests int, budget int64) error {
	if len(r.Tests) != tests {
		return fmt.Errorf("%d test results, want %d", len(r.Tests), tests)
	}
	var kept int64
	dropped := 0
	for i, tr := range r.Tests {
		if tr.Status != "wrong_answer" {
			return fmt.Errorf("test %d: %s, want wrong_answer", i, tr.Status)
		}
		if tr.OutputDropped {
			dropped++
			continue
		}
		kept += int64(len(tr.Run.Stdout) + len(tr.Run.Stderr))
		for _, f := range tr.Run.Files {
			kept += int64(len(f.Content))
		}
	}
	if kept > budget || dropped == 0 {
		return fmt.Errorf("kept %d bytes of outputs (budget %d), dropped %d tests", kept, budget, dropped)
	}
	return nil
}

// TestManyLoudTestsKeepTheDaemonSmall: a language request of 300 tests,
// each printing 1 MiB on stdout and on stderr and leaving a 1 MiB file to
// collect, then 20 such requests at once. The daemon keeps at most
// max_response_bytes of outputs per request, so its peak RSS stays under
// the bound the README states. (Every test result used to keep both
// streams: an 11.5 KB request of 300 tests took the daemon from 33 MiB to
// 3.6 GiB.)
func TestManyLoudTestsKeepTheDaemonSmall(t *testing.T) {
	catalog := filepath.Join(t.TempDir(), "catalog.toml")
	if err := os.WriteFile(catalog, []byte(testCatalog), 0o644); err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t, "--catalog", catalog)
	d.ImportDir("busybox", testRootfs)
	const budget = 16 << 20 // max_response_bytes' default
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	r, err := d.Client.ExecuteLanguage(ctx, loudRequest(300))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkLoud(r, 300, budget); err != nil {
		t.Fatal(err)
	}
	t.Logf("one request of 300 tests: %v, daemon peak RSS %d MiB", time.Since(start).Round(time.Millisecond), vmKiB(t, d.Pid(), "VmHWM")>>10)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := d.Client.ExecuteLanguage(ctx, loudRequest(300))
			if err == nil {
				err = checkLoud(r, 300, budget)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	peak := vmKiB(t, d.Pid(), "VmHWM") >> 10
	t.Logf("then 20 at once: %v in all, daemon peak RSS %d MiB", time.Since(start).Round(time.Millisecond), peak)
	if peak > maxDaemonMiB {
		t.Errorf("daemon peak RSS %d MiB, over the README's bound of %d MiB", peak, maxDaemonMiB)
	}
}

// maxDaemonMiB is the README's bound on the daemon's peak RSS through
// TestManyLoudTestsKeepTheDaemonSmall, with the default limits.
const maxDaemonMiB = 512

// TestBadInputIsNeverInternal: input that used to make the daemon answer
// 500 internal_error (the files did not fit in /work, a compile's output
// did not fit in the run's) is the caller's: 400 or 413, with a message
// that names the file and not the host path. A compile that leaves more
// than max_artifact_bytes in /work is refused without the daemon reading
// it (a 207-byte source that .incbin's a large file used to cost the
// daemon 240 MB of RSS and 100 MB of cache).
func TestBadInputIsNeverInternal(t *testing.T) {
	catalog := filepath.Join(t.TempDir(), "catalog.toml")
	if err := os.WriteFile(catalog, []byte(testCatalog), 0o644); err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t, "--catalog", catalog, "--max-body", "64MiB")
	d.ImportDir("busybox", testRootfs)
	many := make([]api.File, 20000)
	for i := range many {
		many[i] = api.File{Name: fmt.Sprintf("f%d", i), Content: "x"}
	}
	work := func(n int64) *api.Limits { return &api.Limits{WorkBytes: ptr(n)} }
	build := func(script string) []api.File { return []api.File{{Name: "build.sh", Content: script}} }
	for _, tc := range []struct {
		name, code, says string
		req              api.ExecuteRequest
		unread           bool // what the program left must not be read
	}{
		{"a 256-byte file name", api.CodeInvalidRequest, "longer than 255 bytes",
			api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}, Files: []api.File{{Name: strings.Repeat("a", 256)}}}, false},
		{"20,000 files", api.CodeRequestTooLarge, `do not fit in /work (work_bytes): "f16383"`,
			api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}, Files: many}, false},
		{"a file larger than work_bytes", api.CodeRequestTooLarge, `"big" did not fit`,
			api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}, Limits: work(4 << 20),
				Files: []api.File{{Name: "big", Content: strings.Repeat("x", 5<<20)}}}, false},
		{"a compile's output larger than the run's /work", api.CodeRequestTooLarge, "compile's output does not fit in the run's /work",
			api.ExecuteRequest{Language: "shbuild", Limits: work(8 << 20), Files: build("head -c 30000000 /dev/zero > big")}, false},
		{"a compile's output over max_artifact_bytes", api.CodeRequestTooLarge, "max_artifact_bytes",
			api.ExecuteRequest{Language: "shbuild", Limits: work(256 << 20),
				CompileLimits: &api.Limits{WorkBytes: ptr(int64(256 << 20)), MemoryBytes: ptr(int64(384 << 20))},
				Files:         build("head -c 100000000 /dev/zero > big")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := vmKiB(t, d.Pid(), "VmHWM")
			_, err := d.Client.Execute(context.Background(), &tc.req)
			var aerr *client.Error
			if !errors.As(err, &aerr) || aerr.Code != tc.code || !strings.Contains(aerr.Message, tc.says) {
				t.Fatalf("got %v, want %s saying %q", err, tc.code, tc.says)
			}
			if strings.Contains(aerr.Message, d.Dir) {
				t.Errorf("the message names a host path: %s", aerr.Message)
			}
			// The refused output was never read: the daemon's peak
			// grew by much less than the 100 MB the compile left.
			if grown := (vmKiB(t, d.Pid(), "VmHWM") - before) >> 10; tc.unread && grown > 32 {
				t.Errorf("the daemon's peak RSS grew by %d MiB", grown)
			}
		})
	}
	if n, ok := metric(d, "sandboxd_internal_errors_total"); !ok || n != 0 {
		t.Errorf("sandboxd_internal_errors_total = %v (found %v), want 0\n%s", n, ok, d.Log())
	}
}

// TestCompileOutputIsNotHeldInMemory: a compile's output goes from the
// compile's /work to each test's /work through files on disk (the
// daemon's <state>/artifacts and the compile cache), never whole in the
// daemon's memory. A compile that leaves 60 MB, under max_artifact_bytes
// (64 MiB), run for 3 tests, used to raise the daemon's peak RSS by about
// as much; now it grows by much less, and so does a cached hit.
func TestCompileOutputIsNotHeldInMemory(t *testing.T) {
	catalog := filepath.Join(t.TempDir(), "catalog.toml")
	if err := os.WriteFile(catalog, []byte(testCatalog), 0o644); err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t, "--catalog", catalog)
	d.ImportDir("busybox", testRootfs)
	big := func(script string) *api.ExecuteRequest {
		l := &api.Limits{WorkBytes: ptr(int64(256 << 20)), MemoryBytes: ptr(int64(384 << 20))}
		req := &api.ExecuteRequest{Language: "shbuild", Files: []api.File{{Name: "build.sh", Content: script}},
			Limits: l, CompileLimits: l}
		for range 3 {
			req.Tests = append(req.Tests, api.Test{ExpectedStdout: "not this"})
		}
		return req
	}
	// A small compile first: what any language request costs the daemon
	// (version detection, buffers) is in the baseline.
	if _, err := d.Client.ExecuteLanguage(context.Background(), big("echo small > out")); err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
	for _, name := range []string{"compiled", "from the compile cache"} {
		t.Run(name, func(t *testing.T) {
			before := vmKiB(t, d.Pid(), "VmHWM")
			r, err := d.Client.ExecuteLanguage(context.Background(), big("head -c 60000000 /dev/zero > big"))
			if err != nil {
				t.Fatalf("%v\n%s", err, d.Log())
			}
			if r.Status != api.StatusWrongAnswer || len(r.Tests) != 3 || r.Compile == nil || r.Compile.Cached != (name != "compiled") {
				t.Fatalf("status %s, %d tests, compile %+v", r.Status, len(r.Tests), r.Compile)
			}
			for i, tr := range r.Tests {
				if tr.Run == nil || tr.Run.Status != api.StatusOK {
					t.Fatalf("test %d: %+v", i, tr.Run)
				}
			}
			grown := (vmKiB(t, d.Pid(), "VmHWM") - before) >> 10
			t.Logf("the daemon's peak RSS grew by %d MiB", grown)
			if grown >= 32 {
				t.Errorf("the daemon's peak RSS grew by %d MiB for a 60 MB compile output", grown)
			}
		})
	}
	if left, err := os.ReadDir(filepath.Join(d.StateDir, "artifacts")); err != nil || len(left) != 0 {
		t.Errorf("left in the artifact directory: %v, %v", left, err)
	}
}
