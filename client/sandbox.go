package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/api"
)

// CreateSandbox creates a sandbox that lives across calls (a session).
func (c *Client) CreateSandbox(ctx context.Context, req *api.CreateSandboxRequest) (*api.Sandbox, error) {
	var out api.Sandbox
	if err := c.doJSON(ctx, http.MethodPost, "/v1/sandboxes", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Sandboxes lists the caller's sandboxes.
func (c *Client) Sandboxes(ctx context.Context) ([]api.Sandbox, error) {
	var out api.SandboxList
	return out.Sandboxes, c.doJSON(ctx, http.MethodGet, "/v1/sandboxes", nil, &out)
}

// Sandbox describes one sandbox, with its usage.
func (c *Client) Sandbox(ctx context.Context, id string) (*api.Sandbox, error) {
	var out api.Sandbox
	if err := c.doJSON(ctx, http.MethodGet, sandboxPath(id, ""), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateSandbox changes a sandbox while it lives: its network policy
// (an empty allow-list locks it).
func (c *Client) UpdateSandbox(ctx context.Context, id string, req *api.UpdateSandboxRequest) (*api.Sandbox, error) {
	var out api.Sandbox
	if err := c.doJSON(ctx, http.MethodPatch, sandboxPath(id, ""), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteSandbox ends a sandbox; everything of it is gone when it returns.
func (c *Client) DeleteSandbox(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodDelete, sandboxPath(id, ""), nil, nil)
}

// Exec runs a command in a sandbox.
func (c *Client) Exec(ctx context.Context, id string, req *api.SandboxExecRequest) (*api.ExecuteResponse, error) {
	var out api.ExecuteResponse
	if err := c.doJSON(ctx, http.MethodPost, sandboxPath(id, "/exec"), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Detach starts req's command in the background ("detach": true) and
// returns the detached exec, running.
func (c *Client) Detach(ctx context.Context, id string, req *api.SandboxExecRequest) (*api.Exec, error) {
	r := *req
	r.Detach = true
	var out api.Exec
	if err := c.doJSON(ctx, http.MethodPost, sandboxPath(id, "/exec"), &r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Execs lists a sandbox's detached execs: the running ones and the last
// ended ones.
func (c *Client) Execs(ctx context.Context, id string) ([]api.Exec, error) {
	var out api.ExecList
	return out.Execs, c.doJSON(ctx, http.MethodGet, sandboxPath(id, "/execs"), nil, &out)
}

// DetachedExec describes one detached exec; with wait, once it has ended
// (or ctx has).
func (c *Client) DetachedExec(ctx context.Context, id, execID string, wait bool) (*api.Exec, error) {
	p := sandboxPath(id, "/execs/"+url.PathEscape(execID))
	if wait {
		p += "?wait=1"
	}
	var out api.Exec
	if err := c.doJSON(ctx, http.MethodGet, p, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// KillExec kills a detached exec; it has ended when this returns.
func (c *Client) KillExec(ctx context.Context, id, execID string) error {
	return c.doJSON(ctx, http.MethodDelete, sandboxPath(id, "/execs/"+url.PathEscape(execID)), nil, nil)
}

// WriteFile puts r's content at path in the sandbox (relative to /work, or
// absolute under /work or /tmp); mode 0 means 0644.
func (c *Client) WriteFile(ctx context.Context, id, path string, r io.Reader, mode uint32) (*api.FileEntry, error) {
	p := filesPath(id, path)
	if mode != 0 {
		p += "?mode=" + strconv.FormatUint(uint64(mode), 8)
	}
	var out api.FileEntry
	if err := c.do(ctx, http.MethodPut, p, r, "application/octet-stream", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReadFile returns a file's content.
func (c *Client) ReadFile(ctx context.Context, id, path string) ([]byte, error) {
	body, err := c.stream(ctx, http.MethodGet, filesPath(id, path), nil)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

// ListFiles lists a directory of the sandbox.
func (c *Client) ListFiles(ctx context.Context, id, path string, recursive bool) (*api.FileList, error) {
	p := filesPath(id, path)
	if recursive {
		p += "?recursive=1"
	}
	var out api.FileList
	return &out, c.doJSON(ctx, http.MethodGet, p, nil, &out)
}

// RemoveFile removes a file, or a directory (recursive for a non-empty one).
func (c *Client) RemoveFile(ctx context.Context, id, path string, recursive bool) error {
	p := filesPath(id, path)
	if recursive {
		p += "?recursive=1"
	}
	return c.doJSON(ctx, http.MethodDelete, p, nil, nil)
}

// PutArchive unpacks a tar (or gzipped tar) stream into dir.
func (c *Client) PutArchive(ctx context.Context, id, dir string, tar io.Reader) (*api.ArchiveResult, error) {
	var out api.ArchiveResult
	if err := c.do(ctx, http.MethodPut, sandboxPath(id, "/archive")+"?path="+url.QueryEscape(dir), tar, "application/x-tar", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetArchive streams path (a directory or a file) as a tar; close it.
func (c *Client) GetArchive(ctx context.Context, id, path string) (io.ReadCloser, error) {
	return c.stream(ctx, http.MethodGet, sandboxPath(id, "/archive")+"?path="+url.QueryEscape(path), nil)
}

func sandboxPath(id, rest string) string { return "/v1/sandboxes/" + url.PathEscape(id) + rest }

// filesPath puts a sandbox path in the URL: each segment escaped, and an
// absolute path's leading slash as %2F (a double slash would be cleaned),
// and "." or ".." as %2E.
func filesPath(id, path string) string {
	var b strings.Builder
	b.WriteString(sandboxPath(id, "/files/"))
	if strings.HasPrefix(path, "/") {
		b.WriteString("%2F")
		path = path[1:]
	}
	for i, seg := range strings.Split(path, "/") {
		if i > 0 {
			b.WriteString("/")
		}
		switch seg {
		case ".", "..":
			// Encoded, so no HTTP layer cleans the URL into another
			// resource; the daemon refuses them as a sandbox path.
			b.WriteString(strings.Repeat("%2E", len(seg)))
		default:
			b.WriteString(url.PathEscape(seg))
		}
	}
	return b.String()
}

// stream sends a request and returns the body of a successful answer.
func (c *Client) stream(ctx context.Context, method, path string, body io.Reader) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sandboxd is not reachable: %w", err)
	}
	if resp.StatusCode < 300 {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb api.ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
		return nil, &Error{HTTPStatus: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return nil, &Error{HTTPStatus: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: string(bytes.TrimSpace(data))}
}
