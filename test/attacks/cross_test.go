package attacks_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// holder is sandbox A's script: hold something (in the background or
// not), then run a process with the marker "$0-ready" (the host waits for
// it before starting B) while the hold lasts, then check the hold is intact.
func holder(hold, after string) []string {
	return sh(hold + "\nsh -c 'sleep 2; :' $0-ready\nwait\n" + after)
}

// pair runs A, waits until A is ready, runs B (whose cmd may name A's
// marker as @A@) while A holds, then judges both.
func pair(a, b api.ExecuteRequest, judge func(s *suite, ra, rb *api.ExecuteResponse) (string, bool)) func(*testing.T, *suite, string) (string, bool) {
	return func(t *testing.T, s *suite, marker string) (string, bool) {
		ma, mb := marker+"-a", marker+"-b"
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		type res struct {
			r   *api.ExecuteResponse
			err error
		}
		done := make(chan res, 1)
		go func() {
			r, err := s.exec(ctx, a, ma)
			done <- res{r, err}
		}()
		deadline := time.Now().Add(15 * time.Second)
		for len(testdaemon.ProcessesWith(ma+"-ready")) == 0 {
			select {
			case ra := <-done:
				return "A ended before it was ready: " + describe(ra.r, ra.err), false
			default:
			}
			if time.Now().After(deadline) {
				return "A never got ready", false
			}
			time.Sleep(10 * time.Millisecond)
		}
		bcmd := make([]string, len(b.Cmd))
		for i, c := range b.Cmd {
			bcmd[i] = strings.ReplaceAll(c, "@A@", ma)
		}
		b.Cmd = bcmd
		rb, errb := s.exec(ctx, b, mb)
		ra := <-done
		if ra.err != nil || errb != nil {
			return fmt.Sprintf("A: %s; B: %s", describe(ra.r, ra.err), describe(rb, errb)), false
		}
		if strings.Contains(rb.Run.Stdout+rb.Run.Stderr+ra.r.Run.Stdout, s.secret) {
			return "HOST SECRET READ", false
		}
		for _, m := range []string{ma, mb} {
			if p := testdaemon.ProcessesWith(m); len(p) > 0 {
				return fmt.Sprintf("processes left: %v", p), false
			}
		}
		return judge(s, ra.r, rb)
	}
}

// both wants A to end ok with stdout aOut and B's stdout to be bOut.
func both(aOut, bOut string) func(s *suite, ra, rb *api.ExecuteResponse) (string, bool) {
	return func(s *suite, ra, rb *api.ExecuteResponse) (string, bool) {
		seen := fmt.Sprintf("B: %s; A: %s %s", clip(strings.ReplaceAll(rb.Run.Stdout, "\n", " ")), ra.Status, clip(strings.ReplaceAll(ra.Run.Stdout, "\n", " ")))
		return seen, ra.Status == runtime.StatusOK && ra.Run.Stdout == aOut && rb.Run.Stdout == bOut
	}
}

func crossAttacks() []attack {
	const c = "cross"
	return []attack{
		{class: c, name: "read and overwrite another sandbox's /dev/shm", expected: "B sees an empty /dev/shm; A's file intact",
			run: pair(api.ExecuteRequest{Cmd: holder(`echo secretA > /dev/shm/x`, `cat /dev/shm/x`)},
				api.ExecuteRequest{Cmd: sh(`ls -A /dev/shm; cat /dev/shm/x 2>/dev/null; echo intruder > /dev/shm/x; echo end`)},
				both("secretA\n", "end\n"))},
		{class: c, name: "attach another sandbox's SysV shared memory", expected: "shmget=ENOENT",
			run: pair(api.ExecuteRequest{Cmd: holder(`attack shmhold 4242 2500 $0 & sleep 0.3`, ``)},
				api.ExecuteRequest{Cmd: sh(`attack shmfind 4242 $0; ipcs -m | grep -c 0x00001092`)},
				both("holding shm\nstill held\n", "shmget=ENOENT\n0\n"))},
		{class: c, name: "open another sandbox's SysV message queue", expected: "msgget=ENOENT",
			run: pair(api.ExecuteRequest{Cmd: holder(`attack msghold 4343 2500 $0 & sleep 0.3`, ``)},
				api.ExecuteRequest{Cmd: atk("msgfind", "4343")},
				both("holding msg\n", "msgget=ENOENT\n"))},
		{class: c, name: "open another sandbox's SysV semaphore", expected: "semget=ENOENT",
			run: pair(api.ExecuteRequest{Cmd: holder(`attack semhold 4444 2500 $0 & sleep 0.3`, ``)},
				api.ExecuteRequest{Cmd: atk("semfind", "4444")},
				both("holding sem\n", "semget=ENOENT\n"))},
		{class: c, name: "connect to another sandbox's abstract Unix socket", expected: "ECONNREFUSED",
			run: pair(api.ExecuteRequest{Cmd: holder(`attack abshold sbx-cross-sock 2500 $0 & sleep 0.3`, ``)},
				api.ExecuteRequest{Cmd: atk("absconnect", "sbx-cross-sock")},
				both("listening\n", "connect=ECONNREFUSED\n"))},
		{class: c, name: "connect to another sandbox's TCP port on 127.0.0.1", expected: "ECONNREFUSED",
			run: pair(api.ExecuteRequest{Cmd: holder(`timeout 3 nc -l -p 7777 >/dev/null 2>&1 & sleep 0.3`, `echo held`)},
				api.ExecuteRequest{Cmd: prb("connect", "7777")},
				func(s *suite, ra, rb *api.ExecuteResponse) (string, bool) {
					return "B: " + strings.TrimSpace(rb.Run.Stdout), rb.Run.Stdout == "error ECONNREFUSED\n" && ra.Status == runtime.StatusOK
				})},
		{class: c, name: "flock a file of the shared image that another sandbox holds", expected: "B's LOCK_NB succeeds (no shared lock)",
			run: pair(api.ExecuteRequest{Cmd: holder(`attack lockhold /etc/passwd 2500 $0 & sleep 0.3`, ``)},
				api.ExecuteRequest{Cmd: atk("locktry", "/etc/passwd")},
				both("flock=OK\n", "flock=OK\n"))},
		{class: c, name: "see another sandbox's POSIX lock on a shared image file", expected: "F_GETLK: unlocked",
			run: pair(api.ExecuteRequest{Cmd: holder(`attack fcntlhold /etc/group 2500 $0 & sleep 0.3`, ``)},
				api.ExecuteRequest{Cmd: atk("fcntltry", "/etc/group")},
				both("fcntl_rdlck=OK\n", "getlk=UNLOCKED\n"))},
		{class: c, name: "see another sandbox's processes", expected: "none visible",
			run: pair(api.ExecuteRequest{Cmd: holder(``, `echo alive`)},
				api.ExecuteRequest{Cmd: sh(`grep -l @A@-read[y] /proc/[0-9]*/cmdline 2>/dev/null | wc -l`)},
				both("alive\n", "0\n"))},
		{class: c, name: "SIGKILL every pid and kill(-1) while another sandbox runs", expected: "A finishes ok",
			run: pair(api.ExecuteRequest{Cmd: holder(``, `echo alive`)},
				api.ExecuteRequest{Cmd: atk("killall", "9")},
				func(s *suite, ra, rb *api.ExecuteResponse) (string, bool) {
					seen := fmt.Sprintf("B: %s; A: %s %q", clip(rb.Run.Stdout), ra.Status, ra.Run.Stdout)
					return seen, ra.Status == runtime.StatusOK && ra.Run.Stdout == "alive\n"
				})},
		{class: c, name: "SIGSTOP every pid while another sandbox runs", expected: "A finishes ok",
			run: pair(api.ExecuteRequest{Cmd: holder(``, `echo alive`)},
				api.ExecuteRequest{Cmd: atk("killall", "19")},
				func(s *suite, ra, rb *api.ExecuteResponse) (string, bool) {
					seen := fmt.Sprintf("B: %s; A: %s %q", clip(rb.Run.Stdout), ra.Status, ra.Run.Stdout)
					return seen, ra.Status == runtime.StatusOK && ra.Run.Stdout == "alive\n"
				})},
		{class: c, name: "ptrace every visible process while another sandbox runs", expected: "attached 0",
			run: pair(api.ExecuteRequest{Cmd: holder(``, `echo alive`)},
				api.ExecuteRequest{Cmd: sh(`attack ptraceall $0 | tail -1`)},
				func(s *suite, ra, rb *api.ExecuteResponse) (string, bool) {
					return "B: " + strings.TrimSpace(rb.Run.Stdout), strings.HasPrefix(rb.Run.Stdout, "ptrace attached 0 of") && ra.Run.Stdout == "alive\n"
				})},
		{class: c, name: "read another sandbox's /tmp and /work", expected: "both empty",
			run: pair(api.ExecuteRequest{Cmd: holder(`echo a > /tmp/a; echo a > /work/a`, `cat /tmp/a /work/a`)},
				api.ExecuteRequest{Cmd: sh(`ls -A /tmp /work | grep -c '^a$'`)},
				both("a\na\n", "0\n"))},
		{class: c, name: "starve another sandbox of memory", expected: "B memory_limit; A allocates fine",
			run: pair(api.ExecuteRequest{Cmd: holder(`probe alloc 60`, `probe alloc 60`)},
				api.ExecuteRequest{Cmd: prb("alloc", "2048"), Limits: lim(func(l *api.Limits) { l.MemoryBytes = ptr(int64(64 * mib)) })},
				func(s *suite, ra, rb *api.ExecuteResponse) (string, bool) {
					seen := fmt.Sprintf("B: %s; A: %s %q", rb.Status, ra.Status, ra.Run.Stdout)
					return seen, rb.Status == runtime.StatusMemoryLimit && ra.Status == runtime.StatusOK && ra.Run.Stdout == "allocated\nallocated\n"
				})},
	}
}
