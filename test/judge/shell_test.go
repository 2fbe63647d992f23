package judge_test

import (
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// The guessing game in shell: the interactor knows a number of 1..1000
// (the test's input), answers each "? g" with "<", ">" or "=" and ends the
// game at "! g" or after 12 queries. testlib's exit codes: 0 accepted, 1
// wrong answer, 3 its own failure.
const shInteractor = `
[ $# -eq 3 ] && [ "$2" = output ] || { echo "called as: $*" >&2; exit 3; }
n=$(cat "$1")
[ "$(cat "$3")" = "$n" ] || { echo "answer file does not match the input" >&2; exit 3; }
q=0
while read -r op g; do
  case "$op" in
  "?") q=$((q+1))
    if [ $q -gt 12 ]; then echo "too many queries" >&2; exit 1; fi
    if [ "$g" -lt "$n" ]; then echo "<"; elif [ "$g" -gt "$n" ]; then echo ">"; else echo "="; fi ;;
  "!") if [ "$g" = "$n" ]; then echo "guessed in $q queries" >&2; exit 0; fi
    echo "wrong guess $g" >&2; exit 1 ;;
  *) echo "bad request $op" >&2; exit 2 ;;
  esac
done
echo "unexpected end of the program's output" >&2
exit 1
`

// shBinarySearch finds the number in 10 queries at most.
const shBinarySearch = `
lo=1; hi=1000
while [ $lo -lt $hi ]; do
  m=$(( (lo+hi)/2 ))
  echo "? $m"
  read -r r || exit 0
  case "$r" in "<") lo=$((m+1));; ">") hi=$m;; "=") echo "! $m"; exit 0;; esac
done
echo "! $lo"
`

// shLinear asks 1, 2, 3...: too many queries for most numbers.
const shLinear = `
i=1
while :; do echo "? $i"; read -r r || exit 4; [ "$r" = "=" ] && { echo "! $i"; exit 0; }; i=$((i+1)); done
`

// shWrong answers without asking.
const shWrong = `echo "! 1"`

// shStopsReading asks once and then sleeps: neither side writes.
const shStopsReading = `echo "? 500"; sleep 1000`

// shHangingInteractor never answers and never reads again.
const shHangingInteractor = `while :; do :; done`

type shellCase struct {
	name, program, interactor string
	limits                    *api.Limits
	want                      string
	message                   string
	maxWall                   time.Duration
}

func shFiles(src string) []api.File { return []api.File{{Name: "main.sh", Content: src}} }

func TestInteractiveShell(t *testing.T) {
	for _, mode := range []struct {
		name string
		args []string
	}{{"reusable sandboxes", nil}, {"one-run sandboxes", []string{"--no-reuse", "true"}}} {
		t.Run(mode.name, func(t *testing.T) { interactiveShell(t, mode.args) })
	}
}

func interactiveShell(t *testing.T, args []string) {
	d := startShell(t, args...)
	fast := &api.Limits{WallTimeMS: ptr(int64(2000))}
	cases := []shellCase{
		{"binary search", shBinarySearch, shInteractor, nil, "accepted", "guessed in", 0},
		{"wrong guess", shWrong, shInteractor, nil, "wrong_answer", "wrong guess 1", 0},
		{"too many queries", shLinear, shInteractor, nil, "wrong_answer", "too many queries", 0},
		{"program stops reading", shStopsReading, shInteractor, fast, "wall_time_limit", "", 6 * time.Second},
		{"interactor hangs", shBinarySearch, shHangingInteractor, fast, "wall_time_limit", "", 6 * time.Second},
	}
	// The first round fills the warm pool (whose parked sandboxes hold
	// descriptors of their own); the second must leave the daemon as the
	// first did.
	var before []string
	for round := range 2 {
		if round == 1 {
			before = settledFDs(t, d)
		}
		runShellCases(t, d, cases)
	}
	noLeaks(t, d, before)
}

func runShellCases(t *testing.T, d *testdaemon.Daemon, cases []shellCase) {
	for _, c := range cases {
		start := time.Now()
		r := execute(t, d, &api.ExecuteRequest{Language: "sh", Files: shFiles(c.program), Limits: c.limits,
			Interactor: &api.Program{Language: "sh2", Files: shFiles(c.interactor)},
			Tests:      []api.Test{{Stdin: "777", ExpectedStdout: "777"}, {Stdin: "1000", ExpectedStdout: "1000"}}})
		took := time.Since(start)
		for i, tr := range r.Tests {
			if tr.Status != c.want || !strings.Contains(tr.Message, c.message) {
				t.Errorf("%s, test %d: %s %q, want %s %q; run %+v; interactor %+v", c.name, i, tr.Status, tr.Message, c.want, c.message, tr.Run, tr.Interactor)
			}
			if tr.Run == nil || tr.Interactor == nil {
				t.Errorf("%s, test %d: run %v, interactor %v: want both", c.name, i, tr.Run, tr.Interactor)
			}
		}
		if c.maxWall > 0 && took > 2*c.maxWall {
			t.Errorf("%s: took %v: both sandboxes must end soon after the wall time", c.name, took)
		}
		t.Logf("%s: %s in %v", c.name, r.Status, took)
	}
}

func TestInteractiveRecord(t *testing.T) {
	d := startShell(t)
	r := execute(t, d, &api.ExecuteRequest{Language: "sh", Files: shFiles(shBinarySearch), Record: true,
		Limits:     &api.Limits{OutputBytes: ptr(int64(40))},
		Interactor: &api.Program{Language: "sh", Files: shFiles(shInteractor)},
		Tests:      []api.Test{{Stdin: "1", ExpectedStdout: "1"}, {Stdin: "500", ExpectedStdout: "500"}}})
	// 1: asks 500 250 125 63 32 16 8 4 2 (">" each), then 1 ("=").
	wantTo := strings.Repeat(">\n", 9) + "=\n"
	wantFrom := "? 500\n? 250\n? 125\n? 63\n? 32\n? 16\n? 8\n? 4\n? 2\n? 1\n! 1\n"
	for i, tr := range r.Tests {
		if tr.Status != "accepted" || tr.Transcript == nil {
			t.Fatalf("test %d: %s, transcript %v", i, tr.Status, tr.Transcript)
		}
		got := *tr.Transcript
		if i == 1 {
			if want := (api.Transcript{FromProgram: "? 500\n! 500\n", ToProgram: "=\n"}); got != want {
				t.Errorf("test 1: transcript %+v, want %+v", got, want)
			}
			continue
		}
		// Capped at the program's output_bytes (40) each way.
		if got.FromProgram != wantFrom[:40] || got.ToProgram != wantTo || !got.Truncated {
			t.Errorf("test 0: transcript %+v, want from %q, to %q, truncated", got, wantFrom[:40], wantTo)
		}
	}
}

// shSnoop looks, from the program's sandbox, for anything of the
// interactor's: its descriptors, its processes, its files; it tries to end
// it; then it plays the game, which must still go on as the interactor's
// side decides.
const shSnoop = `
ls -l /proc/self/fd/ >&2
for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline; echo; done >&2
ls /work >&2
kill -9 -1 2>/dev/null
lo=1; hi=1000
while [ $lo -lt $hi ]; do
  m=$(( (lo+hi)/2 ))
  echo "? $m"
  read -r r || exit 0
  case "$r" in "<") lo=$((m+1));; ">") hi=$m;; "=") echo "! $m"; exit 0;; esac
done
echo "! $lo"
`

// TestInteractiveProgramSeesOnlyItsPipes: passing the pipes gives the
// program descriptors 0 and 1 as pipes, and nothing else of the other
// sandbox: none of its processes, none of its files.
func TestInteractiveProgramSeesOnlyItsPipes(t *testing.T) {
	for _, mode := range []struct {
		name string
		args []string
	}{{"reusable sandboxes", nil}, {"one-run sandboxes", []string{"--no-reuse", "true"}}} {
		t.Run(mode.name, func(t *testing.T) {
			d := startShell(t, mode.args...)
			r := execute(t, d, &api.ExecuteRequest{Language: "sh", Files: shFiles(shSnoop),
				Interactor: &api.Program{Language: "sh2", Files: shFiles(shInteractor)}, Tests: []api.Test{{Stdin: "600", ExpectedStdout: "600"}}})
			tr := r.Tests[0]
			seen := tr.Run.Stderr
			if tr.Status != "accepted" {
				t.Errorf("%s %q: the program's snooping must not stop the interactor; program's stderr:\n%s", tr.Status, tr.Message, seen)
			}
			fds := 0
			for _, l := range strings.Split(seen, "\n") {
				// "lr-x------ 1 ... 0 -> pipe:[123]": the descriptor is the
				// field before "->".
				f := strings.Fields(l)
				if i := slices.Index(f, "->"); i > 0 {
					fds++
					fd, target := f[i-1], f[i+1]
					switch {
					case (fd == "0" || fd == "1" || fd == "2") && strings.HasPrefix(target, "pipe:"):
					case fd == "3" && strings.HasPrefix(target, "/proc/"): // ls's own directory
					default:
						t.Errorf("the program holds %s -> %s", fd, target)
					}
				}
			}
			if fds < 3 {
				t.Errorf("the listing of /proc/self/fd is missing:\n%s", seen)
			}
			for _, other := range []string{"input output answer", "answer\n"} {
				if strings.Contains(seen, other) {
					t.Errorf("the program sees %q of the interactor's sandbox:\n%s", other, seen)
				}
			}
		})
	}
}

// TestInteractivePairSharesACPU: the program and its interactor run on
// one CPU (their affinity), the same for both; the next pair on the next.
func TestInteractivePairSharesACPU(t *testing.T) {
	const showCPUs = `grep Cpus_allowed_list /proc/self/status >&2
`
	d := startShell(t)
	var pairs []string
	for range 2 {
		r := execute(t, d, &api.ExecuteRequest{Language: "sh", Files: shFiles(showCPUs + shBinarySearch),
			Interactor: &api.Program{Language: "sh", Files: shFiles(showCPUs + shInteractor)}, Tests: []api.Test{{Stdin: "9", ExpectedStdout: "9"}}})
		tr := r.Tests[0]
		prog, _, _ := strings.Cut(tr.Run.Stderr, "\n")
		inter := tr.Message
		if tr.Status != "accepted" || prog != inter || !strings.HasPrefix(prog, "Cpus_allowed_list:") || strings.ContainsAny(strings.Fields(prog)[1], ",-") {
			t.Errorf("%s: program %q, interactor %q: want one CPU, the same", tr.Status, prog, inter)
		}
		pairs = append(pairs, prog)
	}
	if runtime.NumCPU() > 1 && pairs[0] == pairs[1] {
		t.Errorf("two pairs on %q: pairs go to the daemon's CPUs in turn", pairs[0])
	}
}
