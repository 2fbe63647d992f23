package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// event is one line of a streaming answer, with the time it was read.
type event struct {
	Type     string `json:"type"`
	Data     string `json:"data"`
	Encoding string `json:"encoding"`
	Stage    string `json:"stage"`
	Status   string `json:"status"`
	Error    *struct {
		Code string `json:"code"`
	} `json:"error"`
	Run  *api.Result `json:"run"`
	at   time.Duration
	line string
}

// stream posts body to path over the daemon's socket and reads the
// events as they come.
func stream(t *testing.T, d *testdaemon.Daemon, path string, body any) (*http.Response, []event) {
	t.Helper()
	b, _ := json.Marshal(body)
	start := time.Now()
	resp, err := testdaemon.HTTPClient(d.Socket).Post("http://sandboxd"+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var evs []event
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ev.at, ev.line = time.Since(start), sc.Text()
		evs = append(evs, ev)
	}
	return resp, evs
}

// TestStreamingOutput: with "stream": true the output comes as it is
// written, as NDJSON events, then one result event that holds the plain
// answer's object; for one-shot runs and for a session sandbox's execs.
func TestStreamingOutput(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	sb, err := d.Client.CreateSandbox(context.Background(), &api.CreateSandboxRequest{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	// One byte, a second's sleep, then the rest: the first event must
	// come well before the result.
	const script = `printf a; sleep 1; printf 'b\n'; printf err >&2`
	for _, tc := range []struct {
		name, path string
		body       any
	}{
		{"execute", "/v1/execute", api.ExecuteRequest{Image: "busybox", Cmd: []string{"/bin/sh", "-c", script}, Stream: true}},
		{"session exec", "/v1/sandboxes/" + sb.ID + "/exec", api.SandboxExecRequest{Cmd: []string{"/bin/sh", "-c", script}, Stream: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, evs := stream(t, d, tc.path, tc.body)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("%s %q", resp.Status, resp.Header.Get("Content-Type"))
			}
			if len(evs) < 3 || evs[0].Type != "stdout" || evs[0].Data != "a" {
				t.Fatalf("events %+v", evs)
			}
			last := evs[len(evs)-1]
			if last.Type != "result" || last.Status != "ok" || last.Run == nil || last.Run.Stdout != "ab\n" || last.Run.Stderr != "err" {
				t.Fatalf("last event %s", last.line)
			}
			if gap := last.at - evs[0].at; gap < 800*time.Millisecond {
				t.Errorf("the first byte came %v before the result: not as it was written", gap)
			}
			var out, errs strings.Builder
			for _, ev := range evs[:len(evs)-1] {
				map[string]*strings.Builder{"stdout": &out, "stderr": &errs}[ev.Type].WriteString(ev.Data)
			}
			if out.String() != "ab\n" || errs.String() != "err" {
				t.Errorf("streamed stdout %q, stderr %q", out.String(), errs.String())
			}
		})
	}
	t.Run("a character split between writes, bytes that are not UTF-8, the output cap", func(t *testing.T) {
		_, evs := stream(t, d, "/v1/execute", api.ExecuteRequest{Image: "busybox", Stream: true,
			Cmd: []string{"/bin/sh", "-c", `printf '\303'; sleep 0.3; printf '\251'; sleep 0.3; printf '\377'; sleep 0.3; yes`}, Limits: &api.Limits{OutputBytes: ptr(int64(1000))}})
		if len(evs) < 4 || evs[0].Data != "é" || evs[0].Encoding != "" || evs[1].Data != "/w==" || evs[1].Encoding != "base64" {
			t.Fatalf("events %+v", evs)
		}
		n := 3 // é and \377
		for _, ev := range evs[2 : len(evs)-1] {
			data := []byte(ev.Data)
			if ev.Encoding == "base64" {
				data, _ = base64.StdEncoding.DecodeString(ev.Data)
			}
			n += len(data)
		}
		if last := evs[len(evs)-1]; last.Status != "output_limit" || n > 1000 {
			t.Errorf("%d bytes streamed under a 1000-byte cap, result %s", n, last.line)
		}
	})
	t.Run("a client that disconnects ends the run", func(t *testing.T) {
		const marker = "617.25" // the sleep's argv tells it on the host
		b, _ := json.Marshal(api.ExecuteRequest{Image: "busybox", Stream: true,
			Cmd: []string{"/bin/sh", "-c", "echo started; sleep " + marker}})
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://sandboxd/v1/execute", bytes.NewReader(b))
		resp, err := testdaemon.HTTPClient(d.Socket).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || !strings.Contains(line, "started") {
			t.Fatalf("first event %q, %v", line, err)
		}
		testdaemon.WaitUntil(t, "the sleep", 10*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker)) > 0 })
		cancel()
		resp.Body.Close()
		testdaemon.WaitUntil(t, "the sleep to end with the client", 10*time.Second, func() bool { return len(testdaemon.ProcessesWith(marker)) == 0 })
	})
	t.Run("errors before the run are plain answers", func(t *testing.T) {
		resp, evs := stream(t, d, "/v1/execute", api.ExecuteRequest{Image: "nosuch", Cmd: []string{"true"}, Stream: true})
		if resp.StatusCode != http.StatusNotFound || len(evs) != 1 || evs[0].Error == nil || evs[0].Error.Code != "unknown_image" {
			t.Errorf("%s %+v", resp.Status, evs)
		}
	})
}
