package client

import (
	"context"
	"io"
	"net/http"
)

// OpenFile streams a file's content; the caller reads what it needs and
// closes it, so a large file is never held whole (ReadFile reads it all).
func (c *Client) OpenFile(ctx context.Context, id, path string) (io.ReadCloser, error) {
	return c.stream(ctx, http.MethodGet, filesPath(id, path), nil)
}
