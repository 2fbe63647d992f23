package languages

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/execution"
	"github.com/sandboxd/sandboxd/rootfs"
)

func TestReadVerdict(t *testing.T) {
	sig := "SIGSEGV"
	tests := []struct {
		res         api.Result
		status, msg string
		frac        float64
	}{
		{api.Result{Status: api.StatusOK, Stderr: "ok 3 numbers\nmore"}, StatusAccepted, "ok 3 numbers", 0},
		{api.Result{Status: api.StatusRuntimeError, ExitCode: 1, Stderr: "wrong answer 1st differs\r\n"}, StatusWrongAnswer, "wrong answer 1st differs", 0},
		{api.Result{Status: api.StatusRuntimeError, ExitCode: 2, Stderr: "wrong output format"}, StatusPresentationError, "wrong output format", 0},
		{api.Result{Status: api.StatusRuntimeError, ExitCode: 3, Stderr: "FAIL answer file broken"}, StatusCheckerError, "FAIL answer file broken", 0},
		{api.Result{Status: api.StatusRuntimeError, ExitCode: 7, Stderr: "points 0.25 close"}, StatusPartial, "points 0.25 close", 0.25},
		{api.Result{Status: api.StatusRuntimeError, ExitCode: 7, Stderr: "0.5"}, StatusPartial, "0.5", 0.5},
		{api.Result{Status: api.StatusRuntimeError, ExitCode: 7, Stderr: "points 1.5"}, StatusCheckerError, "", 0},
		{api.Result{Status: api.StatusRuntimeError, ExitCode: 7, Stderr: "half"}, StatusCheckerError, "", 0},
		{api.Result{Status: api.StatusRuntimeError, ExitCode: 4, Stderr: "dirt"}, StatusCheckerError, "", 0},
		{api.Result{Status: api.StatusRuntimeError, ExitCode: 139, Signal: &sig}, StatusCheckerError, "", 0},
		{api.Result{Status: api.StatusTimeLimit}, StatusCheckerError, "", 0},
		{api.Result{Status: api.StatusMemoryLimit, ExitCode: 0}, StatusCheckerError, "", 0},
		{api.Result{Status: api.StatusOK, Stderr: "ok " + strings.Repeat("x", 2000)}, StatusAccepted, "ok " + strings.Repeat("x", maxMessageBytes-3), 0},
		{api.Result{Status: api.StatusOK, Stderr: "b2sgZmluZQo=", StderrEncoding: "base64"}, StatusAccepted, "ok fine", 0},
	}
	for _, tt := range tests {
		status, msg := readVerdict(&tt.res, "checker")
		if status != tt.status || (tt.msg != "" && msg != tt.msg) {
			t.Errorf("readVerdict(%+v) = %q, %q; want %q, %q", tt.res, status, msg, tt.status, tt.msg)
		}
		if frac, _ := pointsFraction(msg); status == StatusPartial && frac != tt.frac {
			t.Errorf("readVerdict(%+v): fraction %v, want %v", tt.res, frac, tt.frac)
		}
	}
}

// echoRunner runs programs as "print stdin" and the checker as "exit with
// the code the output names, and say so": enough to follow the plan.
type echoRunner struct {
	mu     sync.Mutex
	stages []execution.Stage
}

func (e *echoRunner) RunStage(_ context.Context, s execution.Stage) (*execution.Output, error) {
	e.mu.Lock()
	e.stages = append(e.stages, s)
	e.mu.Unlock()
	if s.CollectWork {
		return &execution.Output{Result: &api.Result{Status: api.StatusOK},
			Work: append(s.Files, rootfs.File{Name: "a.out", Data: []byte("bin"), Mode: 0o755})}, nil
	}
	if !isCheck(s) {
		return &execution.Output{Result: &api.Result{Status: api.StatusOK, Stdout: string(s.Stdin)}}, nil
	}
	var output string
	for _, f := range s.Files {
		if f.Name == "output" {
			output = string(f.Data)
		}
	}
	first, rest, _ := strings.Cut(output, " ")
	code, _ := strconv.Atoi(first)
	status := api.StatusOK
	if code != 0 {
		status = api.StatusRuntimeError
	}
	return &execution.Output{Result: &api.Result{Status: status, ExitCode: code, Stderr: rest}}, nil
}

func isCheck(s execution.Stage) bool {
	return len(s.Args) >= 3 && slices.Equal(s.Args[len(s.Args)-3:], checkerFiles)
}

func TestCheckerJudgesEachTest(t *testing.T) {
	r := &echoRunner{}
	checker := &Aux{Language: compiled, Files: []rootfs.File{{Name: "check.c"}}}
	req := &Request{Language: compiled, Files: []rootfs.File{{Name: "main.c"}}, Checker: checker, Tests: []Test{
		{Stdin: "0 fine", ExpectedStdout: "ans0", Points: 1},
		{Stdin: "1 differs", ExpectedStdout: "ans1", Points: 1},
		{Stdin: "2 format", Points: 1},
		{Stdin: "7 points 0.5", Points: 4},
		{Stdin: "3 broken", Points: 1},
	}, Scored: true}
	out, err := Execute(context.Background(), r, mapCache{}, req)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{StatusAccepted, StatusWrongAnswer, StatusPresentationError, StatusPartial, StatusCheckerError}
	for i, tr := range out.Tests {
		_, msg, _ := strings.Cut(req.Tests[i].Stdin, " ")
		if tr.Status != want[i] || tr.Checker == nil || tr.Message != msg {
			t.Errorf("test %d: %q (message %q, checker %v), want %q", i, tr.Status, tr.Message, tr.Checker, want[i])
		}
	}
	if out.Status != StatusCheckerError || out.CheckerCompile == nil || *out.Score != 3 || *out.MaxScore != 8 {
		t.Errorf("status %q, checker compile %v, score %v/%v; want checker_error, a compile, 3/8", out.Status, out.CheckerCompile, *out.Score, *out.MaxScore)
	}
	var compiles, checks int
	for _, s := range r.stages {
		switch {
		case s.CollectWork:
			compiles++
		case isCheck(s):
			checks++
			got := map[string]string{}
			for _, f := range s.Files {
				got[f.Name] = string(f.Data)
			}
			if got["a.out"] != "bin" || got["input"] != got["output"] {
				t.Errorf("a check's /work: %v; want the checker's build and input = output (an echo)", got)
			}
		}
	}
	if compiles != 2 || checks != 5 {
		t.Errorf("%d compiles, %d checks; want 2 (program, checker) and 5", compiles, checks)
	}
}

func TestGroupsSkipAndScore(t *testing.T) {
	noStop := false
	apiTests := []api.Test{
		{Stdin: "a", ExpectedStdout: "a", Group: "g0"},
		{Stdin: "b", ExpectedStdout: "b", Group: "g0"},
		{Stdin: "c", ExpectedStdout: "x", Group: "g1"}, // fails: g1 stops
		{Stdin: "d", ExpectedStdout: "d", Group: "g1"}, // skipped
		{Stdin: "e", ExpectedStdout: "e", Group: "g2"}, // g2 depends on g1: skipped
		{Stdin: "f", ExpectedStdout: "x", Group: "g3"}, // fails, no stop
		{Stdin: "g", ExpectedStdout: "g", Group: "g3"},
		{Stdin: "h", ExpectedStdout: "h", Group: "g4"}, // g4 depends on g2 (skipped): skipped
		{Stdin: "i", ExpectedStdout: "i", Points: f(2)},
	}
	groups, err := SettleGroups([]api.Group{{Name: "g1", DependsOn: []string{"g0"}}, {Name: "g2", DependsOn: []string{"g1"}},
		{Name: "g3", StopOnFailure: &noStop}, {Name: "g4", DependsOn: []string{"g2"}}}, apiTests)
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{Language: interpreted, Files: []rootfs.File{{Name: "main.py"}}, Groups: groups, Scored: true}
	for _, at := range apiTests {
		p := 1.0
		if at.Points != nil {
			p = *at.Points
		}
		req.Tests = append(req.Tests, Test{Stdin: at.Stdin, ExpectedStdout: at.ExpectedStdout, Group: at.Group, Points: p})
	}
	r := &echoRunner{}
	out, err := Execute(context.Background(), r, mapCache{}, req)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus := []string{"accepted", "accepted", "wrong_answer", "skipped", "skipped", "wrong_answer", "accepted", "skipped", "accepted"}
	for i, tr := range out.Tests {
		if tr.Status != wantStatus[i] || (tr.Status == StatusSkipped) != (tr.Run == nil) {
			t.Errorf("test %d: %q (run %v), want %q", i, tr.Status, tr.Run, wantStatus[i])
		}
	}
	if len(r.stages) != 6 {
		t.Errorf("%d runs, want 6", len(r.stages))
	}
	type g struct {
		status        string
		score, max    float64
		tests, skiped []int
	}
	want := []g{{"accepted", 2, 2, []int{0, 1}, []int{}}, {"wrong_answer", 0, 2, []int{2}, []int{3}}, {"skipped", 0, 1, []int{}, []int{4}},
		{"wrong_answer", 1, 2, []int{5, 6}, []int{}}, {"skipped", 0, 1, []int{}, []int{7}}}
	if len(out.Groups) != len(want) {
		t.Fatalf("groups %+v", out.Groups)
	}
	for i, w := range want {
		got := out.Groups[i]
		if got.Status != w.status || got.Score != w.score || got.MaxScore != w.max || !slices.Equal(got.Tests, w.tests) || !slices.Equal(got.Skipped, w.skiped) {
			t.Errorf("group %s: %+v, want %+v", got.Name, got, w)
		}
	}
	if out.Status != "wrong_answer" || *out.Score != 5 || *out.MaxScore != 10 || out.Summary["skipped"] != 3 {
		t.Errorf("status %q, score %v/%v, summary %v", out.Status, *out.Score, *out.MaxScore, out.Summary)
	}
}

func TestSettleGroupsRefuses(t *testing.T) {
	neg := -1.0
	tests := []struct {
		groups []api.Group
		tests  []api.Test
		want   string
	}{
		{[]api.Group{{Name: ""}}, []api.Test{{Group: "a"}}, "name"},
		{[]api.Group{{Name: "a"}, {Name: "a"}}, []api.Test{{Group: "a"}}, "twice"},
		{[]api.Group{{Name: "a"}}, []api.Test{{Group: "b"}}, "no test is in group"},
		{[]api.Group{{Name: "a", DependsOn: []string{"z"}}}, []api.Test{{Group: "a"}}, "which no other test names"},
		{[]api.Group{{Name: "a", DependsOn: []string{"a"}}}, []api.Test{{Group: "a"}}, "which no other test names"},
		{[]api.Group{{Name: "b", DependsOn: []string{"a"}}}, []api.Test{{Group: "a"}, {Group: "b"}, {Group: "a"}}, "must come before"},
		{nil, []api.Test{{Points: &neg}}, "points"},
	}
	for _, tt := range tests {
		_, err := SettleGroups(tt.groups, tt.tests)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SettleGroups(%+v, %+v) = %v, want %q", tt.groups, tt.tests, err, tt.want)
		}
	}
}
