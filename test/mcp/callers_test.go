package mcp_test

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/audit"
	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/mcpserver"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// checkCallers checks that /mcp calls are the caller's own API calls: a
// sandbox alice makes through MCP is hers (bob can neither see nor use
// it, through the API or through MCP), her session quota counts it, and
// the audit log has each call under its caller. The daemon allows one
// session per user.
func checkCallers(t *testing.T, dir string, d *daemon) {
	alice, bob := token(t, "alice"), token(t, "bob")
	made := runClient(t, dir, []call{
		{"create_sandbox", args("language", "python")},
		{"write_file", args("sandbox_id", "$sandbox", "path", "secret.txt", "content", "alice's")},
	}, "http", d.url, alice)
	id := structured[mcpserver.SandboxOutput](t, made.Results[0]).SandboxID
	structured[mcpserver.FileEntry](t, made.Results[1])

	ctx := t.Context()
	if list, err := client.NewTCP(d.addr, alice, nil).Sandboxes(ctx); err != nil || len(list) != 1 || list[0].ID != id {
		t.Errorf("alice's sandboxes through the API: %+v %v, want %s", list, err, id)
	}
	if list, err := client.NewTCP(d.addr, bob, nil).Sandboxes(ctx); err != nil || len(list) != 0 {
		t.Errorf("bob's sandboxes through the API: %+v %v, want none", list, err)
	}
	if _, err := client.NewTCP(d.addr, bob, nil).ReadFile(ctx, id, "secret.txt"); !client.IsCode(err, api.CodeUnknownSandbox) {
		t.Errorf("bob reads alice's file through the API: %v", err)
	}

	notBobs := toolError("unknown_sandbox", "another caller's")
	byBob := runClient(t, dir, []call{
		{"exec", args("sandbox_id", id, "command", "cat secret.txt")},
		{"read_file", args("sandbox_id", id, "path", "secret.txt")},
		{"delete_sandbox", args("sandbox_id", id)},
	}, "http", d.url, bob)
	for _, r := range byBob.Results {
		t.Run("bob's "+r.Name, func(t *testing.T) { notBobs(t, r) })
	}

	again := runClient(t, dir, []call{
		{"create_sandbox", args("language", "python")},
		{"read_file", args("sandbox_id", id, "path", "secret.txt")},
		{"delete_sandbox", args("sandbox_id", id)},
	}, "http", d.url, alice)
	t.Run("alice's second sandbox is over her quota", func(t *testing.T) { toolError("rate_limited", "")(t, again.Results[0]) })
	if out := structured[mcpserver.ReadFileOutput](t, again.Results[1]); out.Content != "alice's" {
		t.Errorf("alice reads her file: %+v", out)
	}
	structured[mcpserver.DeleteSandboxOutput](t, again.Results[2])
	checkAudit(t, d.audit, id)
}

// checkAudit waits for the audit lines of checkCallers's calls that
// change something: each under its caller, with the API's outcome.
func checkAudit(t *testing.T, path, id string) {
	want := []string{
		"alice sandbox.create " + id + " ok",
		"alice sandbox.write " + id + " ok",
		"bob sandbox.exec " + id + " unknown_sandbox",
		"bob sandbox.delete " + id + " unknown_sandbox",
		"alice sandbox.create  rate_limited",
		"alice sandbox.delete " + id + " ok",
	}
	var got []string
	testdaemon.WaitUntil(t, "the audit lines of the MCP calls", 10*time.Second, func() bool {
		data, _ := os.ReadFile(path)
		got = got[:0]
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			var rec audit.Record
			if json.Unmarshal(line, &rec) == nil && (rec.User == "alice" || rec.User == "bob") && rec.Transport == "tcp" && rec.Auth == "jwt" {
				got = append(got, strings.Join([]string{rec.User, rec.Action, rec.SandboxID, rec.Status}, " "))
			}
		}
		return len(got) >= len(want)
	})
	// Alice's run_code calls of the scenario are there too; these are in order.
	var calls []string
	for _, g := range got {
		if !strings.Contains(g, " execute ") {
			calls = append(calls, g)
		}
	}
	if !slices.Equal(calls[len(calls)-len(want):], want) {
		t.Errorf("audit lines:\n%s\nwant at the end:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
}

// MCP calls and direct API calls of one user draw on one rate limit: two
// tool calls spend the burst, the third and a direct call are refused.
func TestMCPSharesTheRateLimit(t *testing.T) {
	dir := clientDir(t)
	d := testdaemon.Start(t, "--rate-limit", "0.01", "--rate-burst", "2")
	d.ImportDir("busybox", os.Getenv("SANDBOXD_ROOTFS"))
	s := runClient(t, dir, []call{
		{"create_sandbox", args("image", "busybox")},
		{"delete_sandbox", args("sandbox_id", "$sandbox")},
		{"create_sandbox", args("image", "busybox")},
	}, "stdio", os.Getenv("SANDBOXD_BIN"), `["--socket", "`+d.Socket+`"]`)
	structured[mcpserver.SandboxOutput](t, s.Results[0])
	structured[mcpserver.DeleteSandboxOutput](t, s.Results[1])
	toolError("rate_limited", "too many requests from this user")(t, s.Results[2])
	if _, err := d.Client.Execute(t.Context(), &api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}}); !client.IsCode(err, api.CodeRateLimited) {
		t.Errorf("a direct call after the tool calls: %v, want rate_limited", err)
	}
}
