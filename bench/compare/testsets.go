package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// Issue 17's set: 100 tests of 1 MiB inputs, run from a stored test set
// ("testset") and, for comparison, sent inline in the request's "tests".
const (
	setTests      = 100
	setInputBytes = 1 << 20
)

// countSource reads its whole input and prints how many bytes it read:
// every test's answer is its input's size, so a test passes only if its
// input reached the program whole.
const countSource = "#include <stdio.h>\nint main(void){static char b[65536];size_t n,t=0;" +
	"while((n=fread(b,1,sizeof b,stdin))>0)t+=n;printf(\"%zu\\n\",t);return 0;}\n"

// setFigures are one way of sending the tests: medians per request.
type setFigures struct {
	total, program time.Duration
	// sent is the request body's size; peakKiB the daemon's RSS
	// high-water mark after this way's requests.
	sent    int64
	peakKiB int64
}

type setResult struct {
	requests     int
	upload       time.Duration
	archiveBytes int64
	// small is a set of the same tests with inputs of 11 to 110 bytes: what a test
	// costs without the input's size.
	small, streamed, inlined setFigures
	skipped                  string
}

// testsetBench times requests that run the C program against the 100
// tests, from an uploaded set then inline, through a daemon of its own
// (max_body raised so that the inline request is accepted at all).
func testsetBench(ctx context.Context, bin, gccRootfs, catalog string, n int) setResult {
	r := setResult{requests: n}
	d, lang, skipped := cDaemon(bin, gccRootfs, catalog, "--max-body", "256MiB")
	if skipped != "" {
		r.skipped = skipped
		return r
	}
	defer d.stop()
	archive, tests := setArchive(setInputBytes)
	r.archiveBytes = int64(len(archive))
	start := time.Now()
	set, err := d.Client.CreateTestset(ctx, bytes.NewReader(archive))
	if err != nil {
		r.skipped = "uploading the set: " + firstLine(err.Error())
		return r
	}
	r.upload = time.Since(start)
	smallArchive, _ := setArchive(10)
	small, err := d.Client.CreateTestset(ctx, bytes.NewReader(smallArchive))
	if err != nil {
		r.skipped = "uploading the small set: " + firstLine(err.Error())
		return r
	}
	files := []api.File{{Name: lang.Main, Content: countSource}}
	for _, w := range []struct {
		req *api.ExecuteRequest
		out *setFigures
	}{
		{&api.ExecuteRequest{Language: "c", Files: files, Testset: small.ID}, &r.small},
		{&api.ExecuteRequest{Language: "c", Files: files, Testset: set.ID}, &r.streamed},
		{&api.ExecuteRequest{Language: "c", Files: files, Tests: tests}, &r.inlined},
	} {
		body, _ := json.Marshal(w.req)
		w.out.sent = int64(len(body))
		if err := timeSetRequests(ctx, d, w.req, n, w.out); err != nil {
			r.skipped = "failed during the run: " + firstLine(err.Error())
			return r
		}
		w.out.peakKiB = d.peakRSSKiB()
	}
	return r
}

// setArchive is a set of inputs of about size bytes as a tar, and the
// same tests for a request.
func setArchive(size int) ([]byte, []api.Test) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	var tests []api.Test
	add := func(name, body string) {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(body))
	}
	for i := 1; i <= setTests; i++ {
		in := strings.Repeat(string(rune('a'+i%26)), size+i) // sizes differ, so answers do
		want := fmt.Sprintf("%d\n", len(in))
		add(fmt.Sprintf("%d.in", i), in)
		add(fmt.Sprintf("%d.ans", i), want)
		tests = append(tests, api.Test{Stdin: in, ExpectedStdout: want})
	}
	_ = tw.Close()
	return b.Bytes(), tests
}

// timeSetRequests sends req once to fill the compile cache, then n times.
func timeSetRequests(ctx context.Context, d *daemon, req *api.ExecuteRequest, n int, out *setFigures) error {
	if _, _, err := runCTests(ctx, d, req); err != nil {
		return err
	}
	var totals, programs []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		cpu, _, err := runCTests(ctx, d, req)
		if err != nil {
			return err
		}
		totals, programs = append(totals, time.Since(start)), append(programs, cpu)
	}
	out.total, out.program = pct(totals, .5), pct(programs, .5)
	return nil
}

// testsetText renders the rows, with what they measure.
func testsetText(r setResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The per-test cost of a %d-test set of 1 MiB inputs (issue 17): the C program reads its whole input and prints its size, against %d tests whose inputs are 1 MiB each, "+
		"sent two ways: `\"testset\"`, a set uploaded once (`POST /v1/testsets`), whose inputs the daemon streams from its disk into each test's stdin; and inline, the same tests in the request's `tests` (`max_body` raised to 256 MiB for it). "+
		"The first row is a set of the same tests with inputs of 11 to 110 bytes: the difference to the second is what the 1 MiB input costs. "+
		"Medians over %d requests of each, after one that filled the compile cache; per test is the request's total over %d. Peak RSS is the daemon's high-water mark after that way's requests (in the rows' order).\n\n",
		setTests, setTests, r.requests, setTests)
	b.WriteString("| tests sent | request body | total ms | per test ms | program's CPU per test ms | (total − program's CPU) per test ms | daemon peak RSS MiB |\n|---|---|---|---|---|---|---|\n")
	if r.skipped != "" {
		fmt.Fprintf(&b, "| %d × 1 MiB | %s | | | | | |\n", setTests, r.skipped)
		return b.String()
	}
	for _, row := range []struct {
		name string
		f    setFigures
	}{{"`testset` of 11–110-byte inputs", r.small}, {"`testset` (streamed from disk)", r.streamed}, {"inline `tests`", r.inlined}} {
		per := func(d time.Duration) float64 { return ms(d) / setTests }
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.2f | %.2f | %.2f | %.0f |\n", row.name, sizeText(row.f.sent), ms(row.f.total),
			per(row.f.total), per(row.f.program), per(row.f.total-row.f.program), float64(row.f.peakKiB)/1024)
	}
	fmt.Fprintf(&b, "\nThe upload, once per set: %s of tar in %.0f ms.\n", sizeText(r.archiveBytes), ms(r.upload))
	return b.String()
}

func sizeText(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}
