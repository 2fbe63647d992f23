package mcp_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// checkOpenAPI checks the answers of /mcp against api/openapi.yaml: a
// request, a notification, one that does not accept JSON; and that /mcp
// has the API's access rules: over TCP, no token or a bad one is 401.
func checkOpenAPI(t *testing.T, d *daemon) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	cases := []struct {
		name, body, accept string
		auth               string // the token's subject, "bad", or none
		status             int
	}{
		{"initialize", initialize, "application/json, text/event-stream", "alice", http.StatusOK},
		{"tools/list", `{"jsonrpc":"2.0","id":"a","method":"tools/list"}`, "application/json, text/event-stream", "alice", http.StatusOK},
		{"a notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "application/json, text/event-stream", "alice", http.StatusAccepted},
		{"no token", initialize, "application/json, text/event-stream", "", http.StatusUnauthorized},
		{"a bad token", initialize, "application/json, text/event-stream", "bad", http.StatusUnauthorized},
		{"no JSON accepted", initialize, "text/html", "alice", http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, d.url, strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", c.accept)
			switch c.auth {
			case "bad":
				req.Header.Set("Authorization", "Bearer "+token(t, "alice")+"x")
			case "alice":
				req.Header.Set("Authorization", "Bearer "+token(t, "alice"))
			}
			route, params, err := router.FindRoute(withHost(req))
			if err != nil {
				t.Fatalf("no route in the schema: %v", err)
			}
			in := &openapi3filter.RequestValidationInput{Request: withHost(req), PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
				t.Fatalf("the schema refuses the request: %v", err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, body, c.status)
			}
			if id := resp.Header.Get("Mcp-Session-Id"); id != "" {
				t.Errorf("a session id %q from a stateless server", id)
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
				Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body))}
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Errorf("response %d %s does not match the schema: %v", resp.StatusCode, body, err)
			}
		})
	}
}

// checkStateless checks that /mcp keeps no MCP session: GET (a session's
// event stream) and DELETE (its end) are 405.
func checkStateless(t *testing.T, d *daemon) {
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		req, _ := http.NewRequestWithContext(t.Context(), method, d.url, nil)
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token(t, "alice"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /mcp: %d, want 405", method, resp.StatusCode)
		}
	}
}

// withHost is req addressed to the schema's server (http://localhost),
// with a body of its own, for the router and the request's validation.
func withHost(req *http.Request) *http.Request {
	r := req.Clone(req.Context())
	r.URL.Host, r.Host = "localhost", "localhost"
	if req.GetBody != nil {
		r.Body, _ = req.GetBody()
	}
	return r
}
