package languages_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/internal/archivetest"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// echo prints its input: each test's stdin is the output the comparison
// or the checker gets.
var echo = []api.File{{Name: "main.py", Content: "import sys\nsys.stdout.write(sys.stdin.read())\n"}}

// TestJudging runs the judge's features through real sandboxes, on one
// daemon.
func TestJudging(t *testing.T) {
	d := startWithImages(t, "python", "gcc")
	t.Run("comparisons", func(t *testing.T) { judgeComparisons(t, d) })
	t.Run("checkers", func(t *testing.T) { judgeCheckers(t, d) })
	t.Run("groups", func(t *testing.T) { judgeGroups(t, d) })
	t.Run("testset", func(t *testing.T) { judgeTestset(t, d) })
}

// judgeTestset: a stored set's testset.toml judges as a request would:
// its checker with partial points, its groups stopping and depending,
// its points and names; a request's own checker replaces the set's.
func judgeTestset(t *testing.T, d *testdaemon.Daemon) {
	ctx := context.Background()
	checker, err := os.ReadFile("../../docs/examples/checker.cpp")
	if err != nil {
		t.Fatal(err)
	}
	manifest := `
[[group]]
name = "easy"
[[group]]
name = "hard"
depends_on = ["easy"]
[[test]]
name = "a"
group = "easy"
points = 10
[[test]]
name = "b"
group = "easy"
points = 10
[[test]]
name = "c"
group = "hard"
points = 80
[checker]
language = "cpp"
files = ["checker.cpp"]
`
	tar := archivetest.Tar(t, archivetest.Files("testset.toml", manifest, "checker.cpp", string(checker),
		"a.in", "2.5", "a.ans", "2.5", "b.in", "2.6", "b.ans", "2.5", "c.in", "9", "c.ans", "9"))
	set, err := d.Client.CreateTestset(ctx, bytes.NewReader(tar))
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python", Files: echo, Testset: set.ID})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, status string
		points       float64
	}{{"a", "accepted", 10}, {"b", "partial", 6}, {"c", "skipped", 0}}
	for i, w := range want {
		tr := r.Tests[i]
		if tr.Name != w.name || tr.Status != w.status || tr.Points == nil || *tr.Points < w.points-1e-9 || *tr.Points > w.points+1e-9 {
			t.Errorf("test %d: %s %s %v, want %+v", i, tr.Name, tr.Status, tr.Points, w)
		}
	}
	if r.Status != "partial" || len(r.Groups) != 2 || r.Groups[1].Status != "skipped" || *r.MaxScore != 100 {
		t.Errorf("status %s, groups %+v, max score %v", r.Status, r.Groups, r.MaxScore)
	}
	// The request's own checker instead of the set's: comparing tokens
	// makes b a wrong answer, and "hard" is still skipped.
	r, err = d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python", Files: echo, Testset: set.ID,
		Checker: &api.Program{Language: "python", Files: []api.File{{Name: "check.py", Content: "import sys\nsys.exit(0 if open('output').read().split() == open('answer').read().split() else 1)\n"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Tests[0].Status != "accepted" || r.Tests[1].Status != "wrong_answer" || r.Tests[2].Status != "skipped" || r.CheckerCompile != nil {
		t.Errorf("the request's checker over the set's: %s %s %s (checker compile %v)", r.Tests[0].Status, r.Tests[1].Status, r.Tests[2].Status, r.CheckerCompile)
	}
}

// judgeComparisons: each built-in comparison decides a test through the
// API, a test's own comparison overrides the request's, and bad
// judging fields are refused before anything runs.
func judgeComparisons(t *testing.T, d *testdaemon.Daemon) {
	ctx := context.Background()
	cmp := func(mode string) *api.Compare { return &api.Compare{Mode: mode} }
	tests := []api.Test{
		{Stdin: "1 2\r\n3  \n\n", ExpectedStdout: "1 2\n3"},                                                    // lines (default): accepted
		{Stdin: "1  2\n", ExpectedStdout: "1 2\n"},                                                             // lines: wrong_answer
		{Stdin: "1\n  2\t3", ExpectedStdout: "1 2 3", Compare: cmp("tokens")},                                  // accepted
		{Stdin: "0.000000001 3.1415927", ExpectedStdout: "1e-9 3.14159265", Compare: cmp("float")},             // accepted
		{Stdin: "3.1416", ExpectedStdout: "3.14159265", Compare: cmp("float")},                                 // wrong_answer
		{Stdin: "nan", ExpectedStdout: "NaN", Compare: &api.Compare{Mode: "float", CaseInsensitive: true}},     // accepted
		{Stdin: "3.14", ExpectedStdout: "3.1415", Compare: &api.Compare{Mode: "float", AbsTol: ptr(0.01)}},     // accepted
		{Stdin: "b\na\n", ExpectedStdout: "a\nb\n", Compare: cmp("unordered_lines")},                           // accepted
		{Stdin: "x\n", ExpectedStdout: "x", Compare: cmp("exact")},                                             // wrong_answer
		{Stdin: "YES\n", ExpectedStdout: "yes\n", Compare: &api.Compare{Mode: "exact", CaseInsensitive: true}}, // accepted
	}
	want := []string{"accepted", "wrong_answer", "accepted", "accepted", "wrong_answer", "accepted", "accepted", "accepted", "wrong_answer", "accepted"}
	r, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python", Files: echo, Tests: tests})
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range r.Tests {
		if tr.Status != want[i] {
			t.Errorf("test %d (%+v): %s, want %s", i, tests[i].Compare, tr.Status, want[i])
		}
	}
	// The request's comparison is every test's default.
	r, err = d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python", Files: echo, Compare: cmp("tokens"),
		Tests: []api.Test{{Stdin: "1\n2", ExpectedStdout: "1 2"}, {Stdin: "1\n2", ExpectedStdout: "1 2", Compare: cmp("exact")}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Tests[0].Status != "accepted" || r.Tests[1].Status != "wrong_answer" || r.Score != nil || r.Groups != nil {
		t.Errorf("request tokens, test exact: %s, %s (score %v, groups %v)", r.Tests[0].Status, r.Tests[1].Status, r.Score, r.Groups)
	}

	checker := &api.Program{Language: "cpp", Files: []api.File{{Name: "checker.cpp", Content: "int main(){}"}}}
	bad := []struct {
		name string
		req  api.ExecuteRequest
		code string
	}{
		{"unknown mode", api.ExecuteRequest{Compare: cmp("fuzzy"), Tests: tests[:1]}, "invalid_request"},
		{"tolerance on tokens", api.ExecuteRequest{Compare: &api.Compare{Mode: "tokens", AbsTol: ptr(1.0)}, Tests: tests[:1]}, "invalid_request"},
		{"negative tolerance", api.ExecuteRequest{Tests: []api.Test{{Compare: &api.Compare{Mode: "float", RelTol: ptr(-1.0)}}}}, "invalid_request"},
		{"compare without tests", api.ExecuteRequest{Compare: cmp("tokens")}, "invalid_request"},
		{"checker without tests", api.ExecuteRequest{Checker: checker}, "invalid_request"},
		{"checker and compare", api.ExecuteRequest{Checker: checker, Compare: cmp("tokens"), Tests: tests[:1]}, "invalid_request"},
		{"checker and a test's compare", api.ExecuteRequest{Checker: checker, Tests: tests[2:3]}, "invalid_request"},
		{"checker_limits without checker", api.ExecuteRequest{CheckerLimits: &api.Limits{}, Tests: tests[:1]}, "invalid_request"},
		{"checker without files", api.ExecuteRequest{Checker: &api.Program{Language: "cpp"}, Tests: tests[:1]}, "invalid_request"},
		{"checker file named output", api.ExecuteRequest{Checker: &api.Program{Language: "cpp",
			Files: []api.File{{Name: "c.cpp", Content: "int main(){}"}, {Name: "output", Content: ""}}}, Tests: tests[:1]}, "invalid_request"},
		{"checker in an unknown language", api.ExecuteRequest{Checker: &api.Program{Language: "nolang", Files: checker.Files}, Tests: tests[:1]}, "unknown_language"},
		{"checker limit too high", api.ExecuteRequest{Checker: checker, CheckerLimits: &api.Limits{MemoryBytes: ptr(int64(1 << 50))}, Tests: tests[:1]}, "invalid_request"},
		{"group declared, no test in it", api.ExecuteRequest{Groups: []api.Group{{Name: "g"}}, Tests: tests[:1]}, "invalid_request"},
		{"negative points", api.ExecuteRequest{Tests: []api.Test{{Points: ptr(-1.0)}}}, "invalid_request"},
	}
	for _, b := range bad {
		b.req.Language, b.req.Files = "python", echo
		_, err := d.Client.ExecuteLanguage(ctx, &b.req)
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.Code != b.code {
			t.Errorf("%s: %v, want %s", b.name, err, b.code)
		}
	}
}

// judgeCheckers: the testlib-style checker of docs/examples gives every
// verdict through real sandboxes: accepted, wrong answer, presentation
// error, partial points; a checker that crashes or does not compile is
// the request's checker_error, never the program's verdict.
func judgeCheckers(t *testing.T, d *testdaemon.Daemon) {
	ctx := context.Background()
	src, err := os.ReadFile("../../docs/examples/checker.cpp")
	if err != nil {
		t.Fatal(err)
	}
	checker := &api.Program{Language: "cpp", Files: []api.File{{Name: "checker.cpp", Content: string(src)}}}
	tests := []api.Test{
		{Stdin: "2.5000000001\n", ExpectedStdout: "2.5", Points: ptr(10.0)},
		{Stdin: "4", ExpectedStdout: "2.5", Points: ptr(10.0)},
		{Stdin: "2.5 extra", ExpectedStdout: "2.5", Points: ptr(10.0)},
		{Stdin: "2.6", ExpectedStdout: "2.5", Points: ptr(10.0)},
	}
	r, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python", Files: echo, Checker: checker, Tests: tests})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		status, message string
		points          float64
	}{
		{"accepted", "ok 2.5000000001", 10}, {"wrong_answer", "expected 2.5, found 4", 0},
		{"presentation_error", "expected one number, found 2 tokens", 0}, {"partial", "points 0.6 2.6 is 4% off", 6},
	}
	if len(r.Tests) != len(want) || r.CheckerCompile == nil || r.CheckerCompile.Status != "ok" {
		t.Fatalf("%d tests, checker compile %+v", len(r.Tests), r.CheckerCompile)
	}
	for i, w := range want {
		tr := r.Tests[i]
		if tr.Status != w.status || tr.Message != w.message || tr.Points == nil || *tr.Points < w.points-1e-9 || *tr.Points > w.points+1e-9 || tr.Checker == nil {
			t.Errorf("test %d: %s %q points %v checker %v; want %s %q %v", i, tr.Status, tr.Message, tr.Points, tr.Checker, w.status, w.message, w.points)
		}
	}
	if r.Status != "wrong_answer" || r.Score == nil || *r.Score < 16-1e-9 || *r.Score > 16+1e-9 || *r.MaxScore != 40 {
		t.Errorf("status %s score %v/%v; want wrong_answer, 16/40", r.Status, r.Score, r.MaxScore)
	}
	// The second request takes the checker's compile from the cache.
	crash := &api.Program{Language: "cpp", Files: []api.File{{Name: "checker.cpp", Content: "int main(){ *(volatile int *)0 = 1; }"}}}
	r, err = d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python", Files: echo, Checker: crash, Tests: tests[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if tr := r.Tests[0]; r.Status != "checker_error" || tr.Status != "checker_error" || tr.Run.Status != "ok" || tr.Checker.Signal == nil {
		t.Errorf("crashing checker: request %s, test %s, run %s, checker %+v", r.Status, tr.Status, tr.Run.Status, tr.Checker)
	}
	broken := &api.Program{Language: "cpp", Files: []api.File{{Name: "checker.cpp", Content: "int main( {"}}}
	r, err = d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python", Files: echo, Checker: broken, Tests: tests[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != "checker_error" || r.CheckerCompile == nil || r.CheckerCompile.Status == "ok" || r.Tests != nil {
		t.Errorf("checker that does not compile: %s, checker compile %+v, tests %v", r.Status, r.CheckerCompile, r.Tests)
	}
	// The program's own failure comes first: the checker never runs.
	r, err = d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python", Checker: checker, Tests: tests[:1],
		Files: []api.File{{Name: "main.py", Content: "raise SystemExit(3)"}}})
	if err != nil {
		t.Fatal(err)
	}
	if tr := r.Tests[0]; tr.Status != "runtime_error" || tr.Checker != nil {
		t.Errorf("failing program: %s, checker %v", tr.Status, tr.Checker)
	}
}

// judgeGroups: a group stops at its first failure, a group whose
// dependency failed is skipped whole, skipped tests are listed and never
// run, and scores add up per group and in all.
func judgeGroups(t *testing.T, d *testdaemon.Daemon) {
	ctx := context.Background()
	noStop := false
	tests := []api.Test{
		{Name: "s1", Stdin: "a", ExpectedStdout: "a", Group: "sample", Points: ptr(0.0)},
		{Name: "1", Stdin: "b", ExpectedStdout: "b", Group: "small", Points: ptr(20.0)},
		{Name: "2", Stdin: "c", ExpectedStdout: "x", Group: "small", Points: ptr(20.0)},
		{Name: "3", Stdin: "d", ExpectedStdout: "d", Group: "small", Points: ptr(20.0)},
		{Name: "4", Stdin: "e", ExpectedStdout: "e", Group: "large", Points: ptr(30.0)},
		{Name: "5", Stdin: "f", ExpectedStdout: "x", Group: "extra", Points: ptr(5.0)},
		{Name: "6", Stdin: "g", ExpectedStdout: "g", Group: "extra", Points: ptr(5.0)},
	}
	r, err := d.Client.ExecuteLanguage(ctx, &api.ExecuteRequest{Language: "python", Files: echo, Tests: tests,
		Groups: []api.Group{{Name: "small", DependsOn: []string{"sample"}}, {Name: "large", DependsOn: []string{"small"}},
			{Name: "extra", StopOnFailure: &noStop}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"accepted", "accepted", "wrong_answer", "skipped", "skipped", "wrong_answer", "accepted"}
	for i, tr := range r.Tests {
		if tr.Status != want[i] || tr.Name != tests[i].Name || tr.Group != tests[i].Group || (tr.Run == nil) != (want[i] == "skipped") {
			t.Errorf("test %d: %s %q/%q run %v; want %s", i, tr.Status, tr.Name, tr.Group, tr.Run, want[i])
		}
	}
	wantGroups := []api.GroupResult{
		{Name: "sample", Status: "accepted", Score: 0, MaxScore: 0, Tests: []int{0}, Skipped: []int{}},
		{Name: "small", Status: "wrong_answer", Score: 20, MaxScore: 60, Tests: []int{1, 2}, Skipped: []int{3}},
		{Name: "large", Status: "skipped", Score: 0, MaxScore: 30, Tests: []int{}, Skipped: []int{4}},
		{Name: "extra", Status: "wrong_answer", Score: 5, MaxScore: 10, Tests: []int{5, 6}, Skipped: []int{}},
	}
	if len(r.Groups) != len(wantGroups) {
		t.Fatalf("groups %+v", r.Groups)
	}
	for i, w := range wantGroups {
		g := r.Groups[i]
		if g.Name != w.Name || g.Status != w.Status || g.Score != w.Score || g.MaxScore != w.MaxScore ||
			fmtInts(g.Tests) != fmtInts(w.Tests) || fmtInts(g.Skipped) != fmtInts(w.Skipped) {
			t.Errorf("group %d: %+v, want %+v", i, g, w)
		}
	}
	if r.Status != "wrong_answer" || *r.Score != 25 || *r.MaxScore != 100 || r.Summary["skipped"] != 2 {
		t.Errorf("status %s, score %v/%v, summary %v; want wrong_answer, 25/100, 2 skipped", r.Status, *r.Score, *r.MaxScore, r.Summary)
	}
}

func fmtInts(v []int) string { return fmt.Sprint(v) }
