package cluster_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
)

// Three daemons as the pods of a StatefulSet: a session created on one
// is used through the others (a file written and read back, an exec, a
// streamed exec, an interactive exec over the WebSocket with the Go
// client), under the caller's own identity, and
// once its owner stops the others answer 404 unknown_sandbox within 1 s.
func TestSessionForwarding(t *testing.T) {
	nodes := startCluster(t, "sandboxd-0", "sandboxd-1", "sandboxd-2")
	owner, via, other := nodes[0], nodes[1], nodes[2]
	// The image is on the owner only: what runs, runs there.
	owner.d.ImportDir("busybox", testRootfs)
	alice, bob := token(t, "alice"), token(t, "bob")

	created := call(t, owner.base, "POST", "/v1/sandboxes", alice, `{"image": "busybox"}`)
	var sb api.Sandbox
	if created.status != http.StatusCreated || json.Unmarshal(created.body, &sb) != nil {
		t.Fatalf("create: %d %s", created.status, created.body)
	}
	if !strings.HasSuffix(sb.ID, ".sandboxd-0") {
		t.Fatalf("session id %q does not name its pod", sb.ID)
	}
	path := "/v1/sandboxes/" + sb.ID

	for _, n := range []*node{via, other} {
		put := call(t, n.base, "PUT", path+"/files/from-"+n.name, alice, "written through "+n.name)
		if put.status/100 != 2 {
			t.Fatalf("PUT through %s: %d %s", n.name, put.status, put.body)
		}
		get := call(t, n.base, "GET", path+"/files/from-"+n.name, alice, "")
		if get.status != http.StatusOK || string(get.body) != "written through "+n.name {
			t.Fatalf("GET through %s: %d %q", n.name, get.status, get.body)
		}
		ex := call(t, n.base, "POST", path+"/exec", alice, `{"cmd": ["cat", "/work/from-`+n.name+`"]}`)
		var res api.ExecuteResponse
		if ex.status != http.StatusOK || json.Unmarshal(ex.body, &res) != nil || res.Run.Stdout != "written through "+n.name {
			t.Fatalf("exec through %s: %d %s", n.name, ex.status, ex.body)
		}
	}
	streamThrough(t, via, path, alice)
	interactiveThrough(t, other, sb.ID, alice)
	refusesOthers(t, via, path, bob)

	// The owner goes (its pod deleted): its sessions go with it.
	if err := owner.d.Stop(time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{via, other} {
		for _, p := range []string{path, path + "/files/from-" + n.name} {
			r := call(t, n.base, "GET", p, alice, "")
			if r.status != http.StatusNotFound || r.code() != api.CodeUnknownSandbox || r.took >= time.Second {
				t.Errorf("GET %s through %s after the owner stopped: %d %s in %v, want 404 unknown_sandbox within 1s", p, n.name, r.status, r.body, r.took)
			}
		}
	}
}

// streamThrough runs a streamed exec through n: its events arrive as
// NDJSON, the first output before the program ends.
func streamThrough(t *testing.T, n *node, path, tok string) {
	t.Helper()
	body := `{"cmd": ["sh", "-c", "echo one; sleep 1; echo two"], "stream": true}`
	req, err := http.NewRequest("POST", n.base+path+"/exec", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		t.Fatalf("streamed exec through %s: %d %s", n.name, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var firstAt time.Duration
	var out strings.Builder
	var last map[string]any
	for _, ev := range ndjsonTimed(t, resp.Body, start, &firstAt) {
		if ev["type"] == "stdout" {
			out.WriteString(ev["data"].(string))
		}
		last = ev
	}
	if out.String() != "one\ntwo\n" || last == nil || last["type"] != "result" || last["status"] != "ok" {
		t.Fatalf("streamed exec through %s: stdout %q, last event %v", n.name, out.String(), last)
	}
	if total := time.Since(start); firstAt >= total-500*time.Millisecond {
		t.Errorf("the first output came at %v of %v: not streamed through %s", firstAt, total, n.name)
	}
}

// refusesOthers: the owner, not the forwarding daemon, decides who a
// forwarded call is from. Another user's token, no token, and a caller
// known only by its Unix-socket credentials on the forwarding daemon get
// what they would get from the owner: nothing of the session.
func refusesOthers(t *testing.T, n *node, path, other string) {
	t.Helper()
	if r := call(t, n.base, "GET", path, other, ""); r.status != http.StatusNotFound || r.code() != api.CodeUnknownSandbox {
		t.Errorf("another user's GET through %s: %d %s, want 404 unknown_sandbox", n.name, r.status, r.body)
	}
	if r := call(t, n.base, "GET", path, "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("GET without a token through %s: %d %s, want 401", n.name, r.status, r.body)
	}
	id := strings.TrimPrefix(path, "/v1/sandboxes/")
	if _, err := n.d.Client.Sandbox(context.Background(), id); !client.IsCode(err, api.CodeUnknownSandbox) {
		t.Errorf("GET on %s's Unix socket (root, no token): %v, want unknown_sandbox", n.name, err)
	}
}

// interactiveThrough runs cat over the WebSocket through n, with the Go
// client: a line in, the same line out while it runs, then the result.
func interactiveThrough(t *testing.T, n *node, id, tok string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := client.NewTCP(strings.TrimPrefix(n.base, "https://"), tok, clusterTLS)
	s, err := c.ExecInteractive(ctx, id, &api.SandboxExecRequest{Cmd: []string{"cat"}})
	if err != nil {
		t.Fatalf("interactive exec through %s: %v", n.name, err)
	}
	defer s.Close()
	if err := s.Stdin(ctx, []byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	ev, err := s.Next(ctx)
	if err != nil || ev.Type != "stdout" || ev.Data != "ping\n" {
		t.Fatalf("interactive exec through %s: first event %+v, %v; want ping back before stdin ends", n.name, ev, err)
	}
	if err := s.CloseStdin(ctx); err != nil {
		t.Fatal(err)
	}
	for ev.Type != "result" {
		if ev, err = s.Next(ctx); err != nil {
			t.Fatalf("interactive exec through %s: %v", n.name, err)
		}
	}
	var res api.ExecuteResponse
	if err := ev.Result(&res); err != nil || res.Status != "ok" {
		t.Fatalf("interactive exec through %s: result %s, %v", n.name, ev.Raw, err)
	}
}
