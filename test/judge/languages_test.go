package judge_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// startWithLanguages starts a daemon with the shipped catalog and the
// built images of the recipes named (`make images`).
func startWithLanguages(t *testing.T, recipes ...string) *testdaemon.Daemon {
	t.Helper()
	catalog, _ := filepath.Abs("../../languages/catalog.toml")
	// No warm pool: every sandbox is gone after its run, so that what the
	// daemon holds after the tests is what it held before.
	return testdaemon.StartWith(t, testdaemon.Config{
		Args:   []string{"--catalog", catalog, "--concurrency", "2", "--pool-size", "0"},
		Images: testdaemon.LanguageImages(t, recipes...),
	})
}

// The guessing game in C: the interactor (testlib's order: input output
// answer) reads the secret from its input, answers "? g" with "<", ">"
// or "=", takes "! g" as the program's answer, and allows 20 queries.
const cInteractor = `#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
	if (argc != 4) { fprintf(stderr, "called with %d arguments\n", argc - 1); return 3; }
	FILE *in = fopen(argv[1], "r"), *ans = fopen(argv[3], "r");
	long n, want, g; char op[8];
	if (!in || fscanf(in, "%ld", &n) != 1 || !ans || fscanf(ans, "%ld", &want) != 1 || want != n) { fprintf(stderr, "bad test files\n"); return 3; }
	for (int q = 0;;) {
		if (scanf("%7s %ld", op, &g) != 2) { fprintf(stderr, "unexpected end of the program's output after %d queries\n", q); return 1; }
		if (op[0] == '!') {
			if (g == n) { fprintf(stderr, "guessed %ld in %d queries\n", n, q); return 0; }
			fprintf(stderr, "wrong guess %ld\n", g); return 1;
		}
		if (++q > 20) { fprintf(stderr, "too many queries\n"); return 1; }
		printf("%s\n", g < n ? "<" : g > n ? ">" : "=");
		fflush(stdout);
	}
}
`

// cSearch finds the number of 1..1000000 by binary search (20 queries).
const cSearch = `#include <stdio.h>
int main(void) {
	long lo = 1, hi = 1000000; char r[4];
	while (lo < hi) {
		long m = (lo + hi) / 2;
		printf("? %ld\n", m); fflush(stdout);
		if (scanf("%3s", r) != 1) return 0;
		if (r[0] == '=') { lo = hi = m; break; }
		if (r[0] == '<') lo = m + 1; else hi = m;
	}
	printf("! %ld\n", lo); fflush(stdout);
	return 0;
}
`

// cLinear asks 1, 2, 3...; it dies of SIGPIPE once the interactor is gone.
const cLinear = `#include <stdio.h>
int main(void) {
	char r[4];
	for (long i = 1;; i++) {
		printf("? %ld\n", i); fflush(stdout);
		if (scanf("%3s", r) == 1 && r[0] == '=') { printf("! %ld\n", i); fflush(stdout); return 0; }
	}
}
`

const (
	cWrong        = "#include <stdio.h>\nint main(void){ puts(\"! 1\"); return 0; }\n"
	cStopsReading = "#include <stdio.h>\n#include <unistd.h>\nint main(void){ puts(\"? 5\"); fflush(stdout); for(;;) pause(); }\n"
	cHangs        = "int main(void){ for(;;); }\n"
)

// pySearch is the binary search in Python, against the C++ interactor.
const pySearch = `import sys
lo, hi = 1, 1000000
while lo < hi:
    m = (lo + hi) // 2
    print("?", m, flush=True)
    r = sys.stdin.readline().strip()
    if r == "=":
        lo = hi = m
    elif r == "<":
        lo = m + 1
    else:
        hi = m
print("!", lo, flush=True)
`

// cppInteractor is the C interactor's game in C++ streams.
const cppInteractor = `#include <fstream>
#include <iostream>
#include <string>
int main(int argc, char **argv) {
	if (argc != 4) return 3;
	std::ifstream in(argv[1]);
	long n, g; std::string op;
	if (!(in >> n)) return 3;
	std::ios::sync_with_stdio(false);
	for (int q = 0;;) {
		if (!(std::cin >> op >> g)) { std::cerr << "unexpected end after " << q << " queries\n"; return 1; }
		if (op == "!") { std::cerr << (g == n ? "guessed" : "wrong guess") << "\n"; return g == n ? 0 : 1; }
		if (++q > 20) { std::cerr << "too many queries\n"; return 1; }
		std::cout << (g < n ? "<" : g > n ? ">" : "=") << std::endl;
	}
}
`

func cFiles(src string) []api.File { return []api.File{{Name: "main.c", Content: src}} }

func TestInteractiveLanguages(t *testing.T) {
	d := startWithLanguages(t, "gcc", "python")
	// The first request opens what the daemon keeps (the client's
	// connection, cgroup directories): the count after it is the one to
	// come back to.
	execute(t, d, &api.ExecuteRequest{Language: "c", Files: cFiles(cSearch),
		Interactor: &api.Program{Language: "c", Files: cFiles(cInteractor)}, Tests: []api.Test{{Stdin: "5", ExpectedStdout: "5"}}})
	before := settledFDs(t, d)
	tests := []api.Test{{Stdin: "31\n", ExpectedStdout: "31\n"}, {Stdin: "777777\n", ExpectedStdout: "777777\n"}, {Stdin: "1000000\n", ExpectedStdout: "1000000\n"}}
	fast := &api.Limits{WallTimeMS: ptr(int64(2000))}
	cases := []struct {
		name        string
		lang        string
		program     []api.File
		interactor  *api.Program
		limits      *api.Limits
		want        string
		message     string
		programSays string // the program's run status, when it matters
	}{
		{"binary search", "c", cFiles(cSearch), &api.Program{Language: "c", Files: cFiles(cInteractor)}, nil, "accepted", "guessed", "ok"},
		{"wrong answer", "c", cFiles(cWrong), &api.Program{Language: "c", Files: cFiles(cInteractor)}, nil, "wrong_answer", "wrong guess 1", "ok"},
		{"too many queries", "c", cFiles(cLinear), &api.Program{Language: "c", Files: cFiles(cInteractor)}, nil, "wrong_answer", "too many queries", ""},
		{"program stops reading", "c", cFiles(cStopsReading), &api.Program{Language: "c", Files: cFiles(cInteractor)}, fast, "wall_time_limit", "", "wall_time_limit"},
		{"interactor hangs", "c", cFiles(cSearch), &api.Program{Language: "c", Files: cFiles(cHangs)}, fast, "wall_time_limit", "", "wall_time_limit"},
		{"python against c++", "python", []api.File{{Name: "main.py", Content: pySearch}},
			&api.Program{Language: "cpp", Files: []api.File{{Name: "main.cpp", Content: cppInteractor}}}, nil, "accepted", "guessed", "ok"},
	}
	for _, c := range cases {
		start := time.Now()
		r := execute(t, d, &api.ExecuteRequest{Language: c.lang, Files: c.program, Interactor: c.interactor, Limits: c.limits, Tests: tests})
		took := time.Since(start)
		if r.Status != c.want {
			t.Errorf("%s: %s, want %s", c.name, r.Status, c.want)
		}
		for i, tr := range r.Tests {
			if tr.Status != c.want || !strings.Contains(tr.Message, c.message) || (c.programSays != "" && string(tr.Run.Status) != c.programSays) {
				t.Errorf("%s, test %d: %s %q (program %s), want %s %q (program %s); run %+v, interactor %+v",
					c.name, i, tr.Status, tr.Message, tr.Run.Status, c.want, c.message, c.programSays, tr.Run, tr.Interactor)
			}
		}
		if c.limits != nil && took > 3*time.Duration(len(tests))*2*time.Second {
			t.Errorf("%s: %v for %d tests of a 2 s wall time: the two sandboxes must end together", c.name, took, len(tests))
		}
		t.Logf("%s: %s in %v", c.name, r.Status, took)
	}
	// record: the exchange, both ways.
	r := execute(t, d, &api.ExecuteRequest{Language: "c", Files: cFiles(cSearch), Record: true,
		Interactor: &api.Program{Language: "c", Files: cFiles(cInteractor)}, Tests: []api.Test{{Stdin: "250000", ExpectedStdout: "250000"}}})
	if tr := r.Tests[0]; tr.Status != "accepted" || tr.Transcript == nil ||
		tr.Transcript.FromProgram != "? 500000\n? 250000\n! 250000\n" || tr.Transcript.ToProgram != ">\n=\n" {
		t.Errorf("record: %s, transcript %+v", tr.Status, tr.Transcript)
	}
	noLeaks(t, d, before)
}
