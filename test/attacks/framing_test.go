package attacks_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// Request smuggling over the API socket (issue 19): a request whose body
// length is ambiguous gets a JSON 400 and the connection closes, so the
// request hidden in its body never runs. Before the fix, net/http served a
// request with both Content-Length and Transfer-Encoding by its chunks, and
// then the smuggled one.
func TestRequestFraming(t *testing.T) {
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	marker := "SMUGGLED-" + randHex(6)
	execute := `{"image":"busybox","cmd":["/bin/echo","` + marker + `"]}`
	inner := fmt.Sprintf("POST /v1/execute HTTP/1.1\r\nHost: sandboxd\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		len(execute), execute)
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(execute), execute) // what a TE reader takes as the whole body
	head := "POST /v1/execute HTTP/1.1\r\nHost: sandboxd\r\nContent-Type: application/json\r\n"
	cases := []struct{ name, req string }{
		// A CL reader (a proxy in front) sees one request; a TE reader two.
		{"Content-Length and Transfer-Encoding", head + fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(chunked+inner)) + chunked + inner},
		{"Transfer-Encoding then Content-Length", head + fmt.Sprintf("Transfer-Encoding: chunked\r\nContent-Length: %d\r\n\r\n", len(chunked+inner)) + chunked + inner},
		// One reader takes the first Content-Length, another the last.
		{"duplicate differing Content-Length", head + fmt.Sprintf("Content-Length: %d\r\nContent-Length: %d\r\n\r\n", len(execute), len(execute+inner)) + execute + inner},
		{"malformed Content-Length", head + fmt.Sprintf("Content-Length: +%d\r\n\r\n", len(execute)) + execute + inner},
	}
	before := executions(t, d)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("unix", d.Socket)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, c.req); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e api.ErrorBody
			if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Error.Code != api.CodeInvalidRequest || !resp.Close {
				t.Fatalf("answer %d %q (Connection: close %v), want 400 invalid_request and the connection closed", resp.StatusCode, body, resp.Close)
			}
			t.Logf("refused: %s", e.Error.Message)
			// Nothing more: no second answer, the connection closed.
			if n, err := br.Read(make([]byte, 512)); n != 0 || !(err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
				t.Fatalf("after the 400: read %d bytes, %v; want the connection closed", n, err)
			}
		})
	}
	if after := executions(t, d); after != before {
		t.Fatalf("executions went from %v to %v: a refused or smuggled request ran", before, after)
	}
	if got, _ := metric(d, `sandboxd_rejections_total{reason="framing"}`); got != float64(len(cases)) {
		t.Errorf("sandboxd_rejections_total{reason=\"framing\"} = %v, want %d", got, len(cases))
	}
	// The daemon still serves a well-framed request.
	res, err := d.Client.Execute(t.Context(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"/bin/echo", "hi"}})
	if err != nil || res.Run == nil || res.Run.Stdout != "hi\n" {
		t.Fatalf("a good request after the refusals: %+v, %v", res, err)
	}
}

// executions sums sandboxd_executions_total over its labels.
func executions(t *testing.T, d *testdaemon.Daemon) float64 {
	t.Helper()
	resp, err := testdaemon.HTTPClient(d.Socket).Get("http://sandboxd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "sandboxd_executions_total{") {
			var v float64
			_, _ = fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v)
			sum += v
		}
	}
	return sum
}
