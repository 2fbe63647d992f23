package attacks_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
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
