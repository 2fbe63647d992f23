package engine_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/runtime"
)

// Each status of the result, produced by a real program.
func TestStatuses(t *testing.T) {
	tests := []struct {
		name     string
		flags    []string
		cmd      []string
		status   runtime.Status
		exitCode int
		signal   string
		check    func(t *testing.T, r *runtime.Result)
	}{
		{name: "ok", cmd: []string{"/bin/true"}, status: runtime.StatusOK},
		{name: "exit code", cmd: []string{"/bin/sh", "-c", "exit 3"}, status: runtime.StatusRuntimeError, exitCode: 3},
		{name: "signal", cmd: []string{"/bin/sh", "-c", "kill -SEGV $$"}, status: runtime.StatusRuntimeError, exitCode: 139, signal: "SIGSEGV"},
		{name: "abort", cmd: []string{"/bin/sh", "-c", "kill -ABRT $$"}, status: runtime.StatusRuntimeError, exitCode: 134, signal: "SIGABRT"},
		{
			name: "cpu time limit", flags: []string{"--cpu-time", "300ms", "--cpus", "1", "--wall-time", "10s"},
			cmd: []string{"probe", "burn", "1"}, status: runtime.StatusTimeLimit, exitCode: 137, signal: "SIGKILL",
			check: func(t *testing.T, r *runtime.Result) {
				if r.CPUTimeMS < 300 || r.CPUTimeMS > 1500 {
					t.Errorf("cpu_time_ms %.1f, want 300..1500", r.CPUTimeMS)
				}
				if r.WallTimeMS > 5000 {
					t.Errorf("wall_time_ms %.1f: the cpu limit was not enforced promptly", r.WallTimeMS)
				}
			},
		},
		{
			// Threads count: four spinning threads share the limit.
			name: "cpu time limit counts threads", flags: []string{"--cpu-time", "400ms", "--cpus", "2", "--wall-time", "10s"},
			cmd: []string{"probe", "burn", "4"}, status: runtime.StatusTimeLimit, exitCode: 137, signal: "SIGKILL",
		},
		{
			name: "wall time limit", flags: []string{"--wall-time", "300ms"},
			cmd: []string{"/bin/sh", "-c", "echo before; sleep 10"}, status: runtime.StatusWallTimeLimit, exitCode: 137, signal: "SIGKILL",
			check: func(t *testing.T, r *runtime.Result) {
				if r.Stdout != "before\n" {
					t.Errorf("output before the kill was lost: stdout %q", r.Stdout)
				}
				if r.WallTimeMS < 300 || r.WallTimeMS > 2000 {
					t.Errorf("wall_time_ms %.1f, want about 300", r.WallTimeMS)
				}
			},
		},
		{
			name: "memory limit", flags: []string{"--memory", "32MiB"},
			cmd: []string{"/bin/sh", "-c", "echo start; probe alloc 100"}, status: runtime.StatusMemoryLimit, exitCode: 137, signal: "SIGKILL",
			check: func(t *testing.T, r *runtime.Result) {
				if !r.OOMKilled {
					t.Error("oom_killed is false")
				}
				if r.Stdout != "start\n" {
					t.Errorf("output before the OOM kill was lost: %q", r.Stdout)
				}
			},
		},
		{
			// The shell survives its child's OOM kill and exits 0: still memory_limit.
			name: "memory limit wins over a clean exit", flags: []string{"--memory", "32MiB"},
			cmd: []string{"/bin/sh", "-c", "probe alloc 100; exit 0"}, status: runtime.StatusMemoryLimit, exitCode: 0,
		},
		{
			name: "output limit", flags: []string{"--output-limit", "1KiB"},
			cmd: []string{"/bin/sh", "-c", "yes"}, status: runtime.StatusOutputLimit, exitCode: 137, signal: "SIGKILL",
			check: func(t *testing.T, r *runtime.Result) {
				if len(r.Stdout) != 1024 || !r.StdoutTruncated {
					t.Errorf("stdout %d bytes, truncated %v; want the first 1024 bytes and truncated", len(r.Stdout), r.StdoutTruncated)
				}
				if !strings.HasPrefix(r.Stdout, "y\ny\n") {
					t.Errorf("stdout does not start with the program's output: %q", r.Stdout[:16])
				}
			},
		},
		{
			name: "output limit on stderr", flags: []string{"--output-limit", "100"},
			cmd: []string{"/bin/sh", "-c", "echo out; yes >&2"}, status: runtime.StatusOutputLimit, exitCode: 137, signal: "SIGKILL",
			check: func(t *testing.T, r *runtime.Result) {
				if len(r.Stderr) != 100 || !r.StderrTruncated || r.StdoutTruncated || r.Stdout != "out\n" {
					t.Errorf("stderr %d bytes (truncated %v), stdout %q (truncated %v)", len(r.Stderr), r.StderrTruncated, r.Stdout, r.StdoutTruncated)
				}
			},
		},
		{
			name: "output exactly at the limit is ok", flags: []string{"--output-limit", "4"},
			cmd: []string{"/bin/sh", "-c", "printf abcd"}, status: runtime.StatusOK,
			check: func(t *testing.T, r *runtime.Result) {
				if r.Stdout != "abcd" || r.StdoutTruncated {
					t.Errorf("stdout %q truncated %v", r.Stdout, r.StdoutTruncated)
				}
			},
		},
		{
			name: "binary output is base64", cmd: []string{"/bin/sh", "-c", `printf 'a\377\376b'; printf 'ok' >&2`}, status: runtime.StatusOK,
			check: func(t *testing.T, r *runtime.Result) {
				got, err := base64.StdEncoding.DecodeString(r.Stdout)
				if r.StdoutEncoding != "base64" || err != nil || string(got) != "a\xff\xfeb" {
					t.Errorf("stdout %q encoding %q", r.Stdout, r.StdoutEncoding)
				}
				if r.StderrEncoding != "" || r.Stderr != "ok" {
					t.Errorf("stderr %q encoding %q", r.Stderr, r.StderrEncoding)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.flags, tt.cmd...)
			wantStatus(t, r, tt.status)
			if r.ExitCode != tt.exitCode {
				t.Errorf("exit_code %d, want %d", r.ExitCode, tt.exitCode)
			}
			gotSig := ""
			if r.Signal != nil {
				gotSig = *r.Signal
			}
			if gotSig != tt.signal {
				t.Errorf("signal %q, want %q", gotSig, tt.signal)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// The memory peak measures the program, not sandboxd's setup: touching
// 50 MiB reports between 50 MiB and 50 MiB plus the documented overhead.
func TestMemoryPeakMeasuresTheProgram(t *testing.T) {
	const overhead = 8 << 20 // README: "Accounting"
	r := run(t, []string{"--memory", "128MiB"}, "probe", "alloc", "50")
	wantStatus(t, r, runtime.StatusOK)
	if r.MemoryPeakBytes < 50<<20 || r.MemoryPeakBytes > 50<<20+overhead {
		t.Errorf("memory_peak_bytes %d (%.1f MiB), want 50 MiB .. 50 MiB + 8 MiB", r.MemoryPeakBytes, float64(r.MemoryPeakBytes)/(1<<20))
	}
	small := run(t, nil, "/bin/true")
	if small.MemoryPeakBytes > overhead {
		t.Errorf("/bin/true peaks at %d bytes, more than the documented overhead", small.MemoryPeakBytes)
	}
}

// --cpus is a quota: a burner given half a core gets about half a core.
func TestCPUQuota(t *testing.T) {
	r := run(t, []string{"--cpus", "0.5", "--wall-time", "5s"}, "probe", "burnfor", "1500")
	wantStatus(t, r, runtime.StatusOK)
	// The quota is a ceiling: on a busy host the share may fall below it,
	// but it must never pass it.
	share := r.CPUTimeMS / r.WallTimeMS
	if share < 0.25 || share > 0.6 {
		t.Errorf("cpu %.0f ms over %.0f ms wall = %.2f cores, want about 0.5 and never above it", r.CPUTimeMS, r.WallTimeMS, share)
	}
	// A quarter core is held to a quarter.
	r = run(t, []string{"--cpus", "0.25", "--wall-time", "5s"}, "probe", "burnfor", "1000")
	if q := r.CPUTimeMS / r.WallTimeMS; q > 0.32 {
		t.Errorf("--cpus 0.25 gave %.2f cores", q)
	}
}
