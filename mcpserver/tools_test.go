package mcpserver

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
)

// handlerTransport serves the client's requests with an http.Handler: the
// tools' side of the API, without a daemon (test/mcp has the real one).
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	t.h.ServeHTTP(rec, r)
	return &http.Response{StatusCode: rec.status, Header: rec.header, Body: io.NopCloser(strings.NewReader(rec.body.String())), Request: r}, nil
}

type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.status = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// fakeAPI answers what the cases below need and records the last
// language-mode request.
func fakeAPI(last *api.ExecuteRequest) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/languages", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode([]api.LanguageInfo{{Name: "java", Aliases: []string{"jdk"}, Main: "Main.java", Compiled: true}})
	})
	mux.HandleFunc("POST /v1/execute", func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(last)
		failed := &api.Result{Status: api.StatusRuntimeError, ExitCode: 1, Stderr: "Main.java:1: error"}
		json.NewEncoder(w).Encode(api.LanguageResponse{Language: "java", Version: "17.0.1", Status: api.StatusCompileError,
			Compile: &api.CompileResult{Result: failed}})
	})
	mux.HandleFunc("GET /v1/sandboxes/{id}/files/{path...}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("a", 100))
	})
	return mux
}

func callTool(t *testing.T, s *mcp.Server, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ct, st := mcp.NewInMemoryTransports()
	ss, err := s.Connect(t.Context(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	r, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The tools' own logic: the main file's name from an alias, a failed
// compile, read_file's cut, the refusals made before any API call.
func TestTools(t *testing.T) {
	var last api.ExecuteRequest
	s := New(client.NewWithTransport(handlerTransport{fakeAPI(&last)}), Options{})
	cases := []struct {
		tool string
		args map[string]any
		want []string // in the result's text
		err  bool
	}{
		{"run_code", map[string]any{"language": "JDK", "code": "class Main {}"}, []string{`"status":"compile_error"`, `"compile":{`, `"stderr":"Main.java:1: error"`, `"version":"17.0.1"`}, false},
		{"read_file", map[string]any{"sandbox_id": "sb-1", "path": "a.txt", "max_bytes": 10}, []string{`"size":10`, `"content":"aaaaaaaaaa"`, `"truncated":true`}, false},
		{"exec", map[string]any{"sandbox_id": "sb-1"}, []string{"invalid_request: give command (a shell line) or cmd"}, true},
		{"exec", map[string]any{"sandbox_id": "sb-1", "command": "ls", "cmd": []string{"ls"}}, []string{"invalid_request: give command or cmd, not both"}, true},
		{"write_file", map[string]any{"sandbox_id": "sb-1", "path": "x", "content": "y", "mode": "rwx"}, []string{`invalid_request: mode "rwx"`}, true},
		{"write_file", map[string]any{"sandbox_id": "sb-1", "path": "x", "content": "!", "encoding": "base64"}, []string{"invalid_request: content is not valid base64"}, true},
		{"run_code", map[string]any{"language": "python"}, []string{`missing properties: ["code"]`}, true},
		{"delete_sandbox", map[string]any{"sandbox_id": "sb-1", "force": true}, []string{"force"}, true},
	}
	for _, c := range cases {
		r := callTool(t, s, c.tool, c.args)
		text := r.Content[0].(*mcp.TextContent).Text
		for _, w := range c.want {
			if r.IsError != c.err || !strings.Contains(text, w) {
				t.Errorf("%s %v: isError %v, %s; want %q", c.tool, c.args, r.IsError, text, w)
			}
		}
		if strings.Contains(text, `"run"`) {
			t.Errorf("%s %v: a run in %s", c.tool, c.args, text)
		}
	}
	if len(last.Files) != 1 || last.Files[0].Name != "Main.java" || last.Language != "JDK" || len(last.Collect) != len(defaultCollect) {
		t.Errorf("the language request: %+v", last)
	}
}
