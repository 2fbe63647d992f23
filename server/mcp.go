package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sandboxd/sandboxd/client"
	"github.com/sandboxd/sandboxd/mcpserver"
)

// routeMCP serves the MCP streamable HTTP transport at /mcp, behind the
// same authentication as every route (it is in s.mux). Each tool call is
// an API call made in process as the /mcp request's own caller, through
// the same routes, so it meets the same admission, rate limits, quotas,
// session ownership and audit as if the caller had made it directly.
//
// The transport is stateless: every POST is answered by a server made for
// its caller, and no MCP session outlives a request, so no session can be
// taken over by another caller, and a token's expiry or a peer's rights
// count at each call.
func (s *Server) routeMCP() {
	cache := mcp.NewSchemaCache()
	api := s.recoverPanics(withRequestID(s.refuseUncleanPaths(s.mux)))
	opts := &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true, Logger: s.log}
	if s.MaxBody > 0 {
		opts.MaxRequestBodyBytes = s.MaxBody
	}
	h := mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		c := client.NewWithTransport(inProcess{api: api, caller: callerOf(r.Context())})
		return mcpserver.New(c, mcpserver.Options{Version: s.Version, SchemaCache: cache})
	}, opts)
	s.mux.Handle("/mcp", h)
}

// inProcess is an http.RoundTripper that serves requests with the API's
// handler in this process, as caller: no socket, no second
// authentication (the /mcp request was authenticated), and the answer's
// body streamed through a pipe, so a large file is never held whole.
type inProcess struct {
	api    http.Handler
	caller *Caller
}

func (p inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := context.WithValue(req.Context(), callerKey{}, p.caller)
	r := req.Clone(ctx)
	if r.Body == nil {
		r.Body = http.NoBody
	}
	r.RequestURI = r.URL.RequestURI()
	pr, pw := io.Pipe()
	w := &pipeResponse{header: http.Header{}, body: pw, ready: make(chan struct{})}
	go p.serve(w, r)
	select {
	case <-w.ready:
	case <-ctx.Done():
		pr.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}
	return &http.Response{StatusCode: w.status, Status: http.StatusText(w.status), Header: w.sent, Body: pr,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, ContentLength: -1, Request: req}, nil
}

// errAborted ends the body of a handler that aborted (http.ErrAbortHandler,
// which recoverPanics passes on: it must not end the daemon here, in a
// goroutine of our own).
var errAborted = errors.New("the request was aborted")

func (p inProcess) serve(w *pipeResponse, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			w.WriteHeader(http.StatusInternalServerError)
			w.body.CloseWithError(errAborted)
			return
		}
		w.WriteHeader(http.StatusOK) // a handler that wrote nothing
		w.body.Close()
	}()
	p.api.ServeHTTP(w, r)
}

// pipeResponse is the handler's side of an in-process answer: the status
// and headers go to RoundTrip once (ready), the body through the pipe.
type pipeResponse struct {
	header http.Header
	sent   http.Header
	status int
	body   *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
}

func (w *pipeResponse) Header() http.Header { return w.header }

func (w *pipeResponse) WriteHeader(code int) {
	w.once.Do(func() {
		w.status, w.sent = code, w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// Flush is a no-op: every write already reaches the reader.
func (w *pipeResponse) Flush() {}
