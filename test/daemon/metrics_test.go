package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// Runs of every status move sandboxd_executions_total and the histograms;
// refusals move the rejection counters. The same numbers are on the socket
// and on --metrics-listen.
func TestMetrics(t *testing.T) {
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := testdaemon.Start(t, append(jwtFlags(t), "--metrics-listen", "tcp://"+maddr)...)
	d.ImportDir("busybox", testRootfs)
	e := unixEndpoint(d.Socket)
	scrape := func() map[string]float64 {
		r := e.call(t, "GET", "/metrics", "", "")
		if r.status != 200 {
			t.Fatalf("GET /metrics: %d %s", r.status, r.body)
		}
		return metricsOf(t, r.body)
	}
	before := scrape()
	runs := map[string]string{
		"ok":              `{"image":"busybox","cmd":["true"]}`,
		"runtime_error":   `{"image":"busybox","cmd":["sh","-c","exit 3"]}`,
		"wall_time_limit": `{"image":"busybox","cmd":["sleep","5"],"limits":{"wall_time_ms":200}}`,
		"time_limit":      `{"image":"busybox","cmd":["probe","burn","1"],"limits":{"cpu_time_ms":200,"cpus":1}}`,
		"memory_limit":    `{"image":"busybox","cmd":["probe","alloc","100"],"limits":{"memory_bytes":33554432}}`,
		"output_limit":    `{"image":"busybox","cmd":["yes"],"limits":{"output_bytes":10}}`,
	}
	for status, body := range runs {
		if r := e.call(t, "POST", "/v1/execute", "", body); r.status != 200 {
			t.Fatalf("%s: %d %s", status, r.status, r.body)
		}
	}
	if r := e.call(t, "POST", "/v1/execute", "bad.token.here", runs["ok"]); r.status != 401 {
		t.Fatalf("bad token: %d", r.status)
	}
	after := scrape()
	for status := range runs {
		key := fmt.Sprintf(`sandboxd_executions_total{language="raw",status=%q}`, status)
		if got := after[key] - before[key]; got != 1 {
			t.Errorf("%s went up by %v, want 1", key, got)
		}
	}
	for _, h := range []string{"sandboxd_execution_wall_seconds_count", "sandboxd_execution_cpu_seconds_count",
		"sandboxd_execution_memory_peak_bytes_count", "sandboxd_queue_wait_seconds_count"} {
		if got := after[h] - before[h]; got != float64(len(runs)) {
			t.Errorf("%s went up by %v, want %d", h, got, len(runs))
		}
	}
	if got := after[`sandboxd_rejections_total{reason="auth"}`] - before[`sandboxd_rejections_total{reason="auth"}`]; got != 1 {
		t.Errorf("auth rejections went up by %v, want 1", got)
	}
	for _, g := range []string{"sandboxd_sandboxes_in_flight", "sandboxd_queue_length", "sandboxd_warm_sandboxes",
		"sandboxd_image_pulls_total", "sandboxd_image_pull_failures_total", "sandboxd_internal_errors_total",
		`sandboxd_rejections_total{reason="rate"}`, `sandboxd_rejections_total{reason="busy"}`, "sandboxd_audit_dropped_total"} {
		if _, ok := after[g]; !ok {
			t.Errorf("no %s", g)
		}
	}
	// A pull that fails counts as a pull and a failure.
	if r := e.call(t, "POST", "/v1/images/pull", "", `{"ref":"127.0.0.1:1/nothing:here"}`); r.status < 400 {
		t.Fatalf("pull from nowhere: %d", r.status)
	}
	m := scrape()
	if m["sandboxd_image_pulls_total"] != 1 || m["sandboxd_image_pull_failures_total"] != 1 {
		t.Errorf("pulls %v failures %v, want 1 1", m["sandboxd_image_pulls_total"], m["sandboxd_image_pull_failures_total"])
	}
	// Every metric the Grafana dashboard queries exists.
	dash, err := os.ReadFile("../../contrib/grafana/sandboxd.json")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for k := range m {
		name, _, _ := strings.Cut(k, "{")
		names[name] = true
	}
	for _, used := range regexp.MustCompile(`sandboxd_[a-z_]+`).FindAllString(string(dash), -1) {
		if !names[used] {
			t.Errorf("the dashboard queries %s, which the daemon does not export", used)
		}
	}
	// The metrics listener serves the same registry, without a token.
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mm := metricsOf(t, body)
	if key := `sandboxd_executions_total{language="raw",status="ok"}`; mm[key] != m[key] || mm[key] == 0 {
		t.Errorf("metrics listener: %s = %v, socket %v", key, mm[key], m[key])
	}
	// The operations port has the probes (for a kubelet) and nothing
	// else of the API.
	for path, want := range map[string]int{"/v1/healthz": 200, "/v1/readyz": 200, "/v1/images": 404, "/v1/version": 404, "/v1/sandboxes": 404} {
		resp, err := c.Get("http://" + maddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("the metrics listener answers GET %s %d, want %d", path, resp.StatusCode, want)
		}
	}
}
