package judge_test

import (
	"context"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/client"
)

// Every request an interactor cannot serve is refused before anything
// runs, with the error docs/api.md lists for it.
func TestInteractorRequestErrors(t *testing.T) {
	d := startShell(t)
	inter := &api.Program{Language: "sh", Files: shFiles(shInteractor)}
	tests := []api.Test{{Stdin: "5", ExpectedStdout: "5"}}
	prog := shFiles(shBinarySearch)
	cases := []struct {
		name    string
		req     api.ExecuteRequest
		code    string
		message string
	}{
		{"no tests", api.ExecuteRequest{Language: "sh", Files: prog, Interactor: inter}, "invalid_request", `"interactor" needs "tests"`},
		{"with a checker", api.ExecuteRequest{Language: "sh", Files: prog, Interactor: inter, Tests: tests,
			Checker: &api.Program{Language: "sh", Files: shFiles("exit 0")}}, "invalid_request", `"checker" exclude each other`},
		{"with a terminal, no tests", api.ExecuteRequest{Language: "sh", Files: prog, Interactor: inter, TTY: true}, "invalid_request", `needs "tests"`},
		{"with a terminal and tests", api.ExecuteRequest{Language: "sh", Files: prog, Interactor: inter, Tests: tests, TTY: true}, "invalid_request", `"tty"`},
		{"unknown language", api.ExecuteRequest{Language: "sh", Files: prog, Tests: tests,
			Interactor: &api.Program{Language: "intercal", Files: shFiles("x")}}, "unknown_language", "interactor"},
		{"unknown version", api.ExecuteRequest{Language: "sh", Files: prog, Tests: tests,
			Interactor: &api.Program{Language: "sh", Version: "99", Files: shFiles("x")}}, "unknown_language", "interactor"},
		{"no files", api.ExecuteRequest{Language: "sh", Files: prog, Tests: tests,
			Interactor: &api.Program{Language: "sh"}}, "invalid_request", `"files" is required`},
		{"a file named input", api.ExecuteRequest{Language: "sh", Files: prog, Tests: tests,
			Interactor: &api.Program{Language: "sh", Files: []api.File{{Name: "main.sh", Content: "x"}, {Name: "input", Content: "x"}}}}, "invalid_request", `"input"`},
		{"a bad file name", api.ExecuteRequest{Language: "sh", Files: prog, Tests: tests,
			Interactor: &api.Program{Language: "sh", Files: []api.File{{Name: "../x", Content: "x"}}}}, "invalid_request", "interactor"},
		{"bad interactor limits", api.ExecuteRequest{Language: "sh", Files: prog, Tests: tests, Interactor: inter,
			InteractorLimits: &api.Limits{MemoryBytes: ptr(int64(1) << 50)}}, "invalid_request", "interactor_limits"},
		{"record without an interactor", api.ExecuteRequest{Language: "sh", Files: prog, Tests: tests, Record: true}, "invalid_request", `"record" needs "interactor"`},
		{"limits without an interactor", api.ExecuteRequest{Language: "sh", Files: prog, Tests: tests,
			InteractorLimits: &api.Limits{WallTimeMS: ptr(int64(1000))}}, "invalid_request", `"interactor_limits" needs "interactor"`},
		{"raw mode", api.ExecuteRequest{Image: "busybox", Cmd: []string{"true"}, Interactor: inter}, "invalid_request", "language mode"},
	}
	for _, c := range cases {
		var err error
		if c.req.Image != "" {
			_, err = d.Client.Execute(context.Background(), &c.req)
		} else {
			_, err = d.Client.ExecuteLanguage(context.Background(), &c.req)
		}
		if !client.IsCode(err, c.code) || !strings.Contains(err.Error(), c.message) {
			t.Errorf("%s: %v, want %s with %q", c.name, err, c.code, c.message)
		}
	}
	// An interactor that does not compile is the judge's fault: the
	// request's checker_error, with the compile, before any test runs.
	r := execute(t, d, &api.ExecuteRequest{Language: "sh", Files: prog, Tests: tests,
		Interactor: &api.Program{Language: "shc", Files: shFiles("SYNTAX")}})
	if r.Status != "checker_error" || r.CheckerCompile == nil || r.CheckerCompile.Status == "ok" ||
		!strings.Contains(r.CheckerCompile.Stderr, "syntax error in main.sh") || r.Tests != nil {
		t.Errorf("an interactor that does not compile: %s, compile %+v, tests %v", r.Status, r.CheckerCompile, r.Tests)
	}
	// A compiled interactor runs from its compile, which the cache keeps.
	for i := range 2 {
		r := execute(t, d, &api.ExecuteRequest{Language: "sh", Files: prog, Tests: tests,
			Interactor: &api.Program{Language: "shc", Files: shFiles(shInteractor)}})
		if r.Status != "accepted" {
			t.Errorf("compiled interactor, request %d: %s %+v", i, r.Status, r.Tests)
		}
	}
}
