package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/languages"
)

// roundTrips is how many exchanges the interactive row makes: issue 17's
// 100,000.
const roundTrips = 100000

// interactiveRuns is how many times each way is timed: a run on two CPUs
// takes most of a minute on a small VM.
const interactiveRuns = 3

// pingProgram sends a number and reads the next, until the interactor
// answers -1; pingInteractor reads the count from its input file (argv[1],
// testlib's order) and answers each number with the next.
const (
	pingProgram = `#include <stdio.h>
int main(void){long x=0,r;for(;;){printf("%ld\n",x);fflush(stdout);if(scanf("%ld",&r)!=1)return 1;if(r<0)return 0;x=r;}}
`
	pingInteractor = `#include <stdio.h>
int main(int argc,char**argv){FILE*in=argc>1?fopen(argv[1],"r"):0;long n,x;
if(!in||fscanf(in,"%ld",&n)!=1){fprintf(stderr,"no input\n");return 3;}
for(long i=0;i<n;i++){if(scanf("%ld",&x)!=1||x!=i){fprintf(stderr,"bad query at %ld\n",i);return 1;}
printf("%ld\n",i+1<n?i+1:-1);fflush(stdout);}
fprintf(stderr,"%ld round trips\n",n);return 0;}
`
)

// interactiveResult is the interactive row: medians of each way to run
// the two programs.
type interactiveResult struct {
	runs int
	// host is the two programs on the host joined by two pipes, wherever
	// the kernel puts them; hostSame and hostApart pinned to one CPU and
	// to two (taskset); sandboxd the request's wall time at the client,
	// and test the test's own (the program's run, wall_time_ms), with the
	// default limits (half a CPU each); oneCPU the request's with "cpus":
	// 1 for each side.
	host, hostSame, hostApart time.Duration
	sandboxd, test, oneCPU    time.Duration
	skipped                   string
}

// interactive times roundTrips exchanges between a C program and a C
// interactor: on the host through plain pipes, and through a daemon as an
// interactive test (a language-mode request with "interactor"), n times
// each, in turn.
func interactive(ctx context.Context, bin, gccRootfs, catalog, work string, n int) interactiveResult {
	r := interactiveResult{runs: n}
	if gccRootfs == "" {
		r.skipped = "not runnable here: no gcc image (-gcc-rootfs is empty)"
		return r
	}
	prog, inter, input, err := buildPing(work)
	if err != nil {
		r.skipped = "not runnable here: " + firstLine(err.Error())
		return r
	}
	catalog, _ = filepath.Abs(catalog)
	cat, err := languages.Load(catalog)
	if err != nil {
		r.skipped = "not runnable here: " + err.Error()
		return r
	}
	lang, err := cat.Lookup("c")
	if err != nil {
		r.skipped = "not runnable here: " + err.Error()
		return r
	}
	d, err := startDaemon(bin, gccRootfs, lang.Image, "", "--catalog", catalog, "--pool-size", "2")
	if err != nil {
		r.skipped = "not runnable here: " + firstLine(err.Error())
		return r
	}
	defer d.stop()
	req, req1 := pingRequest(lang.Main, nil), pingRequest(lang.Main, ptr(1.0))
	if _, err := runPing(ctx, d, req); err != nil { // fills the compile cache
		r.skipped = "not runnable here: " + firstLine(err.Error())
		return r
	}
	var host, same, apart, total, test, one []time.Duration
	for i := 0; i < n; i++ {
		for _, h := range []struct {
			to        *[]time.Duration
			pin, pin2 string
		}{{&host, "", ""}, {&same, "0", "0"}, {&apart, "0", "1"}} {
			took, err := pingOnHost(ctx, prog, inter, input, h.pin, h.pin2)
			if err != nil {
				r.skipped = "on the host: " + firstLine(err.Error())
				return r
			}
			*h.to = append(*h.to, took)
		}
		start := time.Now()
		wall, err := runPing(ctx, d, req)
		if err != nil {
			r.skipped = "failed during the run: " + firstLine(err.Error())
			return r
		}
		total, test = append(total, time.Since(start)), append(test, wall)
		start = time.Now()
		if _, err := runPing(ctx, d, req1); err != nil {
			r.skipped = "failed during the run: " + firstLine(err.Error())
			return r
		}
		one = append(one, time.Since(start))
	}
	r.host, r.hostSame, r.hostApart = pct(host, .5), pct(same, .5), pct(apart, .5)
	r.sandboxd, r.test, r.oneCPU = pct(total, .5), pct(test, .5), pct(one, .5)
	return r
}

// buildPing compiles the two programs for the host, with the host's gcc.
func buildPing(work string) (prog, inter, input string, err error) {
	dir := filepath.Join(work, "ping")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", "", err
	}
	for name, src := range map[string]string{"prog": pingProgram, "inter": pingInteractor} {
		c := filepath.Join(dir, name+".c")
		if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
			return "", "", "", err
		}
		if out, err := exec.Command("gcc", "-O2", "-o", filepath.Join(dir, name), c).CombinedOutput(); err != nil {
			return "", "", "", fmt.Errorf("gcc: %v: %s", err, out)
		}
	}
	input = filepath.Join(dir, "input")
	err = os.WriteFile(input, []byte(strconv.Itoa(roundTrips)+"\n"), 0o644)
	return filepath.Join(dir, "prog"), filepath.Join(dir, "inter"), input, err
}

// pingOnHost runs the two programs joined by two pipes, each on the CPUs
// of its taskset list ("" for none), and returns the wall time.
func pingOnHost(ctx context.Context, prog, inter, input, progCPUs, interCPUs string) (time.Duration, error) {
	pinned := func(cpus string, argv ...string) *exec.Cmd {
		if cpus != "" {
			argv = append([]string{"taskset", "-c", cpus}, argv...)
		}
		return exec.CommandContext(ctx, argv[0], argv[1:]...)
	}
	toInter, fromProg, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	toProg, fromInter, err := os.Pipe()
	if err != nil {
		toInter.Close()
		fromProg.Close()
		return 0, err
	}
	p := pinned(progCPUs, prog)
	p.Stdin, p.Stdout = toProg, fromProg
	i := pinned(interCPUs, inter, input, os.DevNull, input)
	var stderr strings.Builder
	i.Stdin, i.Stdout, i.Stderr = toInter, fromInter, &stderr
	start := time.Now()
	perr := p.Start()
	ierr := i.Start()
	for _, f := range []*os.File{toInter, fromProg, toProg, fromInter} {
		f.Close()
	}
	if perr == nil {
		perr = p.Wait()
	}
	if ierr == nil {
		ierr = i.Wait()
	}
	took := time.Since(start)
	if perr != nil || ierr != nil {
		return 0, fmt.Errorf("program: %v, interactor: %v %s", perr, ierr, stderr.String())
	}
	return took, nil
}

// pingRequest is the row's request; cpus, when set, is each side's.
func pingRequest(main string, cpus *float64) *api.ExecuteRequest {
	return &api.ExecuteRequest{Language: "c", Files: []api.File{{Name: main, Content: pingProgram}},
		Limits:           &api.Limits{WallTimeMS: ptr(int64(60000)), CPUTimeMS: ptr(int64(60000)), CPUs: cpus},
		InteractorLimits: &api.Limits{WallTimeMS: ptr(int64(60000)), CPUTimeMS: ptr(int64(60000)), CPUs: cpus},
		Interactor:       &api.Program{Language: "c", Files: []api.File{{Name: main, Content: pingInteractor}}},
		Tests:            []api.Test{{Stdin: strconv.Itoa(roundTrips) + "\n"}}}
}

// runPing sends req and returns its test's wall time; anything but
// accepted is an error.
func runPing(ctx context.Context, d *daemon, req *api.ExecuteRequest) (time.Duration, error) {
	resp, err := d.Client.ExecuteLanguage(ctx, req)
	if err != nil {
		return 0, err
	}
	if resp.Status != api.StatusAccepted || len(resp.Tests) != 1 || resp.Tests[0].Run == nil {
		why := ""
		if len(resp.Tests) == 1 {
			why = resp.Tests[0].Message
		} else if resp.Compile != nil && resp.Compile.Result != nil {
			why = firstLine(resp.Compile.Stderr)
		}
		return 0, fmt.Errorf("status %s %s", resp.Status, why)
	}
	return time.Duration(resp.Tests[0].Run.WallTimeMS * float64(time.Millisecond)), nil
}

func ptr[T any](v T) *T { return &v }

// interactiveText renders the row, with what it measures.
func interactiveText(r interactiveResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "An interactive test: a C program and a C interactor exchange %d numbers (each a line one way and the answer back), "+
		"in one language-mode request with `\"interactor\"` (the compile cached), through pipes passed into both sandboxes; "+
		"beside the same two programs (built by the host's gcc) joined by two pipes on the host, without placement, "+
		"on one CPU and on two (taskset). Medians over %d runs of each, in turn. The request's time is at the client; "+
		"the test's is the program's wall_time_ms. Each side needs about half a CPU for the exchange, which is the default "+
		"`cpus` of a run: the last row gives each side a whole one. Issue 17's target: within 2× of the host's plain pipes.\n\n", roundTrips, r.runs)
	b.WriteString("| way | wall ms | per round trip µs | × host |\n|---|---|---|---|\n")
	if r.skipped != "" {
		fmt.Fprintf(&b, "| interactive, %d round trips | %s | | |\n", roundTrips, r.skipped)
		return b.String()
	}
	row := func(name string, d time.Duration) {
		fmt.Fprintf(&b, "| %s | %.0f | %.1f | %.2f |\n", name, ms(d), float64(d.Microseconds())/roundTrips, float64(d)/float64(r.host))
	}
	row("host, plain pipes", r.host)
	row("host, one CPU", r.hostSame)
	row("host, two CPUs", r.hostApart)
	row("sandboxd, the request", r.sandboxd)
	row("sandboxd, the test", r.test)
	row("sandboxd, the request, `cpus` 1 each", r.oneCPU)
	return b.String()
}
