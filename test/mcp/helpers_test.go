package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// secret is the HS256 key of the test daemon's tokens.
const secret = "sandboxd-mcp-test-secret-0123456789abcdef"

// daemon is a test daemon with the languages the tests run, a TCP
// listener that takes tokens, and an audit log.
type daemon struct {
	*testdaemon.Daemon
	url   string // the /mcp endpoint on TCP
	addr  string // host:port of the TCP listener
	audit string // the audit log's path
}

// languageImages are the images the tests import: small ones, so the
// import takes a few seconds.
var languageImages = []string{"python", "lua", "bash"}

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "jwt.secret")
	writeFile(t, key, []byte(secret))
	catalog, _ := filepath.Abs("../../languages/catalog.toml")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	audit := filepath.Join(dir, "audit.log")
	d := testdaemon.StartWith(t, testdaemon.Config{Images: testdaemon.LanguageImages(t, languageImages...), Args: append([]string{"--catalog", catalog, "--concurrency", "2",
		"--listen", "unix://", "--listen", "tcp://" + addr, "--audit-log", audit,
		"--jwt-secret-file", key, "--jwt-issuer", "test", "--jwt-audience", "sandboxd"}, args...)})
	return &daemon{Daemon: d, url: "http://" + addr + "/mcp", addr: addr, audit: audit}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// token is a valid token for sub.
func token(t *testing.T, sub string) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "iss": "test", "aud": "sandboxd", "exp": time.Now().Add(time.Hour).Unix()}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// call is one tool call for the client.
type call struct {
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
}

// content is an MCP content block as the client received it.
type content struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Data     string `json:"data"`
	MIMEType string `json:"mimeType"`
}

// result is one tool call's result as the client received it.
type result struct {
	Name       string          `json:"name"`
	IsError    bool            `json:"isError"`
	Content    []content       `json:"content"`
	Structured json.RawMessage `json:"structured"`
}

// tool is a tool as tools/list gave it.
type tool struct {
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Input       map[string]any `json:"input"`
	Output      map[string]any `json:"output"`
}

// session is everything the client printed.
type session struct {
	Server  struct{ Name, Version string } `json:"server"`
	Tools   []tool                         `json:"tools"`
	Results []result                       `json:"results"`
}

// runClient runs the TypeScript SDK client (client/client.mjs) with
// args (the transport and its target) and calls, and returns what it
// received.
func runClient(t *testing.T, dir string, calls []call, args ...string) session {
	t.Helper()
	callsJSON, err := json.Marshal(calls)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append(append([]string{filepath.Join(dir, "client.mjs")}, args...), string(callsJSON))...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Env = &stdout, &stderr, os.Environ()
	if err := cmd.Run(); err != nil {
		t.Fatalf("the MCP client failed: %v\nstderr: %s\nstdout: %s", err, stderr.String(), stdout.String())
	}
	var s session
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("the client's output: %v\n%s", err, stdout.String())
	}
	if len(s.Results) != len(calls) {
		t.Fatalf("%d results for %d calls", len(s.Results), len(calls))
	}
	return s
}

// structured decodes a result's structured content into v.
func structured[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if r.IsError {
		t.Fatalf("%s: a tool error: %+v", r.Name, r.Content)
	}
	if err := json.Unmarshal(r.Structured, &v); err != nil {
		t.Fatalf("%s: structured content %s: %v", r.Name, r.Structured, err)
	}
	return v
}

// images returns a result's image content blocks.
func images(r result) []content {
	var out []content
	for _, c := range r.Content {
		if c.Type == "image" {
			out = append(out, c)
		}
	}
	return out
}
