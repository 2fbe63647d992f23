// Package client talks to a sandboxd daemon over its Unix socket. The
// sandboxd CLI uses it; Go services can embed it the same way.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/sandboxd/sandboxd.sock"

// Client is a sandboxd API client. It is safe for concurrent use.
type Client struct {
	http *http.Client
	base string
}

// New returns a client for the daemon listening on the Unix socket path.
func New(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Client{http: &http.Client{Transport: tr}, base: "http://sandboxd"}
}

// Error is an API error answer.
type Error struct {
	HTTPStatus int
	Code       string
	Message    string
	// RetryAfter is set for "busy" answers.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("sandboxd is not reachable: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("reading the daemon's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
			return &Error{HTTPStatus: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: string(data)}
		}
		e := &Error{HTTPStatus: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the daemon's answer: %w", err)
	}
	return nil
}

func (c *Client) doJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	return c.do(ctx, method, path, body, "application/json", out)
}

// Execute runs a request and returns the daemon's response.
func (c *Client) Execute(ctx context.Context, req *api.ExecuteRequest) (*api.ExecuteResponse, error) {
	var out api.ExecuteResponse
	if err := c.doJSON(ctx, http.MethodPost, "/v1/execute", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExecuteLanguage runs a language-mode request (req.Language set).
func (c *Client) ExecuteLanguage(ctx context.Context, req *api.ExecuteRequest) (*api.LanguageResponse, error) {
	var out api.LanguageResponse
	if err := c.doJSON(ctx, http.MethodPost, "/v1/execute", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Languages lists the daemon's languages.
func (c *Client) Languages(ctx context.Context) ([]api.LanguageInfo, error) {
	var out []api.LanguageInfo
	return out, c.doJSON(ctx, http.MethodGet, "/v1/languages", nil, &out)
}

// Images lists the stored images.
func (c *Client) Images(ctx context.Context) ([]api.Image, error) {
	var out []api.Image
	return out, c.doJSON(ctx, http.MethodGet, "/v1/images", nil, &out)
}

// Image describes one image.
func (c *Client) Image(ctx context.Context, name string) (*api.Image, error) {
	var out api.Image
	return &out, c.doJSON(ctx, http.MethodGet, "/v1/images/"+url.PathEscape(name), nil, &out)
}

// RemoveImage deletes an image.
func (c *Client) RemoveImage(ctx context.Context, name string) error {
	return c.doJSON(ctx, http.MethodDelete, "/v1/images/"+url.PathEscape(name), nil, nil)
}

// Pull fetches ref from its registry into the store as name ("" derives it).
func (c *Client) Pull(ctx context.Context, ref, name string) (*api.Image, error) {
	var out api.Image
	return &out, c.doJSON(ctx, http.MethodPost, "/v1/images/pull", api.PullRequest{Ref: ref, Name: name}, &out)
}

// PullProgress pulls like Pull and calls progress as layers download
// (compressed bytes done and total), from a streamed answer.
func (c *Client) PullProgress(ctx context.Context, ref, name string, progress func(done, total int64)) (*api.Image, error) {
	body, err := json.Marshal(api.PullRequest{Ref: ref, Name: name})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/images/pull", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/x-ndjson")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sandboxd is not reachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			return nil, &Error{HTTPStatus: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return nil, &Error{HTTPStatus: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: string(data)}
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev api.PullEvent
		if err := dec.Decode(&ev); err != nil {
			return nil, fmt.Errorf("reading the pull's progress: %w", err)
		}
		switch {
		case ev.Error != nil:
			return nil, &Error{HTTPStatus: http.StatusOK, Code: ev.Error.Code, Message: ev.Error.Message}
		case ev.Image != nil:
			return ev.Image, nil
		case ev.Progress != nil && progress != nil:
			progress(ev.Progress.Done, ev.Progress.Total)
		}
	}
}

// Import stores the tar stream r (docker save, OCI layout or plain rootfs).
func (c *Client) Import(ctx context.Context, r io.Reader, name string) (*api.Image, error) {
	var out api.Image
	return &out, c.do(ctx, http.MethodPost, "/v1/images/import?name="+url.QueryEscape(name), r, "application/x-tar", &out)
}

// Health returns the daemon's health.
func (c *Client) Health(ctx context.Context) (*api.Health, error) {
	var out api.Health
	return &out, c.doJSON(ctx, http.MethodGet, "/v1/healthz", nil, &out)
}

// Version returns the daemon's versions.
func (c *Client) Version(ctx context.Context) (*api.VersionInfo, error) {
	var out api.VersionInfo
	return &out, c.doJSON(ctx, http.MethodGet, "/v1/version", nil, &out)
}

// Ready asks the readiness probe: a nil error and Status "ready", or
// "not_ready" with the daemon's reason (its 503 is not an error here:
// it is the answer). Any other failure is an error.
func (c *Client) Ready(ctx context.Context) (*api.Readiness, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/readyz", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sandboxd is not reachable: %w", err)
	}
	defer resp.Body.Close()
	var out api.Readiness
	if (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable) ||
		json.NewDecoder(resp.Body).Decode(&out) != nil || out.Status == "" {
		return nil, fmt.Errorf("readyz answered %s", resp.Status)
	}
	return &out, nil
}
