package compat

import (
	"slices"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{"", nil, false},
		{"  a  b\tc ", []string{"a", "b", "c"}, false},
		{`"a b" 'c d' e\ f`, []string{"a b", "c d", "e f"}, false},
		{`x"y z"w ''`, []string{"xy zw", ""}, false},
		{`'$HOME \n'`, []string{`$HOME \n`}, false},
		{`"open`, nil, true},
		{`trailing\`, nil, true},
	} {
		got, err := splitArgs(tc.in)
		if (err != nil) != tc.bad || !slices.Equal(got, tc.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestPistonVersion(t *testing.T) {
	for in, want := range map[string]string{"3.11.2": "3.11.2", "3.x": "3", "3.11.x": "3.11", "3.x.x": "3", "*": "", "": "", " 18 ": "18"} {
		if got := pistonVersion(in); got != want {
			t.Errorf("pistonVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func signal(s string) *string { return &s }

// Every status of ours maps to Judge0's, with its message, and a Piston
// stage gets its status, code and signal.
func TestStatusMaps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		run     api.Result
		verdict string
		judge0  int
		message string
		piston  string
	}{
		{"ok", api.Result{Status: api.StatusOK}, "", judge0Accepted, "", ""},
		{"accepted", api.Result{Status: api.StatusOK}, api.StatusAccepted, judge0Accepted, "", ""},
		{"wrong answer", api.Result{Status: api.StatusOK}, api.StatusWrongAnswer, judge0WrongAnswer, "", ""},
		{"cpu time", api.Result{Status: api.StatusTimeLimit, ExitCode: 137, Signal: signal("SIGKILL")}, "", judge0TimeLimit, "Time limit exceeded", "TO"},
		{"wall time", api.Result{Status: api.StatusWallTimeLimit, ExitCode: 137, Signal: signal("SIGKILL")}, "", judge0TimeLimit, "Time limit exceeded", "TO"},
		{"memory", api.Result{Status: api.StatusMemoryLimit, ExitCode: 137, Signal: signal("SIGKILL"), OOMKilled: true}, "", judge0OtherRuntime, "Memory limit exceeded", "SG"},
		{"stdout", api.Result{Status: api.StatusOutputLimit, StdoutTruncated: true}, "", judge0SIGXFSZ, "Output limit exceeded", "OL"},
		{"stderr", api.Result{Status: api.StatusOutputLimit, StderrTruncated: true}, "", judge0SIGXFSZ, "Output limit exceeded", "EL"},
		{"exit 3", api.Result{Status: api.StatusRuntimeError, ExitCode: 3}, "", judge0NZEC, "Exited with error status 3", "RE"},
		{"SIGSEGV", api.Result{Status: api.StatusRuntimeError, ExitCode: 139, Signal: signal("SIGSEGV")}, "", judge0SIGSEGV, "Caught fatal signal 11", "SG"},
		{"SIGFPE", api.Result{Status: api.StatusRuntimeError, ExitCode: 136, Signal: signal("SIGFPE")}, "", judge0SIGFPE, "Caught fatal signal 8", "SG"},
		{"SIGABRT", api.Result{Status: api.StatusRuntimeError, ExitCode: 134, Signal: signal("SIGABRT")}, "", judge0SIGABRT, "Caught fatal signal 6", "SG"},
		{"SIGXFSZ", api.Result{Status: api.StatusRuntimeError, ExitCode: 153, Signal: signal("SIGXFSZ")}, "", judge0SIGXFSZ, "Caught fatal signal 25", "SG"},
		{"SIGTERM", api.Result{Status: api.StatusRuntimeError, ExitCode: 143, Signal: signal("SIGTERM")}, "", judge0OtherRuntime, "Caught fatal signal 15", "SG"},
		{"internal", api.Result{Status: api.StatusInternalError, Error: "broken"}, "", judge0InternalError, "broken", "XX"},
	} {
		id, msg := runStatus(&tc.run, tc.verdict)
		if id != tc.judge0 || msg != tc.message {
			t.Errorf("%s: Judge0 %d %q, want %d %q", tc.name, id, msg, tc.judge0, tc.message)
		}
		st := pistonStageOf(&tc.run)
		if got := ""; st.Status != nil {
			got = *st.Status
			if got != tc.piston {
				t.Errorf("%s: Piston status %q, want %q", tc.name, got, tc.piston)
			}
		} else if tc.piston != "" {
			t.Errorf("%s: no Piston status, want %q", tc.name, tc.piston)
		}
		if (st.Code == nil) != (tc.run.Signal != nil) {
			t.Errorf("%s: Piston code %v with signal %v: code is null exactly when a signal ended the program", tc.name, st.Code, tc.run.Signal)
		}
	}
}

func TestResultOf(t *testing.T) {
	compileErr := &api.LanguageResponse{Status: api.StatusCompileError,
		Compile: &api.CompileResult{Result: &api.Result{Status: api.StatusRuntimeError, ExitCode: 1, Stderr: "main.c:1: error"}}}
	if r := resultOf(compileErr); r.Status.ID != judge0CompileError || *r.CompileOutput != "main.c:1: error" || r.Stdout != nil || r.Time != nil {
		t.Errorf("compile error: %+v", r)
	}
	test := &api.LanguageResponse{Status: api.StatusWrongAnswer, Tests: []api.TestResult{{Status: api.StatusWrongAnswer,
		Run: &api.Result{Status: api.StatusOK, Stdout: "/w==", StdoutEncoding: "base64", CPUTimeMS: 12, WallTimeMS: 30, MemoryPeakBytes: 2 << 20}}}}
	r := resultOf(test)
	if r.Status.ID != judge0WrongAnswer || *r.Stdout != "\xff" || *r.Time != "0.012" || *r.WallTime != "0.030" || *r.Memory != 2048 || *r.ExitCode != 0 || r.ExitSignal != nil {
		t.Errorf("test: %+v", r)
	}
	if _, err := r.render(judge0Query{}); err == nil {
		t.Error("output that is not UTF-8 rendered without base64")
	}
	body, err := r.render(judge0Query{base64: true, fields: []string{"stdout", "status_id", "nosuch"}})
	if err != nil || len(body) != 2 || body["stdout"] != "/w==" || body["status_id"] != judge0WrongAnswer {
		t.Errorf("render base64 with fields: %v, %v", body, err)
	}
}

func TestStoreBounds(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newStore(StoreLimits{Keep: time.Minute, MaxResults: 2, MaxBytes: 1000})
	s.now = func() time.Time { return now }
	out := func(n int) *judge0Result {
		b := string(make([]byte, n))
		return &judge0Result{Stdout: &b}
	}
	a, _ := s.add("alice")
	b, _ := s.add("alice")
	if _, err := s.add("alice"); err == nil {
		t.Fatal("a third running submission was taken beyond MaxResults = 2")
	}
	if res, ok := s.get("alice", a); !ok || res != nil {
		t.Fatalf("a running submission: %v %v", res, ok)
	}
	if _, ok := s.get("bob", a); ok {
		t.Error("another owner's token was found")
	}
	s.finish(a, out(100))
	c, err := s.add("alice") // drops a, the oldest ended one
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.get("alice", a); ok {
		t.Error("the oldest ended submission was kept beyond MaxResults")
	}
	s.finish(b, out(500))
	s.finish(c, out(500)) // over MaxBytes: b goes
	if _, ok := s.get("alice", b); ok {
		t.Error("outputs were kept beyond MaxBytes")
	}
	if res, ok := s.get("alice", c); !ok || res == nil {
		t.Error("the newest result was dropped")
	}
	now = now.Add(2 * time.Minute)
	if _, ok := s.get("alice", c); ok {
		t.Error("a result was kept beyond Keep")
	}
}
