package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/languages"
)

// cTestCount is how many tests the C request carries: issue 16's judge
// runs a compiled program against 100 tests in one request.
const cTestCount = 100

// cSource reads a number and prints it doubled: a test's run is little
// more than the program's start, so what the request costs beyond the
// program's own CPU is sandboxd's.
const cSource = "#include <stdio.h>\nint main(void){long long x;if(scanf(\"%lld\",&x)!=1)return 1;printf(\"%lld\\n\",2*x);return 0;}\n"

// cTestsResult is the 100-test C row: medians over its requests.
type cTestsResult struct {
	requests int
	// total is the request's wall time as the client sees it; program the
	// CPU time of the program summed over the tests (their cpu_time_ms);
	// overhead is total minus program, per request.
	total, program, overhead time.Duration
	cached                   int // requests whose compile came from the cache
	skipped                  string
}

// cTests times n language-mode requests, each a C program against
// cTestCount tests, through a daemon of its own with the catalog and the
// gcc image, after one request that fills the compile cache.
func cTests(ctx context.Context, bin, gccRootfs, catalog string, n int) cTestsResult {
	r := cTestsResult{requests: n}
	d, lang, skipped := cDaemon(bin, gccRootfs, catalog)
	if skipped != "" {
		r.skipped = skipped
		return r
	}
	defer d.stop()
	req := cTestsRequest(lang.Main)
	if _, _, err := runCTests(ctx, d, req); err != nil {
		r.skipped = "not runnable here: " + firstLine(err.Error())
		return r
	}
	var totals, programs, overheads []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		cpu, cached, err := runCTests(ctx, d, req)
		wall := time.Since(start)
		if err != nil {
			r.skipped = "failed during the run: " + firstLine(err.Error())
			return r
		}
		if cached {
			r.cached++
		}
		totals, programs, overheads = append(totals, wall), append(programs, cpu), append(overheads, wall-cpu)
	}
	r.total, r.program, r.overhead = pct(totals, .5), pct(programs, .5), pct(overheads, .5)
	return r
}

// cDaemon starts a daemon of its own with the catalog and the gcc image,
// and finds the catalog's C; skipped says why it could not.
func cDaemon(bin, gccRootfs, catalog string, extra ...string) (d *daemon, lang *languages.Language, skipped string) {
	if gccRootfs == "" {
		return nil, nil, "not runnable here: no gcc image (-gcc-rootfs is empty; `make bench` passes the one `make images` builds in $SANDBOXD_IMAGE_CACHE)"
	}
	if _, err := os.Stat(gccRootfs); err != nil {
		return nil, nil, "not runnable here: gcc image: " + err.Error()
	}
	catalog, _ = filepath.Abs(catalog)
	cat, err := languages.Load(catalog)
	if err != nil {
		return nil, nil, "not runnable here: " + err.Error()
	}
	if lang, err = cat.Lookup("c"); err != nil {
		return nil, nil, "not runnable here: " + err.Error()
	}
	args := append([]string{"--catalog", catalog, "--pool-size", strconv.Itoa(benchPoolSize)}, extra...)
	if d, err = startDaemon(bin, gccRootfs, lang.Image, "", args...); err != nil {
		return nil, nil, "not runnable here: " + firstLine(err.Error())
	}
	return d, lang, ""
}

func cTestsRequest(main string) *api.ExecuteRequest {
	req := &api.ExecuteRequest{Language: "c", Files: []api.File{{Name: main, Content: cSource}}}
	for i := 1; i <= cTestCount; i++ {
		req.Tests = append(req.Tests, api.Test{Stdin: fmt.Sprintf("%d\n", i), ExpectedStdout: fmt.Sprintf("%d\n", 2*i)})
	}
	return req
}

// runCTests sends req and returns the program's CPU time summed over the
// tests, and whether the compile came from the cache. Anything but every
// test accepted (all tests of its set, with "testset") is an error: the
// figures would not be of the same work.
func runCTests(ctx context.Context, d *daemon, req *api.ExecuteRequest) (time.Duration, bool, error) {
	want := len(req.Tests)
	if req.Testset != "" {
		want = setTests
	}
	resp, err := d.Client.ExecuteLanguage(ctx, req)
	if err != nil {
		return 0, false, err
	}
	if resp.Status != api.StatusAccepted || len(resp.Tests) != want {
		why := ""
		if resp.Compile != nil && resp.Compile.Result != nil {
			why = firstLine(resp.Compile.Stderr)
		}
		return 0, false, fmt.Errorf("status %s, %d results for %d tests %v %s", resp.Status, len(resp.Tests), want, resp.Summary, why)
	}
	var cpuMS float64
	for i, t := range resp.Tests {
		if t.Run == nil {
			return 0, false, fmt.Errorf("test %d: accepted without a run", i+1)
		}
		cpuMS += t.Run.CPUTimeMS
	}
	cached := resp.Compile != nil && resp.Compile.Cached
	return time.Duration(cpuMS * float64(time.Millisecond)), cached, nil
}

// cTestsText renders the row, with what it measures.
func cTestsText(r cTestsResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "A compiled C program against %d tests in one language-mode request (`\"language\": \"c\"` with a `tests` array; the program reads a number and prints it doubled). "+
		"Medians over %d requests, sent one after another after one that filled the compile cache, to a daemon of its own (--pool-size %d). "+
		"Total is the request's wall time at the client; the program's CPU is the sum of the tests' `cpu_time_ms` (each the CPU of every task of that test's sandbox from the program's start, docs/result.md); the difference is taken per request.\n\n",
		cTestCount, r.requests, benchPoolSize)
	b.WriteString("| request | total ms | program's CPU ms | total − program's CPU ms | compile cached |\n|---|---|---|---|---|\n")
	if r.skipped != "" {
		fmt.Fprintf(&b, "| C, %d tests | %s | | | |\n", cTestCount, r.skipped)
		return b.String()
	}
	fmt.Fprintf(&b, "| C, %d tests | %.1f | %.1f | %.1f | %d of %d |\n", cTestCount, ms(r.total), ms(r.program), ms(r.overhead), r.cached, r.requests)
	return b.String()
}
