package attacks_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/runtime"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// cleanAnswer accepts a refusal with one of codes or a run that ended
// with one of statuses, never internal_error, a dropped connection or a
// crash (the host check then proves the daemon is healthy).
func cleanAnswer(codes []string, statuses ...runtime.Status) func(*suite, *api.ExecuteResponse, error) (string, bool) {
	return func(s *suite, r *api.ExecuteResponse, err error) (string, bool) {
		var ce *client.Error
		if errors.As(err, &ce) {
			for _, c := range codes {
				if ce.Code == c {
					return "refused " + ce.Code, true
				}
			}
			return "refused " + ce.Code + ": " + clip(ce.Message), false
		}
		if err != nil {
			return "error " + err.Error(), false
		}
		for _, st := range statuses {
			if r.Status == st {
				return fmt.Sprintf("%s %s", r.Status, clip(firstLine(r.Run.Stderr+r.Run.Stdout))), true
			}
		}
		return fmt.Sprintf("%s %s %s", r.Status, clip(r.Run.Stderr), r.Run.Error), false
	}
}

func killedFew(r *api.ExecuteResponse) (string, bool) {
	out := strings.TrimSpace(r.Run.Stdout)
	_, n, _ := strings.Cut(out, "signalled ")
	k, err := strconv.Atoi(n)
	return out, err == nil && k < 10
}

func repeatArgs(n, size int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, strings.Repeat(string(rune('a'+i%26)), size))
	}
	return out
}

func daemonAttacks() []attack {
	const c = "daemon"
	weird := []string{"a\nb", "\x01\x02\x7f", "\x1b[31mred", " lead", "-rf", "trail ", "tab\there", "ünï", "*", "$(id)"}
	sortedWeird := append([]string(nil), weird...)
	sort.Strings(sortedWeird)
	var weirdFiles []api.File
	for _, n := range weird {
		weirdFiles = append(weirdFiles, api.File{Name: n, Content: "x"})
	}
	var thousand []api.File
	for i := 0; i < 1000; i++ {
		thousand = append(thousand, api.File{Name: fmt.Sprintf("f%04d.txt", i), Content: fmt.Sprint(i)})
	}
	bigEnv := map[string]string{}
	for i, v := range repeatArgs(12, 125*kib) {
		bigEnv[fmt.Sprintf("BIG%02d", i)] = v
	}
	as := []attack{
		{class: c, name: "kill -9 -1 from inside", expected: "only the sandbox's processes; run ends ok",
			req: api.ExecuteRequest{Cmd: sh(`sleep 100 & kill -9 -1; echo survived`)}, check: status(runtime.StatusOK, stdoutIs("survived\n"))},
		{class: c, name: "SIGKILL, SIGSEGV, SIGSTOP, SIGTERM at the sandbox's PID 1", expected: "ignored; run ends ok",
			req: api.ExecuteRequest{Cmd: sh(`kill -9 1; kill -SEGV 1; kill -STOP 1; kill -TERM 1; sleep 0.1; echo survived`)}, check: status(runtime.StatusOK, stdoutIs("survived\n"))},
		{class: c, name: "non-UTF-8 bytes on stdout and stderr", expected: "base64, bytes intact",
			req: api.ExecuteRequest{Cmd: sh(`printf '\377\376\000abc\300'; printf '\200x\377' >&2`)},
			check: status(runtime.StatusOK, func(r *api.ExecuteResponse) (string, bool) {
				o, err1 := base64.StdEncoding.DecodeString(r.Run.Stdout)
				e, err2 := base64.StdEncoding.DecodeString(r.Run.Stderr)
				ok := err1 == nil && err2 == nil && string(o) == "\xff\xfe\x00abc\xc0" && string(e) == "\x80x\xff" &&
					r.Run.StdoutEncoding == "base64" && r.Run.StderrEncoding == "base64"
				return fmt.Sprintf("stdout %q stderr %q (%s)", o, e, r.Run.StdoutEncoding), ok
			})},
		{class: c, name: "argv of 1.5 MiB (12 x 125 KiB)", expected: "ok, every byte arrives",
			req:   api.ExecuteRequest{Cmd: append(sh(`echo $# ${#1} ${#12}`), repeatArgs(12, 125*kib)...)},
			check: status(runtime.StatusOK, stdoutIs(fmt.Sprintf("12 %d %d\n", 125*kib, 125*kib)))},
		{class: c, name: "one argument over MAX_ARG_STRLEN (200 KiB)", expected: "a clean refusal or failed run",
			req:   api.ExecuteRequest{Cmd: append(sh(`echo $#`), strings.Repeat("z", 200*kib))},
			check: cleanAnswer([]string{"invalid_request"}, runtime.StatusRuntimeError)},
		{class: c, name: "argv over ARG_MAX (40 x 100 KiB)", expected: "a clean refusal or failed run",
			req:   api.ExecuteRequest{Cmd: append(sh(`echo $#`), repeatArgs(40, 100*kib)...)},
			check: cleanAnswer([]string{"invalid_request"}, runtime.StatusRuntimeError)},
		{class: c, name: "environment of 1.5 MiB (12 x 125 KiB)", expected: "ok, every byte arrives",
			req:   api.ExecuteRequest{Cmd: sh(`echo ${#BIG00} ${#BIG11}`), Env: bigEnv},
			check: status(runtime.StatusOK, stdoutIs(fmt.Sprintf("%d %d\n", 125*kib, 125*kib)))},
		{class: c, name: "file names with newlines, control characters, globs", expected: "refused, or written with exact names",
			req: api.ExecuteRequest{Cmd: sh(`for f in *; do printf '%s/' "$f"; done`), Files: weirdFiles},
			check: func(s *suite, r *api.ExecuteResponse, err error) (string, bool) {
				var ce *client.Error
				if errors.As(err, &ce) {
					return "refused " + ce.Code, ce.Code == "invalid_request"
				}
				if err != nil {
					return describe(r, err), false
				}
				want := strings.Join(sortedWeird, "/") + "/"
				got := r.Run.Stdout
				return fmt.Sprintf("%s, %d names exact=%v", r.Status, strings.Count(got, "/"), got == want), r.Status == runtime.StatusOK && got == want
			}},
		{class: c, name: "1,000 files in one request", expected: "ok, all 1000 in /work",
			req:   api.ExecuteRequest{Cmd: sh(`ls | wc -l; cat f0999.txt; echo`), Files: thousand},
			check: status(runtime.StatusOK, stdoutIs("1000\n999\n"))},
		{class: c, name: "cmd with a NUL byte", expected: "400 invalid_request",
			req: api.ExecuteRequest{Cmd: []string{"/bin/echo", "a\x00b", "@M@"}}, check: apiError("invalid_request")},
		{class: c, name: "image name with path traversal", expected: "404 unknown_image",
			req: api.ExecuteRequest{Image: "../../../../etc", Cmd: []string{"true", "@M@"}}, check: cleanAnswer([]string{"unknown_image", "invalid_request"})},
		{class: c, name: "absurd limit (memory 2^62 bytes)", expected: "400 invalid_request",
			req:   api.ExecuteRequest{Cmd: []string{"true", "@M@"}, Limits: lim(func(l *api.Limits) { l.MemoryBytes = ptr(int64(1 << 62)) })},
			check: apiError("invalid_request")},
		{class: c, name: "a CPU quota too small to schedule (cpus 1e-9)", expected: "refused or runs; never internal_error",
			req:   api.ExecuteRequest{Cmd: []string{"true", "@M@"}, Limits: lim(func(l *api.Limits) { l.CPUs = ptr(1e-9) })},
			check: cleanAnswer([]string{"invalid_request"}, runtime.StatusOK, runtime.StatusWallTimeLimit, runtime.StatusTimeLimit)},
		{class: c, name: "signals at every pid from C: SIGTERM", expected: "only the sandbox's own (<10)",
			req: api.ExecuteRequest{Cmd: atk("killall", "15")}, check: status(runtime.StatusOK, killedFew)},
		{class: c, name: "signals at every pid from C: SIGHUP", expected: "only the sandbox's own (<10)",
			req: api.ExecuteRequest{Cmd: atk("killall", "1")}, check: status(runtime.StatusOK, killedFew)},
		{class: c, name: "JSON nested 10,000 deep", expected: "400 invalid_request, daemon fine", run: nestedJSON(10000)},
		{class: c, name: "JSON nested 1,000,000 deep", expected: "400 invalid_request, daemon fine", run: nestedJSON(1000000)},
		{class: c, name: "body over max_body (65 MiB)", expected: "413 request_too_large", run: hugeBody},
		{class: c, name: "import an image under a traversing name", expected: "400 invalid_request", run: badImportName},
		{class: c, name: "slowloris: 200 clients trickling headers", expected: "others served meanwhile", run: slowloris(false)},
		{class: c, name: "slow bodies: 50 clients trickling request bodies", expected: "others served, no slot taken", run: slowloris(true)},
		{class: c, name: "1,000 idle connections", expected: "others served meanwhile", run: idleConnections},
	}
	return as
}

// rawPost sends body to path and returns the status and error code.
func rawPost(s *suite, path string, body io.Reader) (int, string, error) {
	resp, err := testdaemon.HTTPClient(s.d.Socket).Post("http://sandboxd"+path, "application/json", body)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var eb api.ErrorBody
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &eb)
	return resp.StatusCode, eb.Error.Code, nil
}

func nestedJSON(depth int) func(*testing.T, *suite, string) (string, bool) {
	return func(t *testing.T, s *suite, marker string) (string, bool) {
		body := `{"image":"busybox","cmd":["true"],"env":{"A":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}}`
		st, code, err := rawPost(s, "/v1/execute", strings.NewReader(body))
		if err != nil {
			return "error " + err.Error(), false
		}
		return fmt.Sprintf("%d %s", st, code), st == 400 && code == "invalid_request"
	}
}

func hugeBody(t *testing.T, s *suite, marker string) (string, bool) {
	body := io.MultiReader(strings.NewReader(`{"image":"busybox","cmd":["true"],"stdin":"`), io.LimitReader(zeros{}, 65<<20), strings.NewReader(`"}`))
	st, code, err := rawPost(s, "/v1/execute", body)
	if err != nil {
		return "error " + err.Error(), false
	}
	return fmt.Sprintf("%d %s", st, code), st == 413 && code == "request_too_large"
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func badImportName(t *testing.T, s *suite, marker string) (string, bool) {
	var seen []string
	ok := true
	for _, name := range []string{"../../evil", "/etc/passwd", "a/../../b", "UPPER"} {
		_, err := s.d.Client.Import(context.Background(), strings.NewReader(""), name)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != "invalid_request" {
			ok = false
		}
		seen = append(seen, fmt.Sprint(err != nil))
	}
	list, _ := s.d.Client.Images(context.Background())
	return fmt.Sprintf("4 names refused=%v, images=%d", ok, len(list)), ok && len(list) == 1
}

// slowloris opens many connections that trickle their request (headers,
// or with body a complete header and a body that never ends), then checks
// that other clients get served at once and that no sandbox slot is held.
func slowloris(body bool) func(*testing.T, *suite, string) (string, bool) {
	return func(t *testing.T, s *suite, marker string) (string, bool) {
		n := 200
		if body {
			n = 50
		}
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := 0; i < n; i++ {
			c, err := net.Dial("unix", s.d.Socket)
			if err != nil {
				return fmt.Sprintf("dial %d: %v", i, err), false
			}
			conns = append(conns, c)
			if body {
				fmt.Fprintf(c, "POST /v1/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"image\":\"busybox\",")
			} else {
				fmt.Fprintf(c, "POST /v1/execute HTTP/1.1\r\nHost: x\r\n")
			}
		}
		stop := make(chan struct{})
		go func() { // keep trickling one byte per connection
			tick := time.NewTicker(300 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					for _, c := range conns {
						_, _ = c.Write([]byte(" "))
					}
				}
			}
		}()
		defer close(stop)
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		var worst time.Duration
		for i := 0; i < 5; i++ {
			t0 := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r, err := s.d.Client.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: []string{"echo", "served"}})
			cancel()
			if err != nil || r.Run.Stdout != "served\n" {
				return fmt.Sprintf("request %d while slow clients hang: %v", i, err), false
			}
			worst = max(worst, time.Since(t0))
		}
		h, err := s.d.Client.Health(context.Background())
		if err != nil || h.Running != 0 {
			return fmt.Sprintf("healthz %v %+v: slow clients hold slots", err, h), false
		}
		// The slow clients are still waiting for an answer: none was served.
		answered := 0
		for _, c := range conns[:10] {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			if _, err := bufio.NewReader(c).ReadByte(); err == nil {
				answered++
			}
		}
		return fmt.Sprintf("5 runs served in %v (worst %v) beside %d slow clients (%d answered), running=0", time.Since(start).Round(time.Millisecond), worst.Round(time.Millisecond), n, answered), worst < 3*time.Second
	}
}

func idleConnections(t *testing.T, s *suite, marker string) (string, bool) {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 1000; i++ {
		c, err := net.Dial("unix", s.d.Socket)
		if err != nil {
			return fmt.Sprintf("dial %d: %v", i, err), false
		}
		conns = append(conns, c)
	}
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.d.Client.Execute(ctx, &api.ExecuteRequest{Image: "busybox", Cmd: []string{"echo", "served"}})
	if err != nil || r.Run.Stdout != "served\n" {
		return fmt.Sprintf("not served beside 1000 idle connections: %v", err), false
	}
	resp, err := testdaemon.HTTPClient(s.d.Socket).Get("http://sandboxd/v1/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("healthz: %v", err), false
	}
	resp.Body.Close()
	return fmt.Sprintf("served in %v beside 1000 idle connections", time.Since(t0).Round(time.Millisecond)), true
}
