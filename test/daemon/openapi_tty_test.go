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

// Terminal requests and their answers match api/openapi.yaml too: "tty",
// "rows" and "cols" in the schema, the bounds of the size.
func TestTerminalRequestsMatchOpenAPI(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	hc := testdaemon.HTTPClient(d.Socket)
	for _, c := range []struct {
		body         string
		validRequest bool
	}{
		{`{"image":"busybox","cmd":["sh","-c","stty size; echo e >&2"],"tty":true,"rows":30,"cols":100}`, true},
		{`{"image":"busybox","cmd":["true"],"rows":30}`, true}, // the schema cannot say "only with tty": a 400
		{`{"image":"busybox","cmd":["true"],"tty":true,"rows":1001}`, false},
	} {
		req, _ := http.NewRequest("POST", "http://localhost/v1/execute", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatal(err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		if err := openapi3filter.ValidateRequest(context.Background(), in); (err == nil) != c.validRequest {
			t.Errorf("%s: schema says request valid=%v: %v", c.body, err == nil, err)
		}
		req.Body = io.NopCloser(strings.NewReader(c.body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(body))}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			t.Errorf("%s: response %d %s does not match the schema: %v", c.body, resp.StatusCode, body, err)
		}
	}
}
