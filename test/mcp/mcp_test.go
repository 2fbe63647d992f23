// Package mcp_test drives sandboxd's MCP server with the official
// TypeScript SDK client (@modelcontextprotocol/sdk from npm, pinned in
// client/package-lock.json) over both transports: `sandboxd mcp` on
// stdio, and the daemon's /mcp over HTTP with a bearer token.
package mcp_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image/color"
	"image/png"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/mcpserver"
)

var toolNames = []string{"create_sandbox", "delete_sandbox", "exec", "list_files", "list_languages", "read_file", "run_code", "write_file"}

// pngProgram writes a 2x1 PNG (a red pixel, a blue one) to /work with
// the standard library only.
const pngProgram = `import struct, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
rows = b"\x00\xff\x00\x00\x00\x00\xff"
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open("plot.png", "wb").write(png)
print("saved")
`

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="red"/></svg>`

// step is one tool call and what its result must be.
type step struct {
	name  string
	call  call
	check func(t *testing.T, r result)
}

func args(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// scenario is what each transport must do: run_code in three languages,
// an image, tool errors, and a session from create_sandbox to after
// delete_sandbox.
func scenario() []step {
	return []step{
		{"python reverses stdin", call{"run_code", args("language", "python", "code", "print(input()[::-1])", "stdin", "hello")},
			runOK("olleh\n", "")},
		{"lua gets its args", call{"run_code", args("language", "lua", "code", `print(table.concat(arg, "+"))`, "args", []string{"a", "b"})},
			runOK("a+b\n", "")},
		{"bash fails with stderr", call{"run_code", args("language", "bash", "code", "echo $((6*7)); echo oops >&2; exit 3")},
			func(t *testing.T, r result) {
				out := structured[mcpserver.RunCodeOutput](t, r)
				if out.Status != "runtime_error" || out.Run == nil || out.Run.ExitCode != 3 || out.Run.Stdout != "42\n" || out.Run.Stderr != "oops\n" {
					t.Errorf("got %+v run %+v", out, out.Run)
				}
			}},
		{"a PNG comes back as an image", call{"run_code", args("language", "python", "code", pngProgram)}, checkPNG},
		{"an unknown language is a tool error", call{"run_code", args("language", "intercal", "code", "PLEASE GIVE UP")},
			toolError("unknown_language", "python")},
		{"list_languages", call{"list_languages", args()}, checkLanguages},
		{"create_sandbox", call{"create_sandbox", args("language", "python")}, func(t *testing.T, r result) {
			out := structured[mcpserver.SandboxOutput](t, r)
			if !strings.HasPrefix(out.SandboxID, "sb-") || out.Language != "python" || out.ExpiresAt.IsZero() {
				t.Errorf("got %+v", out)
			}
		}},
		{"write_file", call{"write_file", args("sandbox_id", "$sandbox", "path", "data/in.txt", "content", "3 4\n")},
			func(t *testing.T, r result) {
				if e := structured[mcpserver.FileEntry](t, r); e.Path != "/work/data/in.txt" || e.Size != 4 || e.Type != "file" {
					t.Errorf("got %+v", e)
				}
			}},
		{"exec reads it and writes another", call{"exec", args("sandbox_id", "$sandbox", "command",
			`python3 -c 'a, b = map(int, open("data/in.txt").read().split()); open("sum.txt", "w").write(str(a + b))' && cat sum.txt`)},
			func(t *testing.T, r result) {
				if out := structured[mcpserver.RunResult](t, r); out.Status != "ok" || out.Stdout != "7" || out.ExitCode != 0 {
					t.Errorf("got %+v", out)
				}
			}},
		{"read_file", call{"read_file", args("sandbox_id", "$sandbox", "path", "sum.txt")}, func(t *testing.T, r result) {
			if out := structured[mcpserver.ReadFileOutput](t, r); out.Content != "7" || out.Size != 1 || out.Truncated {
				t.Errorf("got %+v", out)
			}
		}},
		{"exec with cmd writes an SVG", call{"exec", args("sandbox_id", "$sandbox", "cmd", []string{"/bin/sh", "-c", "printf '%s' \"$0\" > pic.svg", svg})},
			func(t *testing.T, r result) {
				if out := structured[mcpserver.RunResult](t, r); out.Status != "ok" {
					t.Errorf("got %+v", out)
				}
			}},
		{"read_file of an SVG is an image", call{"read_file", args("sandbox_id", "$sandbox", "path", "/work/pic.svg")}, checkSVG},
		{"list_files", call{"list_files", args("sandbox_id", "$sandbox", "recursive", true)}, func(t *testing.T, r result) {
			out := structured[mcpserver.ListFilesOutput](t, r)
			var paths []string
			for _, e := range out.Entries {
				paths = append(paths, e.Path)
			}
			for _, want := range []string{"/work/data", "/work/data/in.txt", "/work/sum.txt", "/work/pic.svg"} {
				if !slices.Contains(paths, want) {
					t.Errorf("%s is not listed: %v", want, paths)
				}
			}
		}},
		{"delete_sandbox", call{"delete_sandbox", args("sandbox_id", "$sandbox")}, func(t *testing.T, r result) {
			if out := structured[mcpserver.DeleteSandboxOutput](t, r); !out.Deleted || !strings.HasPrefix(out.SandboxID, "sb-") {
				t.Errorf("got %+v", out)
			}
		}},
		{"exec after delete is a tool error", call{"exec", args("sandbox_id", "$sandbox", "command", "true")},
			toolError("unknown_sandbox", "no sandbox with this id")},
	}
}

func runOK(stdout, stderr string) func(t *testing.T, r result) {
	return func(t *testing.T, r result) {
		out := structured[mcpserver.RunCodeOutput](t, r)
		if out.Status != "ok" || out.Run == nil || out.Run.Stdout != stdout || out.Run.Stderr != stderr || out.Version == "" {
			t.Errorf("got %+v run %+v", out, out.Run)
		}
		if out.Run != nil && (out.Run.WallTimeMS <= 0 || out.Run.MemoryPeakBytes <= 0) {
			t.Errorf("no figures: %+v", out.Run)
		}
	}
}

// toolError checks an isError result whose text has the API's code and
// part of its message, and nothing of a Go trace.
func toolError(code, message string) func(t *testing.T, r result) {
	return func(t *testing.T, r result) {
		if !r.IsError || len(r.Content) != 1 || r.Content[0].Type != "text" {
			t.Fatalf("want one text tool error, got %+v", r)
		}
		text := r.Content[0].Text
		if !strings.HasPrefix(text, code+": ") || !strings.Contains(text, message) || strings.Contains(text, "goroutine") || strings.Contains(text, ".go:") {
			t.Errorf("error text %q, want %q and %q", text, code, message)
		}
	}
}

func checkPNG(t *testing.T, r result) {
	out := structured[mcpserver.RunCodeOutput](t, r)
	if out.Run == nil || out.Run.Stdout != "saved\n" || len(out.Run.Files) != 1 || out.Run.Files[0].Name != "plot.png" || out.Run.Files[0].MIMEType != "image/png" {
		t.Fatalf("got %+v run %+v", out, out.Run)
	}
	imgs := images(r)
	if len(imgs) != 1 || imgs[0].MIMEType != "image/png" {
		t.Fatalf("image content %+v", r.Content)
	}
	data, err := base64.StdEncoding.DecodeString(imgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the image is not a PNG: %v", err)
	}
	red, blue := color.RGBAModel.Convert(img.At(0, 0)).(color.RGBA), color.RGBAModel.Convert(img.At(1, 0)).(color.RGBA)
	if b := img.Bounds(); b.Dx() != 2 || b.Dy() != 1 || red != (color.RGBA{255, 0, 0, 255}) || blue != (color.RGBA{0, 0, 255, 255}) {
		t.Errorf("image %v: pixels %v %v", img.Bounds(), red, blue)
	}
}

func checkSVG(t *testing.T, r result) {
	out := structured[mcpserver.ReadFileOutput](t, r)
	imgs := images(r)
	if out.MIMEType != "image/svg+xml" || out.Content != "" || len(imgs) != 1 || imgs[0].MIMEType != "image/svg+xml" {
		t.Fatalf("got %+v, content %+v", out, r.Content)
	}
	if data, _ := base64.StdEncoding.DecodeString(imgs[0].Data); string(data) != svg {
		t.Errorf("image data %q", data)
	}
}

func checkLanguages(t *testing.T, r result) {
	out := structured[mcpserver.ListLanguagesOutput](t, r)
	found := map[string]mcpserver.Language{}
	for _, l := range out.Languages {
		found[l.Name] = l
	}
	py, c := found["python"], found["c"]
	if !py.Available || py.Version == "" || py.Main != "main.py" || !slices.Contains(py.Aliases, "py") {
		t.Errorf("python: %+v", py)
	}
	if !c.Compiled || c.Main != "main.c" || c.Available {
		t.Errorf("c (compiled, its image not imported here): %+v", c)
	}
}

// checkSession checks the tools list and every step's result.
func checkSession(t *testing.T, s session, steps []step) {
	var names []string
	for _, tl := range s.Tools {
		names = append(names, tl.Name)
		if tl.Description == "" || tl.Output["type"] != "object" || tl.Input["type"] != "object" {
			t.Errorf("tool %s: description %q, input %v, output %v", tl.Name, tl.Description, tl.Input, tl.Output)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, toolNames) {
		t.Errorf("tools %v, want %v", names, toolNames)
	}
	if s.Server.Name != "sandboxd" {
		t.Errorf("server %+v", s.Server)
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) { st.check(t, s.Results[i]) })
	}
}

func calls(steps []step) []call {
	var out []call
	for _, s := range steps {
		out = append(out, s.call)
	}
	return out
}

// Both transports, each through the whole scenario; then who the calls
// of /mcp are made as, and who may call it. One daemon for all, so that
// the images are imported once.
func TestMCP(t *testing.T) {
	dir := clientDir(t)
	d := startDaemon(t, "--max-sessions-per-user", "1")
	steps := scenario()
	t.Run("stdio", func(t *testing.T) {
		checkSession(t, runClient(t, dir, calls(steps), "stdio", os.Getenv("SANDBOXD_BIN"), `["--socket", "`+d.Socket+`"]`), steps)
	})
	t.Run("http", func(t *testing.T) {
		checkSession(t, runClient(t, dir, calls(steps), "http", d.url, token(t, "alice")), steps)
	})
	if left, err := client.NewTCP(d.addr, token(t, "alice"), nil).Sandboxes(t.Context()); err != nil || len(left) != 0 {
		t.Errorf("sandboxes left: %v %v", left, err)
	}
	t.Run("stdio over TCP", func(t *testing.T) { checkURL(t, dir, d) })
	t.Run("callers", func(t *testing.T) { checkCallers(t, dir, d) })
	t.Run("openapi", func(t *testing.T) { checkOpenAPI(t, d) })
	t.Run("stateless", func(t *testing.T) { checkStateless(t, d) })
}

// checkURL runs `sandboxd mcp --url ... --token ...`: its calls reach the
// daemon's TCP listener as the token's subject.
func checkURL(t *testing.T, dir string, d *daemon) {
	alice := token(t, "alice")
	flags, _ := json.Marshal([]string{"--url", "http://" + d.addr, "--token", alice})
	s := runClient(t, dir, []call{
		{"run_code", args("language", "python", "code", "print(6 * 7)")},
		{"create_sandbox", args("language", "bash")},
	}, "stdio", os.Getenv("SANDBOXD_BIN"), string(flags))
	runOK("42\n", "")(t, s.Results[0])
	id := structured[mcpserver.SandboxOutput](t, s.Results[1]).SandboxID
	c := client.NewTCP(d.addr, alice, nil)
	if sb, err := c.Sandbox(t.Context(), id); err != nil || sb.Language != "bash" {
		t.Errorf("alice's sandbox %s through the API: %+v %v", id, sb, err)
	}
	if err := c.DeleteSandbox(t.Context(), id); err != nil {
		t.Error(err)
	}
}
