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

func leftoverAttacks() []attack {
	const c = "leftovers"
	return []attack{
		{class: c, name: "setsid + double fork + sleep 1000", expected: "gone when the run ends",
			req: api.ExecuteRequest{Cmd: prb("daemon", "@M@")}, check: status(runtime.StatusOK, stdoutIs("daemonized\n"))},
		{class: c, name: "background shell outliving the program", expected: "gone when the run ends",
			req: api.ExecuteRequest{Cmd: sh(`sh -c 'sleep 1000; :' $0 & echo started`)}, check: status(runtime.StatusOK, stdoutIs("started\n"))},
		{class: c, name: "nohup + ignore HUP, TERM, INT", expected: "gone when the run ends",
			req: api.ExecuteRequest{Cmd: sh(`nohup sh -c 'trap "" HUP TERM INT; sleep 1000; :' $0 >/dev/null 2>&1 & echo started`)}, check: status(runtime.StatusOK, stdoutIs("started\n"))},
		{class: c, name: "a stopped process (SIGSTOP itself)", expected: "gone when the run ends",
			req: api.ExecuteRequest{Cmd: sh(`sh -c 'kill -STOP $$; :' $0 & sleep 0.2; echo started`)}, check: status(runtime.StatusOK, stdoutIs("started\n"))},
		{class: c, name: "busy loop ignoring TERM, HUP, INT", expected: "wall_time_limit, gone",
			req:   api.ExecuteRequest{Cmd: sh(`trap '' TERM HUP INT; while :; do :; done`), Limits: lim(func(l *api.Limits) { l.WallTimeMS = ptr(int64(800)) })},
			check: status(runtime.StatusWallTimeLimit)},
		{class: c, name: "writer blocked on a full pipe", expected: "wall_time_limit, gone",
			req:   api.ExecuteRequest{Cmd: sh(`yes | sh -c 'sleep 1000; :' $0`), Limits: lim(func(l *api.Limits) { l.WallTimeMS = ptr(int64(800)) })},
			check: status(runtime.StatusWallTimeLimit)},
		{class: c, name: "fork loop racing the kill", expected: "ends (wall limit or fork failure), gone",
			req: api.ExecuteRequest{Cmd: sh(`while :; do sh -c 'sleep 1000; :' $0 & done 2>/dev/null`), Limits: lim(func(l *api.Limits) {
				l.WallTimeMS = ptr(int64(1000))
				l.Pids = ptr(int64(64))
			})},
			check: func(s *suite, r *api.ExecuteResponse, err error) (string, bool) {
				if err != nil {
					return describe(r, err), false
				}
				return string(r.Status), r.Status == runtime.StatusWallTimeLimit || r.Status == runtime.StatusRuntimeError
			}},
		{class: c, name: "uninterruptible wait: vfork parent (D state) with a paused child", expected: "D state seen, gone after the wall limit",
			run: vforkD},
		{class: c, name: "client disconnects while daemonized children run", expected: "sandbox killed and removed at once",
			run: disconnectWithDaemons},
	}
}

// vforkD runs `attack vfork`: the child of vfork pauses forever, so the
// parent stays in vfork's killable uninterruptible wait (state D on the
// host). The host watches for that state during the run; after the wall
// limit, neither may exist.
func vforkD(t *testing.T, s *suite, marker string) (string, bool) {
	done := make(chan struct {
		r   *api.ExecuteResponse
		err error
	}, 1)
	go func() {
		r, err := s.exec(context.Background(), api.ExecuteRequest{Cmd: atk("vfork", "100000"), Limits: lim(func(l *api.Limits) { l.WallTimeMS = ptr(int64(2500)) })}, marker)
		done <- struct {
			r   *api.ExecuteResponse
			err error
		}{r, err}
	}()
	states := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(done) == 0 && time.Now().Before(deadline) {
		for _, p := range testdaemon.ProcessesWith(marker) {
			dir, _, _ := strings.Cut(p, ":")
			if st := processState(dir); st != "" {
				states[st] = true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	res := <-done
	if res.err != nil {
		return "error " + res.err.Error(), false
	}
	var seen []string
	for st := range states {
		seen = append(seen, st)
	}
	return fmt.Sprintf("%s, states seen %v", res.r.Status, seen), res.r.Status == runtime.StatusWallTimeLimit && states["D"]
}

// disconnectWithDaemons starts a run that daemonizes children, gives up
// on it after 600 ms, and wants the sandbox gone within 5 s.
func disconnectWithDaemons(t *testing.T, s *suite, marker string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	_, err := s.exec(ctx, api.ExecuteRequest{Cmd: sh(`probe daemon $0; sh -c 'sleep 1000; :' $0 & sleep 30`)}, marker)
	if err == nil {
		return "the run finished although the client left", false
	}
	t0 := time.Now()
	for time.Since(t0) < 5*time.Second {
		if len(testdaemon.ProcessesWith(marker)) == 0 && len(settled(s.d)) == 0 {
			return fmt.Sprintf("all gone %v after the disconnect", time.Since(t0).Round(time.Millisecond)), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Sprintf("still there 5 s after the disconnect: %v %v", testdaemon.ProcessesWith(marker), s.d.Leftovers()), false
}
