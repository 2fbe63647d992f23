package compat_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A listener without tokens on an address beyond the loopback is refused
// when the daemon starts, with a message that says why.
func TestAnonymousListenerOnlyOnLoopback(t *testing.T) {
	bin := os.Getenv("SANDBOXD_BIN")
	if bin == "" {
		t.Fatal("needs SANDBOXD_BIN: run with `make test`")
	}
	for _, listen := range []string{"tcp://0.0.0.0:2000", "tcp://192.0.2.1:2000", "tcp://localhost:2000", "tcp://[::]:2000"} {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sandboxd.toml")
		text := "[compat]\npiston = true\nlisten = \"" + listen + "\"\nauth = \"none\"\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, "serve", "--config", conf, "--socket", filepath.Join(dir, "s.sock"),
			"--state-dir", filepath.Join(dir, "state"), "--run-dir", filepath.Join(dir, "run")).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "loopback address only") {
			t.Errorf("listen %s with auth = none: %v\n%s", listen, err, out)
		}
	}
}

// The anonymous callers of the compat listener have their own rate limit,
// and reach only the compat endpoints; a caller of the socket reaches
// them too.
func TestAnonymousCallers(t *testing.T) {
	d := startCompat(t, "piston = true\njudge0 = true\nanonymous_rate_limit = 0.01\nanonymous_rate_burst = 1", "bash")
	req := map[string]any{"language": "bash", "version": "*", "files": []map[string]string{{"content": "echo hi"}}}
	var first map[string]any
	if code, _ := call(t, "POST", d.url+"/api/v2/execute", req, &first); code != http.StatusOK {
		t.Fatalf("first run: %d %v", code, first)
	}
	var second map[string]any
	code, h := call(t, "POST", d.url+"/api/v2/execute", req, &second)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || second["message"] == nil {
		t.Errorf("second run: %d %v (Retry-After %q), want 429 in Piston's shape", code, second, h.Get("Retry-After"))
	}
	var judged map[string]any
	if code, _ := call(t, "POST", d.url+"/submissions?wait=true", map[string]any{"language_id": 46, "source_code": "echo hi"}, &judged); code != http.StatusTooManyRequests || judged["error"] == nil {
		t.Errorf("Judge0 run beyond the rate: %d %v, want 429 in Judge0's shape", code, judged)
	}
	var other map[string]any
	if code, _ := call(t, "GET", d.url+"/v1/sandboxes", nil, &other); code != http.StatusNotFound {
		t.Errorf("GET /v1/sandboxes on the compat listener: %d %v, want 404", code, other)
	}
	// The socket's callers (uid 0) are not the anonymous user: their own
	// limits (none here) apply.
	socket := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.Socket)
	}}}
	resp, err := socket.Post("http://sandboxd/api/v2/execute", "application/json",
		strings.NewReader(`{"language":"bash","version":"5","files":[{"content":"echo $((6*7))"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST /api/v2/execute on the socket: %d", resp.StatusCode)
	}
}
