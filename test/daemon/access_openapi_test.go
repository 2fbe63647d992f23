package daemon_test

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

	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// The access answers (401 with WWW-Authenticate, 429 with Retry-After) and
// GET /metrics match api/openapi.yaml.
func TestAccessAnswersMatchOpenAPI(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t, append(jwtFlags(t), "--require-auth", "--rate-limit", "0.01", "--rate-burst", "1")...)
	tok := goodToken(t, "alice")
	cases := []struct {
		name, method, path, token, body string
		status                          int
	}{
		{"no token", "POST", "/v1/execute", "", `{"image":"nosuch","cmd":["true"]}`, 401},
		{"bad token on images", "GET", "/v1/images", "x.y.z", "", 401},
		{"first", "POST", "/v1/execute", tok, `{"image":"nosuch","cmd":["true"]}`, 404},
		{"past the burst", "POST", "/v1/execute", tok, `{"image":"nosuch","cmd":["true"]}`, 429},
		{"metrics", "GET", "/metrics", tok, "", 200},
	}
	hc := testdaemon.HTTPClient(d.Socket)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, "http://localhost"+c.path, strings.NewReader(c.body))
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("no route in the schema: %v", err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, body, c.status)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
				Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Errorf("response %d %.200s does not match the schema: %v", resp.StatusCode, body, err)
			}
		})
	}
}
