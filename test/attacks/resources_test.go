package attacks_test

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/runtime"
)

const (
	kib = 1024
	mib = 1024 * kib
)

// failedAfter reads N from "... failed after N..." and wants 0 < N < max.
func failedAfter(prefix string, max int) func(r *api.ExecuteResponse) (string, bool) {
	return func(r *api.ExecuteResponse) (string, bool) {
		out := strings.TrimSpace(r.Run.Stdout)
		rest, found := strings.CutPrefix(out, prefix+" failed after ")
		if !found {
			return fmt.Sprintf("stdout %q", clip(out)), false
		}
		n, _ := strconv.Atoi(strings.FieldsFunc(rest, func(c rune) bool { return c < '0' || c > '9' })[0])
		return out, n > 0 && n < max
	}
}

func wallBelow(ms float64) func(r *api.ExecuteResponse) (string, bool) {
	return func(r *api.ExecuteResponse) (string, bool) {
		return fmt.Sprintf("wall=%.0fms", r.Run.WallTimeMS), r.Run.WallTimeMS < ms
	}
}

func oomKilled(r *api.ExecuteResponse) (string, bool) {
	return fmt.Sprintf("oom_killed=%v peak=%dMiB", r.Run.OOMKilled, r.Run.MemoryPeakBytes/mib), r.Run.OOMKilled
}

func resourceAttacks() []attack {
	const c = "resources"
	return []attack{
		{class: c, name: "fork bomb (C, fork until it fails)", expected: "fork fails below pids=32",
			req:   api.ExecuteRequest{Cmd: prb("forkbomb"), Limits: lim(func(l *api.Limits) { l.Pids = ptr(int64(32)) })},
			check: status(runtime.StatusOK, failedAfter("fork", 32))},
		{class: c, name: "fork bomb (sh, f(){ f|f& };f)", expected: "contained, ends by the wall limit",
			req: api.ExecuteRequest{Cmd: sh(`f(){ f|f& }; f; sleep 5`), Limits: lim(func(l *api.Limits) {
				l.Pids = ptr(int64(32))
				l.WallTimeMS = ptr(int64(1500))
			})},
			check: status(runtime.StatusWallTimeLimit, wallBelow(5000))},
		{class: c, name: "thread bomb", expected: "pthread_create EAGAIN below pids=32",
			req:   api.ExecuteRequest{Cmd: atk("threads"), Limits: lim(func(l *api.Limits) { l.Pids = ptr(int64(32)) })},
			check: status(runtime.StatusOK, failedAfter("threads", 32))},
		{class: c, name: "memory bomb: heap 1 GiB in 64 MiB", expected: "memory_limit, OOM kill",
			req:   api.ExecuteRequest{Cmd: prb("alloc", "1024"), Limits: lim(func(l *api.Limits) { l.MemoryBytes = ptr(int64(64 * mib)) })},
			check: status(runtime.StatusMemoryLimit, oomKilled)},
		{class: c, name: "memory bomb: tmpfs /tmp 200 MiB in 64 MiB of memory", expected: "memory_limit (tmpfs is charged)",
			req: api.ExecuteRequest{Cmd: prb("write", "/tmp/fill", fmt.Sprint(200*mib)), Limits: lim(func(l *api.Limits) {
				l.MemoryBytes = ptr(int64(64 * mib))
				l.TmpBytes = ptr(int64(512 * mib))
				l.FileSizeBytes = ptr(int64(512 * mib))
			})},
			check: status(runtime.StatusMemoryLimit, oomKilled)},
		{class: c, name: "memory bomb: /dev/shm 100 MiB", expected: "ENOSPC at 16 MiB",
			req: api.ExecuteRequest{Cmd: prb("write", "/dev/shm/fill", fmt.Sprint(100*mib)), Limits: lim(func(l *api.Limits) {
				l.FileSizeBytes = ptr(int64(256 * mib))
			})},
			check: status(runtime.StatusRuntimeError, stdoutIs(fmt.Sprintf("error ENOSPC after %d\n", 16*mib)))},
		{class: c, name: "CPU burn: 64 threads on every core at 0.5 CPU", expected: "wall_time_limit, CPU <= quota",
			req: api.ExecuteRequest{Cmd: prb("burn", "64"), Limits: lim(func(l *api.Limits) {
				l.Pids = ptr(int64(128))
				l.CPUs = ptr(0.5)
				l.WallTimeMS = ptr(int64(2000))
			})},
			check: status(runtime.StatusWallTimeLimit, func(r *api.ExecuteResponse) (string, bool) {
				// CFS throttles at tick granularity: in each period every CPU
				// may overrun the quota by up to a tick, more with 64 threads
				// on a loaded host, never by half again.
				ratio := r.Run.CPUTimeMS / r.Run.WallTimeMS
				return fmt.Sprintf("cpu/wall=%.2f", ratio), ratio < 0.75
			})},
		{class: c, name: "CPU burn: 16 threads against a 300 ms CPU-time limit", expected: "time_limit near 300 ms of CPU",
			req: api.ExecuteRequest{Cmd: prb("burn", "16"), Limits: lim(func(l *api.Limits) {
				l.CPUs = ptr(2.0)
				l.CPUTimeMS = ptr(int64(300))
				l.WallTimeMS = ptr(int64(10000))
			})},
			check: status(runtime.StatusTimeLimit, func(r *api.ExecuteResponse) (string, bool) {
				return fmt.Sprintf("cpu=%.0fms wall=%.0fms", r.Run.CPUTimeMS, r.Run.WallTimeMS), r.Run.CPUTimeMS < 500
			})},
		{class: c, name: "disk fill: /work", expected: "ENOSPC at work_bytes",
			req: api.ExecuteRequest{Cmd: prb("write", "/work/fill", fmt.Sprint(100*mib)), Limits: lim(func(l *api.Limits) {
				l.WorkBytes = ptr(int64(4 * mib))
			})},
			check: status(runtime.StatusRuntimeError, stdoutHas("error ENOSPC after"))},
		{class: c, name: "disk fill: /tmp", expected: "ENOSPC at tmp_bytes",
			req: api.ExecuteRequest{Cmd: prb("write", "/tmp/fill", fmt.Sprint(100*mib)), Limits: lim(func(l *api.Limits) {
				l.TmpBytes = ptr(int64(4 * mib))
			})},
			check: status(runtime.StatusRuntimeError, stdoutHas("error ENOSPC after"))},
		{class: c, name: "disk fill: inodes of /tmp (empty files)", expected: "no space left before 5000 files",
			req: api.ExecuteRequest{Cmd: sh(`i=0; while [ $i -lt 5000 ] && true 2>/dev/null > /tmp/f$i; do i=$((i+1)); done; echo made $i`),
				Limits: lim(func(l *api.Limits) { l.TmpBytes = ptr(int64(4 * mib)) })},
			check: status(runtime.StatusOK, func(r *api.ExecuteResponse) (string, bool) {
				n, _ := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(r.Run.Stdout), "made "))
				return strings.TrimSpace(r.Run.Stdout), n > 0 && n < 5000
			})},
		{class: c, name: "a file past RLIMIT_FSIZE", expected: "EFBIG at file_size_bytes",
			req: api.ExecuteRequest{Cmd: prb("write", "/tmp/big", fmt.Sprint(3*mib)), Limits: lim(func(l *api.Limits) {
				l.FileSizeBytes = ptr(int64(1 * mib))
			})},
			check: status(runtime.StatusRuntimeError, stdoutIs(fmt.Sprintf("error EFBIG after %d\n", 1*mib)))},
		{class: c, name: "1 GiB to stdout and stderr at once", expected: "output_limit, 1 MiB kept per stream",
			req: api.ExecuteRequest{Cmd: atk("flood", fmt.Sprint(1<<30))},
			check: status(runtime.StatusOutputLimit, wallBelow(5000), func(r *api.ExecuteResponse) (string, bool) {
				return fmt.Sprintf("stdout=%d stderr=%d", len(r.Run.Stdout), len(r.Run.Stderr)),
					len(r.Run.Stdout) <= mib && len(r.Run.Stderr) <= mib && (r.Run.StdoutTruncated || r.Run.StderrTruncated)
			})},
		{class: c, name: "16 MiB of stdin never read", expected: "ok at once, no hang",
			req:   api.ExecuteRequest{Cmd: sh(`sleep 0.1`), Stdin: strings.Repeat("x", 16*mib)},
			check: status(runtime.StatusOK, wallBelow(3000))},
		{class: c, name: "16 MiB of stdin read in full", expected: "all 16777216 bytes arrive",
			req:   api.ExecuteRequest{Cmd: sh(`wc -c`), Stdin: strings.Repeat("y", 16*mib), Limits: lim(func(l *api.Limits) { l.CPUs = ptr(1.0) })},
			check: status(runtime.StatusOK, stdoutIs("16777216\n"))},
		// Each limit, just under and just over.
		{class: c, name: "wall: sleep 0.6 s under a 1 s limit", expected: "ok",
			req:   api.ExecuteRequest{Cmd: sh(`sleep 0.6`), Limits: lim(func(l *api.Limits) { l.WallTimeMS = ptr(int64(1000)) })},
			check: status(runtime.StatusOK)},
		{class: c, name: "wall: sleep 1.4 s over a 1 s limit", expected: "wall_time_limit",
			req:   api.ExecuteRequest{Cmd: sh(`sleep 1.4`), Limits: lim(func(l *api.Limits) { l.WallTimeMS = ptr(int64(1000)) })},
			check: status(runtime.StatusWallTimeLimit, wallBelow(1300))},
		{class: c, name: "cpu: 300 ms of CPU under a 700 ms CPU limit", expected: "ok",
			req: api.ExecuteRequest{Cmd: atk("cpufor", "300"), Limits: lim(func(l *api.Limits) {
				l.CPUs = ptr(1.0)
				l.CPUTimeMS = ptr(int64(700))
				l.WallTimeMS = ptr(int64(20000))
			})},
			check: status(runtime.StatusOK)},
		{class: c, name: "cpu: 1500 ms of CPU over a 700 ms CPU limit", expected: "time_limit",
			req: api.ExecuteRequest{Cmd: atk("cpufor", "1500"), Limits: lim(func(l *api.Limits) {
				l.CPUs = ptr(1.0)
				l.CPUTimeMS = ptr(int64(700))
				l.WallTimeMS = ptr(int64(20000))
			})},
			check: status(runtime.StatusTimeLimit)},
		{class: c, name: "memory: 24 MiB under a 64 MiB limit", expected: "ok",
			req:   api.ExecuteRequest{Cmd: prb("alloc", "24"), Limits: lim(func(l *api.Limits) { l.MemoryBytes = ptr(int64(64 * mib)) })},
			check: status(runtime.StatusOK, stdoutIs("allocated\n"))},
		{class: c, name: "memory: 72 MiB over a 64 MiB limit", expected: "memory_limit",
			req:   api.ExecuteRequest{Cmd: prb("alloc", "72"), Limits: lim(func(l *api.Limits) { l.MemoryBytes = ptr(int64(64 * mib)) })},
			check: status(runtime.StatusMemoryLimit, oomKilled)},
		{class: c, name: "output: exactly 1000 bytes at a 1000-byte limit", expected: "ok, not truncated",
			req: api.ExecuteRequest{Cmd: sh(`head -c 1000 /dev/zero | tr '\0' x`), Limits: lim(func(l *api.Limits) { l.OutputBytes = ptr(int64(1000)) })},
			check: status(runtime.StatusOK, func(r *api.ExecuteResponse) (string, bool) {
				return fmt.Sprintf("stdout=%d", len(r.Run.Stdout)), len(r.Run.Stdout) == 1000 && !r.Run.StdoutTruncated
			})},
		{class: c, name: "output: 1001 bytes at a 1000-byte limit", expected: "output_limit, 1000 kept",
			req: api.ExecuteRequest{Cmd: sh(`head -c 1001 /dev/zero | tr '\0' x; sleep 5`), Limits: lim(func(l *api.Limits) { l.OutputBytes = ptr(int64(1000)) })},
			check: status(runtime.StatusOutputLimit, wallBelow(4000), func(r *api.ExecuteResponse) (string, bool) {
				return fmt.Sprintf("stdout=%d", len(r.Run.Stdout)), len(r.Run.Stdout) == 1000 && r.Run.StdoutTruncated
			})},
		{class: c, name: "pids: 4 background sleeps under pids=8", expected: "ok, every fork works",
			req:   api.ExecuteRequest{Cmd: sh(`for i in 1 2 3 4; do sleep 0.3 & done; wait; echo done`), Limits: lim(func(l *api.Limits) { l.Pids = ptr(int64(8)) })},
			check: status(runtime.StatusOK, stdoutIs("done\n"))},
		{class: c, name: "pids: 20 background sleeps over pids=8", expected: "fork fails (EAGAIN)",
			req: api.ExecuteRequest{Cmd: sh(`n=0; for i in $(seq 20); do sleep 1 & n=$((n+1)); done 2>/dev/null; ls /proc | grep -c '^[0-9]'`),
				Limits: lim(func(l *api.Limits) { l.Pids = ptr(int64(8)) })},
			check: func(s *suite, r *api.ExecuteResponse, err error) (string, bool) {
				if err != nil {
					return describe(r, err), false
				}
				n, _ := strconv.Atoi(strings.TrimSpace(r.Run.Stdout))
				return fmt.Sprintf("%s, %d tasks visible", r.Status, n), n > 0 && n <= 8 || r.Status == runtime.StatusRuntimeError
			}},
		{class: c, name: "file size: exactly RLIMIT_FSIZE", expected: "written in full",
			req: api.ExecuteRequest{Cmd: prb("write", "/tmp/f", fmt.Sprint(mib)), Limits: lim(func(l *api.Limits) {
				l.FileSizeBytes = ptr(int64(mib))
			})},
			check: status(runtime.StatusOK, stdoutIs(fmt.Sprintf("wrote %d\n", mib)))},
		{class: c, name: "file size: RLIMIT_FSIZE + 1 byte", expected: "EFBIG",
			req: api.ExecuteRequest{Cmd: prb("write", "/tmp/f", fmt.Sprint(mib+1)), Limits: lim(func(l *api.Limits) {
				l.FileSizeBytes = ptr(int64(mib))
			})},
			check: status(runtime.StatusRuntimeError, stdoutIs(fmt.Sprintf("error EFBIG after %d\n", mib)))},
	}
}
