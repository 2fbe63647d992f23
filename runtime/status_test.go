package runtime

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fact is one thing a run can show that alone decides its status.
type fact struct {
	name   string
	status Status
	// stops marks facts that are a stop reason: a run has only one, so two
	// of them never meet.
	stops bool
	set   func(o *observed)
}

// precedence lists the facts, the status that wins first. It is the order
// of docs/result.md ("When several apply, the first in this list wins");
// TestStatusOrderIsTheDocumentedOne holds the two together.
var precedence = []fact{
	{name: "accounting unreadable", status: StatusInternalError, set: func(o *observed) { o.accountingErr = errors.New("cpu.stat: no such file") }},
	{name: "canceled", status: StatusInternalError, stops: true, set: func(o *observed) { o.stop = stopCanceled }},
	{name: "oom kill", status: StatusMemoryLimit, set: func(o *observed) { o.oomKilled = true }},
	{name: "output overflow stopped the run", status: StatusOutputLimit, stops: true, set: func(o *observed) { o.stop = stopOutput }},
	{name: "output truncated while draining", status: StatusOutputLimit, set: func(o *observed) { o.truncated = true }},
	{name: "cpu poll stopped the run", status: StatusTimeLimit, stops: true, set: func(o *observed) { o.stop = stopCPU }},
	{name: "cpu limit reached between polls", status: StatusTimeLimit, set: func(o *observed) { o.cpuUsed = o.cpuLimit }},
	{name: "wall timer", status: StatusWallTimeLimit, stops: true, set: func(o *observed) { o.stop = stopWall }},
	{name: "killed by a signal", status: StatusRuntimeError, set: func(o *observed) { o.exitCode, o.signaled = 139, true }},
	{name: "non-zero exit", status: StatusRuntimeError, set: func(o *observed) { o.exitCode = 3 }},
}

// cleanRun is a run that ended by itself with exit 0, well within its limits.
func cleanRun() observed {
	return observed{cpuUsed: 100 * time.Millisecond, cpuLimit: time.Second}
}

func TestCleanRunIsOK(t *testing.T) {
	if got, msg := decideStatus(cleanRun()); got != StatusOK || msg != "" {
		t.Errorf("got %s %q, want ok", got, msg)
	}
}

// Every fact alone gives its status, and every pair gives the status of the
// one listed first: memory over output, time, wall and runtime error;
// output over time; time over wall; wall over runtime error; runtime error
// over ok; sandboxd's failures over everything.
func TestStatusPrecedence(t *testing.T) {
	for i, first := range precedence {
		t.Run(first.name, func(t *testing.T) {
			o := cleanRun()
			first.set(&o)
			if got, _ := decideStatus(o); got != first.status {
				t.Errorf("alone: got %s, want %s", got, first.status)
			}
		})
		for _, second := range precedence[i+1:] {
			if first.stops && second.stops {
				continue
			}
			t.Run(first.name+" over "+second.name, func(t *testing.T) {
				// Both orders of setting, so no fact can hide another by
				// overwriting it.
				for _, pair := range [][2]fact{{first, second}, {second, first}} {
					o := cleanRun()
					pair[0].set(&o)
					pair[1].set(&o)
					if got, _ := decideStatus(o); got != first.status {
						t.Errorf("got %s, want %s", got, first.status)
					}
				}
			})
		}
	}
}

// Runs the engine suite (test/engine) produces for real, and what only
// internal_error carries: its reason.
func TestDecideStatus(t *testing.T) {
	tests := []struct {
		name    string
		o       observed
		want    Status
		wantErr string
	}{
		{
			name: "memory limit wins over a clean exit",
			o:    observed{oomKilled: true, cpuLimit: time.Second},
			want: StatusMemoryLimit,
		},
		{
			name: "memory limit wins over the kill that followed it",
			o:    observed{oomKilled: true, exitCode: 137, signaled: true, cpuLimit: time.Second},
			want: StatusMemoryLimit,
		},
		{
			name: "cpu just under the limit is not a time limit",
			o:    observed{cpuUsed: time.Second - time.Microsecond, cpuLimit: time.Second},
			want: StatusOK,
		},
		{
			name: "cpu over the limit after a wall timeout is a time limit",
			o:    observed{stop: stopWall, cpuUsed: 2 * time.Second, cpuLimit: time.Second, exitCode: 137, signaled: true},
			want: StatusTimeLimit,
		},
		{
			name:    "accounting error says what failed",
			o:       observed{accountingErr: errors.New("memory.peak: EIO"), oomKilled: true, cpuLimit: time.Second},
			want:    StatusInternalError,
			wantErr: "reading sandbox accounting: memory.peak: EIO",
		},
		{
			name:    "canceled",
			o:       observed{stop: stopCanceled, exitCode: 137, signaled: true, cpuLimit: time.Second},
			want:    StatusInternalError,
			wantErr: "run canceled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := decideStatus(tt.o)
			if got != tt.want || msg != tt.wantErr {
				t.Errorf("got %s %q, want %s %q", got, msg, tt.want, tt.wantErr)
			}
		})
	}
}

// The order of the statuses in docs/result.md is the order decideStatus
// applies, internal_error (sandboxd's own failures) first.
func TestStatusOrderIsTheDocumentedOne(t *testing.T) {
	doc, err := os.ReadFile("../docs/result.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## Statuses")
	if !ok {
		t.Fatal("docs/result.md has no Statuses section")
	}
	var documented []Status
	for _, line := range strings.Split(section, "\n") {
		if name, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ = strings.Cut(name, "`")
			documented = append(documented, Status(name))
		}
	}
	var code []Status
	for _, f := range precedence {
		if !slices.Contains(code, f.status) {
			code = append(code, f.status)
		}
	}
	code = append(code, StatusOK)
	if !slices.Equal(documented, code) {
		t.Errorf("docs/result.md orders the statuses %v, decideStatus %v", documented, code)
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name     string
		ws       unix.WaitStatus
		reported bool
		code     int
		signal   string
	}{
		{name: "exit 0", ws: 0, reported: true, code: 0},
		{name: "exit 3", ws: 3 << 8, reported: true, code: 3},
		{name: "SIGSEGV", ws: unix.WaitStatus(unix.SIGSEGV), reported: true, code: 139, signal: "SIGSEGV"},
		{name: "SIGSEGV with core", ws: unix.WaitStatus(unix.SIGSEGV) | 0x80, reported: true, code: 139, signal: "SIGSEGV"},
		{name: "killed before the entry reported", ws: 0, reported: false, code: 137, signal: "SIGKILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, sig := exitStatus(tt.ws, tt.reported)
			got := ""
			if sig != nil {
				got = *sig
			}
			if code != tt.code || got != tt.signal {
				t.Errorf("got %d %q, want %d %q", code, got, tt.code, tt.signal)
			}
		})
	}
}
