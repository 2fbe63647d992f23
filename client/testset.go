package client

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/sandboxd/sandboxd/api"
)

// CreateTestset uploads a test set: r is a tar, a gzipped tar or a zip of
// NAME.in with NAME.ans (or NAME.out) per test and an optional
// testset.toml. Run it with ExecuteRequest.Testset set to the answer's ID.
func (c *Client) CreateTestset(ctx context.Context, r io.Reader) (*api.Testset, error) {
	var out api.Testset
	if err := c.do(ctx, http.MethodPost, "/v1/testsets", r, "application/octet-stream", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Testsets lists the caller's test sets, without their tests.
func (c *Client) Testsets(ctx context.Context) ([]api.Testset, error) {
	var out api.TestsetList
	return out.Testsets, c.doJSON(ctx, http.MethodGet, "/v1/testsets", nil, &out)
}

// Testset describes one of the caller's test sets, with its tests.
func (c *Client) Testset(ctx context.Context, id string) (*api.Testset, error) {
	var out api.Testset
	if err := c.doJSON(ctx, http.MethodGet, "/v1/testsets/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteTestset removes one of the caller's test sets.
func (c *Client) DeleteTestset(ctx context.Context, id string) error {
	return c.doJSON(ctx, http.MethodDelete, "/v1/testsets/"+url.PathEscape(id), nil, nil)
}
