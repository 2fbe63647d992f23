// Package mcpserver is sandboxd's Model Context Protocol server: tools
// that let a model run code and use session sandboxes. Every tool is a
// call of the Go client, so MCP is one more caller of the HTTP API, with
// its access rules, quotas, rate limits and audit: `sandboxd mcp` gives
// it a client of a daemon's socket or TCP listener (stdio transport), and
// the daemon's /mcp endpoint one that calls the API in process as the
// endpoint's own caller (server/mcp.go). docs/mcp.md documents the tools.
package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandboxd/sandboxd/client"
)

// Options configure a server.
type Options struct {
	// Version is sandboxd's, reported to clients.
	Version string
	// SchemaCache keeps the tools' schemas across servers, for a caller
	// that makes a server per request (the daemon's /mcp); nil: none.
	SchemaCache *mcp.SchemaCache
}

const instructions = `sandboxd runs code in isolated Linux sandboxes with no network.
Use run_code for a one-off program (list_languages names the languages).
For work across calls (files that persist, several commands), create_sandbox,
then exec, write_file, read_file and list_files, and delete_sandbox when done.
Files are under /work (persistent in a sandbox) and /tmp. Images (PNG, JPEG,
SVG) that a program writes to /work come back as image content.`

// New returns an MCP server whose tools call the daemon through c.
func New(c *client.Client, o Options) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "sandboxd", Title: "sandboxd", Version: o.Version},
		&mcp.ServerOptions{Instructions: instructions, SchemaCache: o.SchemaCache, Capabilities: &mcp.ServerCapabilities{}})
	t := tools{c: c}
	add(s, "run_code", runCodeDoc, t.runCode)
	add(s, "list_languages", "List the languages run_code and create_sandbox accept, with their versions and aliases.", t.listLanguages)
	add(s, "create_sandbox", createSandboxDoc, t.createSandbox)
	add(s, "exec", execDoc, t.exec)
	add(s, "write_file", "Write a file in a sandbox (text, or base64 for binary content). Missing directories are made; an existing file is replaced.", t.writeFile)
	add(s, "read_file", "Read a file of a sandbox. Text comes back as text, other content as base64, and a PNG, JPEG or SVG image as image content.", t.readFile)
	add(s, "list_files", "List a directory of a sandbox (default /work), or its whole tree with recursive.", t.listFiles)
	add(s, "delete_sandbox", "End a sandbox: its processes and files are gone. Sandboxes also end on their own after their TTL or idle timeout.", t.deleteSandbox)
	return s
}

const runCodeDoc = `Run a program once in a fresh sandbox and return its output. Give the language and the code;
compiled languages are compiled first (a failed compile gives status compile_error and the compiler's messages).
The sandbox has no network; the program's working directory is /work. Files it writes there can be
collected: PNG, JPEG and SVG files at the top of /work come back as images by default, so a plot saved as
plot.png is seen. The result has status (ok, runtime_error, time_limit, wall_time_limit, memory_limit,
output_limit), exit_code, stdout, stderr and the time and memory used.`

const createSandboxDoc = `Create a sandbox that lives across calls, from a language (its image and tools) or an image.
Its /work and /tmp persist between execs until delete_sandbox, its TTL or its idle timeout; each exec runs
in a fresh process tree over them. Returns the sandbox_id the other sandbox tools take.`

const execDoc = `Run a command in a sandbox made by create_sandbox, in /work unless cwd says otherwise, and return
its status, exit_code, stdout, stderr and the time and memory used. Give command (a shell line) or cmd
(an argument list). Files written under /work stay for the next calls.`

// handler is a tool's typed function: its output, and content to give
// besides the output's JSON (images), or an error.
type handler[In, Out any] func(ctx context.Context, in In) (Out, []mcp.Content, error)

// add registers a tool. Its result is the output as structured content
// and as JSON text, then the extra content; an error is a tool error
// (isError) whose text is the API's code and message.
func add[In, Out any](s *mcp.Server, name, doc string, h handler[In, Out]) {
	mcp.AddTool(s, &mcp.Tool{Name: name, Description: doc},
		func(ctx context.Context, _ *mcp.CallToolRequest, in In) (*mcp.CallToolResult, Out, error) {
			out, extra, err := h(ctx, in)
			if err != nil {
				var zero Out
				return nil, zero, toolError(err)
			}
			if len(extra) == 0 {
				return nil, out, nil // the SDK adds the JSON text
			}
			text, err := json.Marshal(out)
			if err != nil {
				var zero Out
				return nil, zero, fmt.Errorf("encoding the result: %w", err)
			}
			return &mcp.CallToolResult{Content: append([]mcp.Content{&mcp.TextContent{Text: string(text)}}, extra...)}, out, nil
		})
}

// toolError is what a model reads of a failed call: the API's error code
// and message ("unknown_sandbox: no sandbox with this id ..."), which
// never hold a host path or a stack; a client-side failure keeps its own
// one-line message.
func toolError(err error) error {
	var ae *client.Error
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.Code, ae.Message)
	}
	return err
}
