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

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/testdaemon"
)

// Every answer of the real server, for requests of every kind, must match
// api/openapi.yaml: status codes, content types and bodies.
func TestServerMatchesOpenAPI(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	d := testdaemon.Start(t)
	d.ImportDir("busybox", testRootfs)
	sb, err := d.Client.CreateSandbox(context.Background(), &api.CreateSandboxRequest{Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	arch := string(tarArchive(t, append(members("1.in", "1", "1.ans", "1"), member{Name: "testset.toml",
		Body: "compare = \"tokens\"\n[[group]]\nname = \"g\"\n[[test]]\nname = \"1\"\ngroup = \"g\"\npoints = 1\n"})))
	set, err := d.Client.CreateTestset(context.Background(), strings.NewReader(arch))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		method, path, body string
		validRequest       bool
	}{
		{"POST", "/v1/testsets", arch, true},
		{"POST", "/v1/testsets", "not an archive", true},
		{"GET", "/v1/testsets", "", true},
		{"GET", "/v1/testsets/" + set.ID, "", true},
		{"GET", "/v1/testsets/nosuch", "", true},
		{"DELETE", "/v1/testsets/nosuch", "", true},
		{"POST", "/v1/execute", `{"image":"busybox","cmd":["echo","hi"]}`, true},
		{"POST", "/v1/execute", `{"image":"busybox","cmd":["sh","-c","printf '\\377'; exit 2"],"files":[{"name":"a","content":"eA==","encoding":"base64"}],"env":{"A":"b"},"stdin":"x"}`, true},
		{"POST", "/v1/execute", `{"image":"busybox","cmd":["sleep","2"],"limits":{"wall_time_ms":100}}`, true},
		{"POST", "/v1/execute", `{"image":"busybox","cmd":["yes"],"limits":{"output_bytes":5,"cpus":1,"memory_bytes":33554432}}`, true},
		{"POST", "/v1/execute", `{"image":"nosuch","cmd":["true"]}`, true},
		{"POST", "/v1/execute", `{"image":"busybox","cmd":["sh","-c","cp src/a.txt out.txt; printf '\\377' > b.bin; ln -s /etc/passwd l"],"files":[{"name":"src/a.txt","content":"a"}],"collect":["*.txt","b.bin","l","none"],"collect_bytes":4096,"limits":{"open_files":64}}`, true},
		{"POST", "/v1/execute", `{"image":"busybox"}`, false},
		{"POST", "/v1/execute", `{"image":"busybox","cmd":["true"],"limits":{"pids":-1}}`, false},
		{"GET", "/v1/images", "", true},
		{"GET", "/v1/images/busybox:latest", "", true},
		{"GET", "/v1/images/nosuch", "", true},
		{"DELETE", "/v1/images/nosuch", "", true},
		{"POST", "/v1/images/pull", `{"ref":""}`, true},
		{"POST", "/v1/images/build", `{"name":"built","from":"nosuch","run":[["true"]]}`, true},
		{"POST", "/v1/images/build", `{"name":"built","from":"busybox","run":[]}`, false},
		{"GET", "/v1/healthz", "", true},
		{"GET", "/v1/readyz", "", true},
		{"GET", "/v1/version", "", true},
		{"POST", "/v1/sandboxes", `{"image":"busybox","bogus":1}`, false},
		{"POST", "/v1/sandboxes", `{"image":"busybox","language":"python"}`, false},
		{"POST", "/v1/sandboxes", `{"image":"busybox","ttl_ms":0}`, false},
		{"POST", "/v1/sandboxes", `{"image":"nosuch"}`, true},
		{"GET", "/v1/sandboxes", "", true},
		{"GET", "/v1/sandboxes/nosuch", "", true},
		{"DELETE", "/v1/sandboxes/nosuch", "", true},
		{"POST", "/v1/sandboxes/nosuch/exec", `{"cmd":["true"]}`, true},
		{"POST", "/v1/sandboxes/nosuch/exec", `{"cmd":["true"],"detach":true}`, true},
		{"GET", "/v1/sandboxes/nosuch/execs", "", true},
		{"GET", "/v1/sandboxes/nosuch/execs/ex-0?wait=1", "", true},
		{"DELETE", "/v1/sandboxes/nosuch/execs/ex-0", "", true},
		{"GET", "/v1/sandboxes/nosuch/execs/ex-0/ws", "", true},
		{"POST", "/v1/sandboxes/" + sb.ID + "/exec", `{"cmd":["sh","-c","echo hi; sleep 0.2"],"detach":true}`, true},
		{"GET", "/v1/sandboxes/" + sb.ID + "/execs", "", true},
		{"GET", "/v1/sandboxes/" + sb.ID + "/execs/ex-0", "", true},
		{"POST", "/v1/sandboxes/" + sb.ID + "/exec", `{"cmd":["true"],"detach":true,"stream":true}`, true},
		{"PATCH", "/v1/sandboxes/nosuch", `{"network":{"allow":[]}}`, true},
		{"PATCH", "/v1/sandboxes/" + sb.ID, `{"network":{"allow":[]}}`, true},
		{"PATCH", "/v1/sandboxes/" + sb.ID, `{"network":{"allow":["pkgs.example.org"]}}`, true},
		{"PATCH", "/v1/sandboxes/" + sb.ID, `{}`, false},
		{"GET", "/v1/sandboxes/nosuch/files", "", true},
		{"GET", "/v1/sandboxes/nosuch/files/x", "", true},
		{"PUT", "/v1/sandboxes/nosuch/files/x", "", true},
		{"DELETE", "/v1/sandboxes/nosuch/files/x", "", true},
		{"GET", "/v1/sandboxes/nosuch/archive?path=x", "", true},
	}
	hc := testdaemon.HTTPClient(d.Socket)
	for _, c := range cases {
		t.Run(c.method+" "+c.path+" "+c.body, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, "http://localhost"+c.path, strings.NewReader(c.body))
			if c.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if c.path == "/v1/testsets" {
				req.Header.Set("Content-Type", "application/x-tar") // an archive, not JSON
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("no route in the schema: %v", err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			if err := openapi3filter.ValidateRequest(context.Background(), in); (err == nil) != c.validRequest {
				t.Fatalf("schema says request valid=%v: %v", err == nil, err)
			}
			req.Body = io.NopCloser(strings.NewReader(c.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out := &openapi3filter.ResponseValidationInput{
				RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
				Body: io.NopCloser(bytes.NewReader(body)),
			}
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Errorf("response %d %s does not match the schema: %v", resp.StatusCode, body, err)
			}
		})
	}
}
